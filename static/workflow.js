// A job's workflow, in its detail: its dependencies and dependents as links with their live status, and a small
// graph of the jobs linked to it (parents above, children below, edges in SVG), each node's status following the
// stream. The jobs around it are read once when the detail opens; events only recolour what is drawn.
import { api, isAbort, jobUrl } from "./api.js";
import { goToJob, jobHref } from "./router.js";
import { state } from "./state.js";

const MAX_NODES = 60; // jobs read around the one shown: a bigger workflow is drawn up to its edge
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
const box = $("detail-workflow");
const lists = { depends_on: $("detail-depends"), dependents: $("detail-dependents") };
const graph = $("detail-graph");
const edges = $("detail-edges");
let nodes = new Map(); // id -> {job (null when unread or deleted), views: [{status element, link}]}
let links = []; // [parent id, child id] of the edges drawn
let shown = null; // the job whose workflow is drawn

/** Draw the workflow of `job` (a detail view's: with `dependents`); `signal` aborts the reads around it. */
export async function showWorkflow(job, signal) {
  shown = job.id;
  nodes = new Map();
  links = [];
  const related = job.depends_on.length + (job.dependents || []).length;
  box.hidden = related === 0;
  if (box.hidden) return;
  nodes.set(job.id, { job, views: [] });
  drawLists(job);
  const asked = new Set([job.id]);
  try {
    await explore(job, asked, signal);
  } catch (err) {
    if (isAbort(err)) return;
  }
  if (signal.aborted || shown !== job.id) return;
  drawLists(job);
  drawGraph(asked);
}

/** An event of `job`: its status wherever the workflow shows it. */
export function followWorkflow(job) {
  const node = nodes.get(job.id);
  if (!node) return;
  node.job = job;
  for (const view of node.views) paint(view, job);
}

/** Job `id` was deleted. */
export function removedFromWorkflow(id) {
  const node = nodes.get(id);
  if (!node) return;
  node.job = null;
  for (const view of node.views) paint(view, null);
}

/** Read the jobs linked to `job`, breadth first, until MAX_NODES are `asked` (a deleted one stays unread). */
async function explore(job, asked, signal) {
  let wave = neighbours(job);
  while (wave.length && asked.size < MAX_NODES) {
    const ids = [...new Set(wave)].filter((id) => !asked.has(id)).slice(0, MAX_NODES - asked.size);
    ids.forEach((id) => asked.add(id));
    ids.forEach((id) => nodes.has(id) || nodes.set(id, { job: null, views: [] }));
    const read = await Promise.all(ids.map((id) => api(jobUrl(id), { signal }).then((d) => d.job, forgotten)));
    wave = [];
    read.forEach((found, at) => {
      if (!found) return;
      nodes.get(ids[at]).job = found;
      wave.push(...neighbours(found));
    });
  }
}

function forgotten(err) {
  if (isAbort(err)) throw err;
  return null; // deleted (404) or unreadable: drawn as a job we cannot see
}

function neighbours(job) {
  return [...job.depends_on, ...(job.dependents || [])];
}

function drawLists(job) {
  for (const [field, list] of Object.entries(lists)) {
    const ids = field === "depends_on" ? job.depends_on : job.dependents || [];
    list.closest("div").hidden = ids.length === 0;
    list.replaceChildren(
      ...ids.map((id) => {
        const li = document.createElement("li");
        li.append(nodeView(id, "related"));
        return li;
      }),
    );
  }
}

/** A link to job `id` with its name and status, kept live by followWorkflow. */
function nodeView(id, kind) {
  const node = nodes.get(id) || { job: null, views: [] };
  nodes.set(id, node);
  const link = document.createElement("a");
  link.className = `job-link ${kind}`;
  link.href = jobHref(id, state.view);
  link.dataset.id = id;
  const name = document.createElement("span");
  name.className = "job-link-name";
  const status = document.createElement("span");
  status.className = "badge";
  link.append(name, status);
  const view = { link, name, status };
  node.views.push(view);
  paint(view, node.job, id);
  if (id === shown) link.setAttribute("aria-current", "page");
  return link;
}

function paint(view, job, id = view.link.dataset.id) {
  const status = job ? job.status : "unknown";
  view.name.textContent = job ? job.name : id;
  const waiting = job?.status === "pending" && job.waiting_for?.length;
  view.status.textContent = waiting ? `waiting for ${job.waiting_for.length}` : status;
  view.status.className = `badge status-${status}`;
  view.link.dataset.status = status;
  view.link.title = job ? `${job.name}: ${status}` : `${id} (not readable: deleted?)`;
}

/** The jobs read (`ids`) in layers, each below every parent it has among them; the edges between them in SVG. */
function drawGraph(ids) {
  const depth = new Map();
  const level = (id, seen = new Set()) => {
    if (depth.has(id)) return depth.get(id);
    if (seen.has(id)) return 0; // never for a graph jobstream accepted; a guard all the same
    seen.add(id);
    const parents = (nodes.get(id)?.job?.depends_on || []).filter((p) => ids.has(p));
    const found = parents.length ? 1 + Math.max(...parents.map((p) => level(p, seen))) : 0;
    depth.set(id, found);
    return found;
  };
  const layers = [];
  for (const id of [...ids].sort()) (layers[level(id)] ||= []).push(id);
  links = [];
  for (const id of ids) {
    for (const parent of nodes.get(id).job?.depends_on || []) if (ids.has(parent)) links.push([parent, id]);
  }
  const rows = layers.map((ids) => {
    const row = document.createElement("div");
    row.className = "graph-layer";
    row.append(...ids.map((id) => nodeView(id, "graph-node")));
    return row;
  });
  graph.replaceChildren(...rows);
  requestAnimationFrame(drawEdges);
}

/** A line from each parent's bottom to each child's top, in the graph's own coordinates. */
function drawEdges() {
  const frame = graph.getBoundingClientRect();
  edges.setAttribute("width", frame.width);
  edges.setAttribute("height", frame.height);
  edges.setAttribute("viewBox", `0 0 ${frame.width} ${frame.height}`);
  const at = (id) => graph.querySelector(`.graph-node[data-id="${CSS.escape(id)}"]`)?.getBoundingClientRect();
  const lines = [];
  for (const [parent, child] of links) {
    const from = at(parent);
    const to = at(child);
    if (!from || !to) continue;
    const line = document.createElementNS(SVG, "line");
    line.setAttribute("x1", from.left + from.width / 2 - frame.left);
    line.setAttribute("y1", from.bottom - frame.top);
    line.setAttribute("x2", to.left + to.width / 2 - frame.left);
    line.setAttribute("y2", to.top - frame.top);
    line.dataset.from = parent;
    line.dataset.to = child;
    lines.push(line);
  }
  edges.replaceChildren(...lines);
}

function onClick(event) {
  const link = event.target.closest("a.job-link");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return; // a new tab
  event.preventDefault();
  goToJob(link.dataset.id, state.view);
}

export function wireWorkflow() {
  box.addEventListener("click", onClick);
  window.addEventListener("resize", () => box.hidden || requestAnimationFrame(drawEdges));
}

// The job list: one row per job, newest first, redrawn at most once per animation frame.
import { api, clearNotice, jobUrl, listUrl, report } from "./api.js";
import { openDetail } from "./detail.js";
import { drawPriority } from "./priority.js";
import { state, takeQueued } from "./state.js";

const ENDED = ["completed", "failed", "canceled"];
const tbody = document.querySelector("#jobs tbody");
const rowTemplate = document.getElementById("row-template");
const empty = document.getElementById("empty");
const more = document.getElementById("more");

/** Replace every row with a first page of the list. */
export function showPage(jobs) {
  tbody.replaceChildren();
  jobs.forEach((job) => upsert(job, true));
  refreshChrome();
}

export function scheduleFlush() {
  if (state.flushScheduled) return;
  state.flushScheduled = true;
  requestAnimationFrame(flush);
}

function flush() {
  const { removed, pending } = takeQueued();
  removed.forEach(dropRow);
  pending.forEach((job) => upsert(job, false));
  refreshChrome();
}

function upsert(job, append) {
  const entry = state.rows.get(job.id);
  if (state.filter && job.status !== state.filter) {
    if (entry) dropRow(job.id);
    return;
  }
  if (entry) {
    entry.job = job;
    drawRow(entry.tr, job);
    return;
  }
  const tr = rowTemplate.content.firstElementChild.cloneNode(true);
  tr.dataset.id = job.id;
  drawRow(tr, job);
  if (append) {
    tbody.append(tr);
  } else if (!placeRow(tr, job.id)) {
    return; // older than everything loaded: it belongs to a page not fetched yet
  }
  state.rows.set(job.id, { job, tr });
}

function placeRow(tr, id) {
  // Rows are newest first and ids sort by creation time.
  for (const other of tbody.children) {
    if (other.dataset.id < id) {
      tbody.insertBefore(tr, other);
      return true;
    }
  }
  if (state.nextCursor) return false;
  tbody.append(tr);
  return true;
}

function dropRow(id) {
  state.rows.get(id)?.tr.remove();
  state.rows.delete(id);
  state.activeIds.delete(id);
}

function drawRow(tr, job) {
  tr.dataset.status = job.status;
  tr.querySelector(".name").textContent = job.name;
  const badge = tr.querySelector(".badge");
  badge.textContent = job.cancel_requested ? "canceling" : job.status;
  badge.className = `badge status-${job.status}`;
  drawPriority(tr.querySelector(".priority"), job.priority);
  tr.querySelector("progress").value = job.progress;
  tr.querySelector(".percent").textContent = `${job.progress}%`;
  tr.querySelector(".action").textContent = job.error || job.action || "";
  tr.querySelector(".elapsed").textContent = elapsed(job);
  tr.querySelector('[data-do="cancel"]').hidden = ENDED.includes(job.status) || job.cancel_requested;
  tr.querySelector('[data-do="retry"]').hidden = !(job.status === "failed" || job.status === "canceled");
  tr.querySelector('[data-do="delete"]').hidden = job.status === "active";
  if (job.status === "active") state.activeIds.add(job.id);
  else state.activeIds.delete(job.id);
}

function elapsed(job) {
  if (!job.started_at) return "";
  const end = job.ended_at ? Date.parse(job.ended_at) : Date.now();
  const seconds = Math.max(0, Math.round((end - Date.parse(job.started_at)) / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 60 ? `${minutes}m ${seconds % 60}s` : `${Math.floor(minutes / 60)}h ${minutes % 60}m`;
}

function tickElapsed() {
  for (const id of state.activeIds) {
    const entry = state.rows.get(id);
    if (entry) entry.tr.querySelector(".elapsed").textContent = elapsed(entry.job);
  }
}

function refreshChrome() {
  empty.hidden = state.rows.size > 0;
  more.hidden = !state.nextCursor;
}

async function loadMore() {
  if (!state.nextCursor) return;
  clearNotice();
  const signal = state.view.signal; // a newer filter or restart makes this page stale
  try {
    const page = await api(listUrl(state.filter, state.nextCursor), { signal });
    page.jobs.forEach((job) => state.rows.has(job.id) || upsert(job, true));
    state.nextCursor = page.next_cursor;
    refreshChrome();
  } catch (err) {
    report(err);
  }
}

async function act(id, what) {
  clearNotice();
  try {
    if (what === "delete") await api(jobUrl(id), { method: "DELETE" });
    else await api(jobUrl(id, what), { method: "POST" });
  } catch (err) {
    report(err); // e.g. the job ended before the click reached the server
  }
}

function onTableClick(event) {
  const tr = event.target.closest("tr");
  if (!tr) return;
  const button = event.target.closest("button[data-do]");
  if (button) act(tr.dataset.id, button.dataset.do);
  else openDetail(tr.dataset.id);
}

export function wireTable() {
  tbody.addEventListener("click", onTableClick);
  more.addEventListener("click", loadMore);
  setInterval(tickElapsed, 1000);
}

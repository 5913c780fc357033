// The job list: newest first, redrawn at most once per animation frame and only where a job changed.
// Rows off screen cost nothing: CSS `content-visibility: auto` skips their blocks' layout and paint
// (blocks.js), and only the rows on screen tick with the clock. A row's place, and the first row on screen, are found by binary search
// (an IntersectionObserver on every row costs a pass over all of them at each frame: measured, bench/).
import { act } from "./actions.js";
import { api, clearNotice, listUrl, showProblem } from "./api.js";
import { appendRows, clearRows, insertRow, removeRow, rowsNearScreen } from "./blocks.js";
import { everySecond } from "./clock.js";
import { drawCounts } from "./counts.js";
import { adoptRow, drawRow, drawTexts, makeRow, ticks } from "./row.js";
import { goToJob } from "./router.js";
import { onSelectClick, refreshSelection } from "./select.js";
import { indexFor, state, takeQueued } from "./state.js";

const NEAR_SCREEN_PX = 300; // rows this close to the viewport count as on screen
const LOAD_AHEAD_PX = 800; // the next page loads when "Load more" is this close to the screen
const table = document.getElementById("jobs");
const empty = document.getElementById("empty");
const more = document.getElementById("more");
const shown = document.getElementById("shown");
const SLICE_MS = 8; // rows are drawn for this long per frame while pages go in: no long task, ~60 frames/s
const tail = new Map(); // id -> job of the pages loaded but not drawn yet, in list order (after every row)
let tailScheduled = false;
let loadingMore = false;
let seeScheduled = false;

const nearEnd = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && loadMore(), {
  rootMargin: `${LOAD_AHEAD_PX}px 0px`,
});

/** Replace every row with a first page of the list (drawn a slice per frame: see drawTail); `served`: the server
 * drew its rows into the HTML (web/rows.py), so they are taken as they are. */
export function showPage(jobs, served = false) {
  tail.clear();
  if (served) {
    adoptRows(jobs);
    return;
  }
  clearRows();
  appendPage(jobs);
}

/** Take the rows the server drew for `jobs`, in their order, each redrawn in place: the same values, but the
 * bar's length (in browsers whose stylesheet cannot read it from aria-valuenow) and a scheduled time's clock
 * (the browser's local time). */
function adoptRows(jobs) {
  const trs = [...table.tBodies].flatMap((block) => [...block.rows]);
  const now = Date.now();
  jobs.forEach((job, i) => {
    const entry = adoptRow(trs[i]);
    drawRow(entry, job, now);
    state.rows.set(job.id, entry);
    state.order.push(job.id);
  });
  scheduleSee();
  rowsDrawn();
}

/** Rows for `jobs` (older than every row shown) after the others. */
function appendPage(jobs) {
  for (const job of jobs) if (!state.rows.has(job.id)) tail.set(job.id, job);
  drawTail();
}

/** Draw rows of the pages loaded for SLICE_MS, and the rest at the next frames: no long task. */
function drawTail() {
  tailScheduled = false;
  const trs = [];
  const now = Date.now();
  const until = performance.now() + SLICE_MS;
  for (const [id, job] of tail) {
    if (trs.length % 10 === 0 && trs.length && performance.now() > until) break;
    tail.delete(id);
    const entry = makeRow(job, state.view);
    drawRow(entry, job, now);
    state.rows.set(id, entry);
    state.order.push(id);
    trs.push(entry.tr);
  }
  appendRows(trs);
  scheduleSee();
  if (tail.size && !tailScheduled) {
    tailScheduled = true;
    requestAnimationFrame(drawTail);
  }
  rowsDrawn();
}

function rowsDrawn() {
  refreshChrome();
  if (!tail.size && state.nextCursor && nearScreen(more)) loadMore(); // the list is still short of the screen
}

/** A job that belongs among the rows not drawn yet: kept there, in its place (rare: most are the newest). */
function keepInTail(job) {
  const entries = [...tail.values(), job].sort((a, b) => (a.id < b.id ? 1 : -1));
  tail.clear();
  for (const each of entries) tail.set(each.id, each);
}

export function scheduleFlush() {
  if (state.flushScheduled) return;
  state.flushScheduled = true;
  requestAnimationFrame(flush);
}

function flush() {
  const { removed, pending } = takeQueued();
  const now = Date.now();
  removed.forEach(dropRow);
  for (const job of pending) upsert(job, now);
  if (!state.countsDrawn) drawCounts();
  refreshChrome();
}

/** Whether `job` belongs in the list's view: its status filter and its search (an id, or part of a name). */
export function inView(job, view = state.view) {
  if (view.status && job.status !== view.status) return false;
  if (!view.q) return true;
  return job.id === view.q || job.name.toLowerCase().includes(view.q.toLowerCase());
}

function upsert(job, now) {
  const entry = state.rows.get(job.id);
  if (tail.has(job.id)) {
    if (inView(job)) tail.set(job.id, job); // drawn with its newest snapshot when its turn comes
    else tail.delete(job.id);
    return;
  }
  if (!inView(job)) {
    if (entry) dropRow(job.id);
    return;
  }
  if (entry) {
    drawRow(entry, job, now);
    return;
  }
  const index = indexFor(job.id);
  if (index === state.order.length && tail.size) {
    keepInTail(job); // older than every row drawn: it waits with the rest
    return;
  }
  if (index === state.order.length && state.nextCursor) return; // older than every row: a later page has it
  const row = makeRow(job, state.view);
  drawRow(row, job, now);
  const next = state.order[index];
  insertRow(row.tr, next ? state.rows.get(next).tr : null);
  state.order.splice(index, 0, job.id);
  state.rows.set(job.id, row);
  scheduleSee();
}

function dropRow(id) {
  tail.delete(id);
  const entry = state.rows.get(id);
  if (!entry) return;
  const index = indexFor(id);
  if (state.order[index] === id) state.order.splice(index, 1);
  removeRow(entry.tr);
  state.rows.delete(id);
  state.visible.delete(id);
  state.selected.delete(id);
  scheduleSee();
}

function scheduleSee() {
  if (seeScheduled) return;
  seeScheduled = true;
  requestAnimationFrame(seeRows);
}

/** Which rows are on or near the screen now; those that just came into view get their times redrawn. */
function seeRows() {
  seeScheduled = false;
  const now = Date.now();
  const ids = rowsNearScreen(NEAR_SCREEN_PX).map((tr) => tr.dataset.id);
  const before = new Set(state.visible);
  state.visible.clear();
  for (const id of ids) {
    state.visible.add(id);
    const entry = state.rows.get(id);
    if (!before.has(id) && ticks(entry.job)) drawTexts(entry, now); // its times did not tick off screen
  }
}

function tick(now) {
  for (const id of state.visible) {
    const entry = state.rows.get(id);
    if (entry && ticks(entry.job)) drawTexts(entry, now);
  }
}

function refreshChrome() {
  const count = state.rows.size;
  setHidden(empty, count > 0);
  setText(empty, state.view.status || state.view.q ? "No jobs match." : "No jobs yet.");
  setHidden(more, !state.nextCursor);
  setText(shown, count ? `${count} shown${state.nextCursor ? ", more below" : ""}` : "");
  refreshSelection();
}

// Every frame calls these: write only what changed, as a write costs a style and layout pass.
function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

function setHidden(el, hidden) {
  if (el.hidden !== hidden) el.hidden = hidden;
}

async function loadMore() {
  if (!state.nextCursor || loadingMore || state.buffer || tail.size) return;
  loadingMore = true;
  clearNotice();
  const signal = state.list.signal; // a newer view makes this page stale
  try {
    const page = await api(listUrl(state.view, state.nextCursor), { signal });
    state.nextCursor = page.next_cursor;
    appendPage(page.jobs);
  } catch (err) {
    showProblem(err);
  } finally {
    loadingMore = false;
  }
}

function nearScreen(el) {
  return !el.hidden && el.getBoundingClientRect().top < window.innerHeight + LOAD_AHEAD_PX;
}

function onTableClick(event) {
  const tr = event.target.closest("tr[data-id]");
  if (!tr) return;
  const id = tr.dataset.id;
  const button = event.target.closest("button[data-do]");
  if (button) {
    act(id, button.dataset.do, button);
    return;
  }
  if (event.target.closest("input.select")) {
    onSelectClick(id, event.target, event);
    return;
  }
  const link = event.target.closest("a");
  if (link && (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0)) return; // a new tab
  if (!link && (event.target.closest("td.cell-select") || window.getSelection().toString())) return;
  event.preventDefault();
  goToJob(id, state.view);
}

export function wireTable() {
  table.addEventListener("click", onTableClick);
  more.addEventListener("click", loadMore);
  nearEnd.observe(more);
  window.addEventListener("scroll", scheduleSee, { passive: true });
  window.addEventListener("resize", scheduleSee);
  everySecond(tick);
}

// The page's one state. Every module reads it here; a field owned by one module (a timer, the source) is
// set there, and changes that touch several fields go through the functions below.

export const state = {
  canChange: document.body.dataset.canChange !== "false", // false for read-only credentials
  view: { status: "", q: "" }, // what the list shows, as the URL's query says
  rows: new Map(), // job id -> {job, tr, cells}: the rows in the table
  order: [], // the ids of the rows, newest first (ids sort by creation time)
  nextCursor: null, // where the list's next page starts; null once every page is loaded
  list: new AbortController(), // the list's fetches; aborted when a newer view replaces it
  listAfter: null, // the list holds every change up to this event id: older events are not drawn
  buffer: null, // [eventId, event] that arrive while a first page loads; null when none loads
  pending: new Map(), // job id -> newest snapshot not yet drawn
  removed: new Set(), // ids whose rows go at the next frame
  flushScheduled: false,
  counts: null, // jobs by status, from the newest page or event
  countsDrawn: false,
  visible: new Set(), // ids of rows on or near the screen (only those tick)
  selected: new Set(), // ids of the rows ticked for a bulk action
  anchor: null, // the row a shift-click extends the selection from
  source: null, // the one EventSource
  lastEventId: null, // the newest event received: a reopened stream resumes after it
  lastEventAt: null, // when it arrived (Date.now())
  downSince: null, // when the stream was lost; null while live
  detail: emptyDetail(),
  types: [], // the job types, each with its params' JSON schema and defaults
  reports: new Map(), // id of an active job -> its latest progress reports [[ms, percent], ...], oldest first
};

const PACE_REPORTS = 10; // a running job's pace is read over its latest reports: it follows a change of speed

function emptyDetail() {
  return {
    id: null, // the job in the detail panel
    job: null, // its newest snapshot
    buffer: null, // [eventId, line] of live log lines that arrive while its log loads
    after: null, // the log shown holds every line up to this event id
    view: new AbortController(), // its load; aborted by a newer load or a close
  };
}

/** A new list view: the older one's fetches are aborted, events are buffered until its page arrives. */
export function startView() {
  state.list.abort();
  state.list = new AbortController();
  state.buffer = [];
  return state.list.signal;
}

/** Forget every row for a fresh first page read at event `after`; returns the buffered events newer than it. */
export function resetList(nextCursor, after) {
  state.rows.clear();
  state.order = [];
  state.pending.clear();
  state.removed.clear();
  state.visible.clear();
  state.selected.clear();
  state.anchor = null;
  state.nextCursor = nextCursor;
  state.listAfter = after;
  const buffered = state.buffer || [];
  state.buffer = null;
  return buffered.filter(([eventId]) => !after || newerId(eventId, after)).map(([, event]) => event);
}

/** Whether an event is news for the list (a page read after it already shows it); buffered while a page loads. */
export function listTakes(eventId, event) {
  if (state.buffer) {
    state.buffer.push([eventId, event]);
    return false;
  }
  return !state.listAfter || !eventId || newerId(eventId, state.listAfter);
}

export function setView(view) {
  state.view = { status: view.status || "", q: view.q || "" };
}

export function setTypes(types) {
  state.types = types;
}

export function setCounts(counts) {
  if (!counts) return;
  state.counts = counts;
  state.countsDrawn = false;
}

/** Keep a job's newest snapshot for the next frame. */
export function queueUpdate(job) {
  state.removed.delete(job.id);
  state.pending.set(job.id, job);
}

export function queueRemoval(id) {
  state.pending.delete(id);
  state.removed.add(id);
}

/** What the next frame draws: ids to drop and snapshots to draw, emptied here. */
export function takeQueued() {
  const removed = [...state.removed];
  const pending = [...state.pending.values()];
  state.removed.clear();
  state.pending.clear();
  state.flushScheduled = false;
  return { removed, pending };
}

/** Where id belongs in state.order (newest first), by binary search: O(log n). */
export function indexFor(id) {
  const order = state.order;
  if (order.length === 0 || id > order[0]) return 0; // the common case: a new job goes on top
  let lo = 0;
  let hi = order.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (order[mid] > id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The stream was seen alive now (an event, or its open). */
export function streamAlive(eventId) {
  if (eventId) state.lastEventId = eventId;
  state.lastEventAt = Date.now();
}

/** The detail shows job `id`; an older load is aborted. Returns the new load's signal. */
export function beginDetail(id) {
  state.detail.view.abort();
  state.detail = { ...emptyDetail(), id, buffer: [] };
  return state.detail.view.signal;
}

/** The detail's log holds every line up to event `after`; returns the buffered lines newer than that, one per
 * line of the log (an event's text may hold several, a traceback's). */
export function settleDetail(after) {
  const buffered = state.detail.buffer || [];
  state.detail.buffer = null;
  state.detail.after = after;
  return buffered.filter(([eventId]) => !after || newerId(eventId, after)).flatMap(([, text]) => text.split("\n"));
}

/** A live log line for the detail: buffered while its log loads, returned only if the log shown lacks it. */
export function takeLiveLine(eventId, line) {
  const detail = state.detail;
  if (detail.buffer) {
    if (line) detail.buffer.push([eventId, line]);
    return null;
  }
  return !detail.after || newerId(eventId, detail.after) ? line : null;
}

export function endDetail() {
  state.detail.view.abort();
  state.detail = emptyDetail();
}

/** Note a job's progress at event `eventId` (its id's milliseconds: the server's clock when it happened). */
export function noteProgress(job, eventId) {
  if (job.status !== "active" || !eventId) {
    state.reports.delete(job.id);
    return;
  }
  const ms = Number(eventId.split("-")[0]);
  const seen = state.reports.get(job.id) || [];
  const last = seen[seen.length - 1];
  if (last && (job.progress < last[1] || ms < last[0])) seen.length = 0; // a new attempt starts over
  else if (last && job.progress === last[1]) return; // no progress reported (an action, a log line)
  seen.push([ms, job.progress]);
  if (seen.length > PACE_REPORTS) seen.shift();
  state.reports.set(job.id, seen);
}

export function forgetProgress(id) {
  state.reports.delete(id);
}

/** A running job's pace from its progress reports: {perMinute, secondsLeft}; null until two reports. */
export function pace(id) {
  const seen = state.reports.get(id);
  if (!seen || seen.length < 2) return null;
  const [[fromMs, from], [toMs, to]] = [seen[0], seen[seen.length - 1]];
  const perMinute = ((to - from) / (toMs - fromMs || 1)) * 60_000;
  return { perMinute, secondsLeft: perMinute > 0 ? ((100 - to) / perMinute) * 60 : null };
}

/** Redis stream ids "ms-seq" compare as number pairs. */
export function newerId(a, b) {
  const [am, as] = a.split("-").map(Number);
  const [bm, bs] = b.split("-").map(Number);
  return am > bm || (am === bm && as > bs);
}

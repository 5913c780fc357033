// The page's one state. Every module reads it here; a field owned by one module (a timer, the
// source) is set there, and changes that touch several fields go through the functions below.

export const state = {
  rows: new Map(), // job id -> {job, tr}: the rows in the table
  pending: new Map(), // job id -> newest snapshot not yet drawn
  removed: new Set(), // ids whose rows go at the next frame
  activeIds: new Set(), // rows whose elapsed time ticks each second
  filter: "", // the status listed; "" for every job
  nextCursor: null, // where the list's next page starts; null once every page is loaded
  source: null, // the one EventSource
  view: new AbortController(), // the list's fetches; aborted when a newer view replaces it
  flushScheduled: false,
  countsTimer: null,
  detail: emptyDetail(),
  types: [], // the job types, each with its params' JSON schema
};

function emptyDetail() {
  return {
    id: null, // the job in the detail panel
    buffer: null, // [eventId, line] of live log lines that arrive while its log loads
    after: null, // the log shown holds every line up to this event id
    view: new AbortController(), // its load; aborted by a newer load or a close
  };
}

/** A new list view: the older one's fetches are aborted and its stream closed; returns the new signal. */
export function startView() {
  state.view.abort();
  state.source?.close();
  state.source = null;
  state.view = new AbortController();
  return state.view.signal;
}

/** Forget every row (a fresh first page follows). */
export function resetList(nextCursor) {
  state.rows.clear();
  state.pending.clear();
  state.removed.clear();
  state.activeIds.clear();
  state.nextCursor = nextCursor;
}

export function setFilter(status) {
  state.filter = status;
}

export function setTypes(types) {
  state.types = types;
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

/** The detail shows job `id`; an older load is aborted. Returns the new load's signal. */
export function beginDetail(id) {
  state.detail.view.abort();
  state.detail = { ...emptyDetail(), id, buffer: [] };
  return state.detail.view.signal;
}

/** The detail's log holds every line up to event `after`; returns the buffered lines newer than that. */
export function settleDetail(after) {
  const buffered = state.detail.buffer || [];
  state.detail.buffer = null;
  state.detail.after = after;
  return buffered.filter(([eventId]) => !after || newerId(eventId, after)).map(([, line]) => line);
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

function newerId(a, b) {
  // Redis stream ids "ms-seq" compare as number pairs.
  const [am, as] = a.split("-").map(Number);
  const [bm, bs] = b.split("-").map(Number);
  return am > bm || (am === bm && as > bs);
}

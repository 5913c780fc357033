// The live view: a first page of the list, and one EventSource for the life of the tab that resumes from the
// newest event it saw. A new view (filter, search, a `reset`) refetches the page, never the stream.
import { api, isAbort, listUrl, showProblem, takeServedPage, urls } from "./api.js";
import { everySecond } from "./clock.js";
import { followDetail, removedDetail } from "./detail.js";
import { noteFailures } from "./failures.js";
import { ago } from "./format.js";
import { noteScheduledJob, noteSchedule, readSchedules } from "./schedules.js";
import {
  forgetProgress,
  listTakes,
  noteProgress,
  queueRemoval,
  queueUpdate,
  resetList,
  setCounts,
  startView,
  state,
  streamAlive,
} from "./state.js";
import { scheduleFlush, showPage } from "./table.js";
import { followWorkflow, removedFromWorkflow } from "./workflow.js";

const RETRY_MS = 3000; // as the server's `retry:` says
const BEGINNING = "0-0"; // the id before every event (jobs/stream/events.py BEGINNING)
const OFFLINE_AFTER_MS = 20_000; // reconnecting this long (or the browser says so): offline
const LABELS = { connecting: "connecting…", live: "live", reconnecting: "reconnecting…", offline: "offline" };
const indicator = document.getElementById("connection");
const lastEvent = document.getElementById("last-event");
let reopenTimer = null;

function setConnection(status) {
  if (indicator.dataset.state === status) return;
  indicator.dataset.state = status;
  indicator.textContent = LABELS[status];
}

/** (Re)load the list's first page for state.view; events that arrive meanwhile are kept, then applied. The
 * first view's page came with the HTML, its rows drawn already: it is taken as it is, with no request. */
export async function startList() {
  const signal = startView(); // aborts what the older view still had in flight
  const served = takeServedPage();
  let page = served;
  try {
    page ??= await api(listUrl(state.view, null), { signal });
  } catch (err) {
    if (isAbort(err)) return;
    showProblem(err);
    setTimeout(() => signal.aborted || startList(), RETRY_MS);
    return;
  }
  const missed = resetList(page.next_cursor, page.last_event_id);
  setCounts(page.counts);
  showPage(page.jobs, served !== null);
  missed.forEach(applyToList);
  scheduleFlush();
  // No event stored yet: start from the very first, or one published since this page was read is missed.
  if (!state.source) openStream(page.last_event_id ?? BEGINNING);
}

function openStream(lastEventId) {
  clearTimeout(reopenTimer);
  const url = lastEventId ? `${urls.stream}?last_event_id=${encodeURIComponent(lastEventId)}` : urls.stream;
  const source = new EventSource(url);
  state.source = source;
  state.lastEventId ??= lastEventId;
  source.addEventListener("open", () => {
    state.downSince = null;
    setConnection("live");
  });
  source.addEventListener("error", () => onStreamError(source));
  source.addEventListener("job-update", onEvent);
  source.addEventListener("job-removed", onEvent);
  source.addEventListener("schedule-update", onScheduleEvent);
  source.addEventListener("schedule-removed", onScheduleEvent);
  source.addEventListener("reset", () => {
    startList(); // the server cannot replay what we missed
    readSchedules();
  });
}

function onStreamError(source) {
  state.downSince ??= Date.now();
  setConnection(navigator.onLine ? "reconnecting" : "offline");
  // The browser retries by itself, with Last-Event-ID, unless the server refused outright (e.g. a 503):
  // then reopen after our newest event ourselves.
  if (source.readyState === EventSource.CLOSED) {
    clearTimeout(reopenTimer);
    reopenTimer = setTimeout(() => openStream(state.lastEventId), RETRY_MS);
  }
}

function onEvent(message) {
  const event = JSON.parse(message.data);
  streamAlive(message.lastEventId);
  noteFailures(event);
  if (event.type === "job-removed") {
    forgetProgress(event.id);
    removedDetail(event.id);
    removedFromWorkflow(event.id);
  } else {
    noteProgress(event.job, message.lastEventId);
    noteScheduledJob(event.job);
    followDetail(event.job, message.lastEventId, event.log);
    followWorkflow(event.job);
  }
  if (listTakes(message.lastEventId, event)) applyToList(event);
}

function onScheduleEvent(message) {
  streamAlive(message.lastEventId);
  noteSchedule(JSON.parse(message.data));
}

function applyToList(event) {
  setCounts(event.counts);
  if (event.type === "job-removed") queueRemoval(event.id);
  else queueUpdate(event.job);
  scheduleFlush();
}

function tick(now) {
  if (state.downSince && (!navigator.onLine || now - state.downSince > OFFLINE_AFTER_MS)) setConnection("offline");
  const text = state.lastEventAt ? `last event ${ago(state.lastEventAt, now)}` : "";
  if (lastEvent.textContent !== text) lastEvent.textContent = text;
}

export function wireStream() {
  everySecond(tick);
  window.addEventListener("offline", () => state.downSince && setConnection("offline"));
  window.addEventListener("online", () => {
    if (state.source?.readyState === EventSource.CLOSED) openStream(state.lastEventId);
  });
}

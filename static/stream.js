// The list's live view: a first page, then one EventSource that resumes from that page's event id.
import { api, isAbort, listUrl, urls } from "./api.js";
import { showCounts, scheduleCounts } from "./counts.js";
import { closeDetail, followDetail } from "./detail.js";
import { queueRemoval, queueUpdate, resetList, startView, state } from "./state.js";
import { scheduleFlush, showPage } from "./table.js";

const RETRY_MS = 3000;
const badge = document.getElementById("connection");

function setConnection(status, text) {
  badge.dataset.state = status;
  badge.textContent = text;
}

/** (Re)start the view: fetch the list's first page, then follow the stream from where it was read. */
export async function start() {
  const signal = startView(); // aborts what the older view still had in flight
  setConnection("connecting", "connecting…");
  let page;
  try {
    page = await api(listUrl(state.filter, null), { signal });
  } catch (err) {
    if (isAbort(err)) return;
    setConnection("reconnecting", "reconnecting…");
    retryLater(signal);
    return;
  }
  resetList(page.next_cursor);
  showPage(page.jobs);
  showCounts(page.counts);
  openStream(page.last_event_id, signal);
}

function retryLater(signal) {
  const timer = setTimeout(start, RETRY_MS);
  signal.addEventListener("abort", () => clearTimeout(timer), { once: true }); // a newer view retries for itself
}

function openStream(lastEventId, signal) {
  const url = lastEventId ? `${urls.stream}?last_event_id=${encodeURIComponent(lastEventId)}` : urls.stream;
  const source = new EventSource(url);
  state.source = source;
  source.addEventListener("open", () => setConnection("live", "live"));
  source.addEventListener("error", () => onStreamError(source, signal));
  source.addEventListener("job-update", (e) => onUpdate(JSON.parse(e.data), e.lastEventId));
  source.addEventListener("job-removed", (e) => onRemoved(JSON.parse(e.data).id));
  source.addEventListener("reset", () => start()); // the server cannot replay what we missed: reload the list
}

function onStreamError(source, signal) {
  setConnection("reconnecting", "reconnecting…");
  // The browser retries by itself unless the server refused outright (e.g. 503): then start over.
  if (source.readyState === EventSource.CLOSED && !signal.aborted) retryLater(signal);
}

function onUpdate(event, eventId) {
  queueUpdate(event.job);
  followDetail(event.job, eventId, event.log);
  scheduleFlush();
  scheduleCounts();
}

function onRemoved(id) {
  queueRemoval(id);
  if (id === state.detail.id) closeDetail();
  scheduleFlush();
  scheduleCounts();
}

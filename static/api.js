// Talking to the server: its URLs and limits from <body data-*>, one fetch helper, one place that shows a failure.

const settings = document.body.dataset;
export const urls = {
  home: settings.homeUrl,
  jobs: settings.jobsUrl,
  stream: settings.streamUrl,
  types: settings.typesUrl,
  stats: settings.statsUrl,
  pause: settings.pauseUrl,
  resume: settings.resumeUrl,
  cancelMany: settings.cancelUrl,
  clean: settings.cleanUrl,
  failures: settings.failuresUrl,
  schedules: settings.schedulesUrl,
};
/** The server's bounds (web/page.py): name, first_page, page, block_rows, cancel_ids, max_attempts,
 * backoff_seconds, log_lines. */
export const limits = JSON.parse(settings.limits);

const notice = document.getElementById("notice");
const report = document.getElementById("report");

/** An answer other than 2xx, carrying the server's {error: {code, message, details}}. */
export class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "error";
    this.details = error.details || {};
  }
}

/** JSON in, JSON out; throws ApiError on an error status and AbortError once `options.signal` aborts. */
export async function api(url, options = {}) {
  const response = await fetch(url, {
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    ...options,
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  options.signal?.throwIfAborted(); // a body cut short by an abort must not read as an empty answer
  if (!response.ok) throw new ApiError(response.status, data.error || {});
  return data;
}

export function isAbort(err) {
  return err?.name === "AbortError";
}

export function post(url, body) {
  return api(url, { method: "POST", body: body === undefined ? undefined : JSON.stringify(body) });
}

export function jobUrl(id, action = "") {
  const url = `${urls.jobs}/${encodeURIComponent(id)}`;
  return action ? `${url}/${action}` : url;
}

/** The page of the list that `view` ({status, q}) shows, from `cursor` on: a short first page, so the first
 * rows come fast, then long ones as the list scrolls. */
export function listUrl(view, cursor) {
  const params = new URLSearchParams({ limit: String(cursor ? limits.page : limits.first_page) });
  if (view.status) params.set("status", view.status);
  if (view.q) params.set("q", view.q);
  if (cursor) params.set("cursor", cursor);
  return `${urls.jobs}?${params}`;
}

/** The list's first page that the server read into the HTML for the URL's view (web/page.py `first_rows`), as
 * GET /api/jobs answered it; null when there is none, or once taken: a later view asks for its own. */
export function takeServedPage() {
  const block = document.getElementById("first-page");
  if (!block) return null;
  block.remove();
  return JSON.parse(block.textContent);
}

/** Show what went wrong with the last thing the user asked for; an aborted request is no failure. */
export function showProblem(err) {
  if (isAbort(err)) return;
  notice.textContent = err.message;
  notice.hidden = false;
}

export function clearNotice() {
  notice.hidden = true;
  notice.textContent = "";
}

/** Say what a user's action did, in the polite live region above the list: a line, and details under it. */
export function announce(line, details = []) {
  const summary = document.createElement("p");
  summary.textContent = line;
  const parts = [summary];
  if (details.length) {
    const list = document.createElement("ul");
    for (const text of details) {
      const item = document.createElement("li");
      item.textContent = text;
      list.append(item);
    }
    parts.push(list);
  }
  report.replaceChildren(...parts);
}

// Talking to the server: its URLs from <body data-*>, one fetch helper, one place that shows a failure.

const settings = document.body.dataset;
export const urls = {
  jobs: settings.jobsUrl,
  stream: settings.streamUrl,
  types: settings.typesUrl,
  stats: settings.statsUrl,
  pause: settings.pauseUrl,
  resume: settings.resumeUrl,
};
const pageSize = Number(settings.pageSize);

const notice = document.getElementById("notice");

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

export function jobUrl(id, action = "") {
  const url = `${urls.jobs}/${encodeURIComponent(id)}`;
  return action ? `${url}/${action}` : url;
}

export function listUrl(status, cursor) {
  const params = new URLSearchParams({ limit: String(pageSize) });
  if (status) params.set("status", status);
  if (cursor) params.set("cursor", cursor);
  return `${urls.jobs}?${params}`;
}

/** Show what went wrong with the last thing the user asked for; an aborted request is no failure. */
export function report(err) {
  if (isAbort(err)) return;
  notice.textContent = err.message;
  notice.hidden = false;
}

export function clearNotice() {
  notice.hidden = true;
  notice.textContent = "";
}

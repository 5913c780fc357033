// A job's detail (at /jobs/<id>): its fields, params, result, error with its traceback, and its log, loaded
// once then followed live from the stream, scrolled to the newest line unless the reader scrolled up.
import { act, allowed } from "./actions.js";
import { api, isAbort, jobUrl, limits } from "./api.js";
import { everySecond } from "./clock.js";
import { between, duration, localTime, paceText, until } from "./format.js";
import { priorityBadge } from "./priority.js";
import { beginDetail, endDetail, newerId, pace, settleDetail, state, takeLiveLine } from "./state.js";
import { showWorkflow } from "./workflow.js";

const STICK_PX = 24; // this close to the bottom, the log follows new lines
const COPIED_MS = 2000;
const TRACEBACK = "Traceback (most recent call last):";
const $ = (id) => document.getElementById(id);
const panel = $("detail");
const title = $("detail-name");
const notice = $("detail-notice");
const statusBadge = $("detail-status");
const fields = $("detail-fields");
const errorBox = $("detail-error-box");
const errorLine = $("detail-error");
const traceback = $("detail-traceback");
const params = $("detail-params").tBodies[0];
const resultBox = $("detail-result-box");
const result = $("detail-result");
const logs = $("detail-logs");
const follow = $("detail-follow");
const copy = $("detail-copy");
const buttons = Object.fromEntries([...panel.querySelectorAll("button[data-do]")].map((b) => [b.dataset.do, b]));
let lines = []; // the log shown, one entry per line
let drawScheduled = false;
let freshLines = [];
let newest = null; // [eventId, job] of the newest event that arrived while the detail loaded

/** Show job `id`; `focus` moves the keyboard there (a user opened it, not a page load). */
export async function openDetail(id, focus = true) {
  const signal = beginDetail(id); // aborts the load of the job shown before
  panel.hidden = false;
  panel.dataset.id = id;
  title.textContent = "Loading…";
  document.getElementById("detail-workflow").hidden = true;
  showNotice("");
  lines = [];
  freshLines = [];
  newest = null;
  logs.replaceChildren();
  follow.hidden = true;
  if (focus) title.focus();
  try {
    const data = await api(jobUrl(id), { signal });
    // Lines of events newer than the log we read are not in it yet: keep them, in order.
    const after = data.job.last_event_id;
    const missed = settleDetail(after);
    const live = newest && (!after || newerId(newest[0], after)) ? newest[1] : null;
    state.detail.job = live || data.job;
    appendLines([...data.job.logs, ...missed]);
    drawDetail(state.detail.job);
    logs.scrollTop = logs.scrollHeight;
    showWorkflow({ ...state.detail.job, dependents: data.job.dependents }, signal);
  } catch (err) {
    if (isAbort(err)) return;
    settleDetail(null);
    title.textContent = id;
    showNotice(err.status === 404 ? `There is no job ${id} (it may have been deleted).` : err.message);
  }
}

/** Draw a job's event if the detail shows that job, with its log line when the log lacks it. */
export function followDetail(job, eventId, line) {
  if (job.id !== state.detail.id) return;
  const fresh = takeLiveLine(eventId, line);
  if (state.detail.buffer) {
    newest = [eventId, job]; // drawn once the load answers, if newer than what it read
    return;
  }
  state.detail.job = job;
  if (fresh) freshLines.push(...fresh.split("\n"));
  if (!drawScheduled) {
    drawScheduled = true;
    requestAnimationFrame(drawLive);
  }
}

/** The job shown was deleted. */
export function removedDetail(id) {
  if (id !== state.detail.id) return;
  showNotice("This job has been deleted.");
  for (const button of Object.values(buttons)) button.hidden = true;
}

export function closeDetail() {
  const id = state.detail.id;
  endDetail();
  panel.hidden = true;
  delete panel.dataset.id;
  if (panel.contains(document.activeElement) || document.activeElement === document.body) {
    document.querySelector(`#jobs tr[data-id="${CSS.escape(id || "")}"] .name`)?.focus();
  }
}

function drawLive() {
  drawScheduled = false;
  const job = state.detail.job;
  if (!job) return;
  const stick = logs.scrollHeight - logs.scrollTop - logs.clientHeight < STICK_PX;
  if (freshLines.length) appendLines(freshLines);
  freshLines = [];
  drawDetail(job);
  if (stick) logs.scrollTop = logs.scrollHeight;
  else if (logs.scrollHeight > logs.clientHeight) follow.hidden = false;
}

function appendLines(more) {
  const nodes = more.map((line, i) => document.createTextNode((lines.length + i ? "\n" : "") + line));
  lines.push(...more);
  logs.append(...nodes);
  while (lines.length > limits.log_lines) {
    lines.shift();
    logs.firstChild.remove();
    logs.firstChild.data = logs.firstChild.data.slice(1); // the new first line has no newline before it
  }
}

function shownFields(job, now) {
  const attempts = job.max_attempts > 1 ? `${job.attempts} of ${job.max_attempts}` : String(job.attempts);
  const waiting = job.status === "pending" && job.scheduled_for;
  const tick = job.schedule_tick ? `tick ${localTime(job.schedule_tick)}` : "run now"; // a schedule's job
  return [
    ["id", job.id],
    ["type", job.type],
    ["status", job.cancel_requested && job.status === "active" ? "canceling…" : job.status],
    ["priority", priorityBadge(job.priority)],
    ["progress", `${job.progress}%`],
    ["pace", job.status === "active" ? paceText(pace(job.id)) : null],
    ["action", job.action],
    ["attempts", attempts],
    ["worker", job.worker],
    ["waiting for", job.status === "pending" && job.waiting_for?.length ? plural(job.waiting_for.length) : null],
    ["if one fails", job.depends_on?.length ? (job.allow_failure ? "runs anyway" : "canceled") : null],
    ["schedule", job.schedule_id && `${job.schedule_id}, ${tick}`],
    ["created", localTime(job.created_at)],
    ["starts", waiting ? `in ${until(job.scheduled_for, now)} (${localTime(job.scheduled_for)})` : null],
    ["started", job.started_at && localTime(job.started_at)],
    ["ended", job.ended_at && localTime(job.ended_at)],
    ["took", job.started_at ? duration(between(job.started_at, job.ended_at, now)) : null],
  ];
}

function plural(n) {
  return `${n} job${n === 1 ? "" : "s"}`;
}

function drawDetail(job, now = Date.now()) {
  title.textContent = job.name;
  statusBadge.textContent = job.cancel_requested && job.status === "active" ? "canceling…" : job.status;
  statusBadge.className = `badge status-${job.status}`;
  const items = [];
  for (const [label, value] of shownFields(job, now)) {
    if (value === null || value === undefined || value === "") continue;
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    if (value instanceof Node) dd.append(value);
    else dd.textContent = String(value);
    items.push(dt, dd);
  }
  fields.replaceChildren(...items);
  drawError(job);
  drawParams(job.params || {});
  resultBox.hidden = job.result === null || job.result === undefined;
  if (!resultBox.hidden) result.textContent = JSON.stringify(job.result, null, 2);
  for (const [what, button] of Object.entries(buttons)) button.hidden = !allowed(job, what);
}

function drawError(job) {
  errorBox.hidden = !job.error;
  if (!job.error) return;
  errorLine.textContent = job.status === "pending" ? `The last attempt failed: ${job.error}` : job.error;
  const trace = lastTraceback();
  traceback.hidden = !trace;
  if (traceback.textContent !== trace) traceback.textContent = trace;
}

/** The newest traceback in the log: its first line to the exception's line. */
function lastTraceback() {
  const start = lines.lastIndexOf(TRACEBACK);
  if (start < 0) return "";
  let end = start + 1;
  while (end < lines.length && /^\s/.test(lines[end])) end++;
  return lines.slice(start, end + 1).join("\n");
}

function drawParams(values) {
  const rows = Object.entries(values).map(([name, value]) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = name;
    const td = document.createElement("td");
    td.textContent = typeof value === "string" ? value : JSON.stringify(value);
    tr.append(th, td);
    return tr;
  });
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.className = "muted";
    td.textContent = "none";
    tr.append(td);
    rows.push(tr);
  }
  params.replaceChildren(...rows);
}

function showNotice(text) {
  notice.textContent = text;
  notice.hidden = !text;
}

async function copyId() {
  const id = state.detail.id;
  if (!id) return;
  try {
    await navigator.clipboard.writeText(id);
    copy.textContent = "Copied";
  } catch {
    const range = document.createRange(); // no clipboard access: select it for Ctrl+C
    const idField = fields.querySelector("dd");
    if (idField) {
      range.selectNodeContents(idField);
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
    }
    copy.textContent = "Press Ctrl+C";
  }
  setTimeout(() => (copy.textContent = "Copy id"), COPIED_MS);
}

function tick(now) {
  const job = state.detail.job;
  if (job && !panel.hidden && (job.status === "active" || job.status === "pending")) drawDetail(job, now);
}

/** `onClose()` when the reader closes the detail (the router then closes it). */
export function wireDetail(onClose) {
  $("detail-close").addEventListener("click", onClose);
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") onClose();
  });
  copy.addEventListener("click", copyId);
  for (const [what, button] of Object.entries(buttons)) {
    button.addEventListener("click", () => state.detail.id && act(state.detail.id, what, button));
  }
  logs.addEventListener("scroll", () => {
    if (logs.scrollHeight - logs.scrollTop - logs.clientHeight < STICK_PX) follow.hidden = true;
  });
  follow.addEventListener("click", () => {
    logs.scrollTop = logs.scrollHeight;
    follow.hidden = true;
  });
  everySecond(tick);
}

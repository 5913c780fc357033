// One row of the job list: made once from the template, then redrawn field by field, touching only the
// nodes whose value changed. Every string from a job goes in through textContent or an attribute.
import { allowed } from "./actions.js";
import { between, duration, paceText, until } from "./format.js";
import { drawPriority } from "./priority.js";
import { jobHref } from "./router.js";
import { pace } from "./state.js";

const template = document.getElementById("row-template");
const CLOCK_FORMAT = { hour: "2-digit", minute: "2-digit", second: "2-digit" };

/** A new row for `job` (not drawn yet: drawRow does that): {job, tr, cells, texts}. */
export function makeRow(job, view) {
  const tr = template.content.firstElementChild.cloneNode(true);
  tr.dataset.id = job.id;
  const entry = adoptRow(tr);
  const cells = entry.cells;
  cells.name.textContent = job.name; // a job's name never changes
  cells.name.href = jobHref(job.id, view);
  cells.select.setAttribute("aria-label", `Select ${job.name}`);
  cells.bar.setAttribute("aria-label", `Progress of ${job.name}`);
  for (const what of ["cancel", "retry", "delete"]) {
    cells[what].setAttribute("aria-label", `${cells[what].textContent} ${job.name}`);
  }
  return entry;
}

/** A row made already, by makeRow or by the server (templates/row.html, with its job's name, link and labels),
 * to be drawn by drawRow as a new one: {job, tr, cells, texts}. */
export function adoptRow(tr) {
  const find = (selector) => tr.querySelector(selector);
  const cells = {
    select: find(".select"),
    name: find(".name"),
    type: find(".type"),
    badge: find(".badge"),
    attempt: find(".attempt"),
    priority: find(".priority"),
    bar: find(".bar"),
    percent: find(".percent"),
    what: find(".what"),
    why: find(".why"),
    time: find(".time"),
    pace: find(".pace"),
    cancel: find('[data-do="cancel"]'),
    retry: find('[data-do="retry"]'),
    delete: find('[data-do="delete"]'),
  };
  return { job: null, tr, cells, texts: {} };
}

/** Draw `job` into its row; only what differs from the snapshot drawn before is written. */
export function drawRow(entry, job, now = Date.now()) {
  const old = entry.job || {};
  const c = entry.cells;
  entry.job = job;
  if (old.status !== job.status || old.cancel_requested !== job.cancel_requested) {
    const canceling = job.status === "active" && job.cancel_requested;
    entry.tr.dataset.status = job.status;
    c.badge.textContent = canceling ? "canceling…" : job.status;
    c.badge.className = `badge status-${job.status}${canceling ? " canceling" : ""}`;
    for (const what of ["cancel", "retry", "delete"]) hideButton(entry, c[what], !allowed(job, what));
  }
  if (old.type !== job.type) c.type.textContent = job.type;
  if (old.priority !== job.priority) drawPriority(c.priority, job.priority);
  if (old.progress !== job.progress) {
    // A bar of one element: lighter to lay out than <progress> (its shadow tree); its length through the
    // CSSOM, which the Content-Security-Policy allows (a style attribute it would refuse).
    c.bar.setAttribute("aria-valuenow", job.progress);
    c.bar.style.setProperty("--progress", `${job.progress}%`);
    c.percent.textContent = `${job.progress}%`;
  }
  if (old.attempts !== job.attempts || old.max_attempts !== job.max_attempts) {
    c.attempt.textContent = job.max_attempts > 1 ? `${job.attempts}/${job.max_attempts}` : "";
    c.attempt.title = job.max_attempts > 1 ? `attempt ${job.attempts} of ${job.max_attempts}` : "";
  }
  drawTexts(entry, now);
}

/** Whether the row shows a time that goes by (and so ticks while on screen). */
export function ticks(job) {
  return job.status === "active" || job.status === "pending";
}

/** The row's texts that depend on the time: what it does or waits for, and its elapsed or total time. */
export function drawTexts(entry, now = Date.now()) {
  const [what, why, time] = texts(entry.job, now);
  const t = entry.texts;
  if (t.what !== what) entry.cells.what.textContent = t.what = what;
  if (t.why !== why) entry.cells.why.textContent = t.why = why;
  if (t.time !== time) entry.cells.time.textContent = t.time = time;
  const speed = entry.job.status === "active" ? paceText(pace(entry.job.id)) : ""; // from its progress events
  if (t.pace !== speed) entry.cells.pace.textContent = t.pace = speed;
}

function texts(job, now) {
  const retrying = job.attempts > 1 && job.error;
  switch (job.status) {
    case "pending":
      if (job.waiting_for?.length) {
        const n = job.waiting_for.length;
        return [`waiting for ${n} job${n === 1 ? "" : "s"}`, "", `queued ${duration(between(job.created_at, null, now))}`];
      }
      if (job.scheduled_for) {
        const wait = until(job.scheduled_for, now);
        const clock = new Date(job.scheduled_for).toLocaleTimeString([], CLOCK_FORMAT);
        if (retrying) {
          const when = wait === "now" ? "retry now" : `retry in ${wait}`;
          return [`attempt ${job.attempts}/${job.max_attempts} — ${when}`, job.error, clock];
        }
        return [wait === "now" ? "starting now" : `starts in ${wait}`, job.action || "", clock];
      }
      return [
        job.action || (job.attempts > 1 ? `attempt ${job.attempts}/${job.max_attempts} — waiting` : "waiting"),
        retrying ? job.error : "",
        `queued ${duration(between(job.created_at, null, now))}`,
      ];
    case "active":
      return [
        job.cancel_requested ? "stopping…" : job.action || "starting…",
        retrying ? `last attempt: ${job.error}` : "",
        job.started_at ? duration(between(job.started_at, null, now)) : "",
      ];
    case "failed":
      return [job.error || "failed", "", total(job)];
    default:
      return [job.action || "", "", total(job)];
  }
}

function total(job) {
  return job.started_at ? duration(between(job.started_at, job.ended_at)) : "—";
}

function hideButton(entry, button, hidden) {
  if (button.hidden === hidden) return;
  if (hidden && document.activeElement === button) entry.cells.name.focus(); // keep a keyboard user in the row
  button.hidden = hidden;
}

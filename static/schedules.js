// The schedules panel (GET /api/schedules): each schedule's cadence in words, its time zone, its next run counting
// down, its last job as a link with that job's live status, and pause / resume / run now / delete. Read once the
// first rows are painted, then kept from the stream: schedule-update and schedule-removed events, and the
// job-update events of the jobs schedules made. No request per event (a last job not seen yet is read once).
import { announce, api, clearNotice, jobUrl, post, showProblem, urls } from "./api.js";
import { everySecond } from "./clock.js";
import { confirmInPage } from "./confirm.js";
import { until } from "./format.js";
import { jobHref, wirePanelClicks } from "./router.js";
import { state } from "./state.js";

const $ = (id) => document.getElementById(id);
const section = $("schedules");
const list = $("schedule-list");
const count = $("schedules-count");
const empty = $("schedules-empty");
const WEEKDAYS = { "mon-fri": "weekdays", "1-5": "weekdays", "sat,sun": "weekends", "0,6": "weekends" };
const NAMED = {
  "@hourly": "hourly",
  "@daily": "daily at 00:00",
  "@weekly": "weekly, Sunday 00:00",
  "@monthly": "monthly, the 1st at 00:00",
};
const schedules = new Map(); // id -> {schedule, li, next, status}
const lastJobs = new Map(); // schedule id -> {id, status} of its last job (or a newer one), as last seen
const reading = new Set(); // ids of last jobs being read
let wired = false;

/** A schedule's cadence in words: "every 10 s", "daily at 03:00", "weekdays at 09:30", else the cron itself. */
export function cadenceText(schedule) {
  if (schedule.every_seconds != null) return `every ${every(schedule.every_seconds)}`;
  const cron = schedule.cron;
  if (NAMED[cron]) return NAMED[cron];
  const [minute, hour, day, month, weekday] = cron.split(" ");
  const fixed = /^\d+$/;
  if (/^\*\/\d+$/.test(minute) && hour === "*" && day === "*" && month === "*" && weekday === "*") {
    return `every ${minute.slice(2)} min`;
  }
  if (fixed.test(minute) && hour === "*" && day === "*" && month === "*" && weekday === "*") {
    return `hourly at :${minute.padStart(2, "0")}`;
  }
  if (fixed.test(minute) && fixed.test(hour) && day === "*" && month === "*") {
    const at = `${hour.padStart(2, "0")}:${minute.padStart(2, "0")}`;
    if (weekday === "*") return `daily at ${at}`;
    if (WEEKDAYS[weekday.toLowerCase()]) return `${WEEKDAYS[weekday.toLowerCase()]} at ${at}`;
  }
  return `cron ${cron}`;
}

function every(seconds) {
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/** A schedule event from the stream. */
export function noteSchedule(event) {
  if (!wired) return;
  if (event.type === "schedule-removed") {
    schedules.get(event.id)?.li.remove();
    schedules.delete(event.id);
    lastJobs.delete(event.id);
  } else {
    show(event.schedule, event.skipped);
  }
  summarize();
}

/** A job event: the live status of a schedule's last job. Only its last job's events count, and a newer one's
 * (ids sort by creation time): a tick's job-update comes just before the schedule-update that makes it the last. */
export function noteScheduledJob(job) {
  if (!wired || !job?.schedule_id) return;
  const entry = schedules.get(job.schedule_id);
  const last = entry?.schedule.last_job_id;
  if (!entry || (last && job.id < last)) return; // an older job's event says nothing of the last one
  lastJobs.set(job.schedule_id, { id: job.id, status: job.status });
  if (last === job.id) drawStatus(entry);
}

/** Read every schedule again (the first read, and after a stream `reset`). */
export async function readSchedules() {
  if (!wired) return;
  let data;
  try {
    data = await api(urls.schedules);
  } catch (err) {
    empty.textContent = `Schedules unavailable: ${err.message}`;
    empty.hidden = false;
    return;
  }
  for (const [id, entry] of schedules) {
    if (!data.schedules.some((s) => s.id === id)) {
      entry.li.remove();
      schedules.delete(id);
    }
  }
  for (const schedule of data.schedules) show(schedule);
  summarize();
}

function summarize() {
  count.textContent = schedules.size ? String(schedules.size) : "";
  empty.textContent = "No schedules.";
  empty.hidden = schedules.size > 0;
}

/** Draw `schedule` into its item (made the first time), items kept sorted by id; `skipped`: why its last tick
 * made no job (shown until its next event). */
function show(schedule, skipped = null) {
  let entry = schedules.get(schedule.id);
  if (!entry) {
    entry = item(schedule.id);
    schedules.set(schedule.id, entry);
    const after = [...schedules.keys()].sort().find((id) => id > schedule.id);
    list.insertBefore(entry.li, after ? schedules.get(after).li : null);
  }
  entry.schedule = schedule;
  entry.title.textContent = schedule.name === schedule.id ? schedule.id : `${schedule.id} · ${schedule.name}`;
  entry.type.textContent = schedule.type;
  entry.cadence.textContent = `${cadenceText(schedule)}${schedule.cron ? ` (${schedule.timezone})` : ""}`;
  entry.li.dataset.paused = String(schedule.paused);
  const why = skipped === "overlap" ? "its last job had not ended" : skipped;
  entry.skipped.textContent = skipped ? `last tick skipped: ${why}` : "";
  entry.skipped.hidden = !skipped;
  entry.pause.textContent = schedule.paused ? "Resume" : "Pause";
  entry.pause.dataset.do = schedule.paused ? "resume" : "pause";
  entry.pause.setAttribute("aria-label", `${schedule.paused ? "Resume" : "Pause"} schedule ${schedule.id}`);
  drawNext(entry, Date.now());
  drawStatus(entry);
}

function item(id) {
  const li = document.createElement("li");
  li.className = "schedule";
  li.dataset.id = id;
  const title = line("h3", "schedule-title");
  const type = line("span", "type");
  const cadence = line("p", "schedule-cadence");
  const next = line("p", "schedule-next muted");
  next.setAttribute("role", "timer");
  const last = line("p", "schedule-last");
  const skipped = line("p", "schedule-skipped muted");
  skipped.hidden = true;
  const buttons = line("p", "schedule-buttons changes");
  const pause = button("pause", "Pause", `Pause schedule ${id}`);
  const run = button("run", "Run now", `Run schedule ${id} now`);
  buttons.append(pause, run, button("delete", "Delete", `Delete schedule ${id}`));
  li.append(title, type, cadence, next, last, skipped, buttons);
  return { li, title, type, cadence, next, last, skipped, pause, schedule: null };
}

function line(tag, className) {
  const node = document.createElement(tag);
  node.className = className;
  return node;
}

function button(what, label, aria) {
  const node = document.createElement("button");
  node.type = "button";
  node.className = "secondary small";
  node.dataset.do = what;
  node.textContent = label;
  node.setAttribute("aria-label", aria);
  return node;
}

function drawNext(entry, now) {
  const { schedule } = entry;
  const next = schedule.next_run_at ? `next run in ${until(schedule.next_run_at, now)}` : "";
  const text = schedule.paused ? "paused" : next;
  if (entry.next.textContent !== text) entry.next.textContent = text;
  entry.next.title = schedule.next_run_at ? new Date(schedule.next_run_at).toLocaleString() : "";
}

/** The last job as a link with its status: from the stream when seen there, else read once. */
function drawStatus(entry) {
  const jobId = entry.schedule.last_job_id;
  if (!jobId) {
    entry.last.replaceChildren("no run yet");
    return;
  }
  const known = lastJobs.get(entry.schedule.id);
  const status = known?.id === jobId ? known.status : state.rows.get(jobId)?.job?.status;
  const link = document.createElement("a");
  link.href = jobHref(jobId, state.view);
  link.dataset.job = jobId;
  link.textContent = "last job";
  const badge = line("span", `badge status-${status || "unknown"}`);
  badge.textContent = status || "…";
  entry.last.replaceChildren(link, " ", badge);
  if (!status) readJob(entry.schedule.id, jobId);
}

/** Read the last job once (one read at a time): its status is the schedule's until the stream says more. */
async function readJob(scheduleId, jobId) {
  if (reading.has(jobId)) return;
  reading.add(jobId);
  let status;
  try {
    status = (await api(jobUrl(jobId))).job.status;
  } catch {
    status = "deleted";
  } finally {
    reading.delete(jobId);
  }
  const entry = schedules.get(scheduleId);
  if (entry?.schedule.last_job_id !== jobId) return; // a newer job is the last one now
  if (lastJobs.get(scheduleId)?.id !== jobId) lastJobs.set(scheduleId, { id: jobId, status }); // else the stream's
  drawStatus(entry);
}

async function act(id, what) {
  const url = `${urls.schedules}/${encodeURIComponent(id)}`;
  if (what === "delete") {
    const ok = await confirmInPage({
      title: `Delete schedule ${id}?`,
      message: "It makes no more jobs; the jobs it made stay.",
      yes: "Delete it",
    });
    if (!ok) return;
  }
  clearNotice();
  try {
    if (what === "delete") {
      await api(url, { method: "DELETE" });
      announce(`Deleted schedule “${id}”.`);
    } else if (what === "run") {
      const { job } = await post(`${url}/run`);
      announce(`Schedule “${id}” ran now: job ${job.id}.`);
    } else {
      await post(`${url}/${what}`);
      announce(`${what === "pause" ? "Paused" : "Resumed"} schedule “${id}”.`);
    }
  } catch (err) {
    showProblem(err);
  }
}

function tick(now) {
  for (const entry of schedules.values()) drawNext(entry, now);
}

/** Read the schedules now, then follow them from the stream. */
export function wireSchedules() {
  if (!urls.schedules) return;
  section.hidden = false;
  wirePanelClicks(list, (item, what) => act(item.dataset.id, what), () => state.view);
  everySecond(tick);
  wired = true;
  readSchedules();
}

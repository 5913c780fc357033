// The overview: workers and what they run, the jobs waiting per priority, a throughput sparkline, each job
// type's durations (kinds.js), and cleaning ended jobs. Read from GET /api/stats at most every 5 s, and only
// while the tab is visible.
import { announce, api, clearNotice, post, showProblem, urls } from "./api.js";
import { confirmInPage } from "./confirm.js";
import { drawKinds } from "./kinds.js";
import { showPaused } from "./queue.js";
import { goToJob, jobHref } from "./router.js";
import { drawSpark } from "./sparkline.js";
import { state } from "./state.js";

const STATS_EVERY_MS = 5000;
const WIDTH = 240; // the sparkline's viewBox
const HEIGHT = 48;
const CLEAN_AGES = [
  ["0", "whatever their age"],
  ["3600", "ended over an hour ago"],
  ["86400", "ended over a day ago"],
  ["604800", "ended over a week ago"],
];
const workersList = document.getElementById("workers");
const workersCount = document.getElementById("workers-count");
const depth = document.getElementById("queue-depth");
const sparkline = document.getElementById("sparkline");
const caption = document.getElementById("sparkline-caption");
let timer = null;
let lastAt = 0;
let drawnWorkers = "";

function schedule() {
  clearTimeout(timer);
  timer = null;
  if (document.visibilityState !== "visible") return; // a hidden tab asks nothing
  timer = setTimeout(refresh, Math.max(0, lastAt + STATS_EVERY_MS - Date.now()));
}

async function refresh() {
  lastAt = Date.now();
  try {
    drawStats(await api(urls.stats));
  } catch (err) {
    depth.textContent = `Stats unavailable: ${err.message}`;
  } finally {
    schedule();
  }
}

function drawStats(stats) {
  showPaused(stats.paused, true);
  const q = stats.queues || {};
  const waiting = Object.entries(q) // by priority, highest first, as the server sends them
    .map(([priority, n]) => `${n} ${priority}`)
    .join(" · ");
  depth.textContent = `Waiting: ${waiting}${stats.paused ? " (queue paused)" : ""}`;
  drawWorkers(stats.workers || []);
  drawThroughput(stats.ended_per_minute || [], stats.jobs_per_minute);
  drawKinds(stats.types);
}

function drawWorkers(workers) {
  const busy = workers.filter((w) => w.current_job).length;
  workersCount.textContent = `${busy} busy of ${workers.length}`;
  const key = JSON.stringify(workers);
  if (key === drawnWorkers) return;
  drawnWorkers = key;
  const sorted = [...workers].sort((a, b) => Number(!a.current_job) - Number(!b.current_job));
  workersList.replaceChildren(...sorted.map(workerItem));
  if (!workers.length) workersList.replaceChildren(textItem("No workers are running."));
}

function workerItem(worker) {
  const item = document.createElement("li");
  const stateLabel = document.createElement("span");
  stateLabel.className = "worker-state";
  stateLabel.dataset.state = worker.current_job ? "busy" : worker.state;
  stateLabel.textContent = worker.current_job ? "busy" : worker.state;
  const name = document.createElement("span");
  name.className = "worker-name";
  name.textContent = worker.host ? `${worker.host} · ${worker.name}` : worker.name;
  name.title = worker.name;
  item.append(stateLabel, name);
  if (worker.current_job) {
    const link = document.createElement("a");
    link.href = jobHref(worker.current_job, state.view);
    link.dataset.job = worker.current_job;
    link.className = "worker-job";
    link.textContent = state.rows.get(worker.current_job)?.job.name ?? worker.current_job;
    item.append(link);
  }
  return item;
}

function textItem(text) {
  const item = document.createElement("li");
  item.className = "muted";
  item.textContent = text;
  return item;
}

/** Completed and failed jobs per minute over the last hour, as two lines. */
function drawThroughput(minutes, perMinute) {
  const hour = drawSpark(sparkline, minutes, WIDTH, HEIGHT);
  caption.textContent =
    `Last hour: ${hour.completed} completed, ${hour.failed} failed; ` +
    `peak ${hour.peak}/min, ${perMinute ?? 0} jobs/min on average`;
}

function select(id, label, options) {
  const wrap = document.createElement("p");
  const text = document.createElement("label");
  text.htmlFor = id;
  text.textContent = label;
  const field = document.createElement("select");
  field.id = id;
  for (const [value, name] of options) field.add(new Option(name, value));
  wrap.append(text, " ", field);
  return [wrap, field];
}

async function clean() {
  const [statusRow, status] = select("clean-status", "Which", [
    ["", "every ended job"],
    ["completed", "completed jobs"],
    ["failed", "failed jobs"],
    ["canceled", "canceled jobs"],
  ]);
  const [ageRow, age] = select("clean-age", "Age", CLEAN_AGES);
  const ok = await confirmInPage({
    title: "Delete ended jobs?",
    message: "Completed, failed and canceled jobs are deleted with their logs. Pending and active ones stay.",
    yes: "Delete them",
    fields: [statusRow, ageRow],
  });
  if (!ok) return;
  clearNotice();
  try {
    const body = { older_than_seconds: Number(age.value) };
    if (status.value) body.status = status.value;
    const result = await post(urls.clean, body);
    announce(`Deleted ${result.deleted} ended ${result.deleted === 1 ? "job" : "jobs"}.`);
  } catch (err) {
    showProblem(err);
  }
}

export function wireOverview() {
  document.addEventListener("visibilitychange", schedule);
  document.getElementById("clean").addEventListener("click", clean);
  workersList.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-job]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    goToJob(link.dataset.job, state.view);
  });
  refresh();
}

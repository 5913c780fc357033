// jobstream dashboard: one list, one EventSource, every job string shown as text.

const body = document.body;
const urls = {
  jobs: body.dataset.jobsUrl,
  stream: body.dataset.streamUrl,
  types: body.dataset.typesUrl,
  stats: body.dataset.statsUrl,
  pause: body.dataset.pauseUrl,
  resume: body.dataset.resumeUrl,
};
const pageSize = Number(body.dataset.pageSize);

const rows = new Map(); // job id -> {job, tr}
const pending = new Map(); // job id -> newest snapshot not yet drawn
const removed = new Set();
const activeIds = new Set();
let filter = "";
let nextCursor = null;
let source = null;
let generation = 0;
let flushScheduled = false;
let countsTimer = null;
let detailId = null;
let detailBuffer = null; // live log lines that arrive while the detail's log loads: [eventId, line]
let detailAfter = null; // the detail's log holds every line up to this event id

const $ = (selector) => document.querySelector(selector);
const tbody = $("#jobs tbody");
const rowTemplate = $("#row-template");

async function api(url, options = {}) {
  const response = await fetch(url, {
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    ...options,
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const err = new Error(data.error ? data.error.message : `HTTP ${response.status}`);
    err.details = data.error ? data.error.details : {};
    throw err;
  }
  return data;
}

// ---- connection ------------------------------------------------------------------------

function setConnection(state, text) {
  const badge = $("#connection");
  badge.dataset.state = state;
  badge.textContent = text;
}

async function start() {
  const mine = ++generation;
  if (source) source.close();
  source = null;
  setConnection("connecting", "connecting…");
  let page;
  try {
    page = await api(listUrl(null));
  } catch (err) {
    setConnection("reconnecting", "reconnecting…");
    setTimeout(() => mine === generation && start(), 3000);
    return;
  }
  if (mine !== generation) return;
  rows.clear();
  pending.clear();
  removed.clear();
  activeIds.clear();
  tbody.replaceChildren();
  page.jobs.forEach((job) => upsert(job, true));
  nextCursor = page.next_cursor;
  showCounts(page.counts);
  refreshChrome();
  openStream(page.last_event_id);
}

function listUrl(cursor) {
  const params = new URLSearchParams({ limit: String(pageSize) });
  if (filter) params.set("status", filter);
  if (cursor) params.set("cursor", cursor);
  return `${urls.jobs}?${params}`;
}

function openStream(lastEventId) {
  const url = lastEventId ? `${urls.stream}?last_event_id=${encodeURIComponent(lastEventId)}` : urls.stream;
  source = new EventSource(url);
  source.addEventListener("open", () => setConnection("live", "live"));
  source.addEventListener("error", () => {
    setConnection("reconnecting", "reconnecting…");
    // The browser retries by itself unless the server refused outright (e.g. 503): then start over.
    if (source.readyState === EventSource.CLOSED) {
      const mine = generation;
      setTimeout(() => mine === generation && start(), 3000);
    }
  });
  source.addEventListener("job-update", (e) => onUpdate(JSON.parse(e.data), e.lastEventId));
  source.addEventListener("job-removed", (e) => onRemoved(JSON.parse(e.data).id));
  source.addEventListener("reset", () => start());
}

// ---- events ----------------------------------------------------------------------------

function onUpdate(event, eventId) {
  const job = event.job;
  removed.delete(job.id);
  pending.set(job.id, job);
  if (job.id === detailId) {
    if (detailBuffer && event.log) detailBuffer.push([eventId, event.log]);
    const fresh = !detailBuffer && (!detailAfter || newerId(eventId, detailAfter));
    showDetail(job, fresh ? event.log : null);
  }
  scheduleFlush();
  scheduleCounts();
}

function onRemoved(id) {
  pending.delete(id);
  removed.add(id);
  if (id === detailId) closeDetail();
  scheduleFlush();
  scheduleCounts();
}

function scheduleFlush() {
  if (flushScheduled) return;
  flushScheduled = true;
  requestAnimationFrame(flush);
}

function flush() {
  flushScheduled = false;
  for (const id of removed) dropRow(id);
  removed.clear();
  for (const job of pending.values()) upsert(job, false);
  pending.clear();
  refreshChrome();
}

function scheduleCounts() {
  if (countsTimer) return;
  countsTimer = setTimeout(async () => {
    try {
      const page = await api(`${urls.jobs}?limit=1`);
      showCounts(page.counts);
    } catch (err) {
      /* the next event tries again */
    }
    countsTimer = null;
  }, 500);
}

// ---- rows ------------------------------------------------------------------------------

function upsert(job, append) {
  const entry = rows.get(job.id);
  if (filter && job.status !== filter) {
    if (entry) dropRow(job.id);
    return;
  }
  if (entry) {
    entry.job = job;
    drawRow(entry.tr, job);
    return;
  }
  const tr = rowTemplate.content.firstElementChild.cloneNode(true);
  tr.dataset.id = job.id;
  drawRow(tr, job);
  if (append) {
    tbody.append(tr);
  } else if (!placeRow(tr, job.id)) {
    return; // older than everything loaded: it belongs to a page not fetched yet
  }
  rows.set(job.id, { job, tr });
}

function placeRow(tr, id) {
  // Rows are newest first and ids sort by creation time.
  for (const other of tbody.children) {
    if (other.dataset.id < id) {
      tbody.insertBefore(tr, other);
      return true;
    }
  }
  if (nextCursor) return false;
  tbody.append(tr);
  return true;
}

function dropRow(id) {
  const entry = rows.get(id);
  if (entry) entry.tr.remove();
  rows.delete(id);
  activeIds.delete(id);
}

function drawRow(tr, job) {
  tr.dataset.status = job.status;
  tr.querySelector(".name").textContent = job.name;
  const badge = tr.querySelector(".badge");
  badge.textContent = job.cancel_requested ? "canceling" : job.status;
  badge.className = `badge status-${job.status}`;
  tr.querySelector("progress").value = job.progress;
  tr.querySelector(".percent").textContent = `${job.progress}%`;
  tr.querySelector(".action").textContent = job.error || job.action || "";
  tr.querySelector(".elapsed").textContent = elapsed(job);
  const ended = ["completed", "failed", "canceled"].includes(job.status);
  tr.querySelector('[data-do="cancel"]').hidden = ended || job.cancel_requested;
  tr.querySelector('[data-do="retry"]').hidden = !(job.status === "failed" || job.status === "canceled");
  tr.querySelector('[data-do="delete"]').hidden = job.status === "active";
  if (job.status === "active") activeIds.add(job.id);
  else activeIds.delete(job.id);
}

function elapsed(job) {
  if (!job.started_at) return "";
  const end = job.ended_at ? Date.parse(job.ended_at) : Date.now();
  const seconds = Math.max(0, Math.round((end - Date.parse(job.started_at)) / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 60 ? `${minutes}m ${seconds % 60}s` : `${Math.floor(minutes / 60)}h ${minutes % 60}m`;
}

function tickElapsed() {
  for (const id of activeIds) {
    const entry = rows.get(id);
    if (entry) entry.tr.querySelector(".elapsed").textContent = elapsed(entry.job);
  }
}

function refreshChrome() {
  $("#empty").hidden = rows.size > 0;
  $("#more").hidden = !nextCursor;
}

function showCounts(counts) {
  let all = 0;
  for (const [status, n] of Object.entries(counts)) {
    const cell = document.querySelector(`[data-count="${status}"]`);
    if (cell) cell.textContent = String(n);
    all += n;
  }
  document.querySelector('[data-count="all"]').textContent = String(all);
}

async function loadMore() {
  if (!nextCursor) return;
  const page = await api(listUrl(nextCursor));
  page.jobs.forEach((job) => rows.has(job.id) || upsert(job, true));
  nextCursor = page.next_cursor;
  refreshChrome();
}

async function act(id, what) {
  const url = `${urls.jobs}/${encodeURIComponent(id)}`;
  try {
    if (what === "delete") await api(url, { method: "DELETE" });
    else await api(`${url}/${what}`, { method: "POST" });
  } catch (err) {
    alert(err.message); // e.g. the job ended before the click reached the server
  }
}

// ---- detail ----------------------------------------------------------------------------

async function openDetail(id) {
  detailId = id;
  detailBuffer = [];
  detailAfter = null;
  const logs = $("#detail-logs");
  logs.textContent = "";
  $("#detail").hidden = false;
  try {
    const data = await api(`${urls.jobs}/${encodeURIComponent(id)}`);
    if (detailId !== id) return;
    // Lines of events newer than the log we read are not in it yet: keep them, in order.
    const after = data.job.last_event_id;
    const missed = detailBuffer.filter(([eventId]) => !after || newerId(eventId, after)).map(([, line]) => line);
    detailBuffer = null;
    detailAfter = after;
    showDetail(data.job, null);
    logs.textContent = [...data.job.logs, ...missed].join("\n");
    logs.scrollTop = logs.scrollHeight;
  } catch (err) {
    detailBuffer = null;
    logs.textContent = err.message;
  }
}

function newerId(a, b) {
  // Redis stream ids "ms-seq" compare as number pairs.
  const [am, as] = a.split("-").map(Number);
  const [bm, bs] = b.split("-").map(Number);
  return am > bm || (am === bm && as > bs);
}

function showDetail(job, logLine) {
  $("#detail-name").textContent = job.name;
  const fields = $("#detail-fields");
  fields.replaceChildren();
  const shown = {
    id: job.id,
    type: job.type,
    status: job.status,
    progress: `${job.progress}%`,
    action: job.action,
    attempts: job.attempts,
    worker: job.worker,
    created: job.created_at,
    started: job.started_at,
    ended: job.ended_at,
    error: job.error,
    params: JSON.stringify(job.params),
    result: job.result === null ? null : JSON.stringify(job.result),
  };
  for (const [label, value] of Object.entries(shown)) {
    if (value === null || value === undefined || value === "") continue;
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.textContent = String(value);
    fields.append(dt, dd);
  }
  if (logLine) {
    const logs = $("#detail-logs");
    logs.textContent += (logs.textContent ? "\n" : "") + logLine;
    logs.scrollTop = logs.scrollHeight;
  }
}

function closeDetail() {
  detailId = null;
  detailBuffer = null;
  detailAfter = null;
  $("#detail").hidden = true;
}

// ---- form ------------------------------------------------------------------------------

let types = [];

async function loadTypes() {
  types = (await api(urls.types)).job_types;
  const select = $("#job-type");
  select.replaceChildren(
    ...types.map((t) => {
      const option = document.createElement("option");
      option.value = t.name;
      option.textContent = t.description ? `${t.name} — ${t.description}` : t.name;
      return option;
    }),
  );
  select.value = types.some((t) => t.name === "demo.web_agent") ? "demo.web_agent" : select.value;
  drawParams();
}

function drawParams() {
  const type = types.find((t) => t.name === $("#job-type").value);
  const fieldset = $("#params");
  fieldset.replaceChildren(fieldset.querySelector("legend") || document.createElement("legend"));
  const properties = (type && type.params_schema.properties) || {};
  for (const [name, spec] of Object.entries(properties)) {
    const label = document.createElement("label");
    label.append(document.createTextNode(`${name} `));
    const input = document.createElement("input");
    input.name = name;
    input.dataset.kind = spec.type;
    if (spec.type === "boolean") {
      input.type = "checkbox";
      input.checked = Boolean(spec.default);
    } else if (spec.type === "integer" || spec.type === "number") {
      input.type = "number";
      input.step = spec.type === "integer" ? "1" : "any";
      if (spec.minimum !== undefined) input.min = spec.minimum;
      if (spec.maximum !== undefined) input.max = spec.maximum;
      if (spec.default !== undefined) input.value = spec.default;
    } else {
      input.type = "text";
      if (spec.default !== undefined) input.value = spec.default;
    }
    label.append(input);
    fieldset.append(label);
  }
}

function readParams() {
  const params = {};
  for (const input of $("#params").querySelectorAll("input")) {
    if (input.dataset.kind === "boolean") params[input.name] = input.checked;
    else if (input.value === "") continue;
    else if (input.dataset.kind === "integer") params[input.name] = parseInt(input.value, 10);
    else if (input.dataset.kind === "number") params[input.name] = parseFloat(input.value);
    else params[input.name] = input.value;
  }
  return params;
}

async function submitForm(event) {
  event.preventDefault();
  const errorBox = $("#form-error");
  errorBox.hidden = true;
  const payload = { type: $("#job-type").value, name: $("#job-name").value, params: readParams() };
  try {
    await api(urls.jobs, { method: "POST", body: JSON.stringify(payload) });
    $("#job-name").value = "";
  } catch (err) {
    errorBox.textContent = `${err.message} ${JSON.stringify(err.details || {})}`;
    errorBox.hidden = false;
  }
}

// ---- queue pause -----------------------------------------------------------------------

function showPaused(paused) {
  const button = $("#pause");
  button.dataset.paused = String(paused);
  button.textContent = paused ? "Resume queue" : "Pause queue";
}

async function togglePause() {
  const paused = $("#pause").dataset.paused === "true";
  const data = await api(paused ? urls.resume : urls.pause, { method: "POST" });
  showPaused(data.paused);
}

// ---- wiring ----------------------------------------------------------------------------

function wire() {
  $("#create-form").addEventListener("submit", submitForm);
  $("#job-type").addEventListener("change", drawParams);
  $("#more").addEventListener("click", loadMore);
  $("#pause").addEventListener("click", togglePause);
  $("#detail-close").addEventListener("click", closeDetail);
  $("#counts").addEventListener("click", (e) => {
    const button = e.target.closest("button[data-status]");
    if (!button) return;
    filter = button.dataset.status;
    for (const b of document.querySelectorAll("#counts button")) b.setAttribute("aria-pressed", String(b === button));
    start();
  });
  tbody.addEventListener("click", (e) => {
    const tr = e.target.closest("tr");
    if (!tr) return;
    const button = e.target.closest("button[data-do]");
    if (button) act(tr.dataset.id, button.dataset.do);
    else openDetail(tr.dataset.id);
  });
  setInterval(tickElapsed, 1000);
}

wire();
loadTypes().catch((err) => ($("#form-error").textContent = err.message));
api(urls.stats)
  .then((s) => showPaused(s.paused))
  .catch(() => {});
start();

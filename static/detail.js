// The job detail panel: its fields, and its log loaded once then followed live from the stream.
import { api, isAbort, jobUrl } from "./api.js";
import { priorityBadge } from "./priority.js";
import { beginDetail, endDetail, settleDetail, state, takeLiveLine } from "./state.js";

const panel = document.getElementById("detail");
const title = document.getElementById("detail-name");
const fields = document.getElementById("detail-fields");
const logs = document.getElementById("detail-logs");

export async function openDetail(id) {
  const signal = beginDetail(id); // aborts the load of the job shown before
  logs.textContent = "";
  panel.hidden = false;
  try {
    const data = await api(jobUrl(id), { signal });
    // Lines of events newer than the log we read are not in it yet: keep them, in order.
    const missed = settleDetail(data.job.last_event_id);
    drawDetail(data.job);
    logs.textContent = [...data.job.logs, ...missed].join("\n");
    logs.scrollTop = logs.scrollHeight;
  } catch (err) {
    if (isAbort(err)) return;
    settleDetail(null);
    logs.textContent = err.message;
  }
}

/** Draw a job's event if the detail shows that job, with its log line when the log lacks it. */
export function followDetail(job, eventId, line) {
  if (job.id !== state.detail.id) return;
  const fresh = takeLiveLine(eventId, line);
  drawDetail(job);
  if (fresh) appendLog(fresh);
}

export function closeDetail() {
  endDetail();
  panel.hidden = true;
}

function shownFields(job) {
  return {
    id: job.id,
    type: job.type,
    status: job.status,
    priority: priorityBadge(job.priority),
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
}

function drawDetail(job) {
  title.textContent = job.name;
  const items = [];
  for (const [label, value] of Object.entries(shownFields(job))) {
    if (value === null || value === undefined || value === "") continue;
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    if (value instanceof Node) dd.append(value);
    else dd.textContent = String(value);
    items.push(dt, dd);
  }
  fields.replaceChildren(...items);
}

function appendLog(line) {
  logs.textContent += (logs.textContent ? "\n" : "") + line;
  logs.scrollTop = logs.scrollHeight;
}

export function wireDetail() {
  document.getElementById("detail-close").addEventListener("click", closeDetail);
}

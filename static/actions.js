// What a user does to jobs: cancel, retry, delete one; cancel or delete several, each id's outcome said.
// The rows change when the stream says so, never from these answers (the stream is the one source).
import { ApiError, announce, api, clearNotice, jobUrl, limits, post, showProblem, urls } from "./api.js";
import { state } from "./state.js";

const ALLOWED = JSON.parse(document.body.dataset.actions); // action -> the statuses it accepts (jobs/model.py)
const DELETES_AT_ONCE = 6; // parallel DELETEs of a bulk delete: a browser's connections per host
const OUTCOME_WORDS = {
  canceled: "canceled",
  cancel_requested: "stopping (cancel requested)",
  not_found: "not found",
  conflict: "already ended",
  deleted: "deleted",
  active: "still active: cancel it first",
  failed: "failed",
};

/** Whether `job` offers `what` (cancel, retry, delete): its status allows it, and a cancel is not asked already. */
export function allowed(job, what) {
  return ALLOWED[what].includes(job.status) && !(what === "cancel" && job.cancel_requested);
}

/** Cancel, retry or delete job `id`; a failure is shown above the list. */
export async function act(id, what, button = null) {
  clearNotice();
  if (button) button.setAttribute("aria-busy", "true");
  try {
    if (what === "delete") await api(jobUrl(id), { method: "DELETE" });
    else await post(jobUrl(id, what));
  } catch (err) {
    showProblem(err); // e.g. the job ended before the click reached the server
  } finally {
    button?.removeAttribute("aria-busy");
  }
}

/** Cancel every id (POST /api/jobs/cancel); says how many of each outcome, and which ids did not cancel. */
export async function cancelMany(ids) {
  clearNotice();
  const results = [];
  try {
    for (let i = 0; i < ids.length; i += limits.cancel_ids) {
      results.push(...(await post(urls.cancelMany, { ids: ids.slice(i, i + limits.cancel_ids) })).results);
    }
  } catch (err) {
    showProblem(err);
    if (!results.length) return;
  }
  report("Cancel", results, (r) => r.outcome === "canceled" || r.outcome === "cancel_requested");
}

/** Delete every id (one DELETE each, a few at a time); says how many were deleted and why others were not. */
export async function deleteMany(ids) {
  clearNotice();
  const results = [];
  let next = 0;
  async function worker() {
    while (next < ids.length) {
      const id = ids[next++];
      results.push({ id, outcome: await deleteOne(id) });
    }
  }
  await Promise.all(Array.from({ length: Math.min(DELETES_AT_ONCE, ids.length) }, worker));
  report("Delete", results, (r) => r.outcome === "deleted");
}

async function deleteOne(id) {
  try {
    await api(jobUrl(id), { method: "DELETE" });
    return "deleted";
  } catch (err) {
    if (!(err instanceof ApiError)) return "failed";
    if (err.status === 404) return "not_found";
    if (err.status === 409) return "active";
    return err.code;
  }
}

function report(verb, results, succeeded) {
  const tally = new Map();
  for (const r of results) tally.set(r.outcome, (tally.get(r.outcome) || 0) + 1);
  const parts = [...tally].map(([outcome, n]) => `${n} ${OUTCOME_WORDS[outcome] || outcome}`);
  const details = results
    .filter((r) => !succeeded(r))
    .map((r) => `${state.rows.get(r.id)?.job.name ?? r.id}: ${OUTCOME_WORDS[r.outcome] || r.outcome}`);
  announce(`${verb} ${results.length} ${results.length === 1 ? "job" : "jobs"}: ${parts.join(", ")}.`, details);
}

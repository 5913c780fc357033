// The failure groups (GET /api/failures): failed jobs grouped by type and error, largest first, each retried or
// deleted as a whole after a confirm. Read when the page has painted its first rows and again, at most once a
// second, after an event that may change a group (a job failed, left "failed", or was removed).
import { announce, api, clearNotice, post, showProblem, urls } from "./api.js";
import { everySecond } from "./clock.js";
import { confirmInPage } from "./confirm.js";
import { ago } from "./format.js";
import { jobHref, wirePanelClicks } from "./router.js";
import { state } from "./state.js";

const EVERY_MS = 1000; // at most one read per second, however many events arrive
const SHORT_ID = 8; // a sample job's link shows the end of its id (its start is its creation time, alike)
const $ = (id) => document.getElementById(id);
const section = $("failures");
const list = $("failure-groups");
const count = $("failures-count");
const empty = $("failures-empty");
const jump = $("failures-link");
let groups = []; // [{group, times}] as drawn, largest first
let lastAt = 0;
let timer = null;
let stale = false; // an event came while the tab was hidden: read again once it shows
let wired = false; // the first read waits for the first rows (app.js); a server without groups has no URL

/** A job event: read the groups again soon if it may change one. */
export function noteFailures(event) {
  if (!wired) return;
  const id = event.type === "job-removed" ? event.id : event.job.id;
  const was = state.rows.get(id)?.job?.status;
  if (event.type === "job-removed" || event.job.status === "failed" || was === "failed") readSoon();
}

function readSoon() {
  if (timer !== null) return;
  if (document.visibilityState !== "visible") {
    stale = true;
    return;
  }
  timer = setTimeout(read, Math.max(0, lastAt + EVERY_MS - Date.now()));
}

async function read() {
  timer = null;
  stale = false;
  lastAt = Date.now();
  let data;
  try {
    data = await api(urls.failures);
  } catch (err) {
    empty.textContent = `Failures unavailable: ${err.message}`;
    empty.hidden = false;
    return;
  }
  draw(data.groups || []);
}

function draw(found) {
  const now = Date.now();
  const total = found.reduce((sum, g) => sum + g.count, 0);
  count.textContent = found.length ? `${total} in ${found.length} ${found.length === 1 ? "group" : "groups"}` : "";
  jump.querySelector("b").textContent = String(total);
  empty.textContent = "No failed jobs.";
  empty.hidden = found.length > 0;
  const focused = document.activeElement?.closest?.("li[data-key]")?.dataset.key;
  const doing = document.activeElement?.dataset?.do;
  groups = found.map((group) => ({ group, ...item(group, now) }));
  list.replaceChildren(...groups.map((g) => g.li));
  if (focused && !list.contains(document.activeElement)) {
    const buttons = `li[data-key="${CSS.escape(focused)}"] button${doing ? `[data-do="${doing}"]` : ""}`;
    const same = list.querySelector(buttons);
    (same || $("failures-title")).focus(); // the keyboard stays where it was, or at the panel's top
  }
}

/** One group's item: {li, times} (times: the text that ticks). */
function item(group, now) {
  const li = document.createElement("li");
  li.className = "group";
  li.dataset.key = group.key;
  const head = line("group-head");
  const size = document.createElement("b");
  size.className = "group-count";
  size.textContent = String(group.count);
  const type = document.createElement("span");
  type.className = "group-type";
  type.textContent = group.type;
  head.append(size, " × ", type);
  const error = line("group-error", group.error);
  const example = line("group-example muted", group.example && group.example !== group.error ? group.example : "");
  example.hidden = !example.textContent;
  const times = line("group-times muted", seen(group, now));
  const samples = line("group-samples");
  if (group.sample_ids?.length) samples.append("e.g. ");
  for (const id of group.sample_ids || []) {
    const link = document.createElement("a");
    link.href = jobHref(id, state.view);
    link.dataset.job = id;
    link.title = id;
    link.textContent = `…${id.slice(-SHORT_ID)}`;
    samples.append(link, " ");
  }
  const buttons = line("group-buttons changes");
  for (const [what, label] of [
    ["retry", "Retry"],
    ["delete", "Delete"],
  ]) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary small";
    button.dataset.do = what;
    button.textContent = `${label} ${group.count}`;
    button.setAttribute("aria-label", `${label} the ${group.count} failed ${group.type} jobs: ${group.error}`);
    buttons.append(button);
  }
  li.append(head, error, example, times, samples, buttons);
  return { li, times };
}

function line(className, text = "") {
  const p = document.createElement("p");
  p.className = className;
  p.textContent = text;
  return p;
}

function seen(group, now) {
  const first = ago(Date.parse(group.first_failed_at), now);
  const last = ago(Date.parse(group.last_failed_at), now);
  return first === last ? `failed ${last}` : `first ${first} · last ${last}`;
}

async function act(key, what) {
  const entry = groups.find((g) => g.group.key === key);
  if (!entry) return;
  const { group } = entry;
  const jobsText = `${group.count} failed ${group.type} ${group.count === 1 ? "job" : "jobs"}`;
  const ok = await confirmInPage(
    what === "retry"
      ? { title: `Retry ${jobsText}?`, message: `Each runs again: ${group.error}`, yes: "Retry them" }
      : { title: `Delete ${jobsText}?`, message: `They are deleted with their logs: ${group.error}`, yes: "Delete them" },
  );
  if (!ok) return;
  clearNotice();
  const url = `${urls.failures}/${encodeURIComponent(key)}${what === "retry" ? "/retry" : ""}`;
  try {
    const result = what === "retry" ? await post(url) : await api(url, { method: "DELETE" });
    const done = what === "retry" ? "Retried" : "Deleted";
    announce(`${done} ${result.count} failed ${result.count === 1 ? "job" : "jobs"} of ${group.type}.`);
  } catch (err) {
    showProblem(err);
  }
  readSoon();
}

function tick(now) {
  for (const { group, times } of groups) {
    const text = seen(group, now);
    if (times.textContent !== text) times.textContent = text;
  }
}

/** Read the groups now, then as events say; a link in the header jumps to them. */
export function wireFailures() {
  if (!urls.failures) return; // a server without failure groups: their panel stays hidden
  section.hidden = jump.hidden = false;
  wirePanelClicks(list, (item, what) => act(item.dataset.key, what), () => state.view);
  jump.addEventListener("click", (event) => {
    event.preventDefault();
    section.querySelector("details").open = true;
    section.scrollIntoView({ block: "start" });
    $("failures-title").focus();
  });
  document.addEventListener("visibilitychange", () => stale && readSoon());
  everySecond(tick);
  wired = true;
  readSoon();
}

// The page's URL: "/?status=failed&q=export" is a view of the list, "/jobs/<id>" (or "#<id>") a job's
// detail over it. The server serves the page at both; history entries make the back button work.

import { urls } from "./api.js";

const home = urls.home.endsWith("/") ? urls.home : `${urls.home}/`;
const JOB_ID = /^[0-9a-f]{12,40}$/; // the shape of a job id (a "#jobs" skip link is not one)
let onChange = () => {};

/** What the URL asks for: {job, status, q}. */
export function readRoute() {
  const url = new URL(window.location.href);
  const rest = url.pathname.startsWith(home) ? url.pathname.slice(home.length) : "";
  const match = /^jobs\/([^/]+)\/?$/.exec(rest);
  const hash = decodeURIComponent(url.hash.slice(1));
  let job = null;
  if (match) job = decodeURIComponent(match[1]);
  else if (JOB_ID.test(hash)) job = hash;
  return { job, status: url.searchParams.get("status") || "", q: url.searchParams.get("q") || "" };
}

function query(view) {
  const params = new URLSearchParams();
  if (view.status) params.set("status", view.status);
  if (view.q) params.set("q", view.q);
  const text = params.toString();
  return text ? `?${text}` : "";
}

/** The URL of a job's detail, keeping the list's view. */
export function jobHref(id, view) {
  return `${home}jobs/${encodeURIComponent(id)}${query(view)}`;
}

/** Open a job's detail as a new history entry (back closes it). */
export function goToJob(id, view) {
  if (readRoute().job === id) return;
  window.history.pushState({ job: id, fromList: true }, "", jobHref(id, view));
  onChange(readRoute());
}

/** A panel's list of items: a job's link (`a[data-job]`) opens its detail here, unless a modifier asks for a new
 * tab; a button with `data-do` calls `act(item, what)` with the item (`li`) it is in. */
export function wirePanelClicks(list, act, view) {
  list.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-job]");
    if (link && !(event.ctrlKey || event.metaKey || event.shiftKey)) {
      event.preventDefault();
      goToJob(link.dataset.job, view());
      return;
    }
    const button = event.target.closest("button[data-do]");
    if (button) act(button.closest("li"), button.dataset.do);
  });
}

/** Close the detail: back to the list's entry when we came from it, else replace this one. */
export function leaveJob(view) {
  if (window.history.state?.fromList) {
    window.history.back(); // popstate tells onChange
    return;
  }
  window.history.replaceState(null, "", `${home}${query(view)}`);
  onChange(readRoute());
}

/** The list's view changed (a filter, a search): the URL says so, without a new history entry. */
export function keepView(view) {
  const { job } = readRoute();
  const path = job ? jobHref(job, view) : `${home}${query(view)}`;
  window.history.replaceState(window.history.state, "", path);
}

/** `fn(route)` runs whenever the URL changes (back, forward, a link to a job). */
export function onRoute(fn) {
  onChange = fn;
  window.addEventListener("popstate", () => fn(readRoute()));
}

// jobstream dashboard: the entry that wires the modules. Every job string is shown as text.
import { drawFilter, wireCounts } from "./counts.js";
import { closeDetail, openDetail, wireDetail } from "./detail.js";
import { wireFailures } from "./failures.js";
import { loadTypes, wireForm } from "./form.js";
import { wireOverview } from "./overview.js";
import { wireQueue } from "./queue.js";
import { keepView, leaveJob, onRoute, readRoute } from "./router.js";
import { wireSchedules } from "./schedules.js";
import { drawSearch, wireSearch } from "./search.js";
import { wireSelect } from "./select.js";
import { setView, state } from "./state.js";
import { startList, wireStream } from "./stream.js";
import { wireTable } from "./table.js";
import { wireWorkflow } from "./workflow.js";

/** The list shows `view` ({status, q}): the URL keeps it, the controls show it, a fresh page loads. */
function showView(view, fromUrl = false) {
  if (view.status === state.view.status && view.q === state.view.q) return;
  setView(view);
  if (!fromUrl) keepView(state.view);
  drawFilter(state.view.status);
  drawSearch(state.view.q);
  startList();
}

/** The URL changed (back, forward, a click on a job): show what it says. */
function followRoute(route) {
  showView(route, true);
  if (route.job && route.job !== state.detail.id) openDetail(route.job);
  else if (!route.job && state.detail.id) closeDetail();
}

const PHONE = "(max-width: 600px)"; // there the form and the overview start folded, the list first in view

/** What the first rows need not wait for (the form's types, the stats, failures, schedules): asked once they
 * are painted, so that their requests and drawing come after the rows on a busy machine. */
function afterFirstRows() {
  if (state.canChange) loadTypes(); // read-only credentials get no form (CSS hides what they may not do)
  wireOverview();
  wireFailures();
  wireSchedules();
}

const route = readRoute();
if (window.matchMedia(PHONE).matches) document.querySelectorAll("details.fold").forEach((d) => (d.open = false));
setView(route);
drawFilter(state.view.status);
drawSearch(state.view.q);
wireTable();
wireSelect();
wireDetail(() => leaveJob(state.view));
wireWorkflow();
wireForm();
wireQueue();
wireCounts((status) => showView({ ...state.view, status }));
wireSearch((q) => showView({ ...state.view, q }));
wireStream();
onRoute(followRoute);
startList().then(() => requestAnimationFrame(() => setTimeout(afterFirstRows, 0))); // the frame that paints them
if (route.job) openDetail(route.job, false);

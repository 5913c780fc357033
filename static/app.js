// jobstream dashboard: the entry that wires the modules. Every job string is shown as text.
import { wireCounts } from "./counts.js";
import { wireDetail } from "./detail.js";
import { loadTypes, wireForm } from "./form.js";
import { loadPaused, wireQueue } from "./queue.js";
import { setFilter } from "./state.js";
import { start } from "./stream.js";
import { wireTable } from "./table.js";

function chooseFilter(status) {
  setFilter(status);
  start(); // a new view: the older list's fetches are aborted
}

wireTable();
wireDetail();
wireForm();
wireQueue();
wireCounts(chooseFilter);
loadTypes();
loadPaused();
start();

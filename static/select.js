// Selecting rows for a bulk action: a checkbox per row, shift-click for a range, "select all shown".
import { cancelMany, deleteMany } from "./actions.js";
import { confirmInPage } from "./confirm.js";
import { state } from "./state.js";

const all = document.getElementById("select-all");
const bar = document.getElementById("bulk");
const count = document.getElementById("bulk-count");

/** A row's checkbox was clicked (it has its new state): with shift, the range from the last one clicked. */
export function onSelectClick(id, checkbox, event) {
  const ids = event.shiftKey && state.anchor && state.rows.has(state.anchor) ? range(state.anchor, id) : [id];
  for (const each of ids) {
    if (checkbox.checked) state.selected.add(each);
    else state.selected.delete(each);
  }
  state.anchor = id;
  drawChecks(ids);
  refreshSelection();
}

function range(from, to) {
  const a = state.order.indexOf(from);
  const b = state.order.indexOf(to);
  return state.order.slice(Math.min(a, b), Math.max(a, b) + 1);
}

function drawChecks(ids) {
  for (const id of ids) {
    const entry = state.rows.get(id);
    if (entry) entry.cells.select.checked = state.selected.has(id);
  }
}

/** The bulk bar and "select all shown" follow the selection (rows that left the list left it too). */
export function refreshSelection() {
  const n = state.selected.size;
  if (bar.hidden !== (n === 0)) bar.hidden = n === 0;
  const text = `${n} selected`;
  if (count.textContent !== text) count.textContent = text;
  const every = n > 0 && n === state.rows.size;
  if (all.checked !== every) all.checked = every;
  const some = n > 0 && n < state.rows.size;
  if (all.indeterminate !== some) all.indeterminate = some;
}

function selectAll() {
  const changed = all.checked ? state.order.filter((id) => !state.selected.has(id)) : [...state.selected];
  if (all.checked) changed.forEach((id) => state.selected.add(id));
  else state.selected.clear();
  drawChecks(changed);
  refreshSelection();
}

function clear() {
  const ids = [...state.selected];
  state.selected.clear();
  drawChecks(ids);
  refreshSelection();
}

async function bulkDelete() {
  const ids = [...state.selected];
  const ok = await confirmInPage({
    title: `Delete ${ids.length} ${ids.length === 1 ? "job" : "jobs"}?`,
    message: "Their logs go with them. Active jobs are skipped: cancel them first.",
    yes: "Delete",
  });
  if (ok) await deleteMany(ids);
}

export function wireSelect() {
  all.addEventListener("change", selectAll);
  document.getElementById("bulk-cancel").addEventListener("click", () => cancelMany([...state.selected]));
  document.getElementById("bulk-delete").addEventListener("click", bulkDelete);
  document.getElementById("bulk-clear").addEventListener("click", clear);
}

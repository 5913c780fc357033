// Each job type's last hour, from /api/stats `types` (the overview's poll: no request of its own): how long
// its jobs took (p50 and p95) and a completed/failed sparkline. A server without `types` leaves it hidden.
import { drawSpark, makeSpark } from "./sparkline.js";

const WIDTH = 60; // each type's sparkline viewBox
const HEIGHT = 16;
const box = document.getElementById("kinds");
const body = document.getElementById("kinds-rows");
const rows = new Map(); // type name -> {tr, p50, p95, spark, drawn}

/** Draw `types` ({name: {duration_seconds, per_minute, ...}}); absent, the panel stays hidden. */
export function drawKinds(types) {
  box.hidden = !types;
  if (!types) return;
  const names = Object.keys(types).sort();
  for (const [name, row] of rows) {
    if (!(name in types)) {
      row.tr.remove();
      rows.delete(name);
    }
  }
  names.forEach((name, i) => {
    const row = rows.get(name) || makeRow(name);
    if (body.children[i] !== row.tr) body.insertBefore(row.tr, body.children[i] || null);
    drawRow(row, name, types[name]);
  });
  document.getElementById("kinds-empty").hidden = names.length > 0;
}

function makeRow(name) {
  const tr = document.createElement("tr");
  const cell = (className) => {
    const td = document.createElement("td");
    td.className = className;
    tr.append(td);
    return td;
  };
  const th = document.createElement("th");
  th.scope = "row";
  th.textContent = name;
  th.title = name; // a long name is cut short in the column
  tr.append(th);
  const row = { tr, p50: cell("kind-p50"), p95: cell("kind-p95"), spark: makeSpark(WIDTH, HEIGHT, ""), drawn: "" };
  cell("kind-spark").append(row.spark);
  rows.set(name, row);
  return row;
}

function drawRow(row, name, stats) {
  const key = JSON.stringify(stats); // a quiet type's row is not redrawn every 5 s
  if (key === row.drawn) return;
  row.drawn = key;
  const took = stats.duration_seconds;
  row.p50.textContent = took ? seconds(took.p50) : "—";
  row.p95.textContent = took ? seconds(took.p95) : "—";
  const hour = drawSpark(row.spark, stats.per_minute || [], WIDTH, HEIGHT);
  row.spark.setAttribute("aria-label", `${name}, last hour: ${hour.completed} completed, ${hour.failed} failed`);
}

/** A duration short enough for a narrow column: "0.4 s", "62 s", "4.5 min", "2.1 h". */
function seconds(value) {
  if (value < 10) return `${value.toFixed(1)} s`;
  if (value < 100) return `${Math.round(value)} s`;
  return value < 6000 ? `${(value / 60).toFixed(1)} min` : `${(value / 3600).toFixed(1)} h`;
}

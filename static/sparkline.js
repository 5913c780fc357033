// Completed and failed jobs per minute as two lines of an inline SVG (no library), oldest minute on the left:
// the overview's throughput and each job type's.

const SVG = "http://www.w3.org/2000/svg";

/** Draw `minutes` ([{completed, failed}], newest first, as the API gives them) into `svg` (its viewBox
 * `width`×`height`); returns the hour's {completed, failed, peak}. */
export function drawSpark(svg, minutes, width, height) {
  const series = [...minutes].reverse();
  const completed = series.map((m) => m.completed ?? m.count ?? 0);
  const failed = series.map((m) => m.failed ?? 0);
  const most = Math.max(0, ...completed, ...failed);
  const peak = Math.max(1, most); // the scale: an idle hour draws flat lines at the bottom
  const step = series.length > 1 ? width / (series.length - 1) : width;
  const points = (values) =>
    values.map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - (v / peak) * (height - 4)).toFixed(1)}`).join(" ");
  const area = document.createElementNS(SVG, "polygon");
  area.setAttribute("class", "spark-area");
  area.setAttribute("points", `0,${height} ${points(completed)} ${width},${height}`);
  const lines = [
    ["spark-completed", completed],
    ["spark-failed", failed],
  ].map(([name, values]) => {
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("class", name);
    line.setAttribute("points", points(values));
    return line;
  });
  svg.replaceChildren(area, ...lines);
  const sum = (values) => values.reduce((a, b) => a + b, 0);
  return { completed: sum(completed), failed: sum(failed), peak: most };
}

/** A new, empty sparkline of `width`×`height` labelled by `label`. */
export function makeSpark(width, height, label) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.setAttribute("class", "spark");
  return svg;
}

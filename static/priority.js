// A job's priority as a small label: "normal" stays quiet, "high" and "low" stand out.

/** Show `priority` in `el` (as text), styled by its data-priority. */
export function drawPriority(el, priority) {
  const value = priority || "normal";
  el.textContent = value;
  el.dataset.priority = value;
  return el;
}

export function priorityBadge(priority) {
  const span = document.createElement("span");
  span.className = "priority";
  return drawPriority(span, priority);
}

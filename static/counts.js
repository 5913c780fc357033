// The counts per status, as buttons that filter the list. The counts come from the list's pages and from
// the stream's events (each event that changes a status carries them): the page never asks for them.
import { state } from "./state.js";

const nav = document.getElementById("counts");
const cells = new Map([...nav.querySelectorAll("[data-count]")].map((cell) => [cell.dataset.count, cell]));

/** Draw state.counts (at most once per frame: the list's flush calls this). */
export function drawCounts() {
  state.countsDrawn = true;
  if (!state.counts) return;
  let all = 0;
  for (const [status, n] of Object.entries(state.counts)) {
    const cell = cells.get(status);
    if (cell && cell.textContent !== String(n)) cell.textContent = String(n);
    all += n;
  }
  const total = cells.get("all");
  if (total.textContent !== String(all)) total.textContent = String(all);
}

/** Show which status the list is filtered by. */
export function drawFilter(status) {
  for (const button of nav.querySelectorAll("button[data-status]")) {
    button.setAttribute("aria-pressed", String(button.dataset.status === status));
  }
}

/** A count's button filters the list by its status: `onChoose(status)`, "" for every job. */
export function wireCounts(onChoose) {
  nav.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-status]");
    if (button) onChoose(button.dataset.status);
  });
}

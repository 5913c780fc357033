// The counts per status: drawn from each list page, refreshed after events; a click filters the list.
import { api, urls } from "./api.js";
import { state } from "./state.js";

const COUNTS_DELAY_MS = 500; // one refresh for a burst of events
const nav = document.getElementById("counts");

export function showCounts(counts) {
  let all = 0;
  for (const [status, n] of Object.entries(counts)) {
    const cell = nav.querySelector(`[data-count="${status}"]`);
    if (cell) cell.textContent = String(n);
    all += n;
  }
  nav.querySelector('[data-count="all"]').textContent = String(all);
}

/** Re-read the counts soon (events do not carry them yet). */
export function scheduleCounts() {
  if (state.countsTimer) return;
  state.countsTimer = setTimeout(refreshCounts, COUNTS_DELAY_MS);
}

async function refreshCounts() {
  try {
    showCounts((await api(`${urls.jobs}?limit=1`)).counts);
  } catch (err) {
    // the next event tries again
  }
  state.countsTimer = null;
}

/** A count's button filters the list by its status: `onChoose(status)`, "" for every job. */
export function wireCounts(onChoose) {
  nav.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-status]");
    if (!button) return;
    for (const b of nav.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b === button));
    onChoose(button.dataset.status);
  });
}

// Queue pause and resume: one button that says what a click will do.
import { api, clearNotice, report, urls } from "./api.js";

const button = document.getElementById("pause");

function showPaused(paused) {
  button.dataset.paused = String(paused);
  button.textContent = paused ? "Resume queue" : "Pause queue";
}

async function togglePause() {
  clearNotice();
  const paused = button.dataset.paused === "true";
  try {
    showPaused((await api(paused ? urls.resume : urls.pause, { method: "POST" })).paused);
  } catch (err) {
    report(err);
  }
}

/** Show whether the queue is paused now. */
export async function loadPaused() {
  try {
    showPaused((await api(urls.stats)).paused);
  } catch (err) {
    report(err); // the button may say the wrong thing until this is fixed
  }
}

export function wireQueue() {
  button.addEventListener("click", togglePause);
}

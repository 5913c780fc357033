// Queue pause and resume: one button that says what a click will do.
import { clearNotice, post, showProblem, urls } from "./api.js";

const button = document.getElementById("pause");
let asking = false; // a click is on its way: a stats answer read before it must not undo its label

/** Show whether the queue is paused (from a click's answer or the stats). */
export function showPaused(paused, fromStats = false) {
  if (fromStats && asking) return;
  button.dataset.paused = String(paused);
  button.textContent = paused ? "Resume queue" : "Pause queue";
}

async function togglePause() {
  clearNotice();
  const paused = button.dataset.paused === "true";
  asking = true;
  try {
    showPaused((await post(paused ? urls.resume : urls.pause)).paused);
  } catch (err) {
    showProblem(err);
  } finally {
    asking = false;
  }
}

export function wireQueue() {
  button.addEventListener("click", togglePause);
}

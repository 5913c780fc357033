// The page's one clock: a single 1 s timer drives every text that shows a time going by (the visible rows'
// elapsed times and countdowns, the detail's, the time since the last event). Hidden tabs skip ticks.

const TICK_MS = 1000;
const listeners = [];
let timer = null;

/** Call `fn(now)` once a second while the page is visible. */
export function everySecond(fn) {
  listeners.push(fn);
  if (timer === null) start();
}

function tick() {
  const now = Date.now();
  for (const fn of listeners) fn(now);
}

function start() {
  timer = setInterval(tick, TICK_MS);
  document.addEventListener("visibilitychange", () => {
    clearInterval(timer);
    timer = null;
    if (document.visibilityState === "visible") {
      tick(); // catch up at once: the texts are stale after a hidden spell
      timer = setInterval(tick, TICK_MS);
    }
  });
}

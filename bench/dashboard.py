"""The dashboard under load, in headless Chromium on the real stack.

For each list size (the baseline first, then the full size) in one run: a fresh tab loads that many rows,
then `--jobs` jobs publish about `--rate` events/s each for `--seconds` while the page is watched:
  - long tasks (PerformanceObserver `longtask`, main-thread tasks over 50 ms of wall time): count and worst;
  - the same by CPU time, from a Chrome trace of the window (a task's `tdur`: on a loaded machine the wall
    time also counts the waits for a core), the main thread's CPU use, and the frames it drew per second;
  - requests the page made (by path), and the events Redis published meanwhile;
  - the first render of the rows: the page's own code (state.js resetList + table.js showPage, imported
    from the page, so the very module instances it runs) drawing the whole list at once, timed to the end
    of the next frame (style, layout and paint included); and, for the real path, the long tasks of
    loading the rows by scrolling (infinite scroll, 200 a page).

    python -m bench.dashboard                      # 1,000 rows, 200 as the baseline, 5 jobs × 10 ev/s, 15 s
    python -m bench.dashboard --screenshots docs   # also docs/dashboard.png (light) and dashboard-dark.png
    python -m bench.dashboard --first-rows-only    # only the first rows after a navigation (median of 5)

And, with the full list stored, the time from a navigation to the first rows painted (fresh tab, median of
`--navigations`): what a user waits for, every fetch and script of the page included.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Page, expect, sync_playwright

from jobs import Jobs
from jobs.store.keys import EVENTS_KEY
from scripts.harness import ROOT, RedisServer, Service, start_pool, start_web, wait_until
from tests.dashboard_fixtures import CHROMIUM_ARGS

T = TypeVar("T")
PAGE_SIZE = 200  # the page's data-page-size
SEED_CHUNK = 500  # jobs per enqueue_many
SETTLE_SECONDS = 120.0  # the seeded jobs run through the pool
LONG_TASK_MS = 50.0
TRACE_CATEGORIES = ["devtools.timeline", "disabled-by-default-devtools.timeline"]
OBSERVE = """
window.__bench = { longtasks: [] };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__bench.longtasks.push({ start: e.startTime, ms: e.duration });
}).observe({ type: "longtask", buffered: true });
"""
RENDER = """async (count) => {
  const { resetList } = await import("/static/state.js");
  const { showPage } = await import("/static/table.js");
  const jobs = [];
  let cursor = null;
  while (jobs.length < count) {
    const url = `/api/jobs?limit=200${cursor ? `&cursor=${cursor}` : ""}`;
    const page = await (await fetch(url)).json();
    jobs.push(...page.jobs);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  const shown = jobs.slice(0, count);
  const before = window.__bench.longtasks.length;
  const start = performance.now();
  resetList(cursor, null);
  showPage(shown); // a chunk now, the rest a chunk per frame
  const drawn = () => document.querySelectorAll("#jobs tbody tr").length;
  while (drawn() < shown.length) await new Promise((done) => requestAnimationFrame(done));
  await new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0))); // that frame's paint
  const ms = performance.now() - start;
  const tasks = window.__bench.longtasks.slice(before).map((t) => t.ms);
  return { rows: document.querySelectorAll("#jobs tbody tr").length, ms, longtasks: tasks };
}"""
# The first rows painted after a navigation: performance.now() counts from the navigation's start.
FIRST_ROWS = """
(function look() {
  if (!document.querySelector("#jobs tbody tr")) return requestAnimationFrame(look);
  setTimeout(() => (window.__firstRowsMs = performance.now()), 0); // after this frame's paint
})();
"""
FCP = "first-contentful-paint"
# When the page asked for the list's first page and had its answer (0, 0 when it asked for none: the first page
# came in the HTML), had its last script, and had the HTML itself (ms from the navigation's start).
LIST_ASKED = """() => {
  const loaded = performance.getEntriesByType("resource");
  const list = loaded.find((e) => e.name.includes("/api/jobs?"));
  const scripts = loaded.filter((e) => e.name.endsWith(".js")).map((e) => e.responseEnd);
  const html = performance.getEntriesByType("navigation")[0].responseEnd;
  return [list ? list.startTime : 0, list ? list.responseEnd : 0, Math.max(...scripts), html];
}"""


PARAMS_FAILING = {"steps": 1, "step_seconds": 0, "fail_rate": 1}


def seeded(i: int) -> dict[str, Any]:
    """The i-th job of the list: one in ten fails, the others complete."""
    if i % 10 == 9:
        return {"type": "demo.web_agent", "name": f"seeded {i}", "params": PARAMS_FAILING}
    return {"type": "demo.sleep", "name": f"seeded {i}", "params": {"seconds": 0}}


def seed(jobs: Jobs, count: int) -> None:
    """`count` jobs, run to their end by the pool."""
    for start in range(0, count, SEED_CHUNK):
        jobs.enqueue_many(seeded(i) for i in range(start, min(count, start + SEED_CHUNK)))

    def settled() -> bool:
        counts = jobs.list(limit=1).counts
        return counts["pending"] == counts["active"] == 0

    wait_until(settled, SETTLE_SECONDS, "the seeded jobs to end")


def load_rows(page: Page, rows: int) -> dict[str, Any]:
    """Scroll the page until `rows` rows are listed; the long tasks of doing so (and of the first page)."""
    started = time.monotonic()
    while page.locator("#jobs tbody tr").count() < rows:
        before = page.locator("#jobs tbody tr").count()
        page.locator("#more").scroll_into_view_if_needed()
        page.wait_for_function("(n) => document.querySelectorAll('#jobs tbody tr').length > n", arg=before)
    tasks = [t["ms"] for t in page.evaluate("window.__bench.longtasks")]
    return {"seconds": round(time.monotonic() - started, 2), "longtasks": len(tasks), "worst_ms": worst(tasks)}


def worst(values: list[float]) -> float:
    return round(max(values), 1) if values else 0.0


def watch(page: Page, base: str, jobs: Jobs, args: argparse.Namespace) -> dict[str, Any]:
    """Start the busy jobs, then watch the page for args.seconds."""
    steps = int(args.rate * (args.seconds + 5))
    busy = [
        jobs.enqueue("demo.web_agent", name=f"busy {i}", params={"steps": steps, "step_seconds": 1 / args.rate})
        for i in range(args.jobs)
    ]
    wait_until(lambda: all(jobs.get(j.id).status == "active" for j in busy), 30, "the busy jobs to start")
    made: list[str] = []
    page.on("request", lambda r: made.append(urlsplit(r.url).path))

    def window() -> tuple[float, float, str, str]:
        start, first_id = page.evaluate("performance.now()"), f"{int(time.time() * 1000)}-0"
        page.wait_for_timeout(args.seconds * 1000)  # the measurement window
        return start, page.evaluate("performance.now()"), first_id, f"{int(time.time() * 1000)}-0"

    (start, end, first_id, last_id), trace = traced(page, window)
    tasks = [t["ms"] for t in page.evaluate("window.__bench.longtasks") if start <= t["start"] <= end]
    events = len(jobs.redis.xrange(EVENTS_KEY, min=first_id, max=last_id))
    jobs.cancel_many(job.id for job in busy)  # those that ended meanwhile are said to, not raised
    seconds = (end - start) / 1000
    return {
        "window_seconds": round(seconds, 1),
        "events": events,
        "events_per_second": round(events / seconds, 1),
        "longtasks": len(tasks),
        "worst_ms": worst(tasks),
        "longtasks_ms": [round(t, 1) for t in sorted(tasks, reverse=True)[:10]],
        "fps": round(trace["frames"] / seconds, 1),
        "cpu_busy_percent": round(trace["cpu_ms"] / (seconds * 10), 1),
        "cpu_longtasks": trace["cpu_longtasks"],
        "cpu_worst_ms": trace["cpu_worst_ms"],
        "requests": dict(Counter(made)),
    }


def main_thread(trace: Any) -> dict[str, Any]:
    """The page's main thread in a Chrome trace: its tasks' CPU time (`tdur`, not wall time, so a loaded
    machine's waiting for a core is left out), its long ones by CPU time, and the frames it drew."""
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    mains = {
        (e["pid"], e["tid"]) for e in events if e.get("name") == "thread_name" and e["args"]["name"] == "CrRendererMain"
    }
    tasks: dict[tuple[int, int], list[float]] = {m: [] for m in mains}
    frames: Counter[tuple[int, int]] = Counter()
    for e in events:
        key = (e.get("pid"), e.get("tid"))
        if key not in tasks or e.get("ph") != "X":
            continue
        if e["name"] == "RunTask":
            tasks[key].append(e.get("tdur", e.get("dur", 0)) / 1000)
        elif e["name"] == "Commit":  # a frame the main thread handed to the compositor
            frames[key] += 1
    main = max(tasks, key=lambda m: len(tasks[m]))
    cpu = tasks[main]
    long_ones = [t for t in cpu if t > LONG_TASK_MS]
    return {"cpu_ms": sum(cpu), "cpu_longtasks": len(long_ones), "cpu_worst_ms": worst(cpu), "frames": frames[main]}


def traced(page: Page, action: Callable[[], T]) -> tuple[T, dict[str, Any]]:
    """Run `action` under a Chrome trace; its result and the page's main-thread figures (main_thread)."""
    browser = page.context.browser
    assert browser is not None
    browser.start_tracing(page=page, categories=TRACE_CATEGORIES)
    try:
        result = action()
    finally:
        trace = main_thread(json.loads(browser.stop_tracing()))
    return result, trace


def run_size(browser: Browser, base: str, jobs: Jobs, rows: int, args: argparse.Namespace) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.add_init_script(OBSERVE)
    page.goto(f"{base}/")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=30_000)
    scrolled, scroll_trace = traced(page, lambda: load_rows(page, rows))
    scrolled.update(cpu_longtasks=scroll_trace["cpu_longtasks"], cpu_worst_ms=scroll_trace["cpu_worst_ms"])
    page.evaluate("window.scrollTo(0, 0)")
    render, render_trace = traced(page, lambda: page.evaluate(RENDER, rows))
    assert render["rows"] == rows, render
    watched = watch(page, base, jobs, args)
    context.close()
    return {
        "rows": rows,
        "render_ms": round(render["ms"], 1),
        "render_longtasks_ms": [round(t, 1) for t in render["longtasks"]],
        "render_cpu_ms": round(render_trace["cpu_ms"], 1),  # the fetches of the rows' pages included
        "render_cpu_worst_ms": render_trace["cpu_worst_ms"],
        "load_by_scrolling": scrolled,
        **watched,
    }


def blank_paint(browser: Browser, base: str) -> float:
    """The floor of a fresh tab here: ms from a navigation to the first paint of the server's smallest answer
    (`/healthz`, which Chromium shows as text), the page's own work aside."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/healthz")
    page.wait_for_function(f"() => performance.getEntriesByName({FCP!r}).length", timeout=30_000)
    painted: float = page.evaluate(f"performance.getEntriesByName({FCP!r})[0].startTime")
    context.close()
    return round(painted, 1)


def first_rows(browser: Browser, base: str, times: int) -> dict[str, Any]:
    """Milliseconds from a navigation to its first rows painted, in `times` fresh tabs: median and range; and,
    alternating with them, a fresh tab's first paint of /healthz: what any page costs this browser here."""
    runs = []
    asked = []
    blanks = []
    for _ in range(times):
        blanks.append(blank_paint(browser, base))
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.add_init_script(FIRST_ROWS)
        page.goto(f"{base}/")
        page.wait_for_function("() => window.__firstRowsMs !== undefined", timeout=30_000)
        runs.append(round(page.evaluate("window.__firstRowsMs"), 1))
        asked.append(page.evaluate(LIST_ASKED))
        context.close()
    return {
        "median_ms": statistics.median(runs),
        "runs_ms": runs,
        "list_asked_ms": statistics.median(a[0] for a in asked),
        "list_answered_ms": statistics.median(a[1] for a in asked),
        "scripts_loaded_ms": statistics.median(a[2] for a in asked),
        "html_loaded_ms": statistics.median(a[3] for a in asked),
        "blank_median_ms": statistics.median(blanks),
        "blank_runs_ms": blanks,
    }


HISTORY = ("Resize avatar", "Send invoice", "Sync calendar", "Crawl sitemap", "Render PDF", "Index catalogue")


def screenshots(browser: Browser, base: str, jobs: Jobs, folder: Path) -> None:
    """docs/dashboard.png (light) and docs/dashboard-dark.png (detail open), with jobs in every state."""
    history = [
        {"type": "demo.sleep", "name": f"{HISTORY[i % len(HISTORY)]} #{1040 + i}", "params": {"seconds": 0}}
        for i in range(36)
    ]
    history[7] = {"type": "demo.web_agent", "name": "Submit tax form #1047", "params": PARAMS_FAILING}
    jobs.enqueue_many(history)
    agents = [
        jobs.enqueue("demo.web_agent", name=name, params={"steps": 120, "step_seconds": 0.5}, priority=p)
        for name, p in (("Scrape pricing page", "normal"), ("Nightly export", "high"), ("Check out as guest", "normal"))
    ]
    jobs.enqueue(
        "demo.flaky",
        name="Import supplier feed",
        params={"fail_times": 5},
        max_attempts=3,
        backoff={"type": "fixed", "delay_seconds": 90, "max_delay_seconds": 90},
    )
    jobs.enqueue("demo.web_agent", name="Weekly digest", params={"steps": 5}, delay_seconds=300, priority="low")
    jobs.enqueue("demo.web_agent", name="Fill signup form", params=PARAMS_FAILING)
    old = jobs.enqueue("demo.web_agent", name="Old report", delay_seconds=600)
    jobs.cancel(old.id)
    jobs.enqueue("demo.primes", name="Count primes below 2M", priority="low")
    wait_until(lambda: all(jobs.get(a.id).progress >= 8 for a in agents), 60, "the agents to make progress")
    for scheme, name, size, detail in (
        ("light", "dashboard.png", {"width": 1440, "height": 1000}, False),
        ("dark", "dashboard-dark.png", {"width": 1920, "height": 1080}, True),
    ):
        context = browser.new_context(viewport=size, color_scheme=scheme)
        page = context.new_page()
        page.goto(f"{base}/jobs/{agents[0].id}" if detail else f"{base}/")
        expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=30_000)
        expect(page.locator("#workers li").first).to_be_visible(timeout=15_000)
        page.wait_for_timeout(1500)  # a few more steps drawn, the sparkline read
        page.screenshot(path=str(folder / name))
        context.close()
        print(f"wrote {folder / name}")
    jobs.cancel_many(job.id for job in agents)


class Stack:
    """A private Redis, a worker pool and one gunicorn server, as `make run` starts them."""

    def __init__(self, workers: int) -> None:
        workdir = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
        self.redis_server = RedisServer(workdir / "redis").start()
        self.services: list[Service] = []
        try:
            self.services.append(
                start_pool(self.redis_server.url, workdir / "logs", JOBSTREAM_CONCURRENCY=str(workers))
            )
            web, self.base = start_web(self.redis_server.url, workdir / "logs")
            self.services.append(web)
        except BaseException:
            self.stop()
            raise
        self.jobs = Jobs.from_url(self.redis_server.url)

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.redis_server.stop()


def report(results: list[dict[str, Any]], firsts: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"first rows after a navigation, {args.rows + PAGE_SIZE} jobs stored: median {firsts['median_ms']} ms")
    print(f"  of {firsts['runs_ms']}; load average {os.getloadavg()[0]:.1f}")
    asked, answered = firsts["list_asked_ms"], firsts["list_answered_ms"]
    scripts, html = firsts["scripts_loaded_ms"], firsts["html_loaded_ms"]
    listed = f"the list asked at {asked:.0f} ms, answered at {answered:.0f} ms" if asked else "no list request"
    print(f"  the HTML in at {html:.0f} ms; {listed}; the scripts in at {scripts:.0f} ms")
    blank, blanks = firsts["blank_median_ms"], firsts["blank_runs_ms"]
    print(f"  a fresh tab's first paint of /healthz, alternating with them: median {blank} ms of {blanks}")
    if not results:
        return
    print(f"\n{args.jobs} jobs × {args.rate} ev/s for {args.seconds} s; load average {os.getloadavg()[0]:.1f}")
    print("first render: wall ms, CPU ms of its tasks (the pages' fetches included), worst task's CPU ms;")
    print("then loading the rows by scrolling: long tasks by wall time (worst) and by CPU time (worst)")
    for r in results:
        load = r["load_by_scrolling"]
        render = f"{r['render_ms']} ms, CPU {r['render_cpu_ms']} ms, worst {r['render_cpu_worst_ms']} ms"
        scroll = f"{load['longtasks']} ({load['worst_ms']} ms), {load['cpu_longtasks']} ({load['cpu_worst_ms']} ms)"
        print(f"  {r['rows']:>5} rows: {render}; scrolling {load['seconds']} s: {scroll}")
    print("the window, long tasks by wall time (PerformanceObserver) and by CPU time (trace):")
    head = f"{'rows':>6} {'events/s':>9} {'long tasks':>11} {'worst ms':>9}"
    print(head + f" {'cpu long':>9} {'cpu worst':>10} {'cpu %':>6} {'fps':>5}  requests")
    for r in results:
        cpu = f"{r['cpu_longtasks']:>9} {r['cpu_worst_ms']:>10} {r['cpu_busy_percent']:>6}"
        print(
            f"{r['rows']:>6} {r['events_per_second']:>9} {r['longtasks']:>11} {r['worst_ms']:>9}"
            f" {cpu} {r['fps']:>5}  {r['requests']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--baseline", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=5, help="jobs publishing during the window")
    parser.add_argument("--rate", type=float, default=10, help="events per second of each job")
    parser.add_argument("--seconds", type=int, default=15, help="the measurement window")
    parser.add_argument("--navigations", type=int, default=5, help="fresh tabs timed to their first rows")
    parser.add_argument("--first-rows-only", action="store_true", help="skip the render and the window")
    parser.add_argument("--screenshots", type=Path, help="also write dashboard.png and dashboard-dark.png here")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("Chromium is missing: apt-get install chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        if args.screenshots:  # on a stack of their own: the benchmark's thousand jobs are no picture
            pictured = Stack(workers=5)
            try:
                screenshots(browser, pictured.base, pictured.jobs, args.screenshots)
            finally:
                pictured.stop()
        stack = Stack(workers=args.jobs + 1)
        try:
            seed(stack.jobs, args.rows + PAGE_SIZE)  # more than the list shows: "more below" stays true
            firsts = first_rows(browser, stack.base, args.navigations)
            sizes = () if args.first_rows_only else (args.baseline, args.rows)
            results = [run_size(browser, stack.base, stack.jobs, rows, args) for rows in sizes]
        finally:
            stack.stop()
        browser.close()
    report(results, firsts, args)
    out = ROOT / "bench" / "results" / f"dashboard-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    summary = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "loadavg": os.getloadavg(),
        "first_rows": firsts,
        "results": results,
    }
    out.write_text(json.dumps(summary, indent=2))
    print(f"\n{out}")


if __name__ == "__main__":
    main()

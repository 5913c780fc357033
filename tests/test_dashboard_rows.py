"""The list's first page drawn by the server (web/rows.py, templates/row.html) in real headless Chromium: each row
equals the one static/row.js draws for the same job, the page takes those rows with no request for them, and
the events between the page's render and its stream's open reach it."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, expect

from scripts.harness import RedisServer, request, start_web, wait_until
from tests.bounds import JOB_SECONDS
from tests.conftest import Stack
from tests.dashboard_helpers import (
    JOB_TIMEOUT_MS,
    STREAM_PATH,
    NewPage,
    api_job,
    cancel_quietly,
    create_job,
    open_dashboard,
    requests_to,
    row_by_id,
    unique,
)

pytest_plugins = ["tests.dashboard_fixtures"]  # the browser, page and new_page fixtures
pytestmark = pytest.mark.browser

LATER = 7200  # seconds: a wait that reads the same ("2 h") while the test runs
BACKOFF = {"type": "fixed", "delay_seconds": LATER, "max_delay_seconds": LATER}
LONG = {"steps": 600, "step_seconds": 0.2}  # demo.web_agent: active for the whole test, an action at each step
TICKING = ("pending", "active")  # their rows' time (a clock, elapsed, queued) and pace go by: not compared
# A row as a list of its elements: tag, attributes (but the CSSOM's style) and, for a leaf, its text.
DESCRIBE = """(tr) => [tr, ...tr.querySelectorAll("*")].map((el) => ({
  tag: el.localName,
  attrs: Object.fromEntries([...el.attributes].filter((a) => a.name !== "style").map((a) => [a.name, a.value])),
  text: el.children.length ? null : el.textContent,
}))"""
SERVER_ROWS = f"""(ids) => {{
  const describe = {DESCRIBE};
  return ids.map((id) => describe(document.querySelector(`#jobs tbody tr[data-id="${{id}}"]`)));
}}"""
# The page's own row.js (the very module instances it runs) drawing the same jobs as new rows, the list unfiltered.
SCRIPT_ROWS = f"""async (jobs) => {{
  const describe = {DESCRIBE};
  const {{ drawRow, makeRow }} = await import("/static/row.js");
  return jobs.map((job) => {{
    const entry = makeRow(job, {{ status: "", q: "" }});
    drawRow(entry, job);
    return describe(entry.tr);
  }});
}}"""
# How many <tr> the page removes from the document (a <tbody> with them too), from before its first script runs.
RECORD_REMOVED_ROWS = """window.__removedRows = 0;
new MutationObserver((changes) => {
  for (const change of changes) {
    for (const node of change.removedNodes) {
      if (node.nodeType !== Node.ELEMENT_NODE) continue;
      window.__removedRows += node.matches("tr") + node.querySelectorAll("tr").length;
    }
  }
}).observe(document, { childList: true, subtree: true });"""


@pytest.fixture
def base(stack: Stack) -> str:
    """The request fan-out server."""
    return stack.bases["request"]


@contextmanager
def paused_queue(base: str) -> Iterator[None]:
    """No job starts meanwhile: one created now stays pending, waiting for a worker."""
    assert request(base, "POST", "/api/queue/pause")[0] == 200
    try:
        yield
    finally:
        request(base, "POST", "/api/queue/resume")


@contextmanager
def frozen_worker(job: dict[str, Any]) -> Iterator[None]:
    """The worker running `job` is stopped (SIGSTOP) meanwhile, so a cancel asked of it stays requested (a worker
    ends a canceled job within 2 s otherwise). Far shorter than the 30 s after which a silent worker is replaced."""
    pid = int(job["worker"].rsplit(".", 1)[1])  # a worker is named <host>.<pid>
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def reached(base: str, job: dict[str, Any], check: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """The job once `check(job)` holds (read through the API)."""

    def now_there() -> dict[str, Any] | None:
        latest = api_job(base, job["id"])
        return latest if check(latest) else None

    return wait_until(now_there, JOB_SECONDS, f"{job['name']} to reach its state")


def comparable(rows: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """The rows without the texts that tick (and a scheduled job's clock: the browser's local time)."""
    for row in rows:
        if row[0]["attrs"]["data-status"] in TICKING:
            for element in row:
                if element["attrs"].get("class") in ("time", "pace"):
                    element["text"] = None
    return rows


def make_every_kind_of_row(base: str) -> list[dict[str, Any]]:
    """Jobs in every state a row draws differently, the newest of the list; the last one active, to be canceled."""
    later = create_job(base, unique("later"), "demo.sleep", delay_seconds=LATER, priority="low")
    made = [
        create_job(base, unique("done"), "demo.web_agent", params={"steps": 2, "step_seconds": 0}, priority="high"),
        create_job(base, unique("fails <b>loudly</b>"), "demo.fail", params={"message": "boom <i>"}),
        create_job(base, unique("twice"), "demo.flaky", params={"fail_times": 1}),
        create_job(base, unique("retrying"), "demo.flaky", params={"fail_times": 5}, backoff=BACKOFF),
        later,
        create_job(base, unique("after it"), "demo.sleep", depends_on=[later["id"]]),
        create_job(base, unique("dropped"), "demo.sleep", delay_seconds=LATER),
        create_job(base, '<img src=x onerror="window.__xss=1">', "demo.web_agent", params=LONG),
        create_job(base, unique("stopping"), "demo.web_agent", params=LONG),
    ]
    assert request(base, "POST", f"/api/jobs/{made[6]['id']}/cancel")[0] == 200
    for job in made[:3]:
        reached(base, job, lambda j: j["status"] in ("completed", "failed"))
    reached(base, made[3], lambda j: j["attempts"] == 2 and j["status"] == "pending")
    return made[:-1] + [reached(base, made[-1], lambda j: j["status"] == "active" and j["progress"] > 0)]


def test_each_row_the_server_draws_is_the_one_the_page_draws(new_page: NewPage, base: str) -> None:
    made = make_every_kind_of_row(base)
    try:
        reached(base, made[-2], lambda j: j["status"] == "active" and j["progress"] > 0 and j["action"])
        with paused_queue(base):
            made.append(create_job(base, unique("queued"), "demo.sleep", max_attempts=2))
            with frozen_worker(made[-2]):
                assert request(base, "POST", f"/api/jobs/{made[-2]['id']}/cancel")[0] == 202
                served = new_page(java_script_enabled=False)  # the page as the server sent it, no script run
                served.goto(f"{base}/")
        ids = [job["id"] for job in made]
        jobs = {
            job["id"]: job for job in served.evaluate("JSON.parse(document.getElementById('first-page').text).jobs")
        }
        page_jobs = [jobs[i] for i in ids]
        assert {j["status"] for j in page_jobs} == {"pending", "active", "completed", "failed", "canceled"}
        assert any(j["cancel_requested"] and j["status"] == "active" for j in page_jobs)
        assert any(j["waiting_for"] for j in page_jobs) and any(j["attempts"] > 1 for j in page_jobs)
        server = served.evaluate(SERVER_ROWS, ids)
        bar = served.locator(f'tr[data-id="{made[-3]["id"]}"] .bar')  # its length needs no script
        assert bar.evaluate("(el) => getComputedStyle(el).getPropertyValue('--progress')") == (
            f"{jobs[made[-3]['id']]['progress']}%"
        )

        page = new_page()
        open_dashboard(page, base)
        scripted = page.evaluate(SCRIPT_ROWS, page_jobs)

        for job, server_row, script_row in zip(page_jobs, comparable(server), comparable(scripted), strict=True):
            assert server_row == script_row, job
        assert page.evaluate("typeof window.__xss") == "undefined"
    finally:
        for job in made:
            cancel_quietly(base, job["id"])


def test_the_page_takes_the_servers_rows_with_no_request_and_misses_no_event(page: Page, base: str) -> None:
    before = create_job(base, unique("listed"), "demo.web_agent", params={"steps": 1, "step_seconds": 0})
    reached(base, before, lambda j: j["status"] == "completed")
    lists = requests_to(page, "/api/jobs")
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)  # the stream opens only once a job was made and ended meanwhile

    page.route(f"**{STREAM_PATH}*", hold)
    page.add_init_script(RECORD_REMOVED_ROWS)
    with page.expect_request(lambda r: urlsplit(r.url).path == STREAM_PATH):
        page.goto(f"{base}/")
    expect(row_by_id(page, before["id"]).locator(".badge")).to_have_text("completed")
    drawn = page.locator("#jobs tbody tr").count()

    meanwhile = create_job(base, unique("made meanwhile"), "demo.web_agent", params={"steps": 1, "step_seconds": 0})
    reached(base, meanwhile, lambda j: j["status"] == "completed")
    expect(row_by_id(page, meanwhile["id"])).to_have_count(0)
    (stream,) = held
    assert "last_event_id=" in stream.request.url, stream.request.url  # the event id read with the page's rows
    stream.continue_()
    page.unroute(f"**{STREAM_PATH}*")

    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(row_by_id(page, meanwhile["id"]).locator(".badge")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    assert lists == [], [r.url for r in lists]  # the rows came with the HTML
    assert page.evaluate("window.__removedRows") == 0  # the server's rows were kept, not drawn again
    assert page.locator("#jobs tbody tr").count() == drawn + 1
    assert page.locator("#first-page").count() == 0  # taken: a later view asks for its own page


def test_a_page_read_before_any_event_misses_none_published_before_its_stream_opens(
    page: Page, private_redis: RedisServer, tmp_path: Path
) -> None:
    """With no event stored yet the page has no id to resume from: its stream starts from the very first."""
    web, base = start_web(private_redis.url, tmp_path)
    try:
        held: list[Route] = []

        def hold(route: Route) -> None:
            held.append(route)  # the stream opens only once the first job was made

        page.route(f"**{STREAM_PATH}*", hold)
        with page.expect_request(lambda r: urlsplit(r.url).path == STREAM_PATH):
            page.goto(f"{base}/")
        expect(page.locator("#empty")).to_be_visible()
        first = create_job(base, unique("the first job ever"), "demo.web_agent", params={"steps": 1, "step_seconds": 0})
        (stream,) = held
        assert "last_event_id=0-0" in stream.request.url, stream.request.url
        stream.continue_()
        page.unroute(f"**{STREAM_PATH}*")
        expect(row_by_id(page, first["id"]).locator(".badge")).to_have_text("pending", timeout=JOB_TIMEOUT_MS)
    finally:
        page.close()
        web.stop()

"""A job's detail in real headless Chromium: at its own URL (/jobs/<id>, #<id>), with the back button, its
fields, params, result, error and traceback, and its log followed live."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, expect

from tests.conftest import Stack
from tests.dashboard_helpers import (
    JOB_TIMEOUT_MS,
    NewPage,
    api_job,
    cancel_quietly,
    create_job,
    open_dashboard,
    row_by_id,
    unique,
)
from tests.helpers import create

pytest_plugins = ["tests.dashboard_fixtures"]  # the browser, page and new_page fixtures
pytestmark = pytest.mark.browser

STEPS = 24  # the streamed job's steps (of 0.5 s: it still runs when its detail opens, even on a loaded machine)
LAST_STEP = """() => Math.max(0, ...[...document.querySelector("#detail-logs").textContent
    .matchAll(/^step (\\d+)\\/\\d+:/gm)].map((m) => Number(m[1])))"""


@pytest.fixture
def base(stack: Stack) -> str:
    return stack.bases["request"]


def api_logs(base: str, job_id: str) -> list[str]:
    return api_job(base, job_id)["logs"]


def wait_for_a_newer_step(page: Page, than: int) -> None:
    page.wait_for_function(f"(than) => ({LAST_STEP})() > than", arg=than, polling="raf")


def test_detail_view_streams_new_log_lines(page: Page, base: str) -> None:
    open_dashboard(page, base)
    name = unique("detail job")
    job = create(base, name, steps=STEPS, step_seconds=0.5)  # 12 s: the detail opens before the end, under load too
    try:
        row = row_by_id(page, job["id"])
        expect(row.locator(".badge")).to_have_text("active", timeout=JOB_TIMEOUT_MS)
        row.locator(".name").click()

        detail = page.locator("#detail")
        logs = page.locator("#detail-logs")
        expect(detail).to_be_visible()
        expect(page).to_have_url(f"{base}/jobs/{job['id']}")  # its own URL
        expect(page.locator("#detail-name")).to_have_text(name)
        expect(page.locator("#detail-name")).to_be_focused()
        expect(logs).to_contain_text("started on")
        expect(page.locator("#detail-fields")).to_contain_text(job["id"])

        before = page.evaluate(f"({LAST_STEP})()")
        assert before < STEPS, "the job ended before the detail opened"
        wait_for_a_newer_step(page, before)

        expect(logs).to_contain_text(f"step {STEPS}/{STEPS}:", timeout=JOB_TIMEOUT_MS)
        expect(logs).to_contain_text("completed")
        expect(page.locator("#detail-fields")).to_contain_text("100%")
        # Every line from the first one appended live on is the server's, in order.
        server_logs = api_logs(base, job["id"])
        shown = (logs.text_content() or "").split("\n")
        first_live = f"step {before + 1}/{STEPS}:"
        start = next(i for i, line in enumerate(server_logs) if line.startswith(first_live))
        assert shown[-(len(server_logs) - start) :] == server_logs[start:]
        expect(page.locator("#detail-result")).to_have_text(json.dumps({"steps": STEPS, "status": "done"}, indent=2))

        page.locator("#detail-close").click()
        expect(detail).to_be_hidden()
        expect(page).to_have_url(f"{base}/")
        page.go_forward()  # the history entry is the detail's
        expect(detail).to_be_visible()
        expect(page.locator("#detail-name")).to_have_text(name)
        page.go_back()
        expect(detail).to_be_hidden()
    finally:
        cancel_quietly(base, job["id"])


def test_the_detail_url_opens_directly_and_follows_the_log(new_page: NewPage, base: str) -> None:
    job = create(base, unique("opened by its URL"), steps=80, step_seconds=0.1)
    page = new_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    try:
        page.goto(f"{base}/jobs/{job['id']}")
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        expect(page.locator("#detail")).to_be_visible()
        expect(page.locator("#detail-name")).to_have_text(job["name"])
        params = page.locator("#detail-params tr")  # a readable table, not JSON
        expect(params).to_have_count(3)
        expect(params.filter(has_text="steps")).to_have_text(re.compile(r"^steps\s*80$"))
        expect(page.locator("#detail-status")).to_have_text("active", timeout=JOB_TIMEOUT_MS)
        logs = page.locator("#detail-logs")
        wait_for_a_newer_step(page, page.evaluate(f"({LAST_STEP})()"))  # live

        # The log keeps to its newest line, until the reader scrolls up; then it stays where they are.
        at_bottom = "(el) => el.scrollHeight - el.scrollTop - el.clientHeight < 24"
        # Scrolled up by more than the page's follow margin (24 px), or the next line would bring it back down.
        page.wait_for_function(
            "() => { const el = document.querySelector('#detail-logs');"
            " return el.scrollHeight > el.clientHeight + 96; }",
            polling="raf",
            timeout=JOB_TIMEOUT_MS,
        )
        assert logs.evaluate(at_bottom)
        logs.evaluate("(el) => { el.scrollTop = 0; }")
        wait_for_a_newer_step(page, page.evaluate(f"({LAST_STEP})()"))
        assert logs.evaluate("(el) => el.scrollTop") == 0
        follow = page.locator("#detail-follow")
        expect(follow).to_be_visible()
        follow.click()
        assert logs.evaluate(at_bottom)

        page.locator("#detail-copy").click()
        expect(page.locator("#detail-copy")).to_have_text("Copied")
        assert page.evaluate("navigator.clipboard.readText()") == job["id"]

        page.goto(f"{base}/#{job['id']}")  # the hash form opens it too
        expect(page.locator("#detail-name")).to_have_text(job["name"])
        page.goto(f"{base}/jobs/0123456789abcdef0123")  # a job that is not there says so
        expect(page.locator("#detail-notice")).to_have_text(re.compile(r"^There is no job 0123456789abcdef0123"))
    finally:
        cancel_quietly(base, job["id"])


def test_a_failed_job_shows_its_error_and_traceback(page: Page, base: str) -> None:
    job = create_job(
        base,
        unique("fails twice"),
        "demo.flaky",
        params={"fail_times": 5},
        max_attempts=2,
        backoff={"type": "fixed", "delay_seconds": 0, "max_delay_seconds": 0},
    )
    open_dashboard(page, base, f"/jobs/{job['id']}")
    expect(page.locator("#detail-status")).to_have_text("failed", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#detail-error")).to_have_text("RuntimeError: attempt 2 fails on purpose (the first 5 do)")
    trace = page.locator("#detail-traceback")
    expect(trace).to_be_visible()
    expect(trace).to_contain_text(re.compile(r"^Traceback \(most recent call last\):"))
    expect(trace).to_contain_text(re.compile(r"RuntimeError: attempt 2 fails on purpose \(the first 5 do\)$"))
    expect(page.locator("#detail-fields")).to_contain_text("2 of 2")
    expect(page.locator('#detail [data-do="retry"]')).to_be_visible()
    expect(page.locator("#detail-result-box")).to_be_hidden()


def test_a_traceback_that_arrives_while_the_log_loads_is_shown(page: Page, base: str) -> None:
    """Both attempts fail while the detail's GET is held: their tracebacks (each one event of several lines) come
    from the events kept meanwhile, and the newest is the one shown."""
    open_dashboard(page, base)
    job = create_job(
        base,
        unique("fails while loading"),
        "demo.flaky",
        params={"fail_times": 5},
        max_attempts=2,
        delay_seconds=1,
        backoff={"type": "fixed", "delay_seconds": 0, "max_delay_seconds": 0},
    )
    errors: list[Exception] = []

    def hold(route: Route) -> None:
        response = route.fetch()  # read while the job waits for its start
        try:
            page.wait_for_function(
                "(id) => document.querySelector(`#jobs tbody tr[data-id='${id}'] .badge`)?.textContent === 'failed'",
                arg=job["id"],
                polling="raf",
                timeout=JOB_TIMEOUT_MS,
            )
        except Exception as exc:  # reported by the test below, not lost in Playwright's event loop
            errors.append(exc)
        finally:
            route.fulfill(response=response)

    page.route(lambda url: urlsplit(url).path == f"/api/jobs/{job['id']}", hold)
    row_by_id(page, job["id"]).locator(".name").click()
    expect(page.locator("#detail-status")).to_have_text("failed", timeout=JOB_TIMEOUT_MS)
    trace = page.locator("#detail-traceback")
    expect(trace).to_contain_text(re.compile(r"^Traceback \(most recent call last\):"))
    expect(trace).to_contain_text(re.compile(r"RuntimeError: attempt 2 fails on purpose \(the first 5 do\)$"))
    assert not errors, errors


def test_detail_keeps_a_live_line_that_arrives_while_its_log_loads(page: Page, base: str) -> None:
    """The detail's GET is answered, then held until the page has the next step's event: no line lost or doubled."""
    open_dashboard(page, base)
    job = create(base, unique("detail race"), steps=60, step_seconds=0.1)
    held: list[dict[str, Any]] = []
    errors: list[Exception] = []

    def hold(route: Route) -> None:
        response = route.fetch()
        try:
            snapshot = response.json()["job"]
            held.append(snapshot)
            page.wait_for_function(  # the row drew a newer step: its event (and log line) reached the page
                """([id, progress]) => {
                    const tr = document.querySelector(`#jobs tbody tr[data-id="${id}"]`);
                    return tr !== null && Number(tr.querySelector(".bar").getAttribute("aria-valuenow")) > progress;
                }""",
                arg=[job["id"], snapshot["progress"]],
                polling="raf",
                timeout=5_000,
            )
        except Exception as exc:  # reported by the test below, not lost in Playwright's event loop
            errors.append(exc)
        finally:
            route.fulfill(response=response)

    try:
        row = row_by_id(page, job["id"])
        expect(row.locator(".badge")).to_have_text("active", timeout=JOB_TIMEOUT_MS)
        page.route(lambda url: urlsplit(url).path == f"/api/jobs/{job['id']}", hold)
        row.locator(".name").click()
        logs = page.locator("#detail-logs")
        expect(logs).to_contain_text("started on", timeout=8_000)  # the held answer has been drawn
        assert held and not errors, errors
        known = held[0]["logs"]
        shown = (logs.text_content() or "").split("\n")
        server_logs = api_logs(base, job["id"])
        assert shown == server_logs[: len(shown)], "the page's log is not the server's, in order"
        assert len(shown) > len(known), "the line that arrived while the log loaded is missing"
        # the fields are the newest event's, not the held answer's older snapshot
        expect(page.locator("#detail-fields")).not_to_contain_text(f"progress{held[0]['progress']}%")
    finally:
        cancel_quietly(base, job["id"])

"""The dashboard in real headless Chromium against the real stack: live rows, buttons, detail, reconnects."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Locator, Page, Route, expect, sync_playwright
from playwright.sync_api import Request as PwRequest

from scripts.harness import request, wait_until
from tests.conftest import Stack
from tests.helpers import create

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STREAM_PATH = "/api/jobs/stream"
SCREENSHOT = Path("/tmp/dashboard.png")
STATUSES = ("pending", "active", "completed", "failed", "canceled")
JOB_TIMEOUT_MS = 15_000  # a short job: queued, run by the pool, its end drawn


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab; the test fails on any uncaught script error or alert() (a button's API call failed)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    tab.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    yield tab
    context.close()
    assert not problems, problems


@pytest.fixture
def base(stack: Stack) -> str:
    """The request fan-out server (this module's default; conftest's `base` runs both modes)."""
    return stack.bases["request"]


# -- helpers ---------------------------------------------------------------------------------------


def unique(label: str) -> str:
    return f"{label} {uuid.uuid4().hex[:8]}"


def open_dashboard(page: Page, base: str) -> None:
    """Load the page and wait until its one EventSource is open."""
    page.goto(f"{base}/")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def row_by_id(page: Page, job_id: str) -> Locator:
    return page.locator(f'#jobs tbody tr[data-id="{job_id}"]')


def row_by_name(page: Page, name: str) -> Locator:
    exact = re.compile(f"^{re.escape(name)}$")
    return page.locator("#jobs tbody tr").filter(has=page.locator("td.name", has_text=exact))


def count_streams(page: Page) -> list[PwRequest]:
    """Collect every request the page makes to the stream (one per EventSource connection)."""
    seen: list[PwRequest] = []
    page.on("request", lambda r: seen.append(r) if urlsplit(r.url).path == STREAM_PATH else None)
    return seen


def pattern_subscriptions(stack: Stack) -> set[int]:
    """The ids of the Redis clients holding a PSUBSCRIBE (a request-mode stream holds one each)."""
    return {int(c["id"]) for c in stack.redis.client_list() if int(c.get("psub", 0)) > 0}


def api_job(base: str, job_id: str) -> dict[str, Any]:
    status, data, _ = request(base, "GET", f"/api/jobs/{job_id}")
    assert status == 200, data
    return data["job"]


def api_logs(base: str, job_id: str) -> list[str]:
    status, data, _ = request(base, "GET", f"/api/jobs/{job_id}")
    assert status == 200, data
    return data["job"]["logs"]


def api_counts(base: str) -> dict[str, int]:
    status, data, _ = request(base, "GET", "/api/jobs?limit=1")
    assert status == 200, data
    return data["counts"]


def dom_counts(page: Page) -> dict[str, int]:
    return page.evaluate(
        """(statuses) => Object.fromEntries(statuses.map(
            (s) => [s, Number(document.querySelector(`[data-count="${s}"]`).textContent)]))""",
        list(STATUSES),
    )


def cancel_quietly(base: str, job_id: str) -> None:
    """Free the worker of a test's long job whatever the test did (409 when it already ended)."""
    request(base, "POST", f"/api/jobs/{job_id}/cancel")


def save_screenshot(page: Page, path: Path = SCREENSHOT) -> Path:
    """A full-page picture of the dashboard for a human to look at (not committed)."""
    page.screenshot(path=str(path), full_page=True)
    return path


# -- tests ---------------------------------------------------------------------------------------------


def test_page_goes_live_and_builds_the_form_from_job_types(page: Page, base: str) -> None:
    streams = count_streams(page)
    open_dashboard(page, base)
    expect(page.locator("#connection")).to_have_text("live")

    _, data, _ = request(base, "GET", "/api/job-types")
    names = [t["name"] for t in data["job_types"]]
    options = page.locator("#job-type option")
    expect(options).to_have_count(len(names))
    assert [options.nth(i).get_attribute("value") for i in range(len(names))] == names
    expect(page.locator("#job-type")).to_have_value("demo.web_agent")

    params = page.locator("#params input")
    expect(params).to_have_count(3)
    assert set(params.evaluate_all("inputs => inputs.map(i => i.name)")) == {"steps", "step_seconds", "fail_rate"}
    expect(page.locator('#params input[name="steps"]')).to_have_value("10")
    expect(page.locator('#params input[name="steps"]')).to_have_attribute("type", "number")

    page.locator("#job-type").select_option("demo.sleep")
    expect(params).to_have_count(1)
    expect(page.locator('#params input[name="seconds"]')).to_be_visible()
    assert len(streams) == 1, streams


@pytest.mark.parametrize("mode", ["request", "process"])
def test_job_created_from_the_form_updates_live(page: Page, stack: Stack, mode: str) -> None:
    base = stack.bases[mode]
    streams = count_streams(page)
    open_dashboard(page, base)
    name = unique(f"form job ({mode})")

    page.locator("#job-name").fill(name)
    page.locator('#params input[name="steps"]').fill("3")
    page.locator('#params input[name="step_seconds"]').fill("0.3")
    page.get_by_role("button", name="Create job").click()

    row = row_by_name(page, name)
    expect(row).to_have_count(1)
    expect(page.locator("#job-name")).to_have_value("")
    # Caught while it runs, from the DOM alone: the page never polls, so this came over the stream.
    seen = page.wait_for_function(
        """(name) => {
            const tr = [...document.querySelectorAll("#jobs tbody tr")]
                .find((r) => r.querySelector(".name").textContent === name);
            if (!tr) return null;
            const value = tr.querySelector("progress").value;
            const badge = tr.querySelector(".badge").textContent;
            return badge === "active" && value > 0 && value < 100 ? { badge, value } : null;
        }""",
        arg=name,
        polling="raf",
    ).json_value()
    assert seen["badge"] == "active" and 0 < seen["value"] < 100, seen

    expect(row.locator("progress")).to_have_js_property("value", 100, timeout=JOB_TIMEOUT_MS)
    expect(row.locator(".badge")).to_have_text("completed")
    expect(row.locator(".percent")).to_have_text("100%")
    expect(row.locator('[data-do="cancel"]')).to_be_hidden()
    expect(row.locator('[data-do="delete"]')).to_be_visible()
    assert len(streams) == 1, f"expected one EventSource connection, saw {streams}"


def test_cancel_button_stops_a_running_job(page: Page, base: str) -> None:
    open_dashboard(page, base)
    job = create(base, unique("long job"), steps=200, step_seconds=0.2)
    try:
        row = row_by_id(page, job["id"])
        expect(row.locator(".badge")).to_have_text("active", timeout=JOB_TIMEOUT_MS)
        expect(row.locator('[data-do="retry"]')).to_be_hidden()
        expect(row.locator('[data-do="delete"]')).to_be_hidden()

        row.locator('[data-do="cancel"]').click()
        expect(row.locator(".badge")).to_have_text("canceled", timeout=5_000)
        expect(row.locator('[data-do="cancel"]')).to_be_hidden()
        expect(row.locator('[data-do="retry"]')).to_be_visible()
        assert api_job(base, job["id"])["status"] == "canceled"
    finally:
        cancel_quietly(base, job["id"])


def test_job_names_are_text_never_html(page: Page, base: str) -> None:
    name = '<img src=x onerror="window.__xss=1"><b>bold</b>'
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if urlsplit(r.url).path == "/x" else None)
    open_dashboard(page, base)
    job = create(base, name, steps=1, step_seconds=0)

    row = row_by_id(page, job["id"])
    cell = row.locator("td.name")
    expect(cell).to_have_count(1)
    expect(row.locator(".badge")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    assert cell.evaluate("td => td.textContent") == name
    assert cell.evaluate("td => td.children.length") == 0
    expect(cell.locator("img, b")).to_have_count(0)

    cell.click()  # the detail view shows the name too
    expect(page.locator("#detail-name")).to_have_text(name)
    expect(page.locator("#detail-name").locator("img, b")).to_have_count(0)

    expect(page.locator("#jobs img, #detail img")).to_have_count(0)
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert fetched == []


def test_retry_and_delete_buttons(page: Page, base: str) -> None:
    open_dashboard(page, base)
    failing = create(base, unique("always fails"), steps=1, step_seconds=0, fail_rate=1)
    done = create(base, unique("to delete"), steps=1, step_seconds=0)

    failed_row = row_by_id(page, failing["id"])
    expect(failed_row.locator(".badge")).to_have_text("failed", timeout=JOB_TIMEOUT_MS)
    expect(failed_row.locator(".action")).to_contain_text("step 1/1 failed")
    retry = failed_row.locator('[data-do="retry"]')
    expect(retry).to_be_visible()

    # Paused, the retried job stays pending: its leaving "failed" is seen, not raced.
    pause = page.locator("#pause")
    pause.click()
    expect(pause).to_have_text("Resume queue")
    try:
        retry.click()
        expect(failed_row.locator(".badge")).to_have_text("pending")
        expect(retry).to_be_hidden()
        assert wait_until(lambda: api_job(base, failing["id"])["attempts"] == 2, 5, "attempts 2")
        pause.click()
        expect(pause).to_have_text("Pause queue")
    finally:
        request(base, "POST", "/api/queue/resume")  # never leave the shared stack paused
    expect(failed_row.locator(".badge")).to_have_text("failed", timeout=JOB_TIMEOUT_MS)
    again = api_job(base, failing["id"])
    assert again["attempts"] == 2 and again["started_at"] is not None, again
    assert "retry: attempt 2" in api_logs(base, failing["id"])

    done_row = row_by_id(page, done["id"])
    expect(done_row.locator(".badge")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    done_row.locator('[data-do="delete"]').click()
    expect(done_row).to_have_count(0)
    assert request(base, "GET", f"/api/jobs/{done['id']}")[0] == 404


def test_detail_view_streams_new_log_lines(page: Page, base: str) -> None:
    open_dashboard(page, base)
    name = unique("detail job")
    job = create(base, name, steps=12, step_seconds=0.25)
    try:
        row = row_by_id(page, job["id"])
        expect(row.locator(".badge")).to_have_text("active", timeout=JOB_TIMEOUT_MS)
        row.locator("td.name").click()

        detail = page.locator("#detail")
        logs = page.locator("#detail-logs")
        expect(detail).to_be_visible()
        expect(page.locator("#detail-name")).to_have_text(name)
        expect(logs).to_contain_text("started on")
        expect(page.locator("#detail-fields")).to_contain_text(job["id"])

        last_step = """() => Math.max(0, ...[...document.querySelector("#detail-logs").textContent
            .matchAll(/^step (\\d+)\\/12:/gm)].map((m) => Number(m[1])))"""
        before = page.evaluate(last_step)
        assert before < 12, "the job ended before the detail opened"
        page.wait_for_function(f"({last_step})() > {before}", polling="raf")

        expect(logs).to_contain_text("step 12/12:", timeout=JOB_TIMEOUT_MS)
        expect(logs).to_contain_text("completed")
        expect(page.locator("#detail-fields")).to_contain_text("100%")
        # Every line from the first one appended live on is the server's, in order.
        server_logs = api_logs(base, job["id"])
        shown = logs.text_content().split("\n")
        first_live = f"step {before + 1}/12:"
        start = next(i for i, line in enumerate(server_logs) if line.startswith(first_live))
        assert shown[-(len(server_logs) - start) :] == server_logs[start:]

        page.locator("#detail-close").click()
        expect(detail).to_be_hidden()
    finally:
        cancel_quietly(base, job["id"])


def test_count_buttons_filter_and_match_the_api(page: Page, base: str) -> None:
    completed = create(base, unique("counted ok"), steps=1, step_seconds=0)
    failed = create(base, unique("counted failure"), steps=1, step_seconds=0, fail_rate=1)
    open_dashboard(page, base)
    expect(row_by_id(page, completed["id"]).locator(".badge")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    expect(row_by_id(page, failed["id"]).locator(".badge")).to_have_text("failed", timeout=JOB_TIMEOUT_MS)

    # The page's counts follow the events; compare them with the API's once nothing is changing.
    def settled() -> dict[str, int] | None:
        first = api_counts(base)
        shown = dom_counts(page)
        return shown if first == shown == api_counts(base) else None

    counts = wait_until(settled, 10, "the page's counts to match GET /api/jobs")
    expect(page.locator('[data-count="all"]')).to_have_text(str(sum(counts.values())))
    assert counts["completed"] >= 1 and counts["failed"] >= 1

    page.locator('#counts button[data-status="completed"]').click()
    expect(page.locator('#counts button[data-status="completed"]')).to_have_attribute("aria-pressed", "true")
    expect(page.locator('#counts button[data-status=""]')).to_have_attribute("aria-pressed", "false")
    rows = page.locator("#jobs tbody tr")
    expect(rows).to_have_count(min(counts["completed"], 200))
    expect(page.locator('#jobs tbody tr:not([data-status="completed"])')).to_have_count(0)
    expect(row_by_id(page, failed["id"])).to_have_count(0)
    expect(page.locator("#jobs tbody .badge").filter(has_not_text="completed")).to_have_count(0)

    # Under the filter, a job that completes live joins the list, and nothing else does.
    late = create(base, unique("completes under filter"), steps=1, step_seconds=0.3)
    expect(row_by_id(page, late["id"]).locator(".badge")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    expect(page.locator('#jobs tbody tr:not([data-status="completed"])')).to_have_count(0)

    page.locator('#counts button[data-status=""]').click()
    expect(row_by_id(page, failed["id"])).to_have_count(1)


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
                    return tr !== null && tr.querySelector("progress").value > progress;
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
        row.locator("td.name").click()
        logs = page.locator("#detail-logs")
        expect(logs).to_contain_text("started on", timeout=8_000)  # the held answer has been drawn
        assert held and not errors, errors
        known = held[0]["logs"]
        shown = logs.text_content().split("\n")
        server_logs = api_logs(base, job["id"])
        assert shown == server_logs[: len(shown)], "the page's log is not the server's, in order"
        assert len(shown) > len(known), "the line that arrived while the log loaded is missing"
    finally:
        cancel_quietly(base, job["id"])


def test_reconnect_replays_missed_events_and_reload_lists_jobs(page: Page, base: str, stack: Stack) -> None:
    streams = count_streams(page)
    list_fetches: list[str] = []  # start() fetches a full page; the counts refresh asks for limit=1
    page.on("request", lambda r: list_fetches.append(r.url) if "limit=200" in r.url else None)
    others = pattern_subscriptions(stack)
    open_dashboard(page, base)
    before = create(base, unique("before the drop"), steps=1, step_seconds=0)  # its events reach the page
    expect(row_by_id(page, before["id"]).locator(".badge")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    # The page's own subscription (request fan-out: one per stream); the other server's is left alone.
    mine = wait_until(lambda: pattern_subscriptions(stack) - others, 5, "the page's stream to subscribe")

    # Drop the stream server-side: kill the Redis connection behind it; the browser resumes by itself.
    for client_id in mine:
        stack.redis.client_kill_filter(_id=client_id)
    expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")
    missed = create(base, unique("created while away"), steps=2, step_seconds=0.2)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=10_000)
    missed_row = row_by_id(page, missed["id"])
    expect(missed_row.locator(".badge")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    expect(missed_row).to_have_count(1)
    # Resumed with Last-Event-ID and replayed, not a reset and a refetch of the list.
    assert len(streams) == 2, f"one reconnect expected: {[r.url for r in streams]}"
    assert streams[1].all_headers().get("last-event-id"), streams[1].all_headers()
    assert len(list_fetches) == 1, list_fetches

    extra = [create(base, unique(f"screenshot job {i}"), steps=40, step_seconds=0.25) for i in range(2)]
    try:
        page.reload()
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        for job in (before, missed):
            expect(row_by_id(page, job["id"]).locator(".badge")).to_have_text("completed")
        for job in extra:
            expect(row_by_id(page, job["id"]).locator(".badge")).to_have_text("active", timeout=JOB_TIMEOUT_MS)
        expect(page.locator("#empty")).to_be_hidden()
        row_by_id(page, extra[0]["id"]).locator("td.name").click()
        expect(page.locator("#detail-logs")).to_contain_text(re.compile(r"^step \d+/40:", re.M))
        assert save_screenshot(page).stat().st_size > 0
    finally:
        for job in extra:
            cancel_quietly(base, job["id"])


def test_priority_from_the_form_shows_in_the_row_and_the_detail(page: Page, base: str) -> None:
    """The form presets each type's default priority, places the server's complaint beside it, and sends it."""

    def low_sleep(route: Route) -> None:  # every built-in type defaults to normal: give one another default
        response = route.fetch()
        data = response.json()
        for job_type in data["job_types"]:
            if job_type["name"] == "demo.sleep":
                job_type["priority"] = "low"
        route.fulfill(response=response, json=data)

    page.route(lambda url: urlsplit(url).path == "/api/job-types", low_sleep)
    open_dashboard(page, base)
    priority = page.locator("#job-priority")
    expect(page.locator("#job-type")).to_have_value("demo.web_agent")
    expect(priority).to_have_value("normal")
    page.locator("#job-type").select_option("demo.sleep")
    expect(priority).to_have_value("low")
    page.locator("#job-type").select_option("demo.web_agent")
    expect(priority).to_have_value("normal")

    name = unique("high priority job")
    page.locator("#job-name").fill(name)
    page.locator('#params input[name="steps"]').fill("1")
    page.locator('#params input[name="step_seconds"]').fill("0")
    # A value the server refuses: its message goes next to the select, and no job is created.
    priority.evaluate("select => select.add(new Option('urgent', 'urgent'))")
    priority.select_option("urgent")
    page.get_by_role("button", name="Create job").click()
    expect(page.locator("#job-priority-error")).to_be_visible()
    expect(priority).to_have_attribute("aria-invalid", "true")
    expect(row_by_name(page, name)).to_have_count(0)

    priority.select_option("high")
    page.get_by_role("button", name="Create job").click()
    expect(page.locator("#job-priority-error")).to_have_count(0)
    row = row_by_name(page, name)
    expect(row.locator(".priority")).to_have_text("high")
    expect(row.locator(".priority")).to_have_attribute("data-priority", "high")
    expect(row.locator(".badge")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    assert api_job(base, row.get_attribute("data-id") or "")["priority"] == "high"

    row.locator("td.name").click()
    expect(page.locator("#detail-name")).to_have_text(name)
    expect(page.locator("#detail-fields .priority")).to_have_text("high")
    expect(page.locator("#detail-fields .priority")).to_have_attribute("data-priority", "high")

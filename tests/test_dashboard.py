"""The dashboard's job list in real headless Chromium against the real stack: live rows, their buttons,
filters and search in the URL, bulk actions, reconnects, and the page at a phone's width and in the dark."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import Request as PwRequest

from jobs import Jobs
from jobs.schemas import PAGE_MAX
from scripts.harness import request, wait_until
from tests.conftest import Stack
from tests.dashboard_helpers import (
    EVENT_TIMEOUT_MS,
    JOB_TIMEOUT_MS,
    STATUSES,
    STREAM_PATH,
    NewPage,
    api_job,
    background_rgb,
    cancel_quietly,
    create_job,
    open_dashboard,
    requests_to,
    row_by_id,
    unique,
)
from tests.helpers import create
from web import page as page_facts

pytest_plugins = ["tests.dashboard_fixtures"]  # the browser, page and new_page fixtures
pytestmark = pytest.mark.browser

SCREENSHOT = Path("/tmp/dashboard.png")
FIRST_PAGE = page_facts.FIRST_PAGE  # the list's first page is short, so its rows come fast
PAGE_SIZE = PAGE_MAX  # the pages after it are as long as the server allows
MEASURE_MS = 3_000  # how long the no-polling test watches the page's requests while events flow
STATS_EVERY_S = 5  # the page reads /api/stats at most this often
PHONE = {"width": 390, "height": 844}
SMALLEST = {"width": 360, "height": 740}


@pytest.fixture
def base(stack: Stack) -> str:
    """The request fan-out server (this module's default; conftest's `base` runs both modes)."""
    return stack.bases["request"]


# -- helpers ---------------------------------------------------------------------------------------


def pattern_subscriptions(stack: Stack) -> set[int]:
    """The ids of the Redis clients holding a PSUBSCRIBE (a request-mode stream holds one each)."""
    return {int(c["id"]) for c in stack.redis.client_list() if int(c.get("psub", 0)) > 0}


def api_logs(base: str, job_id: str) -> list[str]:
    return api_job(base, job_id)["logs"]


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


def ended(base: str, *jobs: dict[str, Any]) -> None:
    """Wait until every job has ended (through the API, not the page)."""
    wait_until(
        lambda: all(api_job(base, j["id"])["status"] in STATUSES[2:] for j in jobs), JOB_TIMEOUT_MS / 1000, "ends"
    )


def save_screenshot(page: Page, path: Path = SCREENSHOT) -> Path:
    """A picture of the dashboard for a human to look at (not committed; docs/ has bench.dashboard's)."""
    page.screenshot(path=str(path))
    return path


# -- tests ---------------------------------------------------------------------------------------------


def test_page_goes_live_and_builds_the_form_from_job_types(page: Page, base: str) -> None:
    streams = requests_to(page, STREAM_PATH)
    failures: list[str] = []
    page.on("response", lambda r: failures.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    open_dashboard(page, base)
    expect(page.locator("#connection")).to_have_text("live")

    _, data, _ = request(base, "GET", "/api/job-types")
    names = [t["name"] for t in data["job_types"]]
    options = page.locator("#job-type option")
    expect(options).to_have_count(len(names))
    assert [options.nth(i).get_attribute("value") for i in range(len(names))] == names
    expect(page.locator("#job-type")).to_have_value("demo.web_agent")
    expect(page.locator("#job-type-description")).to_have_text(
        next(t["description"] for t in data["job_types"] if t["name"] == "demo.web_agent")
    )

    params = page.locator("#params input")
    expect(params).to_have_count(3)
    assert set(params.evaluate_all("inputs => inputs.map(i => i.name)")) == {"steps", "step_seconds", "fail_rate"}
    steps = page.locator('#params input[name="steps"]')
    expect(steps).to_have_value("10")
    expect(steps).to_have_attribute("type", "number")
    expect(steps).to_have_attribute("min", "1")
    expect(steps).to_have_attribute("max", "1000")
    expect(steps).to_have_attribute("step", "1")
    expect(page.locator("#param-steps-hint")).to_have_text("1–1000 · default 10")  # the limits, shown
    expect(page.get_by_label("steps")).to_have_count(1)  # every input has its label

    page.locator("#job-type").select_option("demo.sleep")
    expect(params).to_have_count(1)
    expect(page.locator('#params input[name="seconds"]')).to_be_visible()
    page.locator("#job-type").select_option("demo.flaky")  # the type's own attempts and backoff
    expect(page.locator("#job-max-attempts")).to_have_value("3")
    expect(page.locator("#job-backoff-type")).to_have_value("fixed")
    assert len(streams) == 1, streams
    assert failures == [], failures  # the favicon included: nothing the page asks for is missing
    expect(page.locator('link[rel="icon"]')).to_have_count(1)


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
    cell = row.locator(".name")
    expect(cell).to_have_count(1)
    expect(row.locator(".badge")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    assert cell.evaluate("a => a.textContent") == name
    assert cell.evaluate("a => a.children.length") == 0
    expect(row.locator("img, b")).to_have_count(0)
    expect(row.locator("input.select")).to_have_attribute("aria-label", f"Select {name}")

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


def test_a_waiting_job_offers_cancel_and_delete_as_the_server_allows(page: Page, base: str) -> None:
    """The buttons follow the server's table of allowed actions (data-actions): a pending job may be deleted too."""
    open_dashboard(page, base)
    job = create_job(base, unique("waiting"), "demo.sleep", params={"seconds": 0}, delay_seconds=600)
    row = row_by_id(page, job["id"])
    expect(row.locator(".badge")).to_have_text("pending")
    expect(row.locator('[data-do="cancel"]')).to_be_visible()
    expect(row.locator('[data-do="retry"]')).to_be_hidden()
    row.locator(".name").click()
    expect(page.locator('#detail [data-do="delete"]')).to_be_visible()
    expect(page.locator('#detail [data-do="retry"]')).to_be_hidden()
    row.locator('[data-do="delete"]').click()
    expect(row).to_have_count(0)
    assert request(base, "GET", f"/api/jobs/{job['id']}")[0] == 404


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
    expect(page).to_have_url(re.compile(r"\?status=completed$"))
    rows = page.locator("#jobs tbody tr")
    expect(rows.first).to_be_visible()  # the first page; a next one may follow by itself when its end is near
    wait_until(lambda: min(counts["completed"], FIRST_PAGE) <= rows.count() <= counts["completed"], 10, "the rows")
    expect(page.locator('#jobs tbody tr:not([data-status="completed"])')).to_have_count(0)
    expect(row_by_id(page, failed["id"])).to_have_count(0)
    expect(page.locator("#jobs tbody .badge").filter(has_not_text="completed")).to_have_count(0)

    # Under the filter, a job that completes live joins the list, and nothing else does.
    late = create(base, unique("completes under filter"), steps=1, step_seconds=0.3)
    expect(row_by_id(page, late["id"]).locator(".badge")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    expect(page.locator('#jobs tbody tr:not([data-status="completed"])')).to_have_count(0)

    page.locator('#counts button[data-status=""]').click()
    expect(row_by_id(page, failed["id"])).to_have_count(1)
    expect(page).to_have_url(f"{base}/")


def test_filter_and_search_are_kept_in_the_url_and_restored_on_reload(page: Page, base: str) -> None:
    tag = uuid.uuid4().hex[:10]
    alpha = create(base, f"needle {tag} alpha", steps=1, step_seconds=0)
    beta = create(base, f"needle {tag} beta", steps=1, step_seconds=0, fail_rate=1)
    create(base, unique("haystack"), steps=1, step_seconds=0)
    ended(base, alpha, beta)
    open_dashboard(page, base)
    lists = requests_to(page, "/api/jobs")
    rows = page.locator("#jobs tbody tr")

    search = page.locator("#search")
    typed = f"NEEDLE {tag}"  # case does not matter
    search.press_sequentially(typed, delay=20)
    expect(page).to_have_url(re.compile(rf"\?q=NEEDLE\+{tag}$"))
    expect(rows).to_have_count(2)
    expect(row_by_id(page, alpha["id"])).to_have_count(1)
    # Debounced: one request once typing pauses, not one per key (a loaded machine may pause mid-word).
    assert 1 <= len(lists) <= 3 < len(typed), [r.url for r in lists]
    assert urlsplit(lists[-1].url).query.endswith(f"q=NEEDLE+{tag}"), lists[-1].url

    page.locator('#counts button[data-status="failed"]').click()
    expect(page).to_have_url(re.compile(rf"\?status=failed&q=NEEDLE\+{tag}$"))
    expect(rows).to_have_count(1)
    expect(row_by_id(page, beta["id"])).to_have_count(1)

    page.reload()  # a shared link or a reload shows the same view
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(search).to_have_value(f"NEEDLE {tag}")
    expect(page.locator('#counts button[data-status="failed"]')).to_have_attribute("aria-pressed", "true")
    expect(rows).to_have_count(1)
    expect(row_by_id(page, beta["id"])).to_have_count(1)

    # Live, a job that matches the view joins it; one that does not stays out.
    late = create(base, f"needle {tag} gamma", steps=1, step_seconds=0, fail_rate=1)
    stray = create(base, unique("not a needle"), steps=1, step_seconds=0, fail_rate=1)
    expect(row_by_id(page, late["id"])).to_have_count(1, timeout=JOB_TIMEOUT_MS)
    ended(base, stray)
    expect(row_by_id(page, stray["id"])).to_have_count(0)

    page.locator('#counts button[data-status=""]').click()
    search.fill(alpha["id"])  # an exact id finds that job
    expect(page).to_have_url(re.compile(rf"\?q={alpha['id']}$"))
    expect(rows).to_have_count(1)
    expect(row_by_id(page, alpha["id"])).to_have_count(1)


def test_bulk_cancel_and_delete_of_three_selected_rows(page: Page, base: str) -> None:
    later = [create_job(base, unique(f"bulk {i}"), delay_seconds=600) for i in range(3)]
    ids = [job["id"] for job in later]
    try:
        open_dashboard(page, base)
        newest, middle, oldest = (row_by_id(page, job_id) for job_id in reversed(ids))
        for row in (newest, middle, oldest):  # a delayed job says when it starts
            expect(row.locator(".badge")).to_have_text("pending")
            expect(row.locator(".what")).to_have_text(re.compile(r"^starts in (9|10) min$"))

        newest.locator("input.select").click()
        oldest.locator("input.select").click(modifiers=["Shift"])  # a range: the middle one too
        expect(page.locator("#bulk-count")).to_have_text("3 selected")
        for row in (newest, middle, oldest):
            expect(row.locator("input.select")).to_be_checked()

        page.locator("#bulk-cancel").click()
        report = page.locator("#report")
        expect(report).to_have_text("Cancel 3 jobs: 3 canceled.")
        for row in (newest, middle, oldest):
            expect(row.locator(".badge")).to_have_text("canceled")
        page.locator("#bulk-cancel").click()  # again: each id's outcome is said
        expect(report.locator("p")).to_have_text("Cancel 3 jobs: 3 already ended.")
        expect(report.locator("li")).to_have_count(3)
        expect(report.locator("li").first).to_contain_text(later[2]["name"])

        page.locator("#bulk-delete").click()
        expect(page.locator("#confirm")).to_be_visible()  # asked in the page (a window.confirm fails the test)
        page.locator("#confirm-yes").click()
        expect(report).to_have_text("Delete 3 jobs: 3 deleted.")
        for row in (newest, middle, oldest):
            expect(row).to_have_count(0)
        expect(page.locator("#bulk")).to_be_hidden()
        assert all(request(base, "GET", f"/api/jobs/{job_id}")[0] == 404 for job_id in ids)
    finally:
        for job_id in ids:
            cancel_quietly(base, job_id)


def test_select_all_shown_selects_the_filtered_rows(page: Page, base: str) -> None:
    tag = uuid.uuid4().hex[:10]
    later = [create_job(base, f"select {tag} {i}", delay_seconds=600) for i in range(2)]
    try:
        page.goto(f"{base}/?q={tag}")
        expect(page.locator("#jobs tbody tr")).to_have_count(2)
        page.get_by_label("Select all shown").check()
        expect(page.locator("#bulk-count")).to_have_text("2 selected")
        page.locator("#bulk-cancel").click()
        expect(page.locator("#report")).to_have_text("Cancel 2 jobs: 2 canceled.")
        page.get_by_label("Select all shown").uncheck()
        expect(page.locator("#bulk")).to_be_hidden()
    finally:
        for job in later:
            cancel_quietly(base, job["id"])


def test_a_retrying_job_says_its_attempt_the_countdown_and_the_last_error(page: Page, base: str) -> None:
    backoff = {"type": "fixed", "delay_seconds": 60, "max_delay_seconds": 60}
    job = create_job(base, unique("flaky"), "demo.flaky", params={"fail_times": 5}, max_attempts=3, backoff=backoff)
    try:
        open_dashboard(page, base)
        row = row_by_id(page, job["id"])
        what = row.locator(".what")
        expect(what).to_have_text(re.compile(r"^attempt 2/3 — retry in \d+ s$"), timeout=JOB_TIMEOUT_MS)
        expect(row.locator(".why")).to_have_text("RuntimeError: attempt 1 fails on purpose (the first 5 do)")
        expect(row.locator(".attempt")).to_have_text("2/3")
        expect(row.locator(".badge")).to_have_text("pending")
        shown = what.text_content()
        expect(what).not_to_have_text(shown or "", timeout=3_000)  # the countdown ticks
    finally:
        cancel_quietly(base, job["id"])


def test_infinite_scroll_loads_the_next_page(page: Page, base: str, stack: Stack) -> None:
    tag = uuid.uuid4().hex[:10]
    jobs = Jobs.from_url(stack.redis_server.url)
    items = [{"type": "demo.sleep", "name": f"scroll {tag} {i}", "delay_seconds": 3600} for i in range(250)]
    made = jobs.enqueue_many(items)
    pages: list[str] = []  # the list's requests for this search
    page.on("request", lambda r: pages.append(r.url) if f"q={tag}" in r.url and "/api/jobs?" in r.url else None)
    try:
        page.goto(f"{base}/?q={tag}")
        rows = page.locator("#jobs tbody tr")
        expect(rows.first).to_be_visible()
        # Near the end (the first page's 50 rows may all be on screen already), the next page loads by itself.
        rows.last.scroll_into_view_if_needed()
        expect(rows).to_have_count(len(items))
        assert f"limit={FIRST_PAGE}&" in pages[0] + "&" and "cursor=" not in pages[0], pages
        assert f"limit={PAGE_SIZE}&" in pages[1] + "&" and "cursor=" in pages[1], pages
        expect(page.locator("#more")).to_be_hidden()
        names = rows.locator(".name").all_text_contents()
        assert names == [f"scroll {tag} {i}" for i in reversed(range(250))]  # newest first, none twice
    finally:
        for job in made:
            jobs.delete(job.id)


def test_no_request_per_event(page: Page, base: str) -> None:
    open_dashboard(page, base)
    busy = [create(base, unique(f"busy {i}"), steps=60, step_seconds=0.1) for i in range(3)]
    try:
        rows = [row_by_id(page, job["id"]) for job in busy]
        for row in rows:
            expect(row.locator(".badge")).to_have_text("active", timeout=JOB_TIMEOUT_MS)
        before = [int(row.locator(".bar").get_attribute("aria-valuenow") or 0) for row in rows]
        made: list[PwRequest] = []
        page.on("request", lambda r: made.append(r))
        page.wait_for_timeout(MEASURE_MS)  # the measurement window itself: ~30 events/s arrive meanwhile
        after = [int(row.locator(".bar").get_attribute("aria-valuenow") or 0) for row in rows]
        assert all(a > b for a, b in zip(after, before, strict=True)), (before, after)  # events did flow
        paths = [urlsplit(r.url).path for r in made]
        polled = ("/api/stats", "/api/failures")  # the failure groups: read again at most once a second
        assert [p for p in paths if p not in polled] == [], paths  # counts and rows come from the stream
        assert paths.count("/api/stats") <= MEASURE_MS / 1000 / STATS_EVERY_S + 1, paths
        assert paths.count("/api/failures") <= MEASURE_MS / 1000 + 1, paths
    finally:
        for job in busy:
            cancel_quietly(base, job["id"])


def test_reconnect_replays_missed_events_and_reload_lists_jobs(page: Page, base: str, stack: Stack) -> None:
    streams = requests_to(page, STREAM_PATH)
    list_fetches: list[str] = []  # a first page of the list (it comes in the HTML: only a reset asks for one)
    page.on("request", lambda r: list_fetches.append(r.url) if f"limit={FIRST_PAGE}&" in r.url + "&" else None)
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
    expect(page.locator("#connection")).to_have_text("reconnecting…")
    missed = create(base, unique("created while away"), steps=2, step_seconds=0.2)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=EVENT_TIMEOUT_MS)
    missed_row = row_by_id(page, missed["id"])
    expect(missed_row.locator(".badge")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    expect(missed_row).to_have_count(1)
    # Resumed with Last-Event-ID and replayed, not a reset and a refetch of the list.
    assert len(streams) == 2, f"one reconnect expected: {[r.url for r in streams]}"
    assert streams[1].all_headers().get("last-event-id"), streams[1].all_headers()
    assert list_fetches == [], list_fetches
    expect(page.locator("#last-event")).to_have_text(re.compile(r"^last event (just now|\d+ s ago)$"))

    extra = [create(base, unique(f"screenshot job {i}"), steps=40, step_seconds=0.25) for i in range(2)]
    try:
        page.reload()
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        for job in (before, missed):
            expect(row_by_id(page, job["id"]).locator(".badge")).to_have_text("completed")
        for job in extra:
            expect(row_by_id(page, job["id"]).locator(".badge")).to_have_text("active", timeout=JOB_TIMEOUT_MS)
        expect(page.locator("#empty")).to_be_hidden()
        row_by_id(page, extra[0]["id"]).locator(".name").click()
        expect(page.locator("#detail-logs")).to_contain_text(re.compile(r"^step \d+/40:", re.M))
        assert save_screenshot(page).stat().st_size > 0
    finally:
        for job in extra:
            cancel_quietly(base, job["id"])


def test_a_phone_width_has_no_horizontal_scroll(new_page: NewPage, base: str) -> None:
    long_name = "x" * 200  # one unbreakable word, the longest name there is
    job = create(base, long_name, steps=1, step_seconds=0, fail_rate=1)
    page = new_page(viewport=PHONE)
    open_dashboard(page, base)
    row = row_by_id(page, job["id"])
    expect(row.locator(".badge")).to_have_text("failed", timeout=JOB_TIMEOUT_MS)
    for viewport in (PHONE, SMALLEST):
        page.set_viewport_size(viewport)
        width = viewport["width"]
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        box = row.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box  # a card, whole
        expect(row.locator('[data-do="retry"]')).to_be_in_viewport()

    row.locator(".name").click()
    expect(page.locator("#detail-name")).to_have_text(long_name)
    expect(page.locator("#detail-traceback")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= SMALLEST["width"]
    page.locator("#detail-close").click()
    expect(page.locator("#detail")).to_be_hidden()


def test_the_dark_scheme_has_a_dark_page(new_page: NewPage, base: str) -> None:
    dark = new_page(color_scheme="dark")
    dark.goto(f"{base}/")  # the colours come from the stylesheet alone
    assert sum(background_rgb(dark)) < 3 * 60, background_rgb(dark)
    text = dark.evaluate("getComputedStyle(document.body).color")
    assert sum(int(n) for n in re.findall(r"\d+", text)[:3]) > 3 * 180, text  # light text on it
    dark.emulate_media(color_scheme="light")  # and back: light when the system is
    assert sum(background_rgb(dark)) > 3 * 230, background_rgb(dark)

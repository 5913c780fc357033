"""The dashboard's schedules panel in real headless Chromium against the real stack (its pool fires the ticks): a
schedule appears, its next run counts down, its job appears when it fires, pause works by keyboard; and one is
made from the job form's typed params."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Locator, Page, expect

from scripts.harness import request, wait_until
from tests.bounds import JOB_SECONDS
from tests.conftest import Stack
from tests.dashboard_helpers import EVENT_TIMEOUT_MS, JOB_TIMEOUT_MS, open_dashboard, row_by_id

pytest_plugins = ["tests.dashboard_fixtures"]  # the browser, page and new_page fixtures
pytestmark = pytest.mark.browser

COUNTDOWN = re.compile(r"^next run in (\d+) s$")


@pytest.fixture
def base(stack: Stack) -> str:
    return stack.bases["request"]


@pytest.fixture
def schedule_id(base: str) -> Iterator[str]:
    """A schedule id of the test's own, deleted after it (the stack is shared)."""
    made = f"panel-{uuid.uuid4().hex[:8]}"
    yield made
    request(base, "DELETE", f"/api/schedules/{made}")


def item(page: Page, schedule_id: str) -> Locator:
    return page.locator(f'#schedule-list li[data-id="{schedule_id}"]')


def seconds_left(entry: Locator) -> int:
    found = COUNTDOWN.match(entry.locator(".schedule-next").inner_text())
    return int(found.group(1)) if found else -1


def test_a_schedule_appears_counts_down_fires_and_pauses_by_keyboard(page: Page, base: str, schedule_id: str) -> None:
    open_dashboard(page, base)
    body = {"type": "demo.noop", "every_seconds": 8, "overlap": "allow", "name": "panel beat"}
    status, data, _ = request(base, "PUT", f"/api/schedules/{schedule_id}", body)
    assert status == 201, data

    entry = item(page, schedule_id)  # from its schedule-update event: no reload
    expect(entry.locator(".schedule-title")).to_have_text(f"{schedule_id} · panel beat", timeout=EVENT_TIMEOUT_MS)
    expect(entry.locator(".schedule-cadence")).to_have_text("every 8 s")
    expect(entry.locator(".schedule-next")).to_have_text(COUNTDOWN)
    first = seconds_left(entry)
    expect(entry.locator(".schedule-next")).not_to_have_text(f"next run in {first} s", timeout=EVENT_TIMEOUT_MS)
    assert 0 <= seconds_left(entry) < first or seconds_left(entry) == -1  # down, or "now" as it fires

    link = entry.locator(".schedule-last a")
    expect(link).to_have_text("last job", timeout=JOB_TIMEOUT_MS)
    job_id = link.get_attribute("data-job")
    assert job_id
    expect(entry.locator(".schedule-last .badge")).to_have_text(re.compile("pending|active|completed"))
    expect(row_by_id(page, job_id)).to_have_count(1)  # the job it made is in the list, live
    expect(entry.locator(".schedule-last .badge")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    link.click()  # its detail names the schedule and the tick
    expect(page.locator("#detail-fields")).to_contain_text(f"{schedule_id}, tick ")
    page.keyboard.press("Escape")

    pause = entry.locator('button[data-do="pause"]')
    pause.focus()
    page.keyboard.press("Enter")
    expect(entry.locator(".schedule-next")).to_have_text("paused", timeout=EVENT_TIMEOUT_MS)
    expect(entry).to_have_attribute("data-paused", "true")
    assert request(base, "GET", f"/api/schedules/{schedule_id}")[1]["schedule"]["paused"] is True
    resume = entry.locator('button[data-do="resume"]')
    expect(resume).to_have_text("Resume")
    resume.focus()
    page.keyboard.press(" ")
    expect(entry.locator(".schedule-next")).to_have_text(COUNTDOWN, timeout=EVENT_TIMEOUT_MS)

    request(base, "DELETE", f"/api/schedules/{schedule_id}")
    expect(entry).to_have_count(0, timeout=EVENT_TIMEOUT_MS)  # its schedule-removed event


def test_a_schedule_is_made_from_the_job_form(page: Page, base: str, schedule_id: str) -> None:
    open_dashboard(page, base)
    page.locator("#job-type").select_option("demo.sleep")
    page.locator("#params input[name='seconds']").fill("0.1")
    page.locator("#workflow summary").click()  # filled before the repeat: a schedule's PUT leaves them out
    page.locator("#job-depends-on").fill("0123456789abcdef")
    page.locator("#job-allow-failure").check()
    page.locator("#repeat summary").click()
    page.locator("#schedule-on").check()
    expect(page.locator("#create-submit")).to_have_text("Save schedule")
    expect(page.locator("#job-depends-on")).to_be_disabled()
    page.locator("#schedule-id").fill(schedule_id)
    page.locator("#schedule-cron").fill("not a cron")
    page.locator("#schedule-timezone").fill("Europe/Berlin")
    page.locator("#create-submit").click()
    expect(page.locator("#schedule-cron-error")).to_be_visible()  # the server's 422, beside its field

    page.locator("#schedule-cron").fill("30 2 * * *")
    page.locator("#create-submit").click()
    expect(page.locator("#report")).to_contain_text(f"Saved schedule “{schedule_id}”", timeout=EVENT_TIMEOUT_MS)
    entry = item(page, schedule_id)
    expect(entry.locator(".schedule-cadence")).to_have_text("daily at 02:30 (Europe/Berlin)")
    saved = request(base, "GET", f"/api/schedules/{schedule_id}")[1]["schedule"]
    assert (saved["type"], saved["params"], saved["name"]) == ("demo.sleep", {"seconds": 0.1}, schedule_id)


def test_an_older_jobs_late_event_leaves_the_last_jobs_badge(page: Page, base: str, schedule_id: str) -> None:
    # A view that lists none of the schedule's jobs, so the badge has only the stream and its own read to go by.
    open_dashboard(page, base, "/?status=failed")
    path = f"/api/schedules/{schedule_id}"
    slow = {"type": "demo.sleep", "every_seconds": 3600, "overlap": "allow", "params": {"seconds": 3}}
    assert request(base, "PUT", path, slow)[0] == 201
    older = request(base, "POST", f"{path}/run")[1]["job"]["id"]
    assert request(base, "PUT", path, {**slow, "params": {"seconds": 0}})[0] == 200
    last = request(base, "POST", f"{path}/run")[1]["job"]["id"]
    entry = item(page, schedule_id)
    expect(entry.locator(".schedule-last a")).to_have_attribute("data-job", last, timeout=EVENT_TIMEOUT_MS)
    expect(entry.locator(".schedule-last .badge")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    wait_until(lambda: request(base, "GET", f"/api/jobs/{older}")[1]["job"]["status"] == "completed", JOB_SECONDS)
    expect(entry.locator(".schedule-last .badge")).to_have_text("completed")  # the older one's end came after

    assert request(base, "POST", f"{path}/pause")[0] == 200  # a schedule event: the badge is drawn again
    expect(entry.locator(".schedule-next")).to_have_text("paused", timeout=EVENT_TIMEOUT_MS)
    expect(entry.locator(".schedule-last .badge")).to_have_text("completed")

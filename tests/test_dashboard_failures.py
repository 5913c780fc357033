"""The dashboard's view of how jobs go, in real headless Chromium against the real stack: a running job's pace
from its progress events, the failure groups retried and deleted by keyboard, and each type's durations.

The failure groups and the per-type figures come from endpoints a server may lack (an older one): those
tests skip when it does, and run for real against one that has them."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from playwright.sync_api import Page, expect

from scripts.harness import request, wait_until
from tests.bounds import EVENT_SECONDS, JOB_SECONDS
from tests.conftest import Stack
from tests.dashboard_helpers import (
    EVENT_TIMEOUT_MS,
    JOB_TIMEOUT_MS,
    api_job,
    cancel_quietly,
    create_job,
    open_dashboard,
    requests_to,
    row_by_id,
    unique,
)
from tests.helpers import create

pytest_plugins = ["tests.dashboard_fixtures"]  # the browser, page and new_page fixtures
pytestmark = pytest.mark.browser

STEP_SECONDS = 3.0  # a step of the paced job: long enough to see "—" before its second report
PACE = re.compile(r"^\d+(\.\d)? %/min · (\d+ s|\d+ min|[\d h min]+) left$")
FAILING = 2  # jobs of the failure group under test
BURST = 20  # jobs failing at once: the groups are read again at most once a second, not once a job


@pytest.fixture
def base(stack: Stack) -> str:
    """The request fan-out server (this module's default; conftest's `base` runs both modes)."""
    return stack.bases["request"]


def word() -> str:
    """A random word with no digit and no hex run, so an error's normalized text keeps it: a group of its own."""
    return "".join("ghijklmnopqrstuv"[int(c, 16)] for c in uuid.uuid4().hex[:12])


def test_a_running_job_shows_its_pace_after_two_reports(page: Page, base: str) -> None:
    open_dashboard(page, base)
    job = create(base, unique("paced"), steps=20, step_seconds=STEP_SECONDS)
    try:
        row = row_by_id(page, job["id"])
        expect(row.locator(".badge")).to_have_text("active", timeout=JOB_TIMEOUT_MS)
        expect(row.locator(".pace")).to_have_text("—")  # one report (its start at 0 %): no pace yet
        expect(row.locator(".pace")).to_have_text(PACE, timeout=JOB_TIMEOUT_MS)  # 5 % a step of 3 s: 100 %/min
        row.locator(".name").click()
        fields = page.locator("#detail-fields")
        expect(fields.locator("dt", has_text=re.compile("^pace$"))).to_be_visible()
        expect(fields).to_contain_text(re.compile(r"\d+(\.\d)? %/min · .+ left"))
    finally:
        cancel_quietly(base, job["id"])
    expect(row_by_id(page, job["id"]).locator(".pace")).to_have_text("", timeout=EVENT_TIMEOUT_MS)  # ended


def test_failure_groups_are_listed_and_retried_and_deleted_by_keyboard(page: Page, base: str) -> None:
    status, _, _ = request(base, "GET", "/api/failures")
    if status == 404:
        pytest.skip("GET /api/failures not on this branch")
    cause = word()
    params = {"message": f"pipe {cause}"}
    made = [create_job(base, unique("broken"), "demo.fail", params=params) for _ in range(FAILING)]

    def all_failed() -> bool:
        return all(api_job(base, job["id"])["status"] == "failed" for job in made)

    wait_until(all_failed, JOB_SECONDS, "the jobs to fail")
    open_dashboard(page, base)
    group = page.locator("#failure-groups li").filter(has_text=cause)
    expect(group.locator(".group-count")).to_have_text(str(FAILING))
    expect(group.locator(".group-type")).to_have_text("demo.fail")
    expect(group.locator(".group-times")).to_contain_text("ago")
    expect(group.locator(".group-samples a")).to_have_count(FAILING)
    expect(page.locator("#failures-link")).to_be_visible()

    group.locator('button[data-do="retry"]').focus()
    page.keyboard.press("Enter")
    dialog = page.locator("#confirm")
    expect(dialog).to_be_visible()
    expect(page.locator("#confirm-title")).to_have_text(f"Retry {FAILING} failed demo.fail jobs?")
    page.keyboard.press("Tab")  # from "Keep them" (the safe answer, focused first) to "Retry them"
    page.keyboard.press("Enter")
    expect(page.locator("#report")).to_have_text(f"Retried {FAILING} failed jobs of demo.fail.")
    wait_until(lambda: all(api_job(base, j["id"])["attempts"] == 2 for j in made), JOB_SECONDS, "the retries")
    wait_until(all_failed, JOB_SECONDS, "the retried jobs to fail again")
    expect(group.locator(".group-count")).to_have_text(str(FAILING))  # each counted once, however often it failed

    group.locator('button[data-do="delete"]').focus()
    page.keyboard.press("Enter")
    expect(page.locator("#confirm-title")).to_have_text(f"Delete {FAILING} failed demo.fail jobs?")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#report")).to_have_text(f"Deleted {FAILING} failed jobs of demo.fail.")
    expect(group).to_have_count(0)
    for job in made:
        assert request(base, "GET", f"/api/jobs/{job['id']}")[0] == 404


def test_many_failures_at_once_read_the_groups_at_most_once_a_second(page: Page, base: str) -> None:
    status, _, _ = request(base, "GET", "/api/failures")
    if status == 404:
        pytest.skip("GET /api/failures not on this branch")
    open_dashboard(page, base)
    cause = word()
    expect(page.locator("#failures")).to_be_visible()
    reads = requests_to(page, "/api/failures")
    started = time.monotonic()
    made = [create_job(base, unique("burst"), "demo.fail", params={"message": f"burst {cause}"}) for _ in range(BURST)]
    group = page.locator("#failure-groups li").filter(has_text=cause)
    expect(group.locator(".group-count")).to_have_text(str(BURST), timeout=JOB_TIMEOUT_MS)
    seconds = time.monotonic() - started
    assert 1 <= len(reads) <= seconds + 1, (len(reads), seconds)  # BURST failures, far fewer reads
    request(base, "DELETE", f"/api/failures/{group.get_attribute('data-key')}")
    for job in made:
        request(base, "DELETE", f"/api/jobs/{job['id']}")


def test_each_type_shows_its_durations_and_a_sparkline(page: Page, base: str) -> None:
    status, stats, _ = request(base, "GET", "/api/stats")
    assert status == 200, stats
    if "types" not in stats:
        pytest.skip("GET /api/stats has no `types` on this branch")
    job = create_job(base, unique("timed"), "demo.sleep", params={"seconds": 0.2})
    wait_until(lambda: api_job(base, job["id"])["status"] == "completed", JOB_SECONDS, "the job to complete")
    open_dashboard(page, base)
    row = page.locator("#kinds-rows tr").filter(has=page.locator("th", has_text=re.compile(r"^demo\.sleep$")))
    seconds = re.compile(r"^\d+(\.\d)? (s|min|h)$")
    expect(row.locator(".kind-p50")).to_have_text(seconds, timeout=int(EVENT_SECONDS * 1000) + 5_000)  # a poll
    expect(row.locator(".kind-p95")).to_have_text(seconds)
    expect(row.locator("svg.spark polyline")).to_have_count(2)  # completed and failed
    label = row.locator("svg.spark").get_attribute("aria-label") or ""
    assert re.search(r"demo\.sleep, last hour: [1-9]\d* completed, \d+ failed", label), label

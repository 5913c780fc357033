"""The dashboard's create form in real headless Chromium: params from the type's schema, priority, delay and
attempts, errors next to their fields, and creating then canceling a job with the keyboard alone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, expect

from scripts.harness import start_web
from tests.conftest import Stack
from tests.dashboard_helpers import (
    JOB_TIMEOUT_MS,
    api_job,
    cancel_quietly,
    open_dashboard,
    requests_to,
    row_by_name,
    unique,
)

pytest_plugins = ["tests.dashboard_fixtures"]  # the browser, page and new_page fixtures
pytestmark = pytest.mark.browser

MAX_TABS = 80  # Tab presses allowed to reach a control (the page's tab order is about 30 long)


@pytest.fixture
def base(stack: Stack) -> str:
    return stack.bases["request"]


def tab_to(page: Page, selector: str) -> None:
    """Press Tab until the element matching `selector` has the focus."""
    for _ in range(MAX_TABS):
        if page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


@pytest.mark.parametrize("mode", ["request", "process"])
def test_job_created_from_the_form_updates_live(page: Page, stack: Stack, mode: str) -> None:
    base = stack.bases[mode]
    streams = requests_to(page, "/api/jobs/stream")
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
            const value = Number(tr.querySelector(".bar").getAttribute("aria-valuenow"));
            const badge = tr.querySelector(".badge").textContent;
            return badge === "active" && value > 0 && value < 100 ? { badge, value } : null;
        }""",
        arg=name,
        polling="raf",
    ).json_value()
    assert seen["badge"] == "active" and 0 < seen["value"] < 100, seen

    expect(row.locator(".bar")).to_have_attribute("aria-valuenow", "100", timeout=JOB_TIMEOUT_MS)
    expect(row.locator(".badge")).to_have_text("completed")
    expect(row.locator(".percent")).to_have_text("100%")
    expect(row.locator('[data-do="cancel"]')).to_be_hidden()
    expect(row.locator('[data-do="delete"]')).to_be_visible()
    created = api_job(base, row.get_attribute("data-id") or "")
    assert created["params"] == {"steps": 3, "step_seconds": 0.3, "fail_rate": 0.0}, created
    assert len(streams) == 1, f"expected one EventSource connection, saw {streams}"


def test_delay_and_attempts_from_the_form(page: Page, base: str) -> None:
    open_dashboard(page, base)
    name = unique("delayed from the form")
    page.locator("#job-type").select_option("demo.sleep")
    page.locator("#job-name").fill(name)
    page.locator("#job-delay").fill("5")
    page.locator("#job-delay-unit").select_option("min")
    page.locator("#retries summary").click()
    page.locator("#job-max-attempts").fill("4")
    page.locator("#job-backoff-type").select_option("fixed")
    page.locator("#job-backoff-delay").fill("30")
    page.locator("#job-backoff-max").fill("30")
    page.get_by_role("button", name="Create job").click()
    row = row_by_name(page, name)
    expect(row.locator(".what")).to_have_text(re.compile(r"^starts in (4|5) min$"))
    expect(row.locator(".attempt")).to_have_text("1/4")
    job = api_job(base, row.get_attribute("data-id") or "")
    try:
        assert job["status"] == "pending" and job["scheduled_for"] and job["max_attempts"] == 4, job
        expect(page.locator("#report")).to_have_text(f"Created “{name}”, starting later.")
    finally:
        cancel_quietly(base, job["id"])


def test_validation_errors_show_next_to_their_fields(page: Page, base: str) -> None:
    open_dashboard(page, base)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    name = unique("never created")
    page.locator("#job-name").fill(name)
    steps = page.locator("#param-steps")

    steps.fill("0")  # below its minimum: the browser's own check, shown beside the field, nothing sent
    page.get_by_role("button", name="Create job").click()
    expect(page.locator("#param-steps-error")).to_be_visible()
    expect(steps).to_have_attribute("aria-invalid", "true")
    expect(steps).to_have_attribute("aria-describedby", re.compile(r"^param-steps-error\b"))
    expect(steps).to_be_focused()
    assert posts == []

    # What only the server knows: its message goes beside the field it names.
    steps.evaluate("input => input.removeAttribute('max')")
    steps.fill("5000")
    page.get_by_role("button", name="Create job").click()
    expect(page.locator("#param-steps-error")).to_contain_text("1000")
    expect(page.locator("#form-error")).to_be_visible()
    assert len(posts) == 1

    steps.fill("1")
    page.locator("#retries summary").click()
    page.locator("#job-max-attempts").fill("3")
    page.locator("#job-backoff-delay").fill("60")
    page.locator("#job-backoff-max").fill("5")  # less than the delay: refused by the server's schema
    page.get_by_role("button", name="Create job").click()
    expect(page.locator("#job-backoff-max-error")).to_contain_text("delay_seconds")
    expect(page.locator("#retries")).to_have_attribute("open", "")
    expect(page.locator("#param-steps-error")).to_have_count(0)  # the older complaint is gone
    expect(row_by_name(page, name)).to_have_count(0)


def test_keyboard_alone_creates_a_job_and_cancels_it(page: Page, base: str) -> None:
    open_dashboard(page, base)
    name = unique("made by keyboard")
    tab_to(page, "#job-name")
    page.keyboard.type(name)
    tab_to(page, "#param-steps")
    page.keyboard.press("Control+A")
    page.keyboard.type("200")
    page.keyboard.press("Tab")  # step_seconds
    page.keyboard.press("Control+A")
    page.keyboard.type("0.2")
    page.keyboard.press("Enter")  # submits the form
    row = row_by_name(page, name)
    expect(row.locator(".badge")).to_have_text("active", timeout=JOB_TIMEOUT_MS)
    job_id = row.get_attribute("data-id") or ""
    try:
        cancel = f'#jobs tr[data-id="{job_id}"] [data-do="cancel"]'
        tab_to(page, cancel)
        outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none", "the focused button shows no focus ring"
        page.keyboard.press("Space")
        expect(row.locator(".badge")).to_have_text("canceled", timeout=JOB_TIMEOUT_MS)
        assert page.evaluate("() => document.activeElement !== document.body")  # focus stayed in the row
    finally:
        cancel_quietly(base, job_id)


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

    row.locator(".name").click()
    expect(page.locator("#detail-name")).to_have_text(name)
    expect(page.locator("#detail-fields .priority")).to_have_text("high")
    expect(page.locator("#detail-fields .priority")).to_have_attribute("data-priority", "high")


@pytest.fixture(scope="module")
def hinted_base(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A web server that knows the types registered from hints alone (tests.hinted_jobs), on the stack's Redis."""
    logs = tmp_path_factory.mktemp("hinted-web")
    web, base = start_web(stack.redis_server.url, logs, name="web-hinted", JOBSTREAM_JOB_MODULES="tests.hinted_jobs")
    yield base
    web.stop()


def test_a_type_from_hints_draws_its_form_from_them(page: Page, hinted_base: str) -> None:
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    open_dashboard(page, hinted_base)
    page.locator("#job-type").select_option("test.hinted")

    fmt = page.locator("#param-fmt")  # Literal["csv", "xlsx"] = "csv"
    expect(fmt).to_have_js_property("tagName", "SELECT")
    assert fmt.locator("option").all_text_contents() == ["csv", "xlsx"]
    expect(fmt.locator("option:checked")).to_have_text("csv")
    count = page.locator("#param-count")  # Annotated[int, Range(min=1, max=100)] = 10
    expect(count).to_have_attribute("type", "number")
    expect(count).to_have_attribute("min", "1")
    expect(count).to_have_attribute("max", "100")
    expect(count).to_have_value("10")
    expect(page.locator("#param-loud")).to_have_attribute("type", "checkbox")  # bool
    expect(page.locator("#param-ratio")).to_have_attribute("step", "any")  # float
    expect(page.locator("#param-label")).to_have_js_property("required", True)  # no default
    expect(page.locator("#param-note-hint")).to_contain_text("A short note")  # Annotated's description
    tags = page.locator("#param-tags")  # list[str] | None: JSON
    expect(tags).to_have_js_property("tagName", "TEXTAREA")

    page.locator("#job-name").fill(unique("never created"))
    page.get_by_role("button", name="Create job").click()  # label is required: the browser says so
    expect(page.locator("#param-label-error")).to_be_visible()
    page.locator("#param-label").fill("x")
    tags.fill("[1, ")  # not JSON: the browser's check
    page.get_by_role("button", name="Create job").click()
    expect(page.locator("#param-tags-error")).to_contain_text("JSON")
    assert posts == []

    tags.fill("[1]")  # JSON, but a number where a string goes: the server's message beside the list
    page.get_by_role("button", name="Create job").click()
    expect(page.locator("#param-tags-error")).to_contain_text("Not a valid string")
    assert len(posts) == 1

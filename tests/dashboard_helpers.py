"""What the dashboard's browser tests share besides their fixtures (tests/dashboard_fixtures.py): the job's
row on the page, jobs made and read through the API, the times they wait."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import Request as PwRequest

from scripts.harness import request
from tests.bounds import EVENT_SECONDS, JOB_SECONDS

STREAM_PATH = "/api/jobs/stream"
STATUSES = ("pending", "active", "completed", "failed", "canceled")
JOB_TIMEOUT_MS = int(JOB_SECONDS * 1000)  # a short job: queued, run by the pool, its end drawn
EVENT_TIMEOUT_MS = int(EVENT_SECONDS * 1000)  # what the test just did shows on the page
NewPage = Callable[..., Page]  # the new_page fixture: opens a tab with these context options


def unique(label: str) -> str:
    return f"{label} {uuid.uuid4().hex[:8]}"


def open_dashboard(page: Page, base: str, path: str = "/") -> None:
    """Load the page and wait until its one EventSource is open."""
    page.goto(f"{base}{path}")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def row_by_id(page: Page, job_id: str) -> Locator:
    return page.locator(f'#jobs tbody tr[data-id="{job_id}"]')


def row_by_name(page: Page, name: str) -> Locator:
    exact = re.compile(f"^{re.escape(name)}$")
    return page.locator("#jobs tbody tr").filter(has=page.locator(".name", has_text=exact))


def requests_to(page: Page, path: str) -> list[PwRequest]:
    """Collect every request the page makes to `path` from now on."""
    seen: list[PwRequest] = []
    page.on("request", lambda r: seen.append(r) if urlsplit(r.url).path == path else None)
    return seen


def create_job(base: str, name: str, type_: str = "demo.web_agent", **fields: Any) -> dict[str, Any]:
    """POST /api/jobs with any of its fields (params, delay_seconds, max_attempts, backoff, ...)."""
    status, data, _ = request(base, "POST", "/api/jobs", {"name": name, "type": type_, **fields})
    assert status == 201, data
    return data["job"]


def api_job(base: str, job_id: str) -> dict[str, Any]:
    status, data, _ = request(base, "GET", f"/api/jobs/{job_id}")
    assert status == 200, data
    return data["job"]


def cancel_quietly(base: str, job_id: str) -> None:
    """Free the worker of a test's long job whatever the test did (409 when it already ended)."""
    request(base, "POST", f"/api/jobs/{job_id}/cancel")


def background_rgb(page: Page) -> tuple[int, ...]:
    """The page body's background colour as (r, g, b)."""
    color = page.evaluate("getComputedStyle(document.body).backgroundColor")
    return tuple(int(n) for n in re.findall(r"\d+", color)[:3])

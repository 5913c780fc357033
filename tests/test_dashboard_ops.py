"""The dashboard against processes of its own: the web server restarted under an open page, a job that is
slow to stop, read-only credentials, the workers panel and cleaning ended jobs."""

from __future__ import annotations

import base64
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from jobs import Jobs
from scripts.harness import RedisServer, Service, free_port, request, start_pool, start_web, wait_until
from tests.bounds import START_SECONDS, STOP_SECONDS
from tests.dashboard_helpers import (
    JOB_TIMEOUT_MS,
    STREAM_PATH,
    NewPage,
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

JOB_MODULES = "tests.stubborn_jobs"  # test.stubborn: a job that ignores being stopped
ADMIN = ("admin", "secret")
VIEWER = ("viewer", "look")
STATS_TIMEOUT_MS = 15_000  # the page reads /api/stats every 5 s: two reads, and the job's start
FIRST_PAGE = page_facts.FIRST_PAGE  # the list's first page: a reset would ask for it
RESTART_TIMEOUT_MS = int((START_SECONDS + 5) * 1000)  # a web server comes back, the browser retries every 3 s
STOP_TIMEOUT_MS = int(STOP_SECONDS * 1000)  # a stubborn job's worker is ended after a grace period


class Own:
    """Redis, a pool of 3 workers that knows test.stubborn, a web server on a port of its own that can be
    restarted there, and a second one behind basic auth with a read-only user."""

    def __init__(self, workdir: Path) -> None:
        self.logs = workdir / "logs"
        self.redis_server = RedisServer(workdir / "redis").start()
        self.services: list[Service] = []
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        try:
            env = {"JOBSTREAM_JOB_MODULES": JOB_MODULES, "JOBSTREAM_HEARTBEAT_SECONDS": "1"}
            self.services.append(start_pool(self.redis_server.url, self.logs, JOBSTREAM_CONCURRENCY="3", **env))
            self.web = self.start_web()
            auth = {"JOBSTREAM_AUTH": ":".join(ADMIN), "JOBSTREAM_VIEWER_AUTH": ":".join(VIEWER), **env}
            service, self.auth_base = start_web(self.redis_server.url, self.logs, name="web-auth", **auth)
            self.services.append(service)
        except BaseException:
            self.stop()
            raise
        self.jobs = Jobs.from_url(self.redis_server.url, job_modules=(JOB_MODULES,))

    def start_web(self) -> Service:
        """gunicorn on this stack's own port (the same one after a restart), as start_web starts it."""
        env = {
            "REDIS_URL": self.redis_server.url,
            "JOBSTREAM_BIND": f"127.0.0.1:{self.port}",
            "JOBSTREAM_JOB_MODULES": JOB_MODULES,
            "JOBSTREAM_HEARTBEAT_SECONDS": "1",
        }
        web = Service("web-own", [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"], env, self.logs)
        self.services.append(web)
        wait_until(self.healthy, START_SECONDS, "the web server to answer")
        return web

    def healthy(self) -> bool:
        try:
            return request(self.base, "GET", "/healthz")[0] == 200
        except OSError:
            return False

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.redis_server.stop()


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Own]:
    stack = Own(tmp_path_factory.mktemp("dashboard"))
    yield stack
    stack.stop()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_the_web_server_restarts_under_the_page_and_no_update_is_missed(new_page: NewPage, own: Own) -> None:
    page = new_page()
    streams = requests_to(page, STREAM_PATH)
    first_pages: list[str] = []  # the list's first page (it comes in the HTML: only a reset would ask for it)
    page.on("request", lambda r: first_pages.append(r.url) if f"limit={FIRST_PAGE}&" in r.url + "&" else None)
    open_dashboard(page, own.base)
    running = create(own.base, unique("runs through the restart"), steps=20, step_seconds=0.2)
    row = row_by_id(page, running["id"])
    expect(row.locator(".badge")).to_have_text("active", timeout=JOB_TIMEOUT_MS)

    own.web.stop()  # the stream ends; the browser keeps retrying a port where nothing listens
    indicator = page.locator("#connection")
    expect(indicator).to_have_attribute("data-state", "reconnecting")
    expect(indicator).to_have_attribute("role", "status")  # announced: a live region
    away = own.jobs.enqueue("demo.web_agent", name=unique("created while the web was down"), params={"steps": 2})
    own.services.remove(own.web)
    own.web = own.start_web()

    expect(indicator).to_have_attribute("data-state", "live", timeout=RESTART_TIMEOUT_MS)
    expect(row_by_id(page, away.id).locator(".badge")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    expect(row.locator(".badge")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    expect(row.locator(".percent")).to_have_text("100%")
    # Every change made while away came from the replay after the page's last event id, not a refetch.
    assert first_pages == [], first_pages
    resumed = streams[-1]
    assert resumed.all_headers().get("last-event-id") or "last_event_id=" in resumed.url, resumed.url


def test_canceling_shows_until_a_slow_job_stops(new_page: NewPage, own: Own) -> None:
    page = new_page()
    open_dashboard(page, own.base)
    job = create(own.base, unique("slow to stop"), type_="test.stubborn", seconds=60)
    try:
        row = row_by_id(page, job["id"])
        expect(row.locator(".badge")).to_have_text("active", timeout=JOB_TIMEOUT_MS)
        row.locator('[data-do="cancel"]').click()
        expect(row.locator(".badge")).to_have_text("canceling…")
        expect(row.locator(".what")).to_have_text("stopping…")
        expect(row.locator('[data-do="cancel"]')).to_be_hidden()
        expect(row.locator(".badge")).to_have_text("canceled", timeout=STOP_TIMEOUT_MS)
    finally:
        cancel_quietly(own.base, job["id"])


def test_read_only_credentials_hide_every_change(new_page: NewPage, own: Own) -> None:
    status, data, _ = request(
        own.auth_base, "POST", "/api/jobs", {"name": unique("seen by a viewer"), "params": {"steps": 1}}, basic(*ADMIN)
    )
    assert status == 201, data
    job = data["job"]
    viewer = new_page(http_credentials={"username": VIEWER[0], "password": VIEWER[1]})
    open_dashboard(viewer, own.auth_base)  # the stream too, with the browser's credentials
    expect(viewer.locator("body")).to_have_attribute("data-can-change", "false")
    row = row_by_id(viewer, job["id"])
    expect(row.locator(".badge")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    for hidden in ("#create-form", "#pause", "#clean", "#select-all"):
        expect(viewer.locator(hidden)).to_be_hidden()
    expect(row.locator("button")).to_have_count(3)
    for button in row.locator("button").all():
        expect(button).to_be_hidden()
    expect(row.locator("input.select")).to_be_hidden()
    row.locator(".name").click()
    expect(viewer.locator("#detail-name")).to_have_text(job["name"])
    expect(viewer.locator('#detail [data-do="delete"]')).to_be_hidden()

    admin = new_page(http_credentials={"username": ADMIN[0], "password": ADMIN[1]})
    open_dashboard(admin, own.auth_base)
    expect(admin.locator("body")).to_have_attribute("data-can-change", "true")
    expect(admin.locator("#create-form")).to_be_visible()
    expect(row_by_id(admin, job["id"]).locator('[data-do="delete"]')).to_be_visible()


def test_workers_panel_links_the_running_job_and_the_sparkline_draws(new_page: NewPage, own: Own) -> None:
    page = new_page()
    job = create(own.base, unique("seen in the workers panel"), steps=100, step_seconds=0.2)
    try:
        open_dashboard(page, own.base)
        expect(page.locator("#workers li")).to_have_count(3)
        link = page.locator("#workers a.worker-job", has_text=job["name"])
        expect(link).to_be_visible(timeout=STATS_TIMEOUT_MS)
        expect(page.locator("#workers-count")).to_contain_text("of 3")
        link.click()
        expect(page).to_have_url(re.compile(rf"/jobs/{job['id']}$"))
        expect(page.locator("#detail-name")).to_have_text(job["name"])
        expect(page.locator("#sparkline polyline")).to_have_count(2)
        expect(page.locator("#sparkline-caption")).to_contain_text(re.compile(r"Last hour: \d+ completed, \d+ failed"))
    finally:
        cancel_quietly(own.base, job["id"])


def test_clean_ended_jobs_asks_in_the_page_first(new_page: NewPage, own: Own) -> None:
    done = create(own.base, unique("ended, to clean"), steps=1, step_seconds=0)
    waiting = create_job(own.base, unique("waits, stays"), delay_seconds=600)
    page = new_page()
    try:
        open_dashboard(page, own.base)
        expect(row_by_id(page, done["id"]).locator(".badge")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
        dialog = page.locator("#confirm")
        page.locator("#clean").click()
        expect(dialog).to_be_visible()
        expect(page.locator("#confirm-no")).to_be_focused()  # the safe answer first
        page.keyboard.press("Escape")  # no
        expect(dialog).to_be_hidden()
        expect(row_by_id(page, done["id"])).to_have_count(1)

        page.locator("#clean").click()
        page.locator("#clean-status").select_option("completed")
        page.locator("#confirm-yes").click()
        expect(page.locator("#report")).to_have_text(re.compile(r"^Deleted \d+ ended jobs?\.$"))
        expect(row_by_id(page, done["id"])).to_have_count(0)
        expect(row_by_id(page, waiting["id"])).to_have_count(1)
        assert request(own.base, "GET", f"/api/jobs/{done['id']}")[0] == 404
    finally:
        cancel_quietly(own.base, waiting["id"])

"""SPEC "Security" in real Chromium: a page on another origin changes nothing, and the stream lives on Basic auth.

One gunicorn with two users and a viewer on a private Redis, no worker pool (a job stays pending until someone
acts on it), and a second origin: a tiny http.server on another port serving an attacker's page with a form
that POSTs to the app and a `fetch(..., {mode: "no-cors"})`. The browser holds the app's credentials, as a
user's browser would.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from scripts.harness import RedisServer, free_port, request, start_web
from tests.api_helpers import basic_auth

pytestmark = pytest.mark.browser

ALICE, BOB, EVE = ("alice", "a-pass"), ("bob", "b-pass"), ("eve", "e-pass")
TIMEOUT_MS = 10_000
STREAM_PATH = "/api/jobs/stream"
ATTACK = """<!doctype html>
<title>a page elsewhere</title>
<form id="pause" method="POST" action="{app}/api/queue/pause" enctype="text/plain">
  <input name='{{"paused": "' value='"}}'>
</form>
<script>
  fetch("{app}/api/jobs/{job}/cancel", {{method: "POST", mode: "no-cors", credentials: "include",
                                          headers: {{"Content-Type": "text/plain"}}, body: "{{}}"}})
    .then(() => {{ document.title = "sent"; }}, (e) => {{ document.title = "not sent: " + e; }});
</script>
"""


@dataclass
class App:
    base: str

    def call(self, method: str, path: str, body: Any = None, user: tuple[str, str] = ALICE) -> tuple[int, Any]:
        status, data, _ = request(self.base, method, path, body, basic_auth(":".join(user)))
        return status, data

    def job(self, job_id: str) -> dict[str, Any]:
        status, data = self.call("GET", f"/api/jobs/{job_id}")
        assert status == 200, data
        return data["job"]

    def paused(self) -> bool:
        status, data = self.call("GET", "/api/stats")
        assert status == 200, data
        return bool(data["paused"])


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    workdir = tmp_path_factory.mktemp("security-browser")
    redis_server = RedisServer(workdir / "redis").start()
    try:
        env = {"JOBSTREAM_AUTH": "alice:a-pass,bob:b-pass", "JOBSTREAM_VIEWER_AUTH": "eve:e-pass"}
        web, base = start_web(
            redis_server.url, workdir / "logs", name="web-auth", JOBSTREAM_HEARTBEAT_SECONDS="1", **env
        )
        try:
            yield App(base)
        finally:
            web.stop()
    finally:
        redis_server.stop()


class Elsewhere:
    """The attacker's origin: http://localhost:<another port> (the app is on 127.0.0.1: another site)."""

    def __init__(self) -> None:
        self.pages: dict[str, bytes] = {}
        pages = self.pages

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, path: str, html: str) -> str:
        self.pages[path] = html.encode()
        return f"http://localhost:{self.port}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def elsewhere() -> Iterator[Elsewhere]:
    server = Elsewhere()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=chromium_path, headless=True, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        yield launched
        launched.close()


@pytest.fixture
def tab(browser: Browser) -> Iterator[Any]:
    """Opens tabs, each in a context of its own (`tab(http_credentials=...)`); all closed after the test."""
    contexts = []

    def open_tab(**options: Any) -> Page:
        context = browser.new_context(**options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        return page

    yield open_tab
    for context in contexts:
        context.close()


def credentials(user: tuple[str, str]) -> dict[str, str]:
    return {"username": user[0], "password": user[1]}


def test_a_page_on_another_origin_changes_nothing(app: App, elsewhere: Elsewhere, tab: Any) -> None:
    status, data = app.call("POST", "/api/jobs", {"name": "a target", "params": {"steps": 1}})
    assert status == 201, data
    job = data["job"]
    logs_before = app.job(job["id"])["logs"]
    page = tab(http_credentials=credentials(ALICE))  # the browser holds the user's credentials
    attack = elsewhere.serve("/attack.html", ATTACK.format(app=app.base, job=job["id"]))

    with page.expect_response(lambda r: r.url.endswith(f"/api/jobs/{job['id']}/cancel")) as canceled:
        page.goto(attack)
    expect(page).to_have_title("sent")  # no-cors: the script sees nothing, but the request went out
    with page.expect_response(lambda r: r.url.endswith("/api/queue/pause")) as paused:
        page.locator("#pause").evaluate("(form) => form.submit()")

    assert canceled.value.status == 403
    assert canceled.value.request.all_headers()["origin"] == f"http://localhost:{elsewhere.port}"
    assert paused.value.status == 403
    assert '"forbidden_origin"' in paused.value.text()
    assert not app.paused()
    after = app.job(job["id"])
    assert after["status"] == "pending"
    assert after["logs"] == logs_before


def test_the_same_requests_from_the_apps_own_origin_do_change_state(app: App, tab: Any) -> None:
    """The control: the browser, credentials and requests of the test above work from the app's own origin."""
    status, data = app.call("POST", "/api/jobs", {"name": "a target at home", "params": {"steps": 1}})
    assert status == 201, data
    page = tab(http_credentials=credentials(ALICE))
    page.goto(f"{app.base}/api/openapi.json")
    try:
        statuses = page.evaluate(
            """async ([job]) => [
                (await fetch(`/api/jobs/${job}/cancel`, {method: "POST"})).status,
                (await fetch("/api/queue/pause", {method: "POST"})).status]""",
            [data["job"]["id"]],
        )
        assert statuses == [200, 200]
        assert app.paused()
        assert app.job(data["job"]["id"])["status"] == "canceled"
        assert any(line.endswith("canceled before it ran by alice") for line in app.job(data["job"]["id"])["logs"])
    finally:
        assert app.call("POST", "/api/queue/resume")[0] == 200


@pytest.mark.parametrize("user", [ALICE, BOB, EVE], ids=["alice", "bob", "eve-viewer"])
def test_the_page_goes_live_on_the_browsers_basic_auth(app: App, tab: Any, user: tuple[str, str]) -> None:
    page = tab(http_credentials=credentials(user))
    streams: list[int] = []
    page.on("response", lambda r: streams.append(r.status) if urlsplit(r.url).path == STREAM_PATH else None)

    page.goto(f"{app.base}/")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    status, data = app.call("POST", "/api/jobs", {"name": f"made while {user[0]} watches"}, user=BOB)
    assert status == 201, data

    expect(page.locator(f'#jobs tbody tr[data-id="{data["job"]["id"]}"]')).to_be_visible()  # by the stream
    assert streams == [200]
    expect(page.locator("body")).to_have_attribute("data-can-change", "false" if user == EVE else "true")


@pytest.mark.parametrize(
    "options",
    [pytest.param({}, id="none"), pytest.param({"http_credentials": credentials(("alice", "b-pass"))}, id="wrong")],
)
def test_without_the_right_credentials_the_browser_gets_no_page(app: App, tab: Any, options: dict[str, Any]) -> None:
    """Headless Chromium cannot prompt: with no credentials it gives up on the challenge; with wrong ones it
    shows the 401 (JSON, not the page)."""
    page = tab(**options)
    try:
        response = page.goto(f"{app.base}/")
    except PlaywrightError as exc:
        assert "ERR_INVALID_AUTH_CREDENTIALS" in str(exc)
    else:
        assert response is not None and response.status == 401
        assert '"unauthorized"' in response.text()
        expect(page.locator("#connection")).to_have_count(0)

"""SPEC "Security", in process: other origins' changes refused (CSRF), the safe headers, users and read-only viewers.

The same from a real page on a second origin, and the stream under the browser's own Basic auth, in Chromium:
tests/test_security_browser.py.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app import create_app
from jobs.config import Settings
from jobs.store.lifecycle import JobStore
from tests.api_helpers import basic_auth, create, error_details, job_in, redis_state

EVIL = "http://evil.example"
DASHBOARD_ELSEWHERE = "https://dash.example.com"
ALICE, BOB, EVE = "alice:a-pass", "bob:b-pass", "eve:e-pass"  # two users who may change, one viewer


@dataclasses.dataclass(frozen=True)
class Change:
    """A state-changing request; `{pending}` and the like in its path or body are ids of a status."""

    method: str
    path: str
    body: dict[str, Any] | None = None


CHANGES = {
    "cancel": Change("POST", "/api/jobs/{pending}/cancel"),
    "cancel-active": Change("POST", "/api/jobs/{active}/cancel"),
    "pause": Change("POST", "/api/queue/pause"),
    "resume": Change("POST", "/api/queue/resume"),
    "create": Change("POST", "/api/jobs", {"name": "planted"}),
    "delete": Change("DELETE", "/api/jobs/{completed}"),
    "retry": Change("POST", "/api/jobs/{failed}/retry"),
    "clean": Change("POST", "/api/jobs/clean", {"older_than_seconds": 0}),
    "bulk-cancel": Change("POST", "/api/jobs/cancel", {"ids": ["{pending}", "{active}"]}),
    "webhook-put": Change("PUT", "/api/webhooks/w1", {"url": "https://example.com/hook", "events": ["job.failed"]}),
}
CROSS_SITE = {
    "origin": {"Origin": EVIL},
    "fetch-site": {"Sec-Fetch-Site": "cross-site"},
    "fetch-site-and-origin": {"Sec-Fetch-Site": "cross-site", "Origin": EVIL},
    "same-site-subdomain": {"Sec-Fetch-Site": "same-site", "Origin": "http://other.localhost"},
    "opaque-origin": {"Origin": "null"},  # a sandboxed iframe, a data: URL
    "other-port": {"Origin": "http://localhost:8001"},
}
PAGES = ("/", "/jobs/ffffffffffffffff")


def send(client: FlaskClient, change: Change, ids: dict[str, str], headers: dict[str, str]) -> TestResponse:
    """The change, sent as a browser's form or no-cors fetch would: text/plain when it has a body."""
    path = change.path.format(**ids)
    if change.body is None:
        return client.open(path, method=change.method, headers=headers)
    body = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], json.dumps(change.body))
    content_type = headers.get("Content-Type", "application/json")
    return client.open(path, method=change.method, data=body, headers={**headers, "Content-Type": content_type})


@pytest.fixture
def ids(client: FlaskClient, store: JobStore, redis_client: redis.Redis) -> dict[str, str]:
    return {
        status: job_in(status, client, store, redis_client) for status in ("pending", "active", "completed", "failed")
    }


# -- CSRF ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", CROSS_SITE.values(), ids=CROSS_SITE.keys())
@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_a_change_from_another_origin_is_refused_and_changes_nothing(
    client: FlaskClient, redis_client: redis.Redis, ids: dict[str, str], change: Change, headers: dict[str, str]
) -> None:
    before = redis_state(redis_client)

    response = send(client, change, ids, {**headers, "Content-Type": "text/plain"})

    details = error_details(response, 403, "forbidden_origin")
    assert details["origin"] == headers.get("Origin")
    assert redis_state(redis_client) == before


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-origin-curl"),
        pytest.param({"Origin": "http://localhost"}, id="same-origin"),
        pytest.param({"Origin": "https://localhost"}, id="same-host-behind-tls-proxy"),
        pytest.param({"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"}, id="fetch-site-same-origin"),
        pytest.param({"Sec-Fetch-Site": "none"}, id="fetch-site-none-user-typed"),
    ],
)
@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_a_change_from_the_same_origin_or_no_browser_passes(
    client: FlaskClient, ids: dict[str, str], change: Change, headers: dict[str, str]
) -> None:
    response = send(client, change, ids, headers)

    assert response.status_code in (200, 201, 202, 204), response.get_data(as_text=True)


def test_reads_from_another_origin_are_not_refused(client: FlaskClient, ids: dict[str, str]) -> None:
    cross = {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"}
    for path in ("/api/jobs", f"/api/jobs/{ids['pending']}", "/api/stats", "/api/job-types", "/healthz"):
        assert client.get(path, headers=cross).status_code == 200, path


@pytest.fixture
def elsewhere_client(settings: Settings, redis_client: redis.Redis) -> FlaskClient:
    """An app whose dashboard is also served from DASHBOARD_ELSEWHERE (JOBSTREAM_ALLOWED_ORIGINS)."""
    allowed = Settings.from_env({"JOBSTREAM_ALLOWED_ORIGINS": f"{DASHBOARD_ELSEWHERE}/"}).allowed_origins
    app = create_app({"TESTING": True, "SETTINGS": dataclasses.replace(settings, allowed_origins=allowed)})
    return app.test_client()


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_an_allowed_origin_may_change_state(
    elsewhere_client: FlaskClient, store: JobStore, redis_client: redis.Redis, change: Change
) -> None:
    ids = {s: job_in(s, elsewhere_client, store, redis_client) for s in ("pending", "active", "completed", "failed")}
    allowed = {"Origin": DASHBOARD_ELSEWHERE, "Sec-Fetch-Site": "cross-site"}

    assert send(elsewhere_client, change, ids, allowed).status_code in (200, 201, 202, 204)


def test_an_allowed_origin_lets_no_other_through(elsewhere_client: FlaskClient) -> None:
    for origin in (EVIL, "https://dash.example.com.evil.example", "http://dash.example.com"):
        response = elsewhere_client.post("/api/queue/pause", headers={"Origin": origin})
        error_details(response, 403, "forbidden_origin")


def test_the_origin_is_checked_before_credentials(settings: Settings, redis_client: redis.Redis) -> None:
    """A cross-site change with the right credentials (a browser sends them along) is still refused."""
    app = create_app({"TESTING": True, "SETTINGS": dataclasses.replace(settings, auth=ALICE)})
    before = redis_state(redis_client)
    response = app.test_client().post("/api/queue/pause", headers={**basic_auth(ALICE), "Origin": EVIL})

    error_details(response, 403, "forbidden_origin")
    assert redis_state(redis_client) == before


# -- headers ---------------------------------------------------------------------------------------------------


def csp(response: TestResponse) -> dict[str, list[str]]:
    """The Content-Security-Policy by directive."""
    directives = [part.split() for part in response.headers["Content-Security-Policy"].split(";") if part.strip()]
    return {name: values for name, *values in directives}


@pytest.mark.parametrize("path", PAGES)
def test_the_page_has_a_csp_without_inline_code_and_no_framing(client: FlaskClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 200
    policy = csp(response)
    for directive in ("script-src", "style-src"):
        assert policy[directive] == ["'self'"], policy
    assert policy["default-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert not any("unsafe" in value or value == "*" for values in policy.values() for value in values), policy
    assert response.headers["X-Frame-Options"] == "DENY"


class InlineCode(HTMLParser):
    """Finds what a CSP without 'unsafe-inline' would block: inline scripts (not JSON data blocks, which no
    browser runs) and styles, on* handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        data_block = dict(attrs).get("type") == "application/json"  # never run: the first page's JSON
        if tag == "script" and "src" not in names and not data_block:
            self._in_script = True
        if tag == "style":
            self.found.append("<style>")
        self.found += [f"{tag} {name}=" for name in names if name == "style" or name.startswith("on")]
        self.found += [
            f"{tag} javascript: URL" for _, value in attrs if value and value.strip().startswith("javascript:")
        ]

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append(f"inline script: {data.strip()[:40]}")


def test_the_page_holds_no_inline_script_or_style(client: FlaskClient) -> None:
    parser = InlineCode()
    parser.feed(client.get("/").get_data(as_text=True))

    assert parser.found == []


def everything(client: FlaskClient, ids: dict[str, str]) -> Iterator[tuple[str, TestResponse]]:
    """One response of every kind: page, JSON, JSON errors, text, a static file, the stream."""
    yield "page", client.get("/")
    yield "detail page", client.get(f"/jobs/{ids['pending']}")
    yield "list", client.get("/api/jobs")
    yield "detail", client.get(f"/api/jobs/{ids['pending']}")
    yield "job types", client.get("/api/job-types")
    yield "stats", client.get("/api/stats")
    yield "openapi", client.get("/api/openapi.json")
    yield "healthz", client.get("/healthz")
    yield "metrics", client.get("/metrics")
    yield "created", client.post("/api/jobs", json={"name": "x"})
    yield "canceled", client.post(f"/api/jobs/{ids['pending']}/cancel")
    yield "deleted (no body)", client.delete(f"/api/jobs/{ids['completed']}")
    yield "404", client.get("/api/nope")
    yield "405", client.put("/api/jobs")
    yield "409", client.post(f"/api/jobs/{ids['active']}/retry")
    yield "422", client.get("/api/jobs?limit=0")
    yield "403", client.post("/api/queue/pause", headers={"Origin": EVIL})
    yield "static", client.get("/static/app.js")
    stream = client.get("/api/jobs/stream", buffered=False)
    try:
        yield "stream", stream
    finally:
        stream.close()


def test_every_response_carries_nosniff_and_referrer_policy(client: FlaskClient, ids: dict[str, str]) -> None:
    for kind, response in everything(client, ids):
        assert response.headers.get("X-Content-Type-Options") == "nosniff", kind
        assert response.headers.get("Referrer-Policy") == "same-origin", kind


def test_json_is_never_stored_by_caches(client: FlaskClient, ids: dict[str, str]) -> None:
    kinds = set()
    for kind, response in everything(client, ids):
        if response.mimetype == "application/json":
            kinds.add(kind)
            assert response.headers.get("Cache-Control") == "no-store", kind
    assert {"list", "detail", "stats", "openapi", "404", "403", "422"} <= kinds


def test_the_stream_is_neither_cached_nor_transformed(client: FlaskClient) -> None:
    response = client.get("/api/jobs/stream", buffered=False)
    try:
        assert response.status_code == 200
        assert response.mimetype == "text/event-stream"
        assert response.headers["Cache-Control"] == "no-cache, no-transform"
        assert response.headers["X-Accel-Buffering"] == "no"
    finally:
        response.close()


def test_the_auth_prompt_and_401_carry_the_safe_headers(settings: Settings, redis_client: redis.Redis) -> None:
    app = create_app({"TESTING": True, "SETTINGS": dataclasses.replace(settings, auth=ALICE)})
    response = app.test_client().get("/api/jobs")

    error_details(response, 401, "unauthorized")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


# -- roles -----------------------------------------------------------------------------------------------------


@pytest.fixture
def roles_app(settings: Settings, redis_client: redis.Redis) -> Flask:
    """JOBSTREAM_AUTH with two users, JOBSTREAM_VIEWER_AUTH with one."""
    env = {"JOBSTREAM_AUTH": f"{ALICE},{BOB}", "JOBSTREAM_VIEWER_AUTH": EVE}
    configured = Settings.from_env(env)
    roles = dataclasses.replace(settings, auth=configured.auth, viewer_auth=configured.viewer_auth)
    return create_app({"TESTING": True, "SETTINGS": roles})


@pytest.fixture
def roles_client(roles_app: Flask) -> FlaskClient:
    return roles_app.test_client()


@pytest.fixture
def roles_ids(roles_app: Flask, roles_client: FlaskClient, redis_client: redis.Redis) -> dict[str, str]:
    """A job of each status, made through an admin user's requests."""
    store = roles_app.extensions["jobstream"].store
    authed = AuthedClient(roles_client, ALICE)
    return {s: job_in(s, authed, store, redis_client) for s in ("pending", "active", "completed", "failed")}


class AuthedClient:
    """A test client that sends one user's credentials with every request (what job_in needs of a client)."""

    def __init__(self, client: FlaskClient, credentials: str) -> None:
        self.client = client
        self.headers = basic_auth(credentials)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.post(path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)


@pytest.mark.parametrize("user", [ALICE, BOB])
def test_every_configured_user_may_read_and_change(roles_client: FlaskClient, user: str) -> None:
    auth = basic_auth(user)

    assert roles_client.get("/api/jobs", headers=auth).status_code == 200
    created = roles_client.post("/api/jobs", json={"name": "by a user"}, headers=auth)
    assert created.status_code == 201, created.get_json()
    assert roles_client.post(f"/api/jobs/{created.get_json()['job']['id']}/cancel", headers=auth).status_code == 200


@pytest.mark.parametrize(
    "credentials",
    ["alice:b-pass", "bob:a-pass", "alice:", "eve:a-pass", "mallory:a-pass", "alice:a-pass,bob:b-pass", "alice"],
)
def test_one_users_password_opens_no_other_account(roles_client: FlaskClient, credentials: str) -> None:
    error_details(roles_client.get("/api/jobs", headers=basic_auth(credentials)), 401, "unauthorized")


def test_a_viewer_reads_everything(roles_client: FlaskClient, roles_ids: dict[str, str]) -> None:
    auth = basic_auth(EVE)
    for path in (
        "/",
        f"/jobs/{roles_ids['pending']}",
        "/api/jobs",
        "/api/jobs?status=failed",
        f"/api/jobs/{roles_ids['failed']}",
        "/api/job-types",
        "/api/stats",
        "/api/openapi.json",
    ):
        assert roles_client.get(path, headers=auth).status_code == 200, path
    assert 'data-can-change="false"' in roles_client.get("/", headers=auth).get_data(as_text=True)
    assert 'data-can-change="true"' in roles_client.get("/", headers=basic_auth(ALICE)).get_data(as_text=True)
    stream = roles_client.get("/api/jobs/stream", headers=auth, buffered=False)
    try:
        assert stream.status_code == 200 and stream.mimetype == "text/event-stream"
    finally:
        stream.close()


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_a_viewer_may_change_nothing(
    roles_client: FlaskClient, redis_client: redis.Redis, roles_ids: dict[str, str], change: Change
) -> None:
    before = redis_state(redis_client)

    response = send(roles_client, change, roles_ids, basic_auth(EVE))

    assert error_details(response, 403, "forbidden") == {"user": "eve"}
    assert redis_state(redis_client) == before


def test_the_acting_user_is_named_in_the_jobs_log(
    roles_client: FlaskClient, roles_ids: dict[str, str], redis_client: redis.Redis
) -> None:
    def logs(job_id: str) -> list[str]:
        return roles_client.get(f"/api/jobs/{job_id}", headers=basic_auth(EVE)).get_json()["job"]["logs"]

    assert roles_client.post(f"/api/jobs/{roles_ids['pending']}/cancel", headers=basic_auth(ALICE)).status_code == 200
    assert roles_client.post(f"/api/jobs/{roles_ids['active']}/cancel", headers=basic_auth(BOB)).status_code == 202
    assert roles_client.post(f"/api/jobs/{roles_ids['failed']}/retry", headers=basic_auth(BOB)).status_code == 202
    other = create(AuthedClient(roles_client, ALICE), "canceled in bulk")
    bulk = roles_client.post("/api/jobs/cancel", json={"ids": [other["id"]]}, headers=basic_auth(ALICE))
    assert bulk.get_json()["results"][0]["outcome"] == "canceled"

    assert any(line.endswith("canceled before it ran by alice") for line in logs(roles_ids["pending"]))
    assert any(line.endswith("cancel requested by bob") for line in logs(roles_ids["active"]))
    assert any("retry by bob: attempt 2" in line for line in logs(roles_ids["failed"]))
    assert any(line.endswith("canceled before it ran by alice") for line in logs(other["id"]))
    assert not any(" by " in line for line in logs(roles_ids["completed"]))  # nobody acted on it

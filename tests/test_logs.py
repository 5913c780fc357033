"""Logs: the request id (honoured, generated, echoed in errors), one JSON line per request and per job event
from gunicorn and the pool with JOBSTREAM_LOG_FORMAT=json, and the start-up warning about a Redis that would
lose jobs by itself (once per server, once per pool)."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app import create_app
from jobs.config import Settings
from jobs.telemetry.health import risks
from jobs.telemetry.logs import JsonFormatter
from scripts.harness import RedisServer, Service, free_port, request, start_pool, start_web, wait_until
from tests.api_helpers import basic_auth, error_details
from tests.bounds import EVENT_SECONDS, JOB_SECONDS, START_SECONDS

JSON = "application/json"
RISKY = ("--maxmemory", "10mb", "--maxmemory-policy", "allkeys-lru", "--appendonly", "no", "--save", "")


# -- the request id, in-process -------------------------------------------------------------------------


def test_a_sane_request_id_is_honoured_and_echoed(client: FlaskClient) -> None:
    response = client.get("/api/jobs", headers={"X-Request-ID": "edge-7f3a:01/x"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "edge-7f3a:01/x"
    longest = "r" * 200
    assert client.get("/api/jobs", headers={"X-Request-ID": longest}).headers["X-Request-ID"] == longest


@pytest.mark.parametrize("given", [None, "", "r" * 201, "has space", "tab\tin", "caf\u00e9", "quote\x7f"])
def test_a_missing_or_insane_request_id_is_replaced_by_a_new_one(client: FlaskClient, given: str | None) -> None:
    headers = {} if given is None else {"X-Request-ID": given}
    first = client.get("/healthz", headers=headers).headers["X-Request-ID"]
    second = client.get("/healthz", headers=headers).headers["X-Request-ID"]
    assert first != given and len(first) == 32 and int(first, 16) >= 0
    assert second != first


def test_error_bodies_carry_the_request_id(client: FlaskClient) -> None:
    response = client.get("/api/jobs/" + "0" * 21, headers={"X-Request-ID": "trace-404"})
    assert response.status_code == 404
    assert response.get_json()["error"]["request_id"] == "trace-404"
    response = client.post("/api/jobs", json={"name": ""})
    assert response.status_code == 422
    assert response.get_json()["error"]["request_id"] == response.headers["X-Request-ID"]


def test_a_request_refused_before_its_view_has_an_id_too(settings: Settings, redis_client: Any) -> None:
    guarded = create_app({"TESTING": True, "SETTINGS": Settings(redis_url=settings.redis_url, auth="a:b")})
    client = guarded.test_client()
    response = client.get("/api/jobs", headers={"X-Request-ID": "who-are-you"})
    assert response.status_code == 401
    assert response.get_json()["error"]["request_id"] == "who-are-you" == response.headers["X-Request-ID"]
    origin = {"Origin": "http://evil.example", "X-Request-ID": "csrf-1", **basic_auth("a:b")}
    response = client.post("/api/queue/pause", headers=origin)
    assert response.status_code == 403
    assert response.get_json()["error"]["request_id"] == "csrf-1"


def guarded_client(settings: Settings) -> FlaskClient:
    """A client of an app with an admin (a:b) and a viewer (v:w)."""
    guarded = Settings(redis_url=settings.redis_url, auth="a:b", viewer_auth="v:w")
    return create_app({"TESTING": True, "SETTINGS": guarded}).test_client()


def failing_client(settings: Settings) -> FlaskClient:
    """A client of an app not in TESTING (so an exception is not re-raised) with a view that raises."""
    app = create_app({"SETTINGS": settings})

    def boom() -> None:
        raise RuntimeError("boom")

    app.add_url_rule("/api/boom", "boom", boom)
    return app.test_client()


def dead_redis_client() -> FlaskClient:
    """A client of an app whose Redis is a free port with nothing listening."""
    dead = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    return create_app({"TESTING": True, "SETTINGS": dead}).test_client()


def retry_pending(client: FlaskClient, headers: dict[str, str]) -> TestResponse:
    """A 409: a pending job cannot be retried."""
    job_id = client.post("/api/jobs", json={"name": "x"}).get_json()["job"]["id"]
    return client.post(f"/api/jobs/{job_id}/retry", headers=headers)


REFUSALS: dict[str, tuple[int, str, Callable[[FlaskClient, Settings, dict[str, str]], TestResponse]]] = {
    "400": (400, "bad_request", lambda c, s, h: c.post("/api/jobs", data="{", content_type=JSON, headers=h)),
    "401": (401, "unauthorized", lambda c, s, h: guarded_client(s).get("/api/jobs", headers=h)),
    "403-viewer": (
        403,
        "forbidden",
        lambda c, s, h: guarded_client(s).post("/api/queue/pause", headers={**h, **basic_auth("v:w")}),
    ),
    "403-origin": (
        403,
        "forbidden_origin",
        lambda c, s, h: c.post("/api/queue/pause", headers={**h, "Origin": "http://evil.example"}),
    ),
    "404-path": (404, "not_found", lambda c, s, h: c.get("/api/nope", headers=h)),
    "404-job": (404, "not_found", lambda c, s, h: c.get("/api/jobs/" + "0" * 21, headers=h)),
    "405": (405, "method_not_allowed", lambda c, s, h: c.put("/api/jobs", headers=h)),
    "409": (409, "conflict", lambda c, s, h: retry_pending(c, h)),
    "413": (
        413,
        "payload_too_large",
        lambda c, s, h: c.post("/api/jobs", data="x" * (2 << 20), content_type=JSON, headers=h),
    ),
    "415": (415, "unsupported_media_type", lambda c, s, h: c.post("/api/jobs", data="{}", headers=h)),
    "422": (422, "validation_error", lambda c, s, h: c.post("/api/jobs", json={"name": ""}, headers=h)),
    "500": (500, "internal_error", lambda c, s, h: failing_client(s).get("/api/boom", headers=h)),
    "503": (503, "redis_unavailable", lambda c, s, h: dead_redis_client().get("/api/jobs", headers=h)),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_every_error_body_carries_the_request_id(client: FlaskClient, settings: Settings, case: str) -> None:
    """SPEC's one error shape, with the id the request's log line names, for every way a request fails."""
    status, code, send = REFUSALS[case]
    response = send(client, settings, {"X-Request-ID": f"trace-{case}"})
    error_details(response, status, code)
    assert response.get_json()["error"]["request_id"] == f"trace-{case}" == response.headers["X-Request-ID"]


def test_the_json_formatter_keeps_the_extra_fields_and_the_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "job %s failed", ("j1",), exc_info)
    record.job_id = "j1"  # as `extra=` puts it
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "job j1 failed" and line["job_id"] == "j1" and line["level"] == "ERROR"
    assert line["time"].endswith("Z") and "ValueError: boom" in line["exception"]


# -- the start-up check, in-process -----------------------------------------------------------------------


def test_a_safe_redis_has_no_risks(private_redis: RedisServer) -> None:
    assert risks(private_redis.client()) == []  # appendonly yes, no maxmemory


def test_a_redis_without_config_is_checked_as_far_as_it_can_be(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", options=(*RISKY, "--rename-command", "CONFIG", "")).start()
    try:
        assert risks(server.client()) == []  # eviction and save points unknown: nothing said, nothing raised
    finally:
        server.stop()


# -- gunicorn and the pool, JSON lines, a risky Redis -----------------------------------------------------


@dataclass
class Risky:
    """A Redis that evicts and persists nothing, gunicorn with two workers and a one-worker pool, logging JSON."""

    pool: Service
    web: Service
    base: str


@pytest.fixture(scope="module")
def risky(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Risky]:
    workdir = tmp_path_factory.mktemp("risky")
    env = {"JOBSTREAM_LOG_FORMAT": "json"}
    with contextlib.ExitStack() as started:  # stops what started, in reverse, even when a later start fails
        redis_server = RedisServer(workdir / "redis", options=RISKY).start()
        started.callback(redis_server.stop)
        pool = start_pool(redis_server.url, workdir / "logs", JOBSTREAM_CONCURRENCY="1", **env)
        started.callback(pool.stop)
        web, base = start_web(redis_server.url, workdir / "logs", WEB_CONCURRENCY="2", **env)
        started.callback(web.stop)
        yield Risky(pool, web, base)


def json_lines(service: Service) -> list[dict[str, Any]]:
    """Every whole line of a service's output, each parsed as JSON (a line that is not JSON fails the test);
    a last line without its newline, which the service is still writing, is left out."""
    *whole, _ = service.output().split("\n")
    return [json.loads(line) for line in whole if line.strip()]


def test_every_line_of_gunicorn_and_the_pool_is_json_with_requests_and_job_events(risky: Risky) -> None:
    body = {"name": "logged", "type": "demo.sleep", "params": {"seconds": 0}}
    status, data, headers = request(risky.base, "POST", "/api/jobs", body, {"X-Request-ID": "create-1"})
    assert status == 201 and headers["X-Request-ID"] == "create-1"
    job_id = data["job"]["id"]
    request(risky.base, "GET", f"/api/jobs/{job_id}", headers={"X-Request-ID": "read-1"})

    def events(service: Service, event: str) -> list[dict[str, Any]]:
        return [line for line in json_lines(service) if line.get("event") == event and line["job_id"] == job_id]

    wait_until(lambda: events(risky.pool, "ended"), JOB_SECONDS, "the job's end in the pool's log")
    wait_until(
        lambda: [line for line in json_lines(risky.web) if line.get("request_id") == "read-1"],
        EVENT_SECONDS,
        "the read's request line",
    )
    web = json_lines(risky.web)
    assert {"time", "level", "logger", "pid", "message"} <= set(web[0])  # the master's first line too
    (create_line,) = [line for line in web if line.get("request_id") == "create-1" and "method" in line]
    assert create_line["method"] == "POST" and create_line["path"] == "/api/jobs" and create_line["status"] == 201
    assert create_line["duration_ms"] >= 0 and create_line["logger"] == "jobstream.http"
    (created,) = events(risky.web, "created")  # told by the web process that created it, with its request's id
    assert created["job_type"] == "demo.sleep" and created["request_id"] == "create-1"
    (started,) = events(risky.pool, "started")
    (ended,) = events(risky.pool, "ended")
    assert started["job_status"] == "active" and started["wait_seconds"] >= 0
    assert ended["job_status"] == "completed" and ended["job_type"] == "demo.sleep" and ended["duration_seconds"] >= 0
    assert not [line for line in web if line["logger"] == "gunicorn.access"]  # one line per request, not two


def test_the_risky_redis_is_warned_about_once_by_the_server_and_once_by_the_pool(risky: Risky) -> None:
    answered: set[int] = set()

    def both_workers_answered() -> bool:  # then both have run post_worker_init, where the first one warns
        answered.add(request(risky.base, "GET", "/api/stats")[1]["streams"]["pid"])
        return len(answered) == 2

    wait_until(both_workers_answered, START_SECONDS, "both web workers to answer")
    for service in (risky.web, risky.pool):
        warnings = [line for line in json_lines(service) if line["logger"] == "jobstream.redis"]
        assert [w["level"] for w in warnings] == ["WARNING", "WARNING"], service.name
        evicts, volatile = (w["message"] for w in warnings)
        assert "maxmemory-policy allkeys-lru" in evicts and "noeviction" in evicts
        assert "persistence off" in volatile and "appendonly yes" in volatile

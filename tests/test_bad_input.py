"""A table of bad requests: each gets the right 4xx in SPEC's error shape, never a 5xx, and leaves Redis as it was.

Redis is compared whole: every key with its type, its value (DUMP, which serializes every type exactly, a
stream's entries and last id included) and whether it expires. Only a key's remaining time to live is left
out, as the one thing that changes by itself between two reads.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from app import create_app
from jobs.config import Settings
from scripts.harness import RedisServer
from tests.api_helpers import UNKNOWN_ID, create, error_details, job_in, redis_state

JSON = "application/json"
USED_KEY = "used-key-1"
MB = 1024 * 1024
# An id of each status, and of one more pending job made with USED_KEY; paths name them as {pending} etc.
STATUSES = ("pending", "active", "completed", "failed", "canceled")
MALFORMED_IDS = ("xyz", "ABCDEF012345", "a" * 41, "0123456789a-", "%00" * 12, "..")


@dataclasses.dataclass(frozen=True)
class Bad:
    """One bad request and the answer it must get."""

    method: str
    path: str
    status: int
    code: str
    json: Any = dataclasses.field(default=None)
    data: bytes | str | None = None
    content_type: str | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    field: str | None = None  # a key that details must name
    allow: frozenset[str] = frozenset()  # for a 405: methods that Allow must list


def create_body(**fields: Any) -> dict[str, Any]:
    return {"name": "a job", **fields}


def bad_create(field: str, /, **body: Any) -> Bad:
    """A create that details refuse by `field` (positional: a body may have a field named `status`)."""
    return Bad("POST", "/api/jobs", 422, "validation_error", json=body, field=field)


def bad_body(path: str, data: bytes | str, content_type: str | None, status: int, code: str) -> Bad:
    return Bad("POST", path, status, code, data=data, content_type=content_type)


def wrong_method(method: str, path: str, *allowed: str) -> Bad:
    return Bad(method, path, 405, "method_not_allowed", allow=frozenset(allowed))


def conflict(method: str, path: str) -> Bad:
    return Bad(method, path, 409, "conflict", field="status")


def not_found(method: str, path: str) -> Bad:
    return Bad(method, path, 404, "not_found")


def bad_query(path: str, field: str) -> Bad:
    return Bad("GET", path, 422, "validation_error", field=field)


JOB_ROUTES = (("GET", ""), ("DELETE", ""), ("POST", "/cancel"), ("POST", "/retry"))

TABLE: dict[str, Bad] = {
    # -- the body itself: not JSON, not an object, not sent as JSON, too big ----------------------------------
    "create-malformed-json": bad_body("/api/jobs", '{"name": ', JSON, 400, "bad_request"),
    "create-trailing-comma": bad_body("/api/jobs", '{"name": "x",}', JSON, 400, "bad_request"),
    "create-single-quotes": bad_body("/api/jobs", "{'name': 'x'}", JSON, 400, "bad_request"),
    "create-not-utf8": bad_body("/api/jobs", b'{"name": "\xff\xfe"}', JSON, 400, "bad_request"),
    "create-lone-surrogate": bad_body("/api/jobs", '{"name": "\\ud800"}', JSON, 400, "bad_request"),
    "create-array": bad_body("/api/jobs", '[{"name": "x"}]', JSON, 400, "bad_request"),
    "create-string": bad_body("/api/jobs", '"x"', JSON, 400, "bad_request"),
    "create-null": bad_body("/api/jobs", "null", JSON, 400, "bad_request"),
    "create-number": bad_body("/api/jobs", "42", JSON, 400, "bad_request"),
    "create-empty-json-body": bad_body("/api/jobs", "", JSON, 400, "bad_request"),
    "create-text-plain": bad_body("/api/jobs", '{"name": "x"}', "text/plain", 415, "unsupported_media_type"),
    "create-form": bad_body("/api/jobs", "name=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    "create-no-content-type": bad_body("/api/jobs", '{"name": "x"}', None, 415, "unsupported_media_type"),
    "create-empty-no-content-type": bad_body("/api/jobs", "", None, 415, "unsupported_media_type"),
    "create-over-1mb": bad_body("/api/jobs", '{"name": "' + "x" * MB + '"}', JSON, 413, "payload_too_large"),
    # -- name -------------------------------------------------------------------------------------------------
    "name-missing": Bad("POST", "/api/jobs", 422, "validation_error", json={"type": "demo.sleep"}, field="name"),
    "name-empty": bad_create("name", name=""),
    "name-blank": bad_create("name", name=" \t\n\u3000"),
    "name-too-long": bad_create("name", name="x" * 201),
    "name-number": bad_create("name", name=123),
    "name-null": bad_create("name", name=None),
    "name-list": bad_create("name", name=["x"]),
    "name-object": bad_create("name", name={"first": "x"}),
    # -- unknown and server-owned fields ----------------------------------------------------------------------
    "unknown-field": bad_create("color", **create_body(color="red")),
    "server-owned-id": bad_create("id", **create_body(id="ffffffffffffffff")),
    "server-owned-status": bad_create("status", **create_body(status="completed")),
    "server-owned-attempts": bad_create("attempts", **create_body(attempts=3)),
    # -- type -------------------------------------------------------------------------------------------------
    "type-unknown": bad_create("type", **create_body(type="no.such_type")),
    "type-dotted-path": bad_create("type", **create_body(type="jobs.demo.web_agent")),
    "type-empty": bad_create("type", **create_body(type="")),
    "type-null": bad_create("type", **create_body(type=None)),
    "type-number": bad_create("type", **create_body(type=5)),
    # -- params, by the type's own schema ---------------------------------------------------------------------
    "params-not-object": bad_create("params", **create_body(params="steps=3")),
    "params-list": bad_create("params", **create_body(params=[3])),
    "params-null": bad_create("params", **create_body(params=None)),
    "params-unknown-key": bad_create("params", **create_body(params={"stepz": 3})),
    "params-other-types-key": bad_create("params", **create_body(type="demo.sleep", params={"steps": 3})),
    "params-steps-zero": bad_create("params", **create_body(params={"steps": 0})),
    "params-steps-over": bad_create("params", **create_body(params={"steps": 1001})),
    "params-steps-string": bad_create("params", **create_body(params={"steps": "ten"})),
    "params-steps-numeric-string": bad_create("params", **create_body(params={"steps": "10"})),
    "params-steps-fraction": bad_create("params", **create_body(params={"steps": 2.5})),
    "params-steps-bool": bad_create("params", **create_body(params={"steps": True})),
    "params-fail-rate-over": bad_create("params", **create_body(params={"fail_rate": 1.5})),
    "params-step-seconds-negative": bad_create("params", **create_body(params={"step_seconds": -1})),
    "params-sleep-over": bad_create("params", **create_body(type="demo.sleep", params={"seconds": 3601})),
    "params-primes-under": bad_create("params", **create_body(type="demo.primes", params={"limit": 1})),
    "params-nan": bad_body(
        "/api/jobs", '{"name": "x", "params": {"step_seconds": NaN}}', JSON, 422, "validation_error"
    ),
    # -- timeout_seconds, priority ----------------------------------------------------------------------------
    "timeout-zero": bad_create("timeout_seconds", **create_body(timeout_seconds=0)),
    "timeout-over-a-day": bad_create("timeout_seconds", **create_body(timeout_seconds=86401)),
    "timeout-string": bad_create("timeout_seconds", **create_body(timeout_seconds="60")),
    "priority-unknown": bad_create("priority", **create_body(priority="urgent")),
    "priority-uppercase": bad_create("priority", **create_body(priority="HIGH")),
    "priority-number": bad_create("priority", **create_body(priority=1)),
    # -- delay_seconds, run_at --------------------------------------------------------------------------------
    "delay-negative": bad_create("delay_seconds", **create_body(delay_seconds=-1)),
    "delay-over-a-year": bad_create("delay_seconds", **create_body(delay_seconds=366 * 86400)),
    "delay-string": bad_create("delay_seconds", **create_body(delay_seconds="10")),
    "delay-infinity": bad_body("/api/jobs", '{"name": "x", "delay_seconds": Infinity}', JSON, 422, "validation_error"),
    "run-at-over-a-year": bad_create("run_at", **create_body(run_at="2999-01-01T00:00:00Z")),
    "run-at-not-iso": bad_create("run_at", **create_body(run_at="next tuesday")),
    "run-at-no-timezone": bad_create("run_at", **create_body(run_at="2030-01-01T00:00:00")),
    "run-at-impossible-date": bad_create("run_at", **create_body(run_at="2030-02-30T00:00:00Z")),
    "run-at-number": bad_create("run_at", **create_body(run_at=1893456000)),
    "run-at-and-delay": bad_create("run_at", **create_body(delay_seconds=10, run_at="2030-01-01T00:00:00Z")),
    # -- max_attempts, backoff --------------------------------------------------------------------------------
    "max-attempts-zero": bad_create("max_attempts", **create_body(max_attempts=0)),
    "max-attempts-101": bad_create("max_attempts", **create_body(max_attempts=101)),
    "max-attempts-string": bad_create("max_attempts", **create_body(max_attempts="three")),
    "max-attempts-numeric-string": bad_create("max_attempts", **create_body(max_attempts="3")),
    "backoff-not-object": bad_create("backoff", **create_body(backoff="exponential")),
    "backoff-type-unknown": bad_create("backoff", **create_body(backoff={"type": "linear"})),
    "backoff-delay-negative": bad_create("backoff", **create_body(backoff={"delay_seconds": -1})),
    "backoff-delay-over-a-week": bad_create("backoff", **create_body(backoff={"delay_seconds": 8 * 86400})),
    "backoff-max-under-delay": bad_create(
        "backoff", **create_body(backoff={"delay_seconds": 10, "max_delay_seconds": 5})
    ),
    "backoff-max-under-default-delay": bad_create("backoff", **create_body(backoff={"max_delay_seconds": 0.5})),
    "backoff-unknown-field": bad_create("backoff", **create_body(backoff={"factor": 2})),
    "backoff-jitter-string": bad_create("backoff", **create_body(backoff={"jitter": "yes"})),
    # -- Idempotency-Key ----------------------------------------------------------------------------------
    "key-empty": Bad("POST", "/api/jobs", 422, "validation_error", json=create_body(), headers={"Idempotency-Key": ""}),
    "key-non-ascii": Bad(
        "POST", "/api/jobs", 422, "validation_error", json=create_body(), headers={"Idempotency-Key": "clé-1"}
    ),
    "key-space": Bad(
        "POST", "/api/jobs", 422, "validation_error", json=create_body(), headers={"Idempotency-Key": "a b"}
    ),
    "key-too-long": Bad(
        "POST", "/api/jobs", 422, "validation_error", json=create_body(), headers={"Idempotency-Key": "k" * 256}
    ),
    "key-reused-for-another-body": Bad(
        "POST",
        "/api/jobs",
        409,
        "idempotency_conflict",
        json={"name": "not the first body"},
        headers={"Idempotency-Key": USED_KEY},
    ),
    # -- GET /api/jobs: limit, cursor, status, q --------------------------------------------------------------
    "limit-zero": bad_query("/api/jobs?limit=0", "limit"),
    "limit-over": bad_query("/api/jobs?limit=201", "limit"),
    "limit-negative": bad_query("/api/jobs?limit=-1", "limit"),
    "limit-word": bad_query("/api/jobs?limit=ten", "limit"),
    "limit-fraction": bad_query("/api/jobs?limit=1.5", "limit"),
    "limit-empty": bad_query("/api/jobs?limit=", "limit"),
    "cursor-empty": bad_query("/api/jobs?cursor=", "cursor"),
    "cursor-not-an-id": bad_query("/api/jobs?cursor=page-2", "cursor"),
    "cursor-uppercase": bad_query("/api/jobs?cursor=FFFFFFFFFFFFFFFF", "cursor"),
    "status-empty": bad_query("/api/jobs?status=", "status"),
    "status-unknown": bad_query("/api/jobs?status=done", "status"),
    "status-rq-state": bad_query("/api/jobs?status=queued", "status"),
    "status-uppercase": bad_query("/api/jobs?status=PENDING", "status"),
    "q-too-long": bad_query("/api/jobs?q=" + "x" * 201, "q"),
    "list-unknown-parameter": bad_query("/api/jobs?sort=name", "sort"),
    "stream-job-not-an-id": bad_query("/api/jobs/stream?job=nope", "job"),
    "stream-last-event-id-too-long": bad_query("/api/jobs/stream?last_event_id=" + "1" * 65, "last_event_id"),
    # -- ids that do not exist or are no ids, on every job route ----------------------------------------------
    **{
        f"unknown-id-{method.lower()}{suffix.replace('/', '-')}": not_found(method, f"/api/jobs/{UNKNOWN_ID}{suffix}")
        for method, suffix in JOB_ROUTES
    },
    **{
        f"malformed-id-{i}-{method.lower()}{suffix.replace('/', '-')}": not_found(method, f"/api/jobs/{bad_id}{suffix}")
        for i, bad_id in enumerate(MALFORMED_IDS)
        for method, suffix in JOB_ROUTES
    },
    "unknown-job-subroute": not_found("POST", "/api/jobs/{pending}/pause"),
    # -- every illegal transition -----------------------------------------------------------------------------
    "cancel-completed": conflict("POST", "/api/jobs/{completed}/cancel"),
    "cancel-failed": conflict("POST", "/api/jobs/{failed}/cancel"),
    "cancel-canceled": conflict("POST", "/api/jobs/{canceled}/cancel"),
    "retry-pending": conflict("POST", "/api/jobs/{pending}/retry"),
    "retry-active": conflict("POST", "/api/jobs/{active}/retry"),
    "retry-completed": conflict("POST", "/api/jobs/{completed}/retry"),
    "delete-active": conflict("DELETE", "/api/jobs/{active}"),
    # -- bulk cancel and clean --------------------------------------------------------------------------------
    "bulk-cancel-no-ids": Bad("POST", "/api/jobs/cancel", 422, "validation_error", json={}, field="ids"),
    "bulk-cancel-empty-ids": Bad("POST", "/api/jobs/cancel", 422, "validation_error", json={"ids": []}, field="ids"),
    "bulk-cancel-ids-string": Bad(
        "POST", "/api/jobs/cancel", 422, "validation_error", json={"ids": "{pending}"}, field="ids"
    ),
    "bulk-cancel-id-number": Bad("POST", "/api/jobs/cancel", 422, "validation_error", json={"ids": [1]}, field="ids"),
    "bulk-cancel-id-empty": Bad("POST", "/api/jobs/cancel", 422, "validation_error", json={"ids": [""]}, field="ids"),
    "bulk-cancel-too-many": Bad(
        "POST", "/api/jobs/cancel", 422, "validation_error", json={"ids": [UNKNOWN_ID] * 1001}, field="ids"
    ),
    "bulk-cancel-unknown-field": Bad(
        "POST", "/api/jobs/cancel", 422, "validation_error", json={"ids": ["{pending}"], "force": True}, field="force"
    ),
    "bulk-cancel-text-plain": bad_body("/api/jobs/cancel", '{"ids": []}', "text/plain", 415, "unsupported_media_type"),
    "bulk-cancel-malformed": bad_body("/api/jobs/cancel", '{"ids": [', JSON, 400, "bad_request"),
    "clean-pending": Bad(
        "POST", "/api/jobs/clean", 422, "validation_error", json={"status": "pending"}, field="status"
    ),
    "clean-active": Bad("POST", "/api/jobs/clean", 422, "validation_error", json={"status": "active"}, field="status"),
    "clean-negative-age": Bad(
        "POST", "/api/jobs/clean", 422, "validation_error", json={"older_than_seconds": -1}, field="older_than_seconds"
    ),
    "clean-age-string": Bad(
        "POST",
        "/api/jobs/clean",
        422,
        "validation_error",
        json={"older_than_seconds": "60"},
        field="older_than_seconds",
    ),
    "clean-unknown-field": Bad("POST", "/api/jobs/clean", 422, "validation_error", json={"all": True}, field="all"),
    "clean-no-body": Bad("POST", "/api/jobs/clean", 415, "unsupported_media_type"),
    # -- wrong methods ----------------------------------------------------------------------------------------
    "put-jobs": wrong_method("PUT", "/api/jobs", "GET", "POST"),
    "delete-jobs": wrong_method("DELETE", "/api/jobs", "GET", "POST"),
    "patch-job": wrong_method("PATCH", "/api/jobs/{pending}", "GET", "DELETE"),
    "put-job": wrong_method("PUT", "/api/jobs/{pending}", "GET", "DELETE"),
    "post-job": wrong_method("POST", "/api/jobs/{pending}", "GET", "DELETE"),
    "get-cancel": wrong_method("GET", "/api/jobs/{pending}/cancel", "POST"),
    "delete-cancel": wrong_method("DELETE", "/api/jobs/{pending}/cancel", "POST"),
    "get-retry": wrong_method("GET", "/api/jobs/{failed}/retry", "POST"),
    "get-bulk-cancel": wrong_method("GET", "/api/jobs/cancel", "POST"),
    "delete-bulk-cancel": wrong_method("DELETE", "/api/jobs/cancel", "POST"),
    "get-clean": wrong_method("GET", "/api/jobs/clean", "POST"),
    "post-stream": wrong_method("POST", "/api/jobs/stream", "GET"),
    "delete-stream": wrong_method("DELETE", "/api/jobs/stream", "GET"),
    "get-pause": wrong_method("GET", "/api/queue/pause", "POST"),
    "delete-resume": wrong_method("DELETE", "/api/queue/resume", "POST"),
    "post-stats": wrong_method("POST", "/api/stats", "GET"),
    "post-job-types": wrong_method("POST", "/api/job-types", "GET"),
    "put-openapi": wrong_method("PUT", "/api/openapi.json", "GET"),
    "post-healthz": wrong_method("POST", "/healthz", "GET"),
}


@dataclasses.dataclass(frozen=True)
class Seeded:
    client: FlaskClient
    redis: redis.Redis
    ids: dict[str, str]


@pytest.fixture(scope="module")
def seeded(redis_server: RedisServer) -> Seeded:
    """One app for the whole table, on a Redis with a job in every status and one created with USED_KEY.

    Shared by every row: each row asserts that it leaves the state as it found it, so a row that did not
    would fail itself, and the rows after it still compare their own before and after."""
    client_of_redis = redis_server.client()
    client_of_redis.flushall()
    settings = Settings(redis_url=redis_server.url, heartbeat_seconds=1, replay_events=1000)
    app = create_app({"TESTING": True, "SETTINGS": settings})
    client = app.test_client()
    store = app.extensions["jobstream"].store
    made = {status: job_in(status, client, store, client_of_redis) for status in STATUSES}
    keyed = client.post("/api/jobs", json={"name": "the first body"}, headers={"Idempotency-Key": USED_KEY})
    assert keyed.status_code == 201, keyed.get_json()
    return Seeded(client, client_of_redis, made)


def test_the_table_is_big_enough() -> None:
    assert len(TABLE) >= 50


@pytest.mark.parametrize("bad", TABLE.values(), ids=TABLE.keys())
def test_bad_request_is_refused_and_changes_nothing(bad: Bad, seeded: Seeded) -> None:
    path = bad.path.format(**seeded.ids)
    body = _with_ids(bad.json, seeded.ids)
    before = redis_state(seeded.redis)

    kwargs: dict[str, Any] = {"headers": bad.headers}
    if body is not None:
        kwargs["json"] = body
    elif bad.data is not None:
        kwargs["data"] = bad.data
        kwargs["content_type"] = bad.content_type
    response = seeded.client.open(path, method=bad.method, **kwargs)

    details = error_details(response, bad.status, bad.code)
    if bad.field is not None:
        assert bad.field in details, details
    if bad.allow:
        assert bad.allow <= {m.strip() for m in response.headers["Allow"].split(",")}, response.headers["Allow"]
    assert redis_state(seeded.redis) == before


def test_the_same_requests_done_right_change_state(seeded: Seeded) -> None:
    """The comparison can fail: a good create and a good cancel change what the dump shows (the table's last
    test, as it changes the shared state)."""
    before = redis_state(seeded.redis)
    job = create(seeded.client, "a good one")
    after_create = redis_state(seeded.redis)
    assert after_create != before
    assert seeded.client.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
    assert redis_state(seeded.redis) != after_create


def _with_ids(body: Any, ids: dict[str, str]) -> Any:
    """The body with "{pending}" and the like replaced by the ids of the seeded jobs."""
    if isinstance(body, str) and body.startswith("{") and body.endswith("}") and body[1:-1] in ids:
        return ids[body[1:-1]]
    if isinstance(body, list):
        return [_with_ids(item, ids) for item in body]
    if isinstance(body, dict):
        return {key: _with_ids(value, ids) for key, value in body.items()}
    return body

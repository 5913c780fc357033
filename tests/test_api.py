"""The REST contract of SPEC.md against a real Redis, and job lifecycles through a real in-process RQ worker."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from rq import Queue
from rq.job import JobStatus
from rq.serializers import JSONSerializer
from werkzeug.test import TestResponse

import jobs.model
from app import create_app
from jobs.config import Settings
from jobs.connection import connect
from jobs.model import status_for
from jobs.store import JobStore
from scripts.harness import free_port
from tests.bounds import EVENT_SECONDS
from tests.helpers import THREE_STEP_LIFECYCLE
from worker import make_worker

INDEX_KEY = "jobstream:jobs"
EVENTS_KEY = "jobstream:events"
QUEUE_KEY = "rq:queue:jobstream"
PATTERN = "job:*:progress"
UNKNOWN_ID = "ffffffffffffffff"
API_JOB_FIELDS = {
    "id",
    "name",
    "type",
    "params",
    "status",
    "priority",
    "progress",
    "action",
    "cancel_requested",
    "created_at",
    "started_at",
    "ended_at",
    "scheduled_for",
    "error",
    "result",
    "attempts",
    "max_attempts",
    "worker",
}
STATUSES = ("pending", "active", "completed", "failed", "canceled")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
HOSTILE_NAME = "<script>alert(1)</script> é 日本"


# -- helpers: requests and error shape ------------------------------------------------------


def create(client: FlaskClient, name: str = "job", **body: Any) -> dict[str, Any]:
    """POST /api/jobs and return the created job, failing the test unless it is a 201."""
    response = client.post("/api/jobs", json={"name": name, **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["job"]


def listed_ids(client: FlaskClient, query: str = "") -> list[str]:
    """The ids on one page of GET /api/jobs."""
    response = client.get(f"/api/jobs{query}")
    assert response.status_code == 200, response.get_json()
    return [job["id"] for job in response.get_json()["jobs"]]


def error_details(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    """Assert SPEC's one JSON error shape with `status` and `code`; return its details."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]["details"]


def basic_auth(credentials: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


# -- helpers: driving a job into a status -------------------------------------------------


def start(store: JobStore, redis_client: redis.Redis, job_id: str) -> None:
    """Take the job off RQ's queue as a worker does, then mark it active on worker w1."""
    redis_client.lrem(QUEUE_KEY, 0, job_id)
    assert store.begin(job_id, "w1").ok


def job_in(status: str, client: FlaskClient, store: JobStore, redis_client: redis.Redis) -> str:
    """A new job brought to `status` the way the API and a worker would; returns its id."""
    job_id = create(client, f"{status} job")["id"]
    if status == "canceled":
        assert client.post(f"/api/jobs/{job_id}/cancel").status_code == 200
    elif status != "pending":
        start(store, redis_client, job_id)
        if status == "completed":
            assert store.complete(job_id, {"ok": True}).ok
        elif status == "failed":
            assert store.fail(job_id, "boom", "Traceback (most recent call last):\nRuntimeError: boom").ok
    assert store.get(job_id)["status"] == status
    return job_id


def queued_ids(redis_client: redis.Redis) -> list[str]:
    """The ids waiting in RQ's queue."""
    return [raw.decode() for raw in redis_client.lrange(QUEUE_KEY, 0, -1)]


# -- helpers: events ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Event:
    """One job event, as published on pub/sub or stored in the replay stream."""

    id: str
    name: str
    job_id: str
    data: dict[str, Any]

    @property
    def job(self) -> dict[str, Any]:
        return self.data["job"]

    @property
    def key(self) -> tuple[int, int]:
        ms, _, seq = self.id.partition("-")
        return int(ms), int(seq)


def stored_events(redis_client: redis.Redis) -> list[Event]:
    """Every event in the replay stream, oldest first (XRANGE)."""
    return [
        Event(entry_id.decode(), fields[b"event"].decode(), fields[b"job"].decode(), json.loads(fields[b"data"]))
        for entry_id, fields in redis_client.xrange(EVENTS_KEY)
    ]


class Subscriber:
    """A real pub/sub subscriber on job:*:progress, like the one each stream connection holds."""

    def __init__(self, client: redis.Redis) -> None:
        self.pubsub = client.pubsub()
        self.pubsub.psubscribe(PATTERN)
        confirmation = self.pubsub.get_message(timeout=EVENT_SECONDS)  # subscribed for sure before anything publishes
        assert confirmation is not None and confirmation["type"] == "psubscribe"
        self.received: list[Event] = []

    def wait_for(self, done: Callable[[Event], bool], timeout: float = EVENT_SECONDS) -> list[Event]:
        """Read messages until one satisfies `done`; return everything received so far."""
        deadline = time.monotonic() + timeout
        while not any(done(event) for event in self.received):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no matching event within {timeout} s; got {self.received}"
            message = self.pubsub.get_message(timeout=remaining)
            if message is not None and message["type"] == "pmessage":
                self.received.append(self._parse(message))
        return self.received

    def of(self, job_id: str) -> list[Event]:
        return [event for event in self.received if event.job_id == job_id]

    @staticmethod
    def _parse(message: dict[str, Any]) -> Event:
        assert message["pattern"] == PATTERN.encode()
        channel = re.fullmatch(r"job:(.+):progress", message["channel"].decode())
        assert channel is not None, message["channel"]
        event_id, name, data = message["data"].decode().split("\n", 2)
        return Event(event_id, name, channel.group(1), json.loads(data))

    def close(self) -> None:
        self.pubsub.close()


@pytest.fixture
def subscriber(redis_client: redis.Redis) -> Iterator[Subscriber]:
    subscribed = Subscriber(redis_client)
    yield subscribed
    subscribed.close()


def ended(job_id: str) -> Callable[[Event], bool]:
    """Matches the event that ends job `job_id`."""
    return lambda event: event.job_id == job_id and event.job["status"] in ("completed", "failed", "canceled")


# -- 1. POST /api/jobs ---------------------------------------------------------------------


def test_create_returns_pending_job_with_defaults_and_location(client: FlaskClient) -> None:
    response = client.post("/api/jobs", json={"name": "first"})

    assert response.status_code == 201
    job = response.get_json()["job"]
    assert set(job) == API_JOB_FIELDS
    assert response.headers["Location"].endswith(f"/api/jobs/{job['id']}")
    assert re.fullmatch(r"[A-Za-z0-9_-]+", job["id"])
    assert job["name"] == "first"
    assert job["type"] == "demo.web_agent"
    assert job["params"] == {"steps": 10, "step_seconds": 1.0, "fail_rate": 0.0}
    assert (job["status"], job["attempts"], job["progress"]) == ("pending", 1, 0)
    assert (job["action"], job["cancel_requested"], job["worker"]) == (None, False, None)
    assert (job["started_at"], job["ended_at"], job["error"], job["result"]) == (None, None, None, None)
    assert TIMESTAMP.match(job["created_at"])
    assert client.get(response.headers["Location"]).get_json()["job"]["id"] == job["id"]


def test_create_stores_hostile_name_verbatim_and_lists_it(client: FlaskClient, redis_client: redis.Redis) -> None:
    job = create(client, HOSTILE_NAME)

    assert job["name"] == HOSTILE_NAME
    assert json.loads(redis_client.hget(f"jobstream:job:{job['id']}", "name")) == HOSTILE_NAME
    assert client.get(f"/api/jobs/{job['id']}").get_json()["job"]["name"] == HOSTILE_NAME
    assert [(j["id"], j["name"]) for j in client.get("/api/jobs").get_json()["jobs"]] == [(job["id"], HOSTILE_NAME)]


def test_create_enqueues_the_job_for_rq(client: FlaskClient, redis_client: redis.Redis) -> None:
    job = create(client, type="demo.sleep", params={"seconds": 0}, timeout_seconds=30)

    assert queued_ids(redis_client) == [job["id"]]
    assert job["params"] == {"seconds": 0.0}


def test_create_publishes_job_update_to_replay_stream_and_pubsub(
    client: FlaskClient, redis_client: redis.Redis, subscriber: Subscriber
) -> None:
    job = create(client, HOSTILE_NAME)

    [stored] = stored_events(redis_client)
    assert (stored.name, stored.job_id) == ("job-update", job["id"])
    assert stored.data["type"] == "job-update"
    assert stored.job == job
    assert TIMESTAMP.match(stored.data["timestamp"])

    [published] = subscriber.wait_for(lambda event: event.job_id == job["id"])
    assert published == stored  # "<event id>\n<event name>\n<json>", the id being the stream entry's


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"name": "n" * 200}, id="name-200-chars"),
        pytest.param({"name": "x", "params": {"steps": 1}}, id="steps-1"),
        pytest.param({"name": "x", "params": {"steps": 1000, "fail_rate": 1}}, id="steps-1000-fail-rate-1"),
        pytest.param({"name": "x", "type": "demo.primes", "params": {"limit": 2}}, id="primes-limit-2"),
        pytest.param({"name": "x", "timeout_seconds": 24 * 3600}, id="timeout-1-day"),
    ],
)
def test_create_accepts_boundary_values(client: FlaskClient, body: dict[str, Any]) -> None:
    assert client.post("/api/jobs", json=body).status_code == 201


def assert_redis_untouched(redis_client: redis.Redis) -> None:
    """A rejected request wrote nothing: no job, no RQ queue entry, no event."""
    assert redis_client.zcard(INDEX_KEY) == 0
    assert redis_client.llen(QUEUE_KEY) == 0
    assert redis_client.keys("*") == []


@pytest.mark.parametrize(
    ("body", "path"),
    [
        pytest.param({}, ["name"], id="missing-name"),
        pytest.param({"name": "   "}, ["name"], id="blank-name"),
        pytest.param({"name": "n" * 201}, ["name"], id="name-201-chars"),
        pytest.param({"name": 7}, ["name"], id="name-not-a-string"),
        pytest.param({"name": "x", "type": "os.system"}, ["type"], id="unknown-type"),
        pytest.param({"name": "x", "params": {"steps": 0}}, ["params", "steps"], id="steps-0"),
        pytest.param({"name": "x", "params": {"steps": 1001}}, ["params", "steps"], id="steps-1001"),
        pytest.param({"name": "x", "params": {"fail_rate": 2}}, ["params", "fail_rate"], id="fail-rate-2"),
        pytest.param({"name": "x", "params": {"bogus": 1}}, ["params", "bogus"], id="unknown-param"),
        pytest.param({"name": "x", "type": "demo.sleep", "params": {"steps": 3}}, ["params", "steps"], id="other-type"),
        pytest.param({"name": "x", "params": "steps=3"}, ["params"], id="params-not-object"),
        pytest.param({"name": "x", "timeout_seconds": 0}, ["timeout_seconds"], id="timeout-0"),
        pytest.param({"name": "x", "timeout_seconds": 24 * 3600 + 1}, ["timeout_seconds"], id="timeout-over-1-day"),
        pytest.param({"name": "x", "color": "red"}, ["color"], id="unknown-field"),
        pytest.param({"name": "x", "priority": "urgent"}, ["priority"], id="priority-unknown"),
    ],
)
def test_create_rejects_invalid_body(
    client: FlaskClient, redis_client: redis.Redis, body: dict[str, Any], path: list[str]
) -> None:
    details = error_details(client.post("/api/jobs", json=body), 422, "validation_error")

    for key in path:
        assert key in details, details
        details = details[key]
    assert_redis_untouched(redis_client)


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        pytest.param("name=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type", id="form"),
        pytest.param('{"name": "x"}', "text/plain", 415, "unsupported_media_type", id="json-as-text"),
        pytest.param('{"name": ', "application/json", 400, "bad_request", id="invalid-json"),
        pytest.param('[{"name": "x"}]', "application/json", 400, "bad_request", id="json-array"),
        pytest.param('"x"', "application/json", 400, "bad_request", id="json-string"),
        pytest.param(
            '{"name": "' + "x" * (1024 * 1024) + '"}', "application/json", 413, "payload_too_large", id="over-1-mb"
        ),
    ],
)
def test_create_rejects_unreadable_body(
    client: FlaskClient, redis_client: redis.Redis, data: str, content_type: str, status: int, code: str
) -> None:
    response = client.post("/api/jobs", data=data, content_type=content_type)

    error_details(response, status, code)
    assert_redis_untouched(redis_client)


# -- 2. GET /api/jobs ---------------------------------------------------------------------


def test_list_is_newest_first_with_counts_and_last_event_id(client: FlaskClient, redis_client: redis.Redis) -> None:
    empty = client.get("/api/jobs").get_json()
    assert empty == {"jobs": [], "next_cursor": None, "counts": dict.fromkeys(STATUSES, 0), "last_event_id": None}

    ids = [create(client, f"job {i}")["id"] for i in range(5)]
    page = client.get("/api/jobs").get_json()

    assert [job["id"] for job in page["jobs"]] == ids[::-1]
    assert all(set(job) == API_JOB_FIELDS for job in page["jobs"])  # no logs in the list
    assert page["next_cursor"] is None
    assert page["counts"] == {**dict.fromkeys(STATUSES, 0), "pending": 5}
    assert page["last_event_id"] == stored_events(redis_client)[-1].id


def test_list_is_newest_first_within_one_millisecond(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    frozen = time.time_ns()
    monkeypatch.setattr(jobs.model.time, "time_ns", lambda: frozen)  # every create lands in the same millisecond

    ids = [create(client, f"job {i}")["id"] for i in range(12)]

    assert listed_ids(client) == ids[::-1]


def test_list_paginates_with_cursor(client: FlaskClient) -> None:
    ids = [create(client, f"job {i}")["id"] for i in range(7)]
    pages: list[list[str]] = []
    query = "?limit=3"

    while True:
        page = client.get(f"/api/jobs{query}").get_json()
        pages.append([job["id"] for job in page["jobs"]])
        if page["next_cursor"] is None:
            break
        query = f"?limit=3&cursor={page['next_cursor']}"

    assert [len(p) for p in pages] == [3, 3, 1]
    assert [job_id for p in pages for job_id in p] == ids[::-1]  # no overlap, nothing skipped


def test_list_filters_by_status(client: FlaskClient, store: JobStore, redis_client: redis.Redis) -> None:
    by_status = {status: job_in(status, client, store, redis_client) for status in STATUSES}
    extra_pending = create(client, "another")["id"]

    for status, job_id in by_status.items():
        expected = [extra_pending, job_id] if status == "pending" else [job_id]
        assert listed_ids(client, f"?status={status}") == expected
    counts = client.get("/api/jobs").get_json()["counts"]
    assert counts == {**dict.fromkeys(STATUSES, 1), "pending": 2}


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        pytest.param("alpha", ["alphabet soup", "ALPHA two", "Alpha one"], id="lower"),
        pytest.param("ALPHA", ["alphabet soup", "ALPHA two", "Alpha one"], id="upper"),
        pytest.param("pha t", ["ALPHA two"], id="inner-substring"),
        pytest.param("ÜBER", ["über alles"], id="unicode"),
        pytest.param("<script>", [HOSTILE_NAME], id="html"),
        pytest.param("zzz", [], id="no-match"),
    ],
)
def test_list_filters_by_name_substring(client: FlaskClient, q: str, expected: list[str]) -> None:
    for name in ("Alpha one", "beta", "ALPHA two", "über alles", HOSTILE_NAME, "alphabet soup"):
        create(client, name)

    page = client.get("/api/jobs", query_string={"q": q}).get_json()

    assert [job["name"] for job in page["jobs"]] == expected


def test_list_paginates_a_name_search(client: FlaskClient) -> None:
    ids = [create(client, f"{'match' if i % 2 else 'other'} {i}")["id"] for i in range(10)]
    matching = ids[1::2][::-1]

    first = client.get("/api/jobs?q=MATCH&limit=3").get_json()
    second = client.get(f"/api/jobs?q=MATCH&limit=3&cursor={first['next_cursor']}").get_json()

    assert [job["id"] for job in first["jobs"]] == matching[:3]
    assert [job["id"] for job in second["jobs"]] == matching[3:]


def test_list_search_has_no_next_cursor_on_its_last_page(client: FlaskClient) -> None:
    for name in ("match 1", "other", "match 2"):
        create(client, name)

    page = client.get("/api/jobs?q=match&limit=2").get_json()

    assert len(page["jobs"]) == 2
    assert page["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        pytest.param("limit=0", "limit", id="limit-0"),
        pytest.param("limit=201", "limit", id="limit-201"),
        pytest.param("limit=abc", "limit", id="limit-abc"),
        pytest.param("status=running", "status", id="unknown-status"),
        pytest.param("cursor=not-a-cursor", "cursor", id="bad-cursor"),
        pytest.param("sort=name", "sort", id="unknown-parameter"),
    ],
)
def test_list_rejects_invalid_query(client: FlaskClient, query: str, field: str) -> None:
    details = error_details(client.get(f"/api/jobs?{query}"), 422, "validation_error")

    assert field in details


# -- 3. GET and DELETE /api/jobs/<id> ----------------------------------------------------


def test_get_job_includes_its_logs(client: FlaskClient, store: JobStore, redis_client: redis.Redis) -> None:
    job_id = create(client)["id"]
    assert client.get(f"/api/jobs/{job_id}").get_json()["job"]["logs"] == []

    start(store, redis_client, job_id)
    store.report(job_id, 40, "Clicking button", log="clicked #submit\nwaited")
    job = client.get(f"/api/jobs/{job_id}").get_json()["job"]

    assert set(job) == API_JOB_FIELDS | {"logs", "last_event_id"}
    assert job["logs"] == ["started on w1", "clicked #submit", "waited"]
    assert job["last_event_id"] == stored_events(redis_client)[-1].id  # its log lines are all in `logs`
    assert (job["status"], job["progress"], job["action"], job["worker"]) == ("active", 40, "Clicking button", "w1")


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_unknown_job_is_404(client: FlaskClient, method: str) -> None:
    error_details(client.open(f"/api/jobs/{UNKNOWN_ID}", method=method), 404, "not_found")


@pytest.mark.parametrize("status", ["pending", "completed", "failed", "canceled"])
def test_delete_removes_a_job_that_is_not_active(
    client: FlaskClient, store: JobStore, redis_client: redis.Redis, subscriber: Subscriber, status: str
) -> None:
    job_id = job_in(status, client, store, redis_client)

    response = client.delete(f"/api/jobs/{job_id}")

    assert response.status_code == 204
    assert response.get_data() == b""
    error_details(client.get(f"/api/jobs/{job_id}"), 404, "not_found")
    page = client.get("/api/jobs").get_json()
    assert (page["jobs"], page["counts"]) == ([], dict.fromkeys(STATUSES, 0))
    assert job_id not in queued_ids(redis_client)
    assert not redis_client.exists(f"jobstream:job:{job_id}", f"jobstream:job:{job_id}:logs", f"rq:job:{job_id}")
    removed = stored_events(redis_client)[-1]
    assert (removed.name, removed.data["type"], removed.data["id"]) == ("job-removed", "job-removed", job_id)
    assert subscriber.wait_for(lambda event: event.name == "job-removed")[-1] == removed


def test_delete_refuses_an_active_job(client: FlaskClient, store: JobStore, redis_client: redis.Redis) -> None:
    job_id = job_in("active", client, store, redis_client)

    details = error_details(client.delete(f"/api/jobs/{job_id}"), 409, "conflict")

    assert details == {"status": "active"}
    assert store.get(job_id)["status"] == "active"


# -- 4. cancel ------------------------------------------------------------------------------


def test_cancel_pending_job_ends_it_at_once(client: FlaskClient, redis_client: redis.Redis) -> None:
    job_id = create(client)["id"]

    response = client.post(f"/api/jobs/{job_id}/cancel")

    assert response.status_code == 200
    job = response.get_json()["job"]
    assert (job["status"], job["cancel_requested"]) == ("canceled", False)
    assert TIMESTAMP.match(job["ended_at"])
    assert queued_ids(redis_client) == []  # RQ will never hand it out
    assert stored_events(redis_client)[-1].job == job


def test_cancel_active_job_asks_the_worker(client: FlaskClient, store: JobStore, redis_client: redis.Redis) -> None:
    job_id = job_in("active", client, store, redis_client)

    response = client.post(f"/api/jobs/{job_id}/cancel")

    assert response.status_code == 202
    job = response.get_json()["job"]
    assert (job["status"], job["cancel_requested"], job["ended_at"]) == ("active", True, None)
    assert store.get(job_id)["cancel_requested"] is True
    assert stored_events(redis_client)[-1].job == job


@pytest.mark.parametrize("status", ["completed", "failed", "canceled"])
def test_cancel_ended_job_is_409(client: FlaskClient, store: JobStore, redis_client: redis.Redis, status: str) -> None:
    job_id = job_in(status, client, store, redis_client)

    details = error_details(client.post(f"/api/jobs/{job_id}/cancel"), 409, "conflict")

    assert details == {"status": status}


def test_cancel_unknown_job_is_404(client: FlaskClient) -> None:
    error_details(client.post(f"/api/jobs/{UNKNOWN_ID}/cancel"), 404, "not_found")


def test_cancel_many_reports_each_outcome(client: FlaskClient, store: JobStore, redis_client: redis.Redis) -> None:
    pending, active, ended = (job_in(status, client, store, redis_client) for status in ("pending", "active", "failed"))

    response = client.post("/api/jobs/cancel", json={"ids": [pending, active, ended, UNKNOWN_ID, pending]})

    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [(r["id"], r["outcome"], r["status"]) for r in results] == [
        (pending, "canceled", "canceled"),
        (active, "cancel_requested", "active"),
        (ended, "conflict", "failed"),
        (UNKNOWN_ID, "not_found", None),
    ]
    assert results[0]["job"]["status"] == "canceled"
    assert results[1]["job"]["cancel_requested"] is True
    assert store.get(pending)["status"] == "canceled"
    assert store.get(active)["cancel_requested"] is True


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"ids": []}, id="empty"),
        pytest.param({"ids": "x"}, id="not-a-list"),
        pytest.param({"ids": [""]}, id="empty-id"),
        pytest.param({}, id="missing"),
    ],
)
def test_cancel_many_rejects_invalid_body(client: FlaskClient, body: dict[str, Any]) -> None:
    details = error_details(client.post("/api/jobs/cancel", json=body), 422, "validation_error")

    assert "ids" in details


# -- 5. retry -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["failed", "canceled"])
def test_retry_runs_an_ended_job_again(
    client: FlaskClient, store: JobStore, redis_client: redis.Redis, status: str
) -> None:
    job_id = job_in(status, client, store, redis_client)
    logs_before = client.get(f"/api/jobs/{job_id}").get_json()["job"]["logs"]
    assert queued_ids(redis_client) == []

    response = client.post(f"/api/jobs/{job_id}/retry")

    assert response.status_code == 202
    job = response.get_json()["job"]
    assert (job["id"], job["status"], job["attempts"], job["progress"]) == (job_id, "pending", 2, 0)
    assert (job["error"], job["ended_at"], job["started_at"], job["worker"]) == (None, None, None, None)
    logs = client.get(f"/api/jobs/{job_id}").get_json()["job"]["logs"]
    assert logs[: len(logs_before)] == logs_before
    assert logs[len(logs_before) :] == ["retry: attempt 2"]
    assert queued_ids(redis_client) == [job_id]
    assert stored_events(redis_client)[-1].job == job
    assert client.get("/api/jobs").get_json()["counts"] == {**dict.fromkeys(STATUSES, 0), "pending": 1}


@pytest.mark.parametrize("status", ["pending", "active", "completed"])
def test_retry_refuses_a_job_that_has_not_failed_or_been_canceled(
    client: FlaskClient, store: JobStore, redis_client: redis.Redis, status: str
) -> None:
    job_id = job_in(status, client, store, redis_client)

    details = error_details(client.post(f"/api/jobs/{job_id}/retry"), 409, "conflict")

    assert details == {"status": status}
    assert store.get(job_id)["attempts"] == 1


def test_retry_unknown_job_is_404(client: FlaskClient) -> None:
    error_details(client.post(f"/api/jobs/{UNKNOWN_ID}/retry"), 404, "not_found")


# -- 6. job types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_name", "param", "expected"),
    [
        ("demo.web_agent", "steps", {"type": "integer", "default": 10, "minimum": 1, "maximum": 1000}),
        ("demo.web_agent", "step_seconds", {"type": "number", "default": 1.0, "minimum": 0, "maximum": 60}),
        ("demo.web_agent", "fail_rate", {"type": "number", "default": 0.0, "minimum": 0, "maximum": 1}),
        ("demo.sleep", "seconds", {"type": "number", "default": 1.0, "minimum": 0, "maximum": 3600}),
        ("demo.primes", "limit", {"type": "integer", "default": 2_000_000, "minimum": 2, "maximum": 200_000_000}),
    ],
)
def test_job_types_describe_params_as_json_schema(
    client: FlaskClient, type_name: str, param: str, expected: dict[str, Any]
) -> None:
    response = client.get("/api/job-types")

    assert response.status_code == 200
    types = {t["name"]: t for t in response.get_json()["job_types"]}
    assert {"demo.web_agent", "demo.sleep", "demo.primes"} <= set(types)
    schema = types[type_name]["params_schema"]
    assert schema["type"] == "object"
    assert schema["properties"][param] == expected
    assert types[type_name]["description"]
    assert types[type_name]["timeout_seconds"] > 0


# -- 7. HTTP errors and 8. health --------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/jobs", {"GET", "POST"}),
        ("PATCH", f"/api/jobs/{UNKNOWN_ID}", {"GET", "DELETE"}),
        ("GET", f"/api/jobs/{UNKNOWN_ID}/retry", {"POST"}),
        ("DELETE", "/api/job-types", {"GET"}),
    ],
)
def test_wrong_method_is_405_with_allow(client: FlaskClient, method: str, path: str, allowed: set[str]) -> None:
    response = client.open(path, method=method)

    error_details(response, 405, "method_not_allowed")
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


@pytest.mark.parametrize("path", ["/api/nope", f"/api/jobs/{UNKNOWN_ID}/nope", "/api/"])
def test_unknown_api_path_is_json_404(client: FlaskClient, path: str) -> None:
    error_details(client.get(path), 404, "not_found")


def test_healthz_answers_ok(client: FlaskClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


# -- 9. RQ state → status ------------------------------------------------------------------

RQ_TO_STATUS = {
    JobStatus.CREATED: "pending",
    JobStatus.QUEUED: "pending",
    JobStatus.DEFERRED: "pending",
    JobStatus.SCHEDULED: "pending",
    JobStatus.RATE_LIMITED: "pending",
    JobStatus.READY_TO_ENQUEUE: "pending",
    JobStatus.STARTED: "active",
    JobStatus.FINISHED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELED: "canceled",
    JobStatus.STOPPED: "canceled",
}


def test_status_table_covers_every_rq_state() -> None:
    assert set(RQ_TO_STATUS) == set(JobStatus)


@pytest.mark.parametrize(("rq_status", "expected"), RQ_TO_STATUS.items(), ids=lambda v: getattr(v, "value", v))
def test_status_for_maps_each_rq_state(rq_status: JobStatus, expected: str) -> None:
    assert status_for(rq_status) == expected
    assert status_for(rq_status.value) == expected


@pytest.mark.parametrize("rq_status", [None, "", "junk", "STARTED"])
def test_status_for_treats_unknown_states_as_failed(rq_status: str | None) -> None:
    assert status_for(rq_status) == "failed"


# -- 10. lifecycle through a real RQ worker ------------------------------------------------


@pytest.fixture
def run_worker(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], str]]:
    """Run jobstream's RQ worker in this process until the queue is empty; returns the worker's name."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}

    def run() -> str:
        store = JobStore(connect(settings.redis_url), settings)
        worker = make_worker(store)
        worker.work(burst=True)
        return worker.name

    yield run
    for sig, handler in handlers.items():  # the worker installs its own; give pytest's back
        signal.signal(sig, handler)


def assert_well_formed(events: list[Event]) -> None:
    """Every event: job-update with the full ApiJob snapshot and a timestamp, ids increasing."""
    assert events
    for event in events:
        assert event.name == event.data["type"] == "job-update"
        assert set(event.job) == API_JOB_FIELDS
        assert TIMESTAMP.match(event.data["timestamp"])
    assert [e.key for e in events] == sorted({e.key for e in events})


def test_worker_runs_a_job_to_completion(
    client: FlaskClient, redis_client: redis.Redis, subscriber: Subscriber, run_worker: Callable[[], str]
) -> None:
    job_id = create(client, type="demo.web_agent", params={"steps": 3, "step_seconds": 0})["id"]

    worker_name = run_worker()
    events = subscriber.wait_for(ended(job_id))

    assert_well_formed(events)
    assert [(e.job["status"], e.job["progress"]) for e in events] == THREE_STEP_LIFECYCLE
    for step, event in enumerate(events[2:5], start=1):
        assert event.data["log"].startswith(f"step {step}/3: ")
        assert event.job["action"]
    job = client.get(f"/api/jobs/{job_id}").get_json()["job"]
    assert job["result"] == {"steps": 3, "status": "done"}
    assert events[-1].job == {key: value for key, value in job.items() if key not in ("logs", "last_event_id")}
    assert (job["worker"], job["action"], job["error"]) == (worker_name, None, None)
    assert job["created_at"] <= job["started_at"] <= job["ended_at"]
    assert job["logs"][0] == f"started on {worker_name}" and job["logs"][-1] == "completed"
    assert stored_events(redis_client) == events


def test_worker_reports_a_raising_job_as_failed(
    client: FlaskClient, subscriber: Subscriber, run_worker: Callable[[], str]
) -> None:
    job_id = create(client, params={"steps": 3, "step_seconds": 0, "fail_rate": 1})["id"]

    run_worker()
    events = subscriber.wait_for(ended(job_id))

    assert_well_formed(events)
    assert [e.job["status"] for e in events] == ["pending", "active", "failed"]
    job = client.get(f"/api/jobs/{job_id}").get_json()["job"]
    assert "\n" not in job["error"]
    assert "failed while" in job["error"]
    assert job["error"].startswith("RuntimeError: step 1/3")
    assert "Traceback (most recent call last):" in job["logs"]
    assert any(line.startswith("RuntimeError: step 1/3 failed while") for line in job["logs"])
    assert (job["result"], job["attempts"]) == (None, 1)
    assert events[-1].job["error"] == job["error"]


def test_worker_fails_a_job_that_times_out(
    client: FlaskClient, subscriber: Subscriber, run_worker: Callable[[], str]
) -> None:
    job_id = create(client, type="demo.sleep", params={"seconds": 5}, timeout_seconds=1)["id"]

    started = time.monotonic()
    run_worker()
    events = subscriber.wait_for(ended(job_id))

    assert time.monotonic() - started < 4  # stopped at the timeout, not after the 5 s sleep
    assert_well_formed(events)
    assert [e.job["status"] for e in events] == ["pending", "active", "failed"]
    assert events[-1].job["error"] == "timed out after 1 s"
    assert client.get(f"/api/jobs/{job_id}").get_json()["job"]["error"] == "timed out after 1 s"


def test_worker_never_runs_a_job_canceled_while_pending(
    client: FlaskClient, subscriber: Subscriber, run_worker: Callable[[], str]
) -> None:
    canceled = create(client, "canceled", type="demo.sleep", params={"seconds": 0})["id"]
    assert client.post(f"/api/jobs/{canceled}/cancel").status_code == 200
    witness = create(client, "witness", type="demo.sleep", params={"seconds": 0})["id"]

    run_worker()
    subscriber.wait_for(ended(witness))

    assert client.get(f"/api/jobs/{witness}").get_json()["job"]["result"] == {"slept": 0.0}
    job = client.get(f"/api/jobs/{canceled}").get_json()["job"]
    assert (job["status"], job["started_at"], job["worker"]) == ("canceled", None, None)
    assert [e.job["status"] for e in subscriber.of(canceled)] == ["pending", "canceled"]


def test_worker_never_runs_a_job_jobstream_does_not_know(
    settings: Settings, redis_client: redis.Redis, run_worker: Callable[[], str]
) -> None:
    queue = Queue(settings.queue, connection=redis_client, serializer=JSONSerializer)
    queue.enqueue_call(func="jobs.demo.sleep", kwargs={"seconds": 0}, job_id=UNKNOWN_ID)  # not through the API

    run_worker()

    assert queued_ids(redis_client) == []
    assert not redis_client.exists(f"rq:job:{UNKNOWN_ID}")  # dropped, not run (a finished job keeps its hash)
    assert stored_events(redis_client) == []


# -- 11. auth -------------------------------------------------------------------------------


@pytest.fixture
def auth_client(settings: Settings, redis_client: redis.Redis) -> FlaskClient:
    app = create_app({"TESTING": True, "SETTINGS": dataclasses.replace(settings, auth="u:p")})
    return app.test_client()


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="none"),
        pytest.param(basic_auth("u:wrong"), id="wrong-password"),
        pytest.param(basic_auth("x:p"), id="wrong-user"),
        pytest.param({"Authorization": "Bearer u:p"}, id="not-basic"),
    ],
)
def test_auth_rejects_missing_or_wrong_credentials(auth_client: FlaskClient, headers: dict[str, str]) -> None:
    response = auth_client.get("/api/jobs", headers=headers)

    error_details(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_auth_accepts_right_credentials(auth_client: FlaskClient) -> None:
    assert auth_client.get("/api/jobs", headers=basic_auth("u:p")).status_code == 200
    assert auth_client.post("/api/jobs", json={"name": "x"}, headers=basic_auth("u:p")).status_code == 201


def test_auth_leaves_healthz_open(auth_client: FlaskClient) -> None:
    assert auth_client.get("/healthz").status_code == 200


# -- 12. Redis down ------------------------------------------------------------------------


@pytest.fixture
def dead_redis_app() -> Flask:
    """An app whose Redis URL points at a free port with nothing listening."""
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    return create_app({"TESTING": True, "SETTINGS": settings})


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/jobs", None),
        ("GET", f"/api/jobs/{UNKNOWN_ID}", None),
        ("POST", "/api/jobs", {"name": "x"}),
    ],
)
def test_redis_down_is_503_promptly(dead_redis_app: Flask, method: str, path: str, body: Any) -> None:
    started = time.monotonic()
    response = dead_redis_app.test_client().open(path, method=method, json=body)

    assert time.monotonic() - started < 5
    error_details(response, 503, "redis_unavailable")
    assert response.headers["Retry-After"]


def test_healthz_is_503_when_redis_is_down(dead_redis_app: Flask) -> None:
    error_details(dead_redis_app.test_client().get("/healthz"), 503, "redis_unavailable")

"""Helpers of the in-process API tests (Flask's test client on a real Redis): requests and the one error
shape, jobs brought to a status as the API and a worker would, the events a job publishes."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import time
from collections.abc import Callable
from typing import Any

import redis
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from jobs.store.lifecycle import JobStore
from tests.bounds import EVENT_SECONDS

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
    "depends_on",
    "allow_failure",
    "waiting_for",
    "schedule_id",
    "schedule_tick",
}
STATUSES = ("pending", "active", "completed", "failed", "canceled")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
HOSTILE_NAME = "<script>alert(1)</script> é 日本"


# -- requests and error shape --------------------------------------------------------------------


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
    assert set(body["error"]) == {"code", "message", "details", "request_id"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]["details"]


def redis_state(client: redis.Redis) -> dict[bytes, tuple[bytes, bytes | None, bool]]:
    """Every key of the Redis: its type, its DUMP (each type serialized exactly, a stream's entries and last id
    included) and whether it expires, not how soon: that changes by itself between two reads."""
    return {key: (client.type(key), client.dump(key), client.pttl(key) >= 0) for key in client.scan_iter(count=1000)}


def basic_auth(credentials: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


# -- driving a job into a status -----------------------------------------------------------------


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
    assert store.read.get(job_id)["status"] == status
    return job_id


def queued_ids(redis_client: redis.Redis) -> list[str]:
    """The ids waiting in RQ's queue."""
    return [raw.decode() for raw in redis_client.lrange(QUEUE_KEY, 0, -1)]


# -- events --------------------------------------------------------------------------------------


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

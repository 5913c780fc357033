"""Idempotent creates: the same Idempotency-Key (REST) or idempotency_key= (Python) within 24 h returns the job
it created first and creates nothing, also under 20 concurrent requests against the real gunicorn."""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from flask.testing import FlaskClient

from jobs import IdempotencyConflict, Jobs
from jobs.config import Settings
from jobs.store.keys import EVENTS_KEY, INDEX_KEY, idempotency_key
from tests.bounds import EVENT_SECONDS
from tests.conftest import Stack

BODY = {"name": "Nightly export", "type": "demo.sleep", "params": {"seconds": 0}}
CONCURRENT = 20


@pytest.fixture
def jobs(redis_client: redis.Redis, settings: Settings) -> Jobs:
    return Jobs(redis_client, settings)


def in_days(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def post(client: FlaskClient, body: dict[str, Any], key: str) -> tuple[int, dict[str, Any]]:
    response = client.post("/api/jobs", json=body, headers={"Idempotency-Key": key})
    return response.status_code, response.get_json()


def created(redis_client: redis.Redis) -> tuple[int, int, int]:
    """Jobs, events and RQ queue entries: what a create adds to."""
    return redis_client.zcard(INDEX_KEY), redis_client.xlen(EVENTS_KEY), redis_client.llen("rq:queue:jobstream")


# -- REST --------------------------------------------------------------------------------------------------


def test_the_same_key_twice_is_201_then_200_with_the_same_job(client: FlaskClient, redis_client: redis.Redis) -> None:
    first = client.post("/api/jobs", json=BODY, headers={"Idempotency-Key": "export-12-02"})
    after_first = created(redis_client)
    again = client.post("/api/jobs", json=BODY, headers={"Idempotency-Key": "export-12-02"})

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["job"] == first.get_json()["job"]
    assert again.headers["Location"] == first.headers["Location"]
    assert created(redis_client) == after_first == (1, 1, 1)  # nothing else: no job, no event, no queue entry


def test_the_key_is_kept_for_24_hours(client: FlaskClient, redis_client: redis.Redis) -> None:
    post(client, BODY, "kept")

    assert 24 * 3600 - 60 < redis_client.ttl(idempotency_key("kept")) <= 24 * 3600


def test_the_same_request_spelled_differently_is_the_same_request(client: FlaskClient) -> None:
    _, first = post(client, {"name": "x", "type": "demo.sleep"}, "spelled")
    spelled_out = {"params": {"seconds": 1.0}, "type": "demo.sleep", "name": "x", "priority": "normal"}

    assert post(client, spelled_out, "spelled") == (200, first)  # defaults made explicit, other field order


@pytest.mark.parametrize(
    "different",
    [
        pytest.param({**BODY, "name": "Other export"}, id="name"),
        pytest.param({**BODY, "params": {"seconds": 5}}, id="params"),
        pytest.param({**BODY, "priority": "high"}, id="priority"),
        pytest.param({**BODY, "type": "demo.web_agent", "params": {}}, id="type"),
    ],
)
def test_the_key_with_a_different_body_is_409_idempotency_conflict(
    client: FlaskClient, redis_client: redis.Redis, different: dict[str, Any]
) -> None:
    _, first = post(client, BODY, "reused")
    before = created(redis_client)

    status, body = post(client, different, "reused")

    assert status == 409
    assert body["error"]["code"] == "idempotency_conflict"
    assert body["error"]["details"] == {"job_id": first["job"]["id"]}
    assert created(redis_client) == before


@pytest.mark.parametrize(
    ("first", "then"),
    [
        pytest.param({}, {"delay_seconds": 600}, id="now-then-delayed"),
        pytest.param({"delay_seconds": 30}, {"delay_seconds": 3600}, id="other-delay"),
        pytest.param({"run_at": in_days(1)}, {"run_at": in_days(2)}, id="other-run-at"),
    ],
)
def test_the_key_with_a_different_start_is_409(
    client: FlaskClient, first: dict[str, Any], then: dict[str, Any]
) -> None:
    status, _ = post(client, {**BODY, **first}, "started")
    assert status == 201

    assert post(client, {**BODY, **then}, "started")[0] == 409


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("clé", id="not-ascii"),
        pytest.param("k" * 256, id="256-chars"),
        pytest.param("two words", id="space"),
        pytest.param("", id="empty"),
    ],
)
def test_a_malformed_key_is_422_naming_the_header(client: FlaskClient, redis_client: redis.Redis, key: str) -> None:
    status, body = post(client, BODY, key)

    assert status == 422
    assert body["error"]["code"] == "validation_error"
    assert set(body["error"]["details"]) == {"Idempotency-Key"}
    assert redis_client.keys("*") == []


def test_a_key_whose_job_was_deleted_creates_a_new_one(client: FlaskClient) -> None:
    _, first = post(client, BODY, "freed")
    assert client.delete(f"/api/jobs/{first['job']['id']}").status_code == 204

    status, again = post(client, BODY, "freed")

    assert status == 201 and again["job"]["id"] != first["job"]["id"]


def test_20_concurrent_requests_with_one_key_create_exactly_one_job(stack: Stack) -> None:
    key = f"concurrent-{uuid.uuid4().hex}"
    body = {**BODY, "name": f"concurrent {key}"}
    parts = urlsplit(stack.bases["request"])
    ready = threading.Barrier(CONCURRENT)
    answers: list[tuple[int, str]] = []
    errors: list[BaseException] = []

    def send() -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=EVENT_SECONDS)
        try:
            conn.connect()  # connected first, so the requests leave together
            ready.wait(EVENT_SECONDS)
            headers = {"Content-Type": "application/json", "Idempotency-Key": key}
            conn.request("POST", "/api/jobs", json.dumps(body), headers)
            response = conn.getresponse()
            answers.append((response.status, json.loads(response.read())["job"]["id"]))
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=send) for _ in range(CONCURRENT)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors, errors
    assert sorted(status for status, _ in answers) == [200] * (CONCURRENT - 1) + [201]
    assert len({job_id for _, job_id in answers}) == 1
    found = Jobs.from_url(stack.redis_server.url).list(q=body["name"]).jobs
    assert [job.id for job in found] == [answers[0][1]]


# -- Python ------------------------------------------------------------------------------------------------


def test_enqueue_with_a_used_key_returns_the_first_job(jobs: Jobs, redis_client: redis.Redis) -> None:
    first = jobs.enqueue("demo.sleep", name="once", params={"seconds": 0}, idempotency_key="py-once")
    again = jobs.enqueue("demo.sleep", name="once", params={"seconds": 0}, idempotency_key="py-once")

    assert again == first
    assert created(redis_client) == (1, 1, 1)
    with pytest.raises(IdempotencyConflict) as conflict:
        jobs.enqueue("demo.sleep", name="twice", params={"seconds": 0}, idempotency_key="py-once")
    assert (conflict.value.code, conflict.value.details) == ("idempotency_conflict", {"job_id": first.id})


def test_a_key_used_over_rest_is_the_same_key_in_python(jobs: Jobs, client: FlaskClient) -> None:
    status, first = post(client, BODY, "both-skins")
    assert status == 201

    again = jobs.enqueue("demo.sleep", name=BODY["name"], params={"seconds": 0}, idempotency_key="both-skins")

    assert again.id == first["job"]["id"]


def test_concurrent_enqueues_with_one_key_create_one_job(jobs: Jobs, redis_client: redis.Redis) -> None:
    ready = threading.Barrier(CONCURRENT)
    ids: list[str] = []

    def enqueue() -> None:
        ready.wait(EVENT_SECONDS)
        ids.append(jobs.enqueue("demo.sleep", name="raced", params={"seconds": 0}, idempotency_key="raced").id)

    threads = [threading.Thread(target=enqueue) for _ in range(CONCURRENT)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(ids) == CONCURRENT and len(set(ids)) == 1
    assert created(redis_client) == (1, 1, 1)


def test_enqueue_many_with_one_key_twice_creates_one_job(jobs: Jobs, redis_client: redis.Redis) -> None:
    item = {"type": "demo.sleep", "name": "in a batch", "params": {"seconds": 0}, "idempotency_key": "batch"}

    batch = jobs.enqueue_many([item, {"type": "demo.sleep", "name": "other"}, item])

    assert batch[0] == batch[2] and batch[1].id != batch[0].id
    assert created(redis_client)[0] == 2


def test_enqueue_many_with_a_conflicting_key_creates_nothing(jobs: Jobs, redis_client: redis.Redis) -> None:
    first = jobs.enqueue("demo.sleep", name="first", idempotency_key="taken")
    before = created(redis_client)
    items = [{"type": "demo.sleep", "name": f"new {n}"} for n in range(5)]
    items[3] = {"type": "demo.sleep", "name": "not first", "idempotency_key": "taken"}

    with pytest.raises(IdempotencyConflict) as conflict:
        jobs.enqueue_many(items)

    assert conflict.value.details == {"job_id": first.id}
    assert created(redis_client) == before

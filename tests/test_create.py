"""POST /api/jobs: what a created job looks like, where it goes, and every body it refuses."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from jobs.store.keys import SCHEDULED_KEY
from tests.api_helpers import (
    API_JOB_FIELDS,
    HOSTILE_NAME,
    INDEX_KEY,
    QUEUE_KEY,
    TIMESTAMP,
    Subscriber,
    create,
    error_details,
    queued_ids,
    stored_events,
)


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


def test_create_with_a_past_run_at_queues_the_job_at_once(client: FlaskClient, redis_client: redis.Redis) -> None:
    """A run_at a second ago runs now: straight into RQ's queue, not the scheduled set the upkeep promotes."""
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    job = create(client, type="demo.sleep", params={"seconds": 0}, run_at=past)

    assert (job["status"], job["scheduled_for"]) == ("pending", None)
    assert queued_ids(redis_client) == [job["id"]]
    assert redis_client.zscore(SCHEDULED_KEY, job["id"]) is None


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

"""One job's control: GET and DELETE /api/jobs/<id>, cancel (one and many), retry."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from jobs.store.lifecycle import JobStore
from tests.api_helpers import (
    API_JOB_FIELDS,
    STATUSES,
    TIMESTAMP,
    UNKNOWN_ID,
    Subscriber,
    create,
    error_details,
    job_in,
    queued_ids,
    start,
    stored_events,
)

# -- GET and DELETE /api/jobs/<id> ---------------------------------------------------------------


def test_get_job_includes_its_logs(client: FlaskClient, store: JobStore, redis_client: redis.Redis) -> None:
    job_id = create(client)["id"]
    assert client.get(f"/api/jobs/{job_id}").get_json()["job"]["logs"] == []

    start(store, redis_client, job_id)
    store.report(job_id, 40, "Clicking button", log="clicked #submit\nwaited")
    job = client.get(f"/api/jobs/{job_id}").get_json()["job"]

    assert set(job) == API_JOB_FIELDS | {"dependents", "logs", "last_event_id"}
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
    assert store.read.get(job_id)["status"] == "active"


# -- cancel --------------------------------------------------------------------------------------


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
    assert store.read.get(job_id)["cancel_requested"] is True
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
    assert store.read.get(pending)["status"] == "canceled"
    assert store.read.get(active)["cancel_requested"] is True


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


# -- retry ---------------------------------------------------------------------------------------


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
    assert store.read.get(job_id)["attempts"] == 1


def test_retry_unknown_job_is_404(client: FlaskClient) -> None:
    error_details(client.post(f"/api/jobs/{UNKNOWN_ID}/retry"), 404, "not_found")

"""Job lifecycles through jobstream's real RQ worker, run in this process: events, results, failures."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable, Iterator

import pytest
import redis
from flask.testing import FlaskClient
from rq import Queue
from rq.serializers import JSONSerializer

from jobs.config import Settings
from jobs.connection import connect
from jobs.model import DETAIL_ONLY
from jobs.store.lifecycle import JobStore
from runner.worker import make_worker
from tests.api_helpers import (
    API_JOB_FIELDS,
    TIMESTAMP,
    UNKNOWN_ID,
    Event,
    Subscriber,
    create,
    queued_ids,
    stored_events,
)
from tests.helpers import THREE_STEP_LIFECYCLE


def ended(job_id: str) -> Callable[[Event], bool]:
    """Matches the event that ends job `job_id`."""
    return lambda event: event.job_id == job_id and event.job["status"] in ("completed", "failed", "canceled")


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
    assert events[-1].job == {key: value for key, value in job.items() if key not in DETAIL_ONLY}
    assert (job["worker"], job["action"], job["error"]) == (worker_name, None, None)
    assert worker_name == f"{socket.gethostname()}.{os.getpid()}"  # <host>.<pid>: the worker ran in this process
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
    queue.enqueue_call(func="jobs.types.demo.sleep", kwargs={"seconds": 0}, job_id=UNKNOWN_ID)  # not through the API

    run_worker()

    assert queued_ids(redis_client) == []
    assert not redis_client.exists(f"rq:job:{UNKNOWN_ID}")  # dropped, not run (a finished job keeps its hash)
    assert stored_events(redis_client) == []

"""Delayed jobs through real processes: pending with scheduled_for, started on time (after restarts too),
canceled or deleted while they wait, held by a paused queue, started once however many pools run."""

from __future__ import annotations

import collections
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from jobs.model import isoformat
from jobs.store.keys import SCHEDULED_KEY
from scripts.harness import request, wait_until
from tests.api_helpers import stored_events
from tests.bounds import EVENT_SECONDS, JOB_SECONDS, QUIET_SECONDS
from tests.schedule_helpers import LATE_SECONDS, STARTED, Cluster, cluster_in, history, moment, starts

# How far scheduled_for may be from the create's own clock reading + the delay (one request's time).
CREATE_TOLERANCE = 0.2
DELAY_SECONDS = 1.5  # long enough to act on a waiting job, short enough to keep the tests quick
RESTART_DELAY_SECONDS = 12.0  # outlasts a stop of the pool and of Redis, and their start, on a loaded machine
SAME_MOMENT_JOBS = 200


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A Redis of this module's own, a pool of 3 workers, gunicorn."""
    with cluster_in(tmp_path_factory.mktemp("delays")) as running:
        running.pool(concurrency=3)
        running.base = running.web()
        yield running


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A Redis and processes for one test that restarts or adds them."""
    with cluster_in(tmp_path) as running:
        yield running


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def assert_started_on_time(cluster: Cluster, job_id: str, not_before: float | None = None) -> dict[str, Any]:
    """The job ran once, starting no earlier than its scheduled_for and at most LATE_SECONDS after it (or
    after `not_before`, when something held it back longer); returns the snapshot of its start."""
    done = cluster.jobs.wait(job_id, JOB_SECONDS)
    assert done.status == "completed", done
    events = history(cluster.redis, job_id)
    (start,) = starts(events)
    scheduled = moment(events[0].job["scheduled_for"])
    started = moment(start.job["started_at"])
    assert started >= scheduled, started - scheduled
    assert started <= max(scheduled, not_before or 0) + LATE_SECONDS, started - scheduled
    return start.job


def never_runs(cluster: Cluster, job_id: str, scheduled_for: str) -> None:
    """Until QUIET_SECONDS after its time, the job never starts."""
    wait_until(lambda: time.time() > moment(scheduled_for), EVENT_SECONDS, "the job's time")
    with pytest.raises(AssertionError):
        wait_until(lambda: starts(history(cluster.redis, job_id)), QUIET_SECONDS, "the job to start")


# -- on time ------------------------------------------------------------------------------------------------


def test_a_job_with_a_delay_is_pending_until_its_time_then_starts_within_a_second(cluster: Cluster) -> None:
    before = time.time()
    job = cluster.jobs.enqueue("demo.sleep", name=unique("later"), params={"seconds": 0}, delay_seconds=DELAY_SECONDS)
    assert job.status == "pending" and job.scheduled_for is not None
    assert moment(job.scheduled_for) - before == pytest.approx(DELAY_SECONDS, abs=CREATE_TOLERANCE)
    assert cluster.redis.zscore(SCHEDULED_KEY, job.id) is not None
    assert cluster.jobs.stats()["queues"] == {"high": 0, "normal": 0, "low": 0}  # waiting, not queued
    start = assert_started_on_time(cluster, job.id)
    assert start["scheduled_for"] is None  # a running job has no start time ahead
    assert cluster.redis.zscore(SCHEDULED_KEY, job.id) is None


def test_a_job_with_run_at_over_rest_starts_at_that_time(cluster: Cluster) -> None:
    run_at = isoformat(datetime.now(UTC) + timedelta(seconds=DELAY_SECONDS))
    body = {"name": unique("at"), "type": "demo.sleep", "params": {"seconds": 0}, "run_at": run_at}
    status, data, _ = request(cluster.base, "POST", "/api/jobs", body)
    assert status == 201, data
    assert data["job"]["status"] == "pending" and data["job"]["scheduled_for"] == run_at
    status, detail, _ = request(cluster.base, "GET", f"/api/jobs/{data['job']['id']}")
    assert detail["job"]["scheduled_for"] == run_at
    assert_started_on_time(cluster, data["job"]["id"])


def test_run_at_in_another_time_zone_is_the_same_moment(cluster: Cluster) -> None:
    moment_utc = datetime.now(UTC) + timedelta(seconds=DELAY_SECONDS)
    in_paris = moment_utc.astimezone(ZoneInfo("Europe/Paris"))
    job = cluster.jobs.enqueue("demo.sleep", name=unique("tz"), params={"seconds": 0}, run_at=in_paris.isoformat())
    assert job.scheduled_for == isoformat(moment_utc)
    assert_started_on_time(cluster, job.id)


def test_delay_zero_is_now(cluster: Cluster) -> None:
    job = cluster.jobs.enqueue("demo.sleep", name=unique("now"), params={"seconds": 0}, delay_seconds=0)
    assert job.scheduled_for is None
    assert cluster.jobs.wait(job.id, JOB_SECONDS).status == "completed"


def test_a_run_at_in_the_past_runs_now_over_rest(cluster: Cluster) -> None:
    """As RQ's enqueue_at and Sidekiq's perform_at: created pending with nothing to wait for, and run."""
    body = {"name": unique("past"), "type": "demo.sleep", "params": {"seconds": 0}, "run_at": ahead(-1)}
    status, data, _ = request(cluster.base, "POST", "/api/jobs", body)
    assert status == 201, data
    assert data["job"]["status"] == "pending" and data["job"]["scheduled_for"] is None
    assert cluster.jobs.wait(data["job"]["id"], JOB_SECONDS).status == "completed"


def test_a_run_at_in_the_past_runs_now_from_python(cluster: Cluster) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    job = cluster.jobs.enqueue("demo.sleep", name=unique("past"), params={"seconds": 0}, run_at=past)
    assert job.status == "pending" and job.scheduled_for is None
    assert cluster.jobs.wait(job.id, JOB_SECONDS).status == "completed"


# -- while it waits -------------------------------------------------------------------------------------------


def test_a_delayed_job_canceled_while_it_waits_never_runs(cluster: Cluster) -> None:
    job = cluster.jobs.enqueue("demo.sleep", name=unique("cancel"), params={"seconds": 0}, delay_seconds=DELAY_SECONDS)
    status, data, _ = request(cluster.base, "POST", f"/api/jobs/{job.id}/cancel")
    assert status == 200 and data["job"]["status"] == "canceled"
    assert data["job"]["scheduled_for"] is None
    assert cluster.redis.zscore(SCHEDULED_KEY, job.id) is None
    assert cluster.redis.exists(f"rq:job:{job.id}") == 0
    never_runs(cluster, job.id, job.scheduled_for or "")
    assert cluster.jobs.get(job.id).status == "canceled"


def test_a_delayed_job_deleted_while_it_waits_never_runs(cluster: Cluster) -> None:
    job = cluster.jobs.enqueue("demo.sleep", name=unique("delete"), params={"seconds": 0}, delay_seconds=DELAY_SECONDS)
    status, _, _ = request(cluster.base, "DELETE", f"/api/jobs/{job.id}")
    assert status == 204
    assert cluster.redis.zscore(SCHEDULED_KEY, job.id) is None
    assert cluster.redis.exists(f"rq:job:{job.id}", f"jobstream:job:{job.id}") == 0
    never_runs(cluster, job.id, job.scheduled_for or "")
    assert [e.name for e in history(cluster.redis, job.id)] == ["job-update", "job-removed"]
    assert request(cluster.base, "GET", f"/api/jobs/{job.id}")[0] == 404


def test_a_due_job_waits_for_a_paused_queue_to_resume(cluster: Cluster) -> None:
    cluster.jobs.pause()
    try:
        job = cluster.jobs.enqueue("demo.sleep", name=unique("paused"), params={"seconds": 0}, delay_seconds=1)
        never_runs(cluster, job.id, job.scheduled_for or "")
        assert cluster.jobs.get(job.id).status == "pending"
    finally:
        resumed = time.time()
        cluster.jobs.resume()
    assert_started_on_time(cluster, job.id, not_before=resumed)


# -- restarts and several pools -------------------------------------------------------------------------------


def test_a_delayed_job_survives_restarts_of_the_pool_and_of_redis(own_cluster: Cluster) -> None:
    """Stopped mid-wait: the pool, then Redis (its AOF on); both back, the job starts at its time."""
    pool = own_cluster.pool(concurrency=2)
    job = own_cluster.jobs.enqueue(
        "demo.sleep", name=unique("restart"), params={"seconds": 0}, delay_seconds=RESTART_DELAY_SECONDS
    )
    own_cluster.stop(pool)
    own_cluster.redis_server.stop()
    own_cluster.redis_server.start()  # same port, same directory: the AOF brings the job back
    own_cluster.pool(concurrency=2)
    assert time.time() < moment(job.scheduled_for), "the restarts took longer than the delay"
    assert own_cluster.jobs.get(job.id).status == "pending"
    assert_started_on_time(own_cluster, job.id)


def test_two_pools_never_start_a_due_job_twice(own_cluster: Cluster) -> None:
    pools = [own_cluster.pool(concurrency=3), own_cluster.pool(concurrency=3)]
    run_at = datetime.now(UTC) + timedelta(seconds=3)
    batch = [
        {"type": "demo.sleep", "name": f"due {n}", "params": {"seconds": 0}, "run_at": run_at}
        for n in range(SAME_MOMENT_JOBS)
    ]
    ids = [job.id for job in own_cluster.jobs.enqueue_many(batch)]
    for job_id in ids:
        assert own_cluster.jobs.wait(job_id, JOB_SECONDS).status == "completed"
    events = stored_events(own_cluster.redis)
    begun = collections.Counter(e.job_id for e in starts(events))
    assert set(begun) == set(ids) and set(begun.values()) == {1}, begun.most_common(3)
    workers = {e.job["worker"] for e in starts(events)}
    assert all(workers & own_cluster.workers_of(pool) for pool in pools), workers  # both pools took some
    for job_id in ids[:: SAME_MOMENT_JOBS // 20]:  # and the logs say so too, for a sample
        logs = own_cluster.jobs.get(job_id).logs or []
        assert sum(line.startswith(STARTED) for line in logs) == 1, logs
    assert all(moment(e.job["started_at"]) >= run_at.timestamp() - 0.001 for e in starts(events))
    queues = own_cluster.redis.keys("rq:queue:*")
    assert all(own_cluster.redis.llen(key) == 0 for key in queues if own_cluster.redis.type(key) == b"list")


# -- bad inputs -----------------------------------------------------------------------------------------------


def ahead(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        pytest.param({"run_at": ahead(366 * 24 * 3600)}, "run_at", id="run-at-over-a-year"),
        pytest.param({"run_at": "2099-01-01T00:00:00"}, "run_at", id="run-at-without-zone"),
        pytest.param({"run_at": "tomorrow"}, "run_at", id="run-at-not-a-time"),
        pytest.param({"run_at": ahead(60), "delay_seconds": 60}, "run_at", id="both"),
        pytest.param({"delay_seconds": -1}, "delay_seconds", id="delay-negative"),
        pytest.param({"delay_seconds": 366 * 24 * 3600}, "delay_seconds", id="delay-over-a-year"),
        pytest.param({"delay_seconds": "soon"}, "delay_seconds", id="delay-not-a-number"),
    ],
)
def test_bad_start_times_are_422_naming_the_field(cluster: Cluster, extra: dict, field: str) -> None:
    body = {"name": "bad", "type": "demo.sleep", **extra}
    status, data, _ = request(cluster.base, "POST", "/api/jobs", body)
    assert status == 422, data
    assert data["error"]["code"] == "validation_error"
    assert set(data["error"]["details"]) == {field}, data["error"]["details"]

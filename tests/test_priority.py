"""Priorities: a worker takes high before normal before low (a high job overtakes 1,000 pending normal ones,
a low one runs last), a type's default priority, and a registered function that enqueues itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from jobs import InvalidRequest, Job, Jobs, register
from jobs.config import Settings
from jobs.stream.events import missed
from scripts.harness import RedisServer, Service, start_pool
from tests.bounds import JOB_SECONDS
from tests.priority_jobs import UrgentParams, urgent

TEST_JOBS = "tests.priority_jobs"
SLEEP = {"seconds": 0}
BACKLOG = 1000
DRAIN_SECONDS = 180.0  # patience: one worker runs 1,000 no-op jobs (about 10 s on a quiet machine)


@pytest.fixture
def private_jobs(private_redis: RedisServer) -> Jobs:
    return Jobs.from_url(private_redis.url, job_modules=(TEST_JOBS,))


@pytest.fixture
def one_worker(private_redis: RedisServer, tmp_path: Path) -> Iterator[Service]:
    """A pool of ONE worker on the test's own Redis, so the order jobs start in is the order it took them."""
    pool = start_pool(private_redis.url, tmp_path, JOBSTREAM_CONCURRENCY="1", JOBSTREAM_JOB_MODULES=TEST_JOBS)
    yield pool
    pool.stop()


def starts_after(jobs: Jobs, event_id: str) -> list[str]:
    """The ids of the jobs that started after `event_id`, in the order they started (the replay stream's)."""
    started = []
    for event in missed(jobs.redis, event_id) or []:
        job = json.loads(event.data).get("job")
        if job and job["status"] == "active" and job["progress"] == 0 and job["id"] not in started:
            started.append(job["id"])
    return started


def backlog(jobs: Jobs, count: int = BACKLOG) -> list[Job]:
    return jobs.enqueue_many([{"type": "demo.sleep", "name": f"normal {n}", "params": SLEEP} for n in range(count)])


# -- the order workers take jobs in ------------------------------------------------------------------------


def test_a_high_job_overtakes_1000_pending_normal_ones_and_a_low_one_runs_last(
    private_jobs: Jobs, private_redis: RedisServer, tmp_path: Path
) -> None:
    jobs = private_jobs
    jobs.pause()
    pool = start_pool(private_redis.url, tmp_path, JOBSTREAM_CONCURRENCY="1", JOBSTREAM_JOB_MODULES=TEST_JOBS)
    try:
        normals = backlog(jobs)
        high = urgent.using(jobs).enqueue("high by its type's default")
        low = jobs.enqueue("demo.sleep", name="low", params=SLEEP, priority="low")
        assert (high.priority, low.priority) == ("high", "low")
        assert jobs.stats()["queues"] == {"high": 1, "normal": BACKLOG, "low": 1}
        before = jobs.store.read.last_event_id()
        assert before is not None

        jobs.resume()
        ended = jobs.wait(low.id, timeout=DRAIN_SECONDS)
    finally:
        pool.stop()

    started = starts_after(jobs, before)
    assert ended.status == "completed"
    assert len(started) == BACKLOG + 2
    assert started[0] == high.id, "the high job was not the first to start"
    assert started[-1] == low.id, "the low job did not start last"
    assert set(started[1:-1]) == {job.id for job in normals}
    assert started[1:-1] == [job.id for job in normals]  # and the normal ones in the order they were created


def test_a_high_job_created_behind_1000_pending_ones_is_the_next_to_start(
    private_jobs: Jobs, one_worker: Service
) -> None:
    jobs = private_jobs
    backlog(jobs)
    high = jobs.enqueue("demo.sleep", name="high", params=SLEEP, priority="high")
    assert jobs.stats()["queues"]["normal"] > BACKLOG // 2  # it was created behind a long queue

    assert jobs.wait(high.id, timeout=JOB_SECONDS).status == "completed"

    # its creation's event, not the newest at a read after it: the worker may have taken it before that read
    created = next(event.id for event in missed(jobs.redis, "0-0") or [] if event.job_id == high.id)
    started = starts_after(jobs, created)
    # the one worker may have taken one normal job off the queue just before the high one came
    assert high.id in started[:2], started[:3]


# -- a type's default priority, and a registered function that enqueues itself ------------------------------


@pytest.fixture
def jobs(redis_client: redis.Redis, settings: Settings) -> Jobs:
    return Jobs(redis_client, Settings(redis_url=settings.redis_url, job_modules=(TEST_JOBS,)))


def test_a_type_registered_high_creates_high_jobs_unless_told_otherwise(jobs: Jobs) -> None:
    default = jobs.enqueue("test.urgent", name="by default")
    told = jobs.enqueue("test.urgent", name="told", priority="low")
    plain = jobs.enqueue("demo.sleep", name="plain", params=SLEEP)

    assert (default.priority, told.priority, plain.priority) == ("high", "low", "normal")
    assert jobs.stats()["queues"] == {"high": 1, "normal": 1, "low": 1}
    described = {t["name"]: t for t in jobs.job_types()}
    assert described["test.urgent"]["priority"] == "high"


def test_register_refuses_an_unknown_priority() -> None:
    with pytest.raises(ValueError, match="priority"):
        register("test.never", UrgentParams(), timeout=60, priority="urgent")


def test_a_registered_function_enqueues_itself_through_the_default_jobs(
    jobs: Jobs, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setattr(Jobs, "_default", None)  # built from this environment on first use

    job = urgent.enqueue("from the function", label="monthly", seconds=0.5)

    assert isinstance(job, Job)
    assert (job.type, job.name, job.priority) == ("test.urgent", "from the function", "high")
    assert job.params == {"label": "monthly", "seconds": 0.5}
    assert jobs.get(job.id).id == job.id  # in this Redis
    assert Jobs.default() is Jobs.default()  # one per process


def test_a_registered_function_bound_to_jobs_and_options(jobs: Jobs) -> None:
    bound = urgent.using(jobs, priority="low", timeout_seconds=5)

    job = bound.enqueue("bound", "positional label")  # positional params bound to their names

    assert (job.priority, job.params) == ("low", {"label": "positional label", "seconds": 0.0})
    assert jobs.store.queues["low"].count == 1
    assert urgent(label="called") == {"label": "called"}  # called, it simply runs


def test_a_registered_function_checks_its_params_with_its_schema(jobs: Jobs, redis_client: redis.Redis) -> None:
    with pytest.raises(InvalidRequest) as refused:
        urgent.using(jobs).enqueue("too long", seconds=3600)

    assert set(refused.value.details) == {"params"}
    assert "seconds" in refused.value.details["params"]
    assert redis_client.keys("*") == []

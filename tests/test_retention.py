"""Retention through real processes: ended jobs past their keep time, and the oldest past KEEP_ENDED_MAX, are
deleted by the pool's scheduler with every trace of them (logs, indexes, RQ's copy), each with a job-removed
event; active, pending and fresh ones stay; POST /api/jobs/clean still works beside it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from jobs.store.keys import EVENTS_KEY, alive_key, job_key
from jobs.store.retention import LOCK_SECONDS
from jobs.store.upkeep import SWEEP_SECONDS
from scripts.harness import request, wait_until
from tests.api_helpers import stored_events
from tests.bounds import EVENT_SECONDS, JOB_SECONDS, QUIET_SECONDS
from tests.schedule_helpers import Cluster, cluster_in, moment

KEEP_SECONDS = 1  # JOBSTREAM_KEEP_COMPLETED_SECONDS and _CANCELED_ in the first test
KEEP_ENDED_MAX = 5
# A job past its keep time is deleted by the next sweep: within a sweep's period (SWEEP_SECONDS; a lock left
# by a sweep that died expires after LOCK_SECONDS), plus patience for a loaded machine.
SWEPT_SECONDS = max(SWEEP_SECONDS, LOCK_SECONDS) + EVENT_SECONDS
LATER = 3600.0  # a delay that keeps a job pending for the whole test


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with cluster_in(tmp_path) as running:
        yield running


def traces(client: redis.Redis, job_id: str) -> list[str]:
    """Every key of Redis that still names `job_id` or holds it (the replay stream aside: events stay)."""
    found = []
    for raw in client.scan_iter(count=1000):
        key = raw.decode()
        kind = client.type(key).decode()
        if job_id in key:
            found.append(key)
        elif kind == "zset" and client.zscore(key, job_id) is not None:
            found.append(key)
        elif kind == "set" and client.sismember(key, job_id):
            found.append(key)
        elif kind == "list" and client.lpos(key, job_id) is not None:
            found.append(key)
    return found


def removals(client: redis.Redis) -> dict[str, dict]:
    """The data of every job-removed event, by job id."""
    return {e.job_id: e.data for e in stored_events(client) if e.name == "job-removed"}


def running(cluster: Cluster, job_id: str) -> bool:
    return cluster.jobs.get(job_id).status == "active"


def test_ended_jobs_past_their_keep_time_are_deleted_with_every_trace_and_the_rest_stay(cluster: Cluster) -> None:
    cluster.pool(
        concurrency=2,
        JOBSTREAM_KEEP_COMPLETED_SECONDS=str(KEEP_SECONDS),
        JOBSTREAM_KEEP_CANCELED_SECONDS=str(KEEP_SECONDS),
        JOBSTREAM_KEEP_FAILED_SECONDS="3600",
    )
    base = cluster.web()
    jobs = cluster.jobs
    active = jobs.enqueue("demo.sleep", name="active", params={"seconds": 120})
    wait_until(lambda: running(cluster, active.id), EVENT_SECONDS, "the long job running")
    pending = jobs.enqueue("demo.sleep", name="pending", params={"seconds": 0}, delay_seconds=LATER)
    completed = [jobs.enqueue("demo.sleep", name=f"completed {n}", params={"seconds": 0}) for n in range(3)]
    failed = [
        jobs.enqueue("demo.web_agent", name=f"failed {n}", params={"steps": 1, "step_seconds": 0, "fail_rate": 1})
        for n in range(2)
    ]
    canceled = [jobs.enqueue("demo.sleep", name=f"canceled {n}", delay_seconds=LATER) for n in range(2)]
    for job in canceled:
        jobs.cancel(job.id)
    for job in completed + failed:
        jobs.wait(job.id, JOB_SECONDS)
    expired = {job.id: jobs.get(job.id) for job in completed + canceled}
    kept = [active.id, pending.id, *(job.id for job in failed)]

    removed = wait_until(
        lambda: (got := removals(cluster.redis)) and set(expired) <= set(got) and got,
        SWEPT_SECONDS + KEEP_SECONDS,
        "the expired jobs removed",
    )
    assert set(removed) == set(expired), "only the expired jobs go"
    for job_id, job in expired.items():
        assert moment(removed[job_id]["timestamp"]) - moment(job.ended_at) >= KEEP_SECONDS, "removed too early"
        assert removed[job_id]["counts"]["active"] == 1
        assert traces(cluster.redis, job_id) == [], job_id
        assert request(base, "GET", f"/api/jobs/{job_id}")[0] == 404
    for job_id in kept:
        assert cluster.redis.exists(job_key(job_id)), job_id
    assert all(cluster.jobs.get(job_id).logs for job_id in kept if job_id != pending.id)  # the logs stay too
    assert cluster.jobs.get(active.id).status == "active" and cluster.jobs.get(pending.id).status == "pending"
    listed = {job.id for job in cluster.jobs.list(limit=200).jobs}
    assert listed == set(kept)
    assert cluster.jobs.list().counts == {"pending": 1, "active": 1, "completed": 0, "failed": 2, "canceled": 0}

    # a fresh job is kept until its time comes
    fresh = jobs.enqueue("demo.sleep", name="fresh", params={"seconds": 0})
    done = jobs.wait(fresh.id, JOB_SECONDS)
    wait_until(
        lambda: fresh.id in removals(cluster.redis), SWEPT_SECONDS + KEEP_SECONDS, "the fresh job removed in turn"
    )
    assert moment(removals(cluster.redis)[fresh.id]["timestamp"]) - moment(done.ended_at) >= KEEP_SECONDS

    # POST /api/jobs/clean, by hand, beside the sweep
    status, data, _ = request(base, "POST", "/api/jobs/clean", {"status": "failed", "older_than_seconds": 0})
    assert status == 200 and sorted(data["ids"]) == sorted(job.id for job in failed) and data["deleted"] == 2
    assert {job.id for job in failed} <= set(removals(cluster.redis))
    assert all(not cluster.redis.exists(job_key(job.id), f"rq:job:{job.id}") for job in failed)
    jobs.cancel(active.id)


def test_a_job_that_ran_keeps_no_sign_of_life_once_it_ends(cluster: Cluster) -> None:
    """Its worker's `alive` key goes with the end, not 30 s later: a job deleted soon after leaves nothing."""
    cluster.pool(concurrency=1)
    job = cluster.jobs.enqueue("demo.sleep", name="beats", params={"seconds": 2})
    wait_until(lambda: cluster.redis.exists(alive_key(job.id)), EVENT_SECONDS, "the job's sign of life")
    assert cluster.jobs.wait(job.id, JOB_SECONDS).status == "completed"
    assert not cluster.redis.exists(alive_key(job.id))


def test_a_deleted_failed_job_leaves_nothing_of_rqs_behind(cluster: Cluster) -> None:
    cluster.pool(concurrency=1)
    job = cluster.jobs.enqueue("demo.flaky", name="failed", params={"fail_times": 1}, max_attempts=1)
    assert cluster.jobs.wait(job.id, JOB_SECONDS).status == "failed"
    cluster.jobs.delete(job.id)
    assert traces(cluster.redis, job.id) == []


def test_past_keep_ended_max_the_oldest_ended_jobs_go_first(cluster: Cluster) -> None:
    cluster.pool(concurrency=2, JOBSTREAM_KEEP_ENDED_MAX=str(KEEP_ENDED_MAX))
    jobs = cluster.jobs
    active = jobs.enqueue("demo.sleep", name="active", params={"seconds": 120})
    wait_until(lambda: running(cluster, active.id), EVENT_SECONDS, "the long job running on one worker")
    pending = jobs.enqueue("demo.sleep", name="pending", params={"seconds": 0}, delay_seconds=LATER)
    batch = [{"type": "demo.sleep", "name": f"quick {n}", "params": {"seconds": 0}} for n in range(KEEP_ENDED_MAX + 3)]
    ended = [jobs.wait(job.id, JOB_SECONDS) for job in jobs.enqueue_many(batch)]  # one worker: one after another
    oldest = sorted(ended, key=lambda job: job.ended_at or "")[:3]

    removed = wait_until(
        lambda: len(removals(cluster.redis)) >= 3 and removals(cluster.redis), SWEPT_SECONDS, "a sweep"
    )
    assert set(removed) == {job.id for job in oldest}
    with pytest.raises(AssertionError):  # the next sweeps leave the 5 newest
        wait_until(lambda: len(removals(cluster.redis)) > 3, SWEEP_SECONDS + QUIET_SECONDS, "more")
    counts = jobs.list().counts
    assert counts["completed"] == KEEP_ENDED_MAX and counts["active"] == 1 and counts["pending"] == 1
    assert all(traces(cluster.redis, job.id) == [] for job in oldest)
    assert cluster.redis.xlen(EVENTS_KEY) > 0
    jobs.cancel(active.id)
    assert jobs.get(pending.id).status == "pending"

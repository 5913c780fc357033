"""Limits per job type through real processes: `concurrency` across every worker of two pools, `rate` per
window; a held job stays pending and says why, and other types are not held behind it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs.store.keys import HELD_PREFIX, RUNNING_PREFIX, SCHEDULED_KEY
from scripts.harness import wait_until
from tests.api_helpers import Event, stored_events
from tests.bounds import EVENT_SECONDS, JOB_SECONDS
from tests.limited_jobs import CONCURRENCY, RATE
from tests.schedule_helpers import Cluster, cluster_in, history, moment, peak_active, starts

LIMITED_JOBS = 20
OTHER_JOBS = 20
LIMITED_SECONDS = 0.5  # 20 of them, 2 at a time: at least 5 s in all
OTHER_SECONDS = 0.1
RATED_JOBS = 15
# Starts are stamped by each worker's clock before its begin script runs, a round trip earlier: two starts
# may be stamped a few ms out of the order Redis ran them in.
STAMP_TOLERANCE = 0.05
WAITING_FOR_CONCURRENCY = f"waiting: {CONCURRENCY} test.limited already running"
WAITING_FOR_RATE = f"waiting: at most {RATE[0]} starts per {RATE[1]:g} s"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with cluster_in(tmp_path) as running:
        yield running


def actions(events: list[Event], ids: set[str]) -> set[str | None]:
    """The actions of the pending jobs of `ids` in their events."""
    return {
        e.job["action"] for e in events if e.job_id in ids and e.name == "job-update" and e.job["status"] == "pending"
    }


def test_concurrency_holds_across_two_pools_and_other_types_pass(cluster: Cluster) -> None:
    cluster.pool(concurrency=3)
    cluster.pool(concurrency=3)
    limited = cluster.jobs.enqueue_many(
        [
            {"type": "test.limited", "name": f"limited {n}", "params": {"seconds": LIMITED_SECONDS}}
            for n in range(LIMITED_JOBS)
        ]
    )
    others = cluster.jobs.enqueue_many(
        [{"type": "demo.sleep", "name": f"other {n}", "params": {"seconds": OTHER_SECONDS}} for n in range(OTHER_JOBS)]
    )
    ended = {job.id: cluster.jobs.wait(job.id, JOB_SECONDS) for job in [*limited, *others]}
    assert {job.status for job in ended.values()} == {"completed"}
    events = stored_events(cluster.redis)
    limited_ids = {job.id for job in limited}
    assert peak_active(events, limited_ids) == CONCURRENCY
    assert WAITING_FOR_CONCURRENCY in actions(events, limited_ids)
    assert all(len(starts(history(cluster.redis, job_id))) == 1 for job_id in limited_ids)
    # the others, created behind all of the limited ones, were done while most of those still waited
    last_other = max(moment(ended[job.id].ended_at) for job in others)
    waiting = [job for job in limited if moment(ended[job.id].started_at) > last_other]
    assert len(waiting) >= LIMITED_JOBS // 2, len(waiting)
    assert cluster.redis.scard(RUNNING_PREFIX + "test.limited") == 0
    assert cluster.redis.zcard(HELD_PREFIX + "test.limited") == 0


def test_a_held_job_canceled_never_runs_and_a_freed_slot_goes_to_the_next(cluster: Cluster) -> None:
    cluster.pool(concurrency=4)
    running = [cluster.jobs.enqueue("test.limited", name=f"running {n}", params={"seconds": 2}) for n in range(2)]
    wait_until(lambda: all(cluster.jobs.get(j.id).status == "active" for j in running), EVENT_SECONDS, "2 running")
    held = [cluster.jobs.enqueue("test.limited", name=f"held {n}", params={"seconds": 0}) for n in range(2)]
    for job in held:
        wait_until(
            lambda j=job: cluster.jobs.get(j.id).action == WAITING_FOR_CONCURRENCY, EVENT_SECONDS, "the job held"
        )
    assert cluster.jobs.get(held[0].id).status == "pending"
    cluster.jobs.cancel(held[0].id)
    assert cluster.jobs.wait(held[1].id, JOB_SECONDS).status == "completed"
    assert all(cluster.jobs.wait(j.id, JOB_SECONDS).status == "completed" for j in running)
    assert starts(history(cluster.redis, held[0].id)) == []
    assert cluster.jobs.get(held[0].id).status == "canceled"
    assert cluster.redis.zcard(HELD_PREFIX + "test.limited") == 0


def test_a_rate_limit_allows_so_many_starts_per_window(cluster: Cluster) -> None:
    cluster.pool(concurrency=3)
    batch = [{"type": "test.rated", "name": f"rated {n}", "params": {"seconds": 0}} for n in range(RATED_JOBS)]
    jobs = cluster.jobs.enqueue_many(batch)
    assert all(cluster.jobs.wait(job.id, JOB_SECONDS).status == "completed" for job in jobs)
    events = stored_events(cluster.redis)
    ids = {job.id for job in jobs}
    stamps = sorted(moment(e.job["started_at"]) for e in starts(events) if e.job_id in ids)
    assert len(stamps) == RATED_JOBS
    limit, per = RATE
    windows = [stamps[i + limit] - stamps[i] for i in range(len(stamps) - limit)]
    assert min(windows) >= per - STAMP_TOLERANCE, windows  # never limit + 1 starts within one window
    assert stamps[-1] - stamps[0] >= (RATED_JOBS // limit - 1) * per - STAMP_TOLERANCE
    assert WAITING_FOR_RATE in actions(events, ids)


RATED_BACKLOG = 500  # 100 s of starts at 5 per second
OTHER_WAIT_SECONDS = 2.0  # a job of another type waits no longer behind a rate-limited backlog (~0.05 s idle)
# A held job back at its time that finds the window still full (the start before it ran late) waits only that
# lateness: its time may fall so much short of a window after the one `limit` before it.
LATE_START_SECONDS = 0.5


def test_a_rate_limited_backlog_does_not_hold_up_other_types(cluster: Cluster) -> None:
    cluster.pool(concurrency=3)
    batch = [{"type": "test.rated", "name": f"rated {n}", "params": {"seconds": 0}} for n in range(RATED_BACKLOG)]
    cluster.jobs.enqueue_many(batch)
    wait_until(lambda: cluster.jobs.list().counts["completed"] >= 2 * RATE[0], JOB_SECONDS, "two windows of starts")
    # The held ones come back as fast as they may start, never all at once
    limit, per = RATE
    due = sorted(score for _, score in cluster.redis.zrange(SCHEDULED_KEY, 0, -1, withscores=True))
    assert len(due) > limit
    spacing = min(due[i + limit] - due[i] for i in range(len(due) - limit))
    assert spacing >= (per - LATE_START_SECONDS) * 1000, due[: 2 * limit]
    others = cluster.jobs.enqueue_many(
        [{"type": "demo.sleep", "name": f"other {n}", "params": {"seconds": 0}} for n in range(OTHER_JOBS)]
    )
    done = [cluster.jobs.wait(job.id, JOB_SECONDS) for job in others]
    waits = [moment(job.started_at) - moment(job.created_at) for job in done]
    assert max(waits) <= OTHER_WAIT_SECONDS, sorted(waits)

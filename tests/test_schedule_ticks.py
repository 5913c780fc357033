"""Schedules fired by real worker pools: two pools and an `every_seconds: 1` schedule make one job per tick, on
time; a pool killed with SIGKILL loses or doubles no tick; an upsert changes the cadence of the running pools;
ticks missed while no pool ran (and Redis restarted from its AOF) make one catch-up job."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

from jobs.model import parse_time
from scripts.harness import wait_until
from tests.bounds import JOB_SECONDS
from tests.schedule_helpers import LATE_SECONDS, Cluster, cluster_in, moment

TICKS = 6  # ticks watched per phase: several seconds of an every-second schedule
MISSED = 3.0  # seconds of ticks that go by with no pool running


def scheduled_jobs(cluster: Cluster, schedule_id: str) -> list[Any]:
    """Every job the schedule made, oldest first."""
    jobs = cluster.jobs.list(limit=200).jobs
    return sorted((job for job in jobs if job.schedule_id == schedule_id), key=lambda job: job.id)


def ticks_of(jobs: list[Any]) -> list[float]:
    return [moment(job.schedule_tick) for job in jobs]


def assert_each_tick_once(jobs: list[Any], every: float) -> None:
    """No tick twice, none missing between the first and the last, each job created within the promise."""
    ticks = ticks_of(jobs)
    doubled = [tick for tick, count in Counter(ticks).items() if count > 1]
    assert not doubled, f"ticks fired twice: {doubled}"
    gaps = [round(later - earlier, 3) for earlier, later in zip(ticks, ticks[1:], strict=False)]
    assert all(gap == every for gap in gaps), f"ticks missing or off the cadence: gaps {gaps}"
    for job in jobs:
        late = moment(job.created_at) - moment(job.schedule_tick)
        assert 0 <= late < LATE_SECONDS, f"job {job.id} created {late:.3f} s after its tick"


def test_two_pools_fire_every_tick_once_and_a_killed_pool_loses_none(tmp_path: Path) -> None:
    with cluster_in(tmp_path) as cluster:
        first = cluster.pool(concurrency=1)
        cluster.pool(concurrency=1)
        cluster.jobs.schedule("beat", "demo.noop", every_seconds=1, overlap="allow")
        wait_until(lambda: len(scheduled_jobs(cluster, "beat")) >= TICKS, JOB_SECONDS, f"{TICKS} ticks")

        os.kill(first.pid, signal.SIGKILL)  # its ticker dies wherever it was; the other pool goes on
        before = len(scheduled_jobs(cluster, "beat"))
        wait_until(lambda: len(scheduled_jobs(cluster, "beat")) >= before + TICKS, JOB_SECONDS, "ticks after")

        cluster.jobs.pause_schedule("beat")
        jobs = scheduled_jobs(cluster, "beat")
        assert_each_tick_once(jobs, 1.0)
        assert all(job.status in ("pending", "active", "completed") for job in jobs)


def test_an_upsert_changes_the_cadence_without_a_restart(tmp_path: Path) -> None:
    with cluster_in(tmp_path) as cluster:
        cluster.pool(concurrency=1)
        cluster.jobs.schedule("pace", "demo.noop", every_seconds=1, overlap="allow")
        wait_until(lambda: len(scheduled_jobs(cluster, "pace")) >= 2, JOB_SECONDS, "ticks at 1 s")
        changed = cluster.jobs.schedule("pace", "demo.noop", every_seconds=2, overlap="allow")
        since = parse_time(changed.created_at)
        assert since is not None

        def after_change() -> list[Any]:
            return [job for job in scheduled_jobs(cluster, "pace") if moment(job.schedule_tick) > since.timestamp()]

        wait_until(lambda: len(after_change()) >= 3, JOB_SECONDS, "ticks at 2 s")
        cluster.jobs.pause_schedule("pace")
        assert_each_tick_once(after_change(), 2.0)


def test_overlap_skip_waits_for_the_running_job(tmp_path: Path) -> None:
    with cluster_in(tmp_path) as cluster:
        cluster.pool(concurrency=1)
        cluster.jobs.schedule("long", "demo.sleep", every_seconds=1, params={"seconds": 2.5})
        wait_until(lambda: len(scheduled_jobs(cluster, "long")) >= 3, JOB_SECONDS, "three jobs")
        cluster.jobs.pause_schedule("long")
        jobs = scheduled_jobs(cluster, "long")
        for earlier, later in zip(jobs, jobs[1:], strict=False):
            ended = cluster.jobs.get(earlier.id).ended_at
            assert ended is not None and moment(ended) <= moment(later.created_at), "a job began while one ran"
        skipped = [
            event
            for event in cluster.redis.xrange("jobstream:events")
            if event[1][b"event"] == b"schedule-update" and b'"skipped":"overlap"' in event[1][b"data"]
        ]
        assert skipped, "no tick was skipped though each job outlasted two ticks"


def test_ticks_missed_while_every_pool_was_down_make_one_job_and_survive_a_redis_restart(tmp_path: Path) -> None:
    with cluster_in(tmp_path) as cluster:
        pool = cluster.pool(concurrency=1)
        cluster.jobs.schedule("gap", "demo.noop", every_seconds=1, overlap="allow")
        wait_until(lambda: len(scheduled_jobs(cluster, "gap")) >= 2, JOB_SECONDS, "two ticks")
        cluster.stop(pool)
        cluster.redis_server.stop()
        cluster.redis_server.start()  # same port, same directory: the AOF brings the schedule back
        before = scheduled_jobs(cluster, "gap")

        def missed_several() -> bool:
            next_run = cluster.jobs.get_schedule("gap").next_run_at
            return next_run is not None and time.time() - moment(next_run) > MISSED

        wait_until(missed_several, JOB_SECONDS, f"{MISSED} s of ticks to go by with no pool")
        cluster.pool(concurrency=1)
        wait_until(lambda: len(scheduled_jobs(cluster, "gap")) >= len(before) + 3, JOB_SECONDS, "ticks again")
        cluster.jobs.pause_schedule("gap")
        after = scheduled_jobs(cluster, "gap")[len(before) :]
        catch_up = after[0]
        ticks = ticks_of(after)
        assert ticks[0] - ticks_of(before)[-1] > MISSED, "a job per missed tick, not one for all"
        assert 0 <= moment(catch_up.created_at) - ticks[0] < 1.0, "the catch-up is not for the latest tick missed"
        assert_each_tick_once(after, 1.0)  # then the cadence, from the next tick after now

"""Delay accuracy: how late a delayed job starts after its scheduled_for, on the real pool.

Starts a private redis-server and the worker pool (`python worker.py`), then, in one invocation:
  1. baseline: immediate demo.sleep(0) jobs created one at a time on an idle pool, create → start
     (started_at − created_at);
  2. delayed: N demo.sleep(0) jobs created together, each with a random delay in [min, max] s:
     lateness = started_at − scheduled_for (a negative value would be a job started early);
  3. same moment: M jobs whose run_at is the same instant: lateness of each, which adds the pool's
     throughput to the scheduler's promptness, and the rate they started at.
Delays that come due faster than the pool runs jobs are late by the queue they make: on a loaded machine
(see the load averages printed) the pool's own rate, not the scheduler, sets the tail.
Every time is a job's own timestamp (ms, one machine's clock). Target: p99 lateness ≤ 1 s.

    python -m bench.delays --jobs 200 --min-delay 1 --max-delay 5 --baseline 100 --same-moment 200
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jobs import Jobs
from jobs.model import Job, parse_time
from scripts.harness import RedisServer, start_pool

WAIT_SECONDS = 120.0  # how long the bench waits for one job to end


def seconds(value: str | None) -> float:
    moment = parse_time(value)
    assert moment is not None
    return moment.timestamp()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, Any]:
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "min_ms": round(min(ms), 1),
        "p50_ms": round(statistics.median(ms), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(max(ms), 1),
        "early": sum(1 for v in ms if v < 0),
    }


def ended(jobs: Jobs, ids: list[str]) -> list[Job]:
    done = [jobs.wait(job_id, WAIT_SECONDS) for job_id in ids]
    failed = [job for job in done if job.status != "completed"]
    assert not failed, failed[:3]
    return done


def baseline(jobs: Jobs, samples: int) -> list[float]:
    """Create → start of immediate jobs, one at a time on an idle pool."""
    latencies = []
    for n in range(samples):
        job = jobs.enqueue("demo.sleep", name=f"now {n}", params={"seconds": 0})
        done = jobs.wait(job.id, WAIT_SECONDS)
        latencies.append(seconds(done.started_at) - seconds(done.created_at))
    return latencies


def delayed(jobs: Jobs, count: int, low: float, high: float) -> list[float]:
    """Started_at − scheduled_for of `count` jobs with random delays, created in one batch."""
    rng = random.Random(9)
    batch = [
        {"type": "demo.sleep", "name": f"later {n}", "params": {"seconds": 0}, "delay_seconds": rng.uniform(low, high)}
        for n in range(count)
    ]
    created = jobs.enqueue_many(batch)
    scheduled = {job.id: seconds(job.scheduled_for) for job in created}
    return [seconds(job.started_at) - scheduled[job.id] for job in ended(jobs, list(scheduled))]


def same_moment(jobs: Jobs, count: int, ahead: float) -> tuple[list[float], float]:
    """Started_at − scheduled_for of `count` jobs all due at one instant, and the rate they started at (the
    pool's throughput: the last of them waits for all the others)."""
    run_at = datetime.now(UTC) + timedelta(seconds=ahead)
    batch = [
        {"type": "demo.sleep", "name": f"due {n}", "params": {"seconds": 0}, "run_at": run_at} for n in range(count)
    ]
    ids = [job.id for job in jobs.enqueue_many(batch)]
    lateness = [seconds(job.started_at) - run_at.timestamp() for job in ended(jobs, ids)]
    return lateness, count / max(max(lateness) - min(lateness), 0.001)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.delays", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=200, help="delayed jobs with random delays")
    parser.add_argument("--min-delay", type=float, default=1.0)
    parser.add_argument("--max-delay", type=float, default=5.0)
    parser.add_argument("--baseline", type=int, default=100, help="immediate jobs, one at a time")
    parser.add_argument("--same-moment", type=int, default=200, help="jobs due at one instant (0: skip)")
    parser.add_argument("--workers", type=int, default=5, help="JOBSTREAM_CONCURRENCY")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="jobstream-bench-delays-"))
    redis_server = RedisServer(workdir / "redis").start()
    pool = start_pool(redis_server.url, workdir, JOBSTREAM_CONCURRENCY=str(args.workers))
    try:
        jobs = Jobs.from_url(redis_server.url)
        started = time.monotonic()
        results: dict[str, Any] = {
            "workers": args.workers,
            "load_average_before": round(os.getloadavg()[0], 2),
            "immediate_create_to_start": summary(baseline(jobs, args.baseline)),
            "delayed_start_lateness": summary(delayed(jobs, args.jobs, args.min_delay, args.max_delay)),
        }
        if args.same_moment:
            lateness, rate = same_moment(jobs, args.same_moment, args.max_delay)
            results["same_moment_start_lateness"] = summary(lateness)
            results["same_moment_starts_per_s"] = round(rate, 1)
        results["seconds"] = round(time.monotonic() - started, 1)
        results["load_average_after"] = round(os.getloadavg()[0], 2)
    finally:
        pool.stop()
        redis_server.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

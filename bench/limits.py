"""A concurrency limit at work: CPU-bound jobs limited to 2 at a time do not hold up the jobs behind them.

Starts a private redis-server and the worker pool (`python worker.py`, --workers) with the type
`bench.primes` (bench/limited_types.py: demo.primes with concurrency=2). Four runs in one invocation,
each creating --primes CPU-bound jobs first, then --sleeps demo.sleep jobs behind them:
  baseline   the sleeps alone;
  two busy   the sleeps while two long demo.sleep jobs hold two workers: what the limit's two running
             jobs cost the sleeps in workers alone, without their CPU;
  limited    bench.primes (concurrency 2) + the sleeps;
  unlimited  demo.primes (no limit) + the sleeps, for contrast: what the limit saves the sleeps.
For each: the most primes jobs active at once (replayed from the job events, in Redis's order), the
sleeps' wait (started_at − created_at) p50/p95/max, and when the last sleep and the last primes ended.

    python -m bench.limits --primes 20 --sleeps 20 --limit 50000000 --sleep-seconds 0.5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.limited_types import CONCURRENCY
from jobs import Jobs
from jobs.events import Event
from jobs.keys import EVENTS_KEY
from jobs.model import Job, parse_time
from scripts.harness import RedisServer, start_pool, wait_until

WAIT_SECONDS = 600.0


def seconds(value: str | None) -> float:
    moment = parse_time(value)
    assert moment is not None
    return moment.timestamp()


def peak_active(jobs: Jobs, ids: set[str]) -> int:
    """The most jobs of `ids` active at once, from the replay stream."""
    running: set[str] = set()
    peak = 0
    for entry_id, fields in jobs.redis.xrange(EVENTS_KEY):
        event = Event.from_entry(entry_id, fields)
        if event.job_id not in ids or event.name != "job-update":
            continue
        if json.loads(event.data)["job"]["status"] == "active":
            running.add(event.job_id)
        else:
            running.discard(event.job_id)
        peak = max(peak, len(running))
    return peak


def busy(jobs: Jobs, count: int) -> list[Job]:
    """`count` long demo.sleep jobs, once all of them run: each holds a worker until canceled."""
    blockers = [jobs.enqueue("demo.sleep", name=f"busy {n}", params={"seconds": 3600}) for n in range(count)]
    wait_until(lambda: all(jobs.get(job.id).status == "active" for job in blockers), 60, "the blockers running")
    return blockers


def run(jobs: Jobs, primes_type: str | None, args: argparse.Namespace, blockers: int = 0) -> dict[str, Any]:
    """One run: the primes (unless None), then the sleeps; their figures."""
    held = busy(jobs, blockers)
    started = time.time()
    heavy: list[Job] = []
    if primes_type:
        items = [
            {"type": primes_type, "name": f"primes {n}", "params": {"limit": args.limit}} for n in range(args.primes)
        ]
        heavy = jobs.enqueue_many(items)
    items = [
        {"type": "demo.sleep", "name": f"sleep {n}", "params": {"seconds": args.sleep_seconds}}
        for n in range(args.sleeps)
    ]
    light = jobs.enqueue_many(items)
    done = {job.id: jobs.wait(job.id, WAIT_SECONDS) for job in [*heavy, *light]}
    for job in held:
        jobs.cancel(job.id)
        jobs.wait(job.id, WAIT_SECONDS)
    assert all(job.status == "completed" for job in done.values()), [
        j for j in done.values() if j.status != "completed"
    ]
    waits = sorted(seconds(done[j.id].started_at) - seconds(done[j.id].created_at) for j in light)
    result: dict[str, Any] = {
        "sleep_wait_p50_ms": round(statistics.median(waits) * 1000),
        "sleep_wait_p95_ms": round(waits[min(len(waits) - 1, round(0.95 * (len(waits) - 1)))] * 1000),
        "sleep_wait_max_ms": round(waits[-1] * 1000),
        "last_sleep_ended_s": round(max(seconds(done[j.id].ended_at) for j in light) - started, 2),
    }
    if heavy:
        ids = {job.id for job in heavy}
        runs = [seconds(done[i].ended_at) - seconds(done[i].started_at) for i in ids]
        result.update(
            primes_peak_active=peak_active(jobs, ids),
            primes_run_p50_ms=round(statistics.median(runs) * 1000),
            last_primes_ended_s=round(max(seconds(done[i].ended_at) for i in ids) - started, 2),
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.limits", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--primes", type=int, default=20, help="CPU-bound jobs")
    parser.add_argument("--sleeps", type=int, default=20, help="demo.sleep jobs created behind them")
    parser.add_argument("--limit", type=int, default=50_000_000, help="demo.primes' limit (its CPU time)")
    parser.add_argument("--sleep-seconds", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=5, help="JOBSTREAM_CONCURRENCY")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="jobstream-bench-limits-"))
    redis_server = RedisServer(workdir / "redis").start()
    env = {"JOBSTREAM_CONCURRENCY": str(args.workers), "JOBSTREAM_JOB_MODULES": "bench.limited_types"}
    pool = start_pool(redis_server.url, workdir, **env)
    try:
        jobs = Jobs.from_url(redis_server.url, job_modules=("bench.limited_types",))
        results = {
            "workers": args.workers,
            "load_average_before": round(os.getloadavg()[0], 2),
            "baseline": run(jobs, None, args),
            "two_busy": run(jobs, None, args, blockers=CONCURRENCY),
            "limited": run(jobs, "bench.primes", args),
            "unlimited": run(jobs, "demo.primes", args),
        }
    finally:
        pool.stop()
        redis_server.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

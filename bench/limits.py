"""Limits at work: jobs held back by their type's limit do not hold up the jobs of other types behind them.

Starts a private redis-server and the worker pool (`python worker.py`, --workers) with the type
`bench.primes` (bench/limited_types.py: demo.primes with concurrency=2) and `bench.rated` (demo.sleep
at 5 starts a second). Five runs in one invocation (--only picks some); the first four create
--sleeps demo.sleep jobs, in two of them behind --primes CPU-bound jobs:
  baseline   the sleeps alone;
  two busy   the sleeps while two long demo.sleep jobs hold two workers: what the limit's two running
             jobs cost the sleeps in workers alone, without their CPU;
  limited    bench.primes (concurrency 2) + the sleeps;
  unlimited  demo.primes (no limit) + the sleeps, for contrast: what the limit saves the sleeps.
For each: the most primes jobs active at once (replayed from the job events, in Redis's order), the
sleeps' wait (started_at − created_at) p50/p95/max, and when the last sleep and the last primes ended.
The fifth, rated: --rated bench.rated jobs of 0 s, then (once two windows of them have started) the
sleeps once no job waits in a queue (all held back); the sleeps' wait, the shortest time in which
rate + 1 rated jobs started (the window, or the limit was broken), how long the backlog took
against the least the rate allows, and the Lua scripts Redis ran per rated job (the sleeps' too).

    python -m bench.limits --primes 20 --sleeps 20 --limit 50000000 --sleep-seconds 0.5
    python -m bench.limits --only rated --rated 200 --sleeps 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.limited_types import CONCURRENCY, RATE
from jobs import Jobs
from jobs.model import Job, parse_time
from jobs.store.keys import EVENTS_KEY
from jobs.stream.events import Event
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
    light = sleeps(jobs, args)
    done = {job.id: jobs.wait(job.id, WAIT_SECONDS) for job in [*heavy, *light]}
    for job in held:
        jobs.cancel(job.id)
        jobs.wait(job.id, WAIT_SECONDS)
    assert all(job.status == "completed" for job in done.values()), [
        j for j in done.values() if j.status != "completed"
    ]
    result = waited([done[job.id] for job in light], started)
    if heavy:
        ids = {job.id for job in heavy}
        runs = [seconds(done[i].ended_at) - seconds(done[i].started_at) for i in ids]
        result.update(
            primes_peak_active=peak_active(jobs, ids),
            primes_run_p50_ms=round(statistics.median(runs) * 1000),
            last_primes_ended_s=round(max(seconds(done[i].ended_at) for i in ids) - started, 2),
        )
    return result


def sleeps(jobs: Jobs, args: argparse.Namespace) -> list[Job]:
    """The --sleeps demo.sleep jobs, created now."""
    items = [
        {"type": "demo.sleep", "name": f"sleep {n}", "params": {"seconds": args.sleep_seconds}}
        for n in range(args.sleeps)
    ]
    return jobs.enqueue_many(items)


def waited(light: list[Job], started: float) -> dict[str, Any]:
    """The ended sleeps' wait to start, and when the last of them ended."""
    waits = sorted(seconds(job.started_at) - seconds(job.created_at) for job in light)
    return {
        "sleep_wait_p50_ms": round(statistics.median(waits) * 1000),
        "sleep_wait_p95_ms": round(waits[min(len(waits) - 1, round(0.95 * (len(waits) - 1)))] * 1000),
        "sleep_wait_max_ms": round(waits[-1] * 1000),
        "last_sleep_ended_s": round(max(seconds(job.ended_at) for job in light) - started, 2),
    }


def scripts_run(jobs: Jobs) -> int:
    """How many Lua scripts Redis has run: each change of a job, each take of one by a worker, is one."""
    return int(jobs.redis.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def run_rated(jobs: Jobs, args: argparse.Namespace) -> dict[str, Any]:
    """The rated backlog, then the sleeps once it is held back; their figures."""
    limit, per = RATE
    scripts = scripts_run(jobs)
    started = time.time()
    items = [{"type": "bench.rated", "name": f"rated {n}", "params": {"seconds": 0}} for n in range(args.rated)]
    rated = jobs.enqueue_many(items)
    wait_until(lambda: jobs.list().counts["completed"] >= 2 * limit, WAIT_SECONDS, "two windows of rated starts")
    wait_until(lambda: not any(jobs.stats()["queues"].values()), WAIT_SECONDS, "the backlog taken and held back")
    light_started = time.time()
    light = [jobs.wait(job.id, WAIT_SECONDS) for job in sleeps(jobs, args)]
    done = [jobs.wait(job.id, WAIT_SECONDS) for job in rated]
    assert all(job.status == "completed" for job in [*done, *light])
    stamps = sorted(seconds(job.started_at) for job in done)
    spacing = min(stamps[i + limit] - stamps[i] for i in range(len(stamps) - limit))
    return {
        **waited(light, light_started),
        "rated_least_span_of_rate_plus_1_starts_ms": round(spacing * 1000),
        "rated_backlog_s": round(stamps[-1] - started, 2),
        "rated_backlog_allowed_s": round((args.rated // limit - 1) * per, 2),
        "scripts_per_rated_job": round((scripts_run(jobs) - scripts) / args.rated, 1),
    }


RUNS: dict[str, Callable[[Jobs, argparse.Namespace], dict[str, Any]]] = {
    "baseline": lambda jobs, args: run(jobs, None, args),
    "two_busy": lambda jobs, args: run(jobs, None, args, blockers=CONCURRENCY),
    "limited": lambda jobs, args: run(jobs, "bench.primes", args),
    "unlimited": lambda jobs, args: run(jobs, "demo.primes", args),
    "rated": run_rated,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.limits", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--primes", type=int, default=20, help="CPU-bound jobs")
    parser.add_argument("--sleeps", type=int, default=20, help="demo.sleep jobs created behind them")
    parser.add_argument("--limit", type=int, default=50_000_000, help="demo.primes' limit (its CPU time)")
    parser.add_argument("--sleep-seconds", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=5, help="JOBSTREAM_CONCURRENCY")
    parser.add_argument("--only", action="append", choices=list(RUNS), help="this run only (repeatable)")
    parser.add_argument("--rated", type=int, default=200, help="bench.rated jobs of the rated run (5 a second)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="jobstream-bench-limits-"))
    redis_server = RedisServer(workdir / "redis").start()
    env = {"JOBSTREAM_CONCURRENCY": str(args.workers), "JOBSTREAM_JOB_MODULES": "bench.limited_types"}
    pool = start_pool(redis_server.url, workdir, **env)
    try:
        jobs = Jobs.from_url(redis_server.url, job_modules=("bench.limited_types",))
        results: dict[str, Any] = {"workers": args.workers, "load_average_before": round(os.getloadavg()[0], 2)}
        results.update((name, measure(jobs, args)) for name, measure in RUNS.items() if name in (args.only or RUNS))
    finally:
        pool.stop()
        redis_server.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

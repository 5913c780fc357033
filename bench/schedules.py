"""Schedule lateness: how late each tick's job is created (created_at − schedule_tick), with many schedules on
several real pools, and what a tick costs.

Starts a private redis-server and `--pools` worker pools (`python worker.py`, each with its ticker thread), then
declares `--schedules` schedules of `every_seconds: --every` (demo.noop, overlap allow) spread evenly across one
period (their created_at, and so their ticks, fall `every / schedules` apart), lets them tick for `--seconds`,
pauses them all, stops the pools and reads every job they made. It checks that no tick made two jobs and none was
skipped between a schedule's first and last, and prints the lateness percentiles, the ticks per second, the CPU
the pools' main processes (the tickers; the job workers are their children, not counted) and Redis (the job's run
included) spent per tick while they ticked, and the load average. Target (issue 19): p99 < 1 s, no duplicates.

    python -m bench.schedules --schedules 1000 --every 10 --seconds 120 --pools 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import psutil

from bench.delays import percentile, seconds
from jobs import Jobs
from scripts.harness import RedisServer, start_pool

PAGE = 200
WINDOW = 10.0  # seconds: the lateness is shown per window too, so a stall of the machine shows as one


def declare(jobs: Jobs, count: int, every: int) -> None:
    """`count` schedules, their creations (the anchors of their ticks) spread evenly over one period."""
    start = time.monotonic()
    for n in range(count):
        time.sleep(max(0.0, start + n * every / count - time.monotonic()))
        jobs.schedule(f"bench-{n:05d}", "demo.noop", every_seconds=every, overlap="allow")


def made(jobs: Jobs) -> list[tuple[str, float, float]]:
    """(schedule id, tick, created) of every job the schedules made."""
    found, cursor = [], None
    while True:
        page = jobs.list(limit=PAGE, cursor=cursor)
        found += [
            (job.schedule_id, seconds(job.schedule_tick), seconds(job.created_at))
            for job in page.jobs
            if job.schedule_id and job.schedule_tick
        ]
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def redis_cpu(jobs: Jobs) -> float:
    info: Any = jobs.redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.schedules", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--every", type=int, default=10, help="every_seconds of each schedule")
    parser.add_argument("--seconds", type=float, default=120.0, help="how long they tick")
    parser.add_argument("--pools", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="JOBSTREAM_CONCURRENCY of each pool")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="jobstream-bench-schedules-"))
    redis_server = RedisServer(workdir / "redis").start()
    env = {"JOBSTREAM_CONCURRENCY": str(args.workers), "JOBSTREAM_KEEP_ENDED_MAX": "1000000"}
    pools = []
    try:
        for n in range(args.pools):
            pools.append(start_pool(redis_server.url, workdir, name=f"pool-{n}", **env))
        jobs = Jobs.from_url(redis_server.url)
        processes = [psutil.Process(pool.pid) for pool in pools]
        load_before = os.getloadavg()[0]
        declare(jobs, args.schedules, args.every)
        cpu_before, redis_before, started = sum(cpu(p) for p in processes), redis_cpu(jobs), time.time()
        time.sleep(args.seconds)
        for schedule in jobs.schedules():
            jobs.pause_schedule(schedule.id)
        elapsed = time.time() - started
        cpu_spent, redis_spent = sum(cpu(p) for p in processes) - cpu_before, redis_cpu(jobs) - redis_before
        load_after = os.getloadavg()[0]
        for pool in pools:
            pool.stop()
        found = made(jobs)
    finally:
        for pool in pools:
            pool.stop()
        redis_server.stop()

    lateness = [created - tick for _, tick, created in found]
    doubled = sum(count - 1 for count in Counter((sid, tick) for sid, tick, _ in found).values() if count > 1)
    by_schedule: dict[str, list[float]] = defaultdict(list)
    for sid, tick, _ in found:
        by_schedule[sid].append(tick)
    missed = 0
    for ticks in by_schedule.values():
        ordered = sorted(set(ticks))
        missed += sum(round((b - a) / args.every) - 1 for a, b in zip(ordered, ordered[1:], strict=False))
    ms = [v * 1000 for v in lateness]
    windows: dict[int, list[float]] = defaultdict(list)  # the lateness of the ticks of each 10 s, to see a stall
    for _, tick, created in found:
        windows[int((tick - started) // WINDOW)].append((created - tick) * 1000)
    ticks_in_window = sum(1 for _, tick, _ in found if started <= tick <= started + elapsed)
    print(
        json.dumps(
            {
                "schedules": args.schedules,
                "every_seconds": args.every,
                "pools": args.pools,
                "workers_per_pool": args.workers,
                "seconds": round(elapsed, 1),
                "ticks": len(found),
                "ticks_measured": ticks_in_window,
                "ticks_per_s": round(ticks_in_window / elapsed, 1),
                "duplicates": doubled,
                "missed": missed,
                "lateness_ms": {
                    "p50": round(statistics.median(ms), 1),
                    "p90": round(percentile(ms, 90), 1),
                    "p99": round(percentile(ms, 99), 1),
                    "max": round(max(ms), 1),
                    "early": sum(1 for v in ms if v < 0),
                    "over_1s": sum(1 for v in ms if v > 1000),
                },
                "p99_ms_by_10s": [round(percentile(windows[w], 99)) for w in sorted(windows)],
                "ticker_cpu_ms_per_tick": round(cpu_spent * 1000 / max(ticks_in_window, 1), 3),
                "redis_cpu_ms_per_tick_with_its_job": round(redis_spent * 1000 / max(ticks_in_window, 1), 3),
                "load_average": [round(load_before, 2), round(load_after, 2)],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

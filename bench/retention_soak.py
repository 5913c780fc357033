"""Retention soak: Redis memory stays bounded however many jobs pass through.

Starts a private redis-server and the worker pool (`python worker.py`) with JOBSTREAM_KEEP_ENDED_MAX=--keep,
then pushes --jobs no-op jobs (demo.sleep, seconds 0) through it, created with Jobs.enqueue_many in batches
of --batch while at most --window wait. Redis `used_memory` (INFO memory) is read:
  - empty: before the first job;
  - at --keep jobs: creation held once --keep jobs have ended, and read when none waits or runs;
  - after: once every job ended and retention has brought the ended jobs back to --keep;
  - peak: the highest reading of a sample taken every second meanwhile (with the most ended jobs seen).
Target: after ≤ 1.5 × at --keep. Bytes per stored job: (at --keep − empty) / --keep.

    python -m bench.retention_soak --jobs 200000 --keep 10000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis

from jobs import Jobs
from jobs.model import ENDED
from jobs.store.upkeep import SWEEP_SECONDS
from scripts.harness import RedisServer, start_pool, wait_until

SETTLE_SECONDS = 120.0  # patience for the pool to finish what was created, and for retention to catch up


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def ended_count(counts: dict[str, int]) -> int:
    return sum(counts[status] for status in ENDED)


class Sampler(threading.Thread):
    """Reads used_memory and the counts every second: the peak of each."""

    def __init__(self, jobs: Jobs) -> None:
        super().__init__(daemon=True)
        self.jobs = jobs
        self.client = jobs.redis
        self.peak_memory = 0
        self.peak_ended = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(1.0):
            self.peak_memory = max(self.peak_memory, used_memory(self.client))
            self.peak_ended = max(self.peak_ended, ended_count(self.jobs.store.read.counts()))


def idle(jobs: Jobs) -> dict[str, int] | None:
    counts = jobs.store.read.counts()
    return counts if counts["pending"] == 0 and counts["active"] == 0 else None


def push(jobs: Jobs, total: int, batch: int, window: int, keep: int, progress: float) -> dict[str, Any]:
    """Create `total` jobs, at most `window` waiting at a time; once `keep` exist, hold until they ended and
    read the memory then."""
    created, at_keep = 0, None
    started = last_report = time.monotonic()
    while created < total:
        if at_keep is None and created >= keep:
            idle_counts = wait_until(lambda: idle(jobs), SETTLE_SECONDS, f"the first {keep} jobs to end")
            at_keep = {"used_memory": used_memory(jobs.redis), "ended": ended_count(idle_counts)}
        counts = jobs.store.read.counts()
        size = min(batch, total - created, keep - created if at_keep is None else batch)
        if counts["pending"] + size > window:
            time.sleep(0.05)
            continue
        items = [{"type": "demo.sleep", "name": f"soak {created + n}", "params": {"seconds": 0}} for n in range(size)]
        jobs.enqueue_many(items)
        created += size
        if time.monotonic() - last_report > progress:
            last_report = time.monotonic()
            rate = created / (last_report - started)
            print(f"{created} created, {rate:.0f}/s, {counts}", file=sys.stderr, flush=True)
    if at_keep is None:  # fewer jobs than --keep
        idle_counts = wait_until(lambda: idle(jobs), SETTLE_SECONDS, "every job to end")
        at_keep = {"used_memory": used_memory(jobs.redis), "ended": ended_count(idle_counts)}
    return {"created": created, "at_keep": at_keep}


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.retention_soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=200_000)
    parser.add_argument("--keep", type=int, default=10_000, help="JOBSTREAM_KEEP_ENDED_MAX")
    parser.add_argument("--batch", type=int, default=500, help="jobs per enqueue_many")
    parser.add_argument("--window", type=int, default=2_000, help="at most this many jobs waiting")
    parser.add_argument("--workers", type=int, default=5, help="JOBSTREAM_CONCURRENCY")
    parser.add_argument("--progress", type=float, default=15.0, help="seconds between progress lines (stderr)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="jobstream-bench-soak-"))
    redis_server = RedisServer(workdir / "redis").start()
    env = {"JOBSTREAM_CONCURRENCY": str(args.workers), "JOBSTREAM_KEEP_ENDED_MAX": str(args.keep)}
    pool = start_pool(redis_server.url, workdir, **env)
    jobs = Jobs.from_url(redis_server.url)
    sampler = Sampler(jobs)
    try:
        load = os.getloadavg()[0]
        empty = used_memory(jobs.redis)
        sampler.start()
        started = time.monotonic()
        pushed = push(jobs, args.jobs, args.batch, args.window, args.keep, args.progress)
        wait_until(lambda: idle(jobs), SETTLE_SECONDS, "every job to end")
        drained = time.monotonic() - started
        trimmed = wait_until(
            lambda: (c := jobs.store.read.counts()) and ended_count(c) <= args.keep and c,
            SETTLE_SECONDS + 2 * SWEEP_SECONDS,
            "retention to trim to --keep",
        )
        after = used_memory(jobs.redis)
        sampler.stopping.set()
        sampler.join()
        at_keep = pushed["at_keep"]
        result = {
            "jobs": args.jobs,
            "keep_ended_max": args.keep,
            "workers": args.workers,
            "load_average_before": round(load, 2),
            "seconds": round(time.monotonic() - started, 1),
            "jobs_per_second": round(args.jobs / drained, 1),
            "used_memory_empty": empty,
            "used_memory_at_keep": at_keep["used_memory"],
            "ended_at_keep": at_keep["ended"],
            "used_memory_after": after,
            "ended_after": ended_count(trimmed),
            "after_vs_at_keep": round(after / at_keep["used_memory"], 3),
            "bytes_per_stored_job": round((at_keep["used_memory"] - empty) / at_keep["ended"]),
            "used_memory_peak_sampled": sampler.peak_memory,
            "ended_peak_sampled": sampler.peak_ended,
            "redis_keys_after": jobs.redis.dbsize(),
        }
    finally:
        sampler.stopping.set()
        pool.stop()
        redis_server.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

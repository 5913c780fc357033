"""Workflows (issue 20): a batch of N no-op jobs as plain jobs, as (a) independent items with keys, (b) one chain
and (c) a fan-in, on the real pool, in one run. A job depends on at most 100 others (SPEC), so the issue's
999 → 1 fan-in is N − 11 parts → 10 joins (each on a tenth of the parts) → 1 final join.

Starts a private redis-server and the worker pool (`python worker.py`, --workers), then for each shape, one after
the other on the idle pool (repeated --rounds times, shapes interleaved; medians printed):
  create    the wall time of the one `Jobs.enqueue_many` call (one transaction) that creates the batch;
  last end  from the start of that call to the ended_at of the batch's last job (its own timestamp);
  release   for each job that waited (chain: every link but the first; fan-in: the last job), how long after the
            end of its last parent it was released (the event that emptied its `waiting_for`) and it started
            (started_at − the parent's ended_at, both the jobs' own ms timestamps on one machine's clock).
Also Redis's own time in scripts per job over each shape (INFO commandstats `evalsha` usec / jobs).
Targets: create within 2x of independent jobs; release ≤ 5 ms after the last parent ends (p99).

    python -m bench.workflows --jobs 1000 --rounds 3 --workers 5
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

import redis

from jobs import Jobs
from jobs.model import Job, parse_time
from scripts.harness import RedisServer, start_pool, wait_until
from tests.api_helpers import stored_events

WAIT_SECONDS = 300.0  # the longest a batch may take to end
NOOP = {"type": "demo.noop"}
JOINS = 10  # the fan-in's middle layer: 1,000 jobs' parts in tenths of at most 100


def plain(count: int) -> list[dict[str, Any]]:
    return [{**NOOP, "name": f"plain {n}"} for n in range(count)]


def independent(count: int) -> list[dict[str, Any]]:
    return [{**NOOP, "name": f"independent {n}", "key": f"k{n}"} for n in range(count)]


def chain(count: int) -> list[dict[str, Any]]:
    links = [{**NOOP, "name": f"link {n}", "key": f"k{n}"} for n in range(count)]
    return [{**link, "depends_on": [f"k{n - 1}"]} if n else link for n, link in enumerate(links)]


def fan_in(count: int) -> list[dict[str, Any]]:
    parts = [{**NOOP, "name": f"part {n}", "key": f"k{n}"} for n in range(count - JOINS - 1)]
    joins = [
        {**NOOP, "name": f"join {j}", "key": f"j{j}", "depends_on": [p["key"] for p in parts[j::JOINS]]}
        for j in range(JOINS)
    ]
    return [*parts, *joins, {**NOOP, "name": "fan-in", "depends_on": [j["key"] for j in joins]}]


SHAPES: dict[str, Callable[[int], list[dict[str, Any]]]] = {
    "plain": plain,
    "independent": independent,
    "chain": chain,
    "fan_in": fan_in,
}


def ms(value: str | None) -> float:
    moment = parse_time(value)
    assert moment is not None
    return moment.timestamp() * 1000


def script_usec(client: redis.Redis) -> float:
    stats = client.info("commandstats")
    return float(stats.get("cmdstat_evalsha", {}).get("usec", 0))


def releases(client: redis.Redis, done: dict[str, Job]) -> tuple[list[float], list[float]]:
    """For each job that waited: (release − its last parent's end, start − its last parent's end), in ms."""
    released: dict[str, float] = {}
    for event in stored_events(client):
        job = event.data.get("job") or {}
        if event.job_id in done and (event.data.get("log") or "").startswith("released"):
            released[event.job_id] = ms(event.data["timestamp"])
            assert job.get("waiting_for") == []
    to_release, to_start = [], []
    for job_id, released_at in released.items():
        job = done[job_id]
        last_end = max(ms(done[parent].ended_at) for parent in job.depends_on)
        to_release.append(released_at - last_end)
        to_start.append(ms(job.started_at) - last_end)
    return to_release, to_start


def run_shape(jobs: Jobs, client: redis.Redis, items: list[dict[str, Any]]) -> dict[str, Any]:
    client.xtrim("jobstream:events", maxlen=0)  # this shape's events only
    before = script_usec(client)
    started = time.time()
    created = jobs.enqueue_many(items)
    create_s = time.time() - started
    done = {job.id: jobs.wait(job.id, WAIT_SECONDS) for job in reversed(created)}
    failed = [job for job in done.values() if job.status != "completed"]
    assert not failed, failed[:3]
    last_end = max(ms(job.ended_at) for job in done.values()) / 1000 - started
    to_release, to_start = releases(client, done)
    return {
        "create_ms": round(create_s * 1000, 1),
        "last_end_s": round(last_end, 3),
        "release_ms": to_release,
        "start_ms": to_start,
        "script_us_per_job": round((script_usec(client) - before) / len(items), 1),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"n": len(values), "p50": round(statistics.median(values), 2), "p99": round(percentile(values, 99), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.workflows", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per batch (at most 1000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=5, help="JOBSTREAM_CONCURRENCY")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="jobstream-bench-workflows-"))
    redis_server = RedisServer(workdir / "redis").start()
    pool = start_pool(redis_server.url, workdir, JOBSTREAM_CONCURRENCY=str(args.workers))
    client = redis_server.client()
    try:
        wait_until(lambda: len(client.smembers("rq:workers")) >= args.workers, 60, "the workers")
        jobs = Jobs.from_url(redis_server.url)
        load_before = round(os.getloadavg()[0], 2)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in SHAPES}
        for _ in range(args.rounds):
            for name, shape in SHAPES.items():
                runs[name].append(run_shape(jobs, client, shape(args.jobs)))
        results: dict[str, Any] = {"jobs": args.jobs, "workers": args.workers, "rounds": args.rounds}
        for name, rounds in runs.items():
            results[name] = {
                "create_ms": statistics.median(r["create_ms"] for r in rounds),
                "last_end_s": statistics.median(r["last_end_s"] for r in rounds),
                "script_us_per_job": statistics.median(r["script_us_per_job"] for r in rounds),
                "release_after_parent_ms": spread([v for r in rounds for v in r["release_ms"]]),
                "start_after_parent_ms": spread([v for r in rounds for v in r["start_ms"]]),
            }
        base = results["independent"]["create_ms"]
        for name in SHAPES:
            results[name]["create_vs_independent"] = round(results[name]["create_ms"] / base, 2)
        results["load_average"] = [load_before, round(os.getloadavg()[0], 2)]
    finally:
        pool.stop()
        redis_server.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

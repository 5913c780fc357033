"""`GET /api/failures` with many failed jobs (issue 22): its time at 1,000 and at 100,000 failed jobs in 20
groups, in one invocation, each on a private redis-server; the groups are kept as jobs fail, so the time should
follow the groups, not the jobs.

    python -m bench.failures --jobs 1000,100000 --groups 20 --requests 30

The failed jobs are made as a worker makes them: created with `enqueue_many`, then each ended as a failure and
the next taken in one `next.lua` call (the worker's own round trip), with errors that differ in numbers only
within a group. The requests go through the Flask app (its test client: no HTTP server in the figure).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from app import create_app
from jobs import Jobs
from jobs.config import Settings
from jobs.store.handoff import Taken, failed
from scripts.harness import RedisServer

BATCH = 500
WORKER = "bench.1"
WARM_UP = 5


def make_failures(jobs: Jobs, count: int, groups: int) -> None:
    """`count` failed demo.noop jobs whose errors fall into `groups` groups."""
    for start in range(0, count, BATCH):
        size = min(BATCH, count - start)
        jobs.enqueue_many([{"type": "demo.noop", "name": f"job {start + i}"} for i in range(size)])
    store, ending, n = jobs.store, None, 0
    registry = store.queue.failed_job_registry.key
    while True:
        taken = store.next(WORKER, ending, take=True)[1]
        if not isinstance(taken, Taken):
            return
        job = taken.job
        stage = "".join(chr(ord("a") + int(digit)) for digit in str(n % groups))  # a word: groups differ in it
        error = f"RuntimeError: stage {stage} failed on db-{n % 97} after {n % 13}.5 s"
        ending = failed(job["id"], error, "", 1, 1, None, None, registry).counted(job["type"], job["started_at"], None)
        n += 1


def time_requests(url: str, requests: int) -> list[float]:
    """The milliseconds of each GET /api/failures."""
    app = create_app({"TESTING": True, "SETTINGS": Settings(redis_url=url)})
    client = app.test_client()
    for _ in range(WARM_UP):  # the app's first requests (imports, script loads) are not the steady figure
        client.get("/api/failures")
    took = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get("/api/failures")
        took.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", default="1000,100000", help="failed jobs per run, comma-separated")
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs")
    results: dict[int, float] = {}
    for count in (int(n) for n in args.jobs.split(",")):
        with tempfile.TemporaryDirectory() as workdir:
            server = RedisServer(Path(workdir)).start()
            try:
                jobs = Jobs.from_url(server.url)
                started = time.perf_counter()
                make_failures(jobs, count, args.groups)
                made = time.perf_counter() - started
                groups = jobs.failures()
                assert len(groups) == args.groups and sum(g["count"] for g in groups) == count, groups[:2]
                took = time_requests(server.url, args.requests)
            finally:
                server.stop()
        results[count] = statistics.median(took)
        print(
            f"{count:>7,} failed jobs in {args.groups} groups (made in {made:.1f} s): GET /api/failures "
            f"median {results[count]:.2f} ms, p95 {sorted(took)[int(len(took) * 0.95) - 1]:.2f} ms, "
            f"max {max(took):.2f} ms"
        )
    counts = sorted(results)
    if len(counts) > 1:
        print(f"ratio {counts[-1]:,} / {counts[0]:,} jobs: {results[counts[-1]] / results[counts[0]]:.2f}x")
    print(f"load average after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

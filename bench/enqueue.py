"""How fast jobs are created (issue 8): the Python API, the REST API, and plain RQ underneath.

One private redis-server (no worker: only creation is measured, each job is stored, indexed, enqueued
and its `job-update` event appended and published) and one gunicorn gevent worker. Ways, interleaved
run by run, Redis flushed before each:

  enqueue_many   Jobs.enqueue_many, batches of --batch (500): one transaction per batch
  enqueue        Jobs.enqueue, one job per call
  http           POST /api/jobs, one keep-alive connection, one request after another
  http-threads   POST /api/jobs from --threads threads, a keep-alive connection each
  rq             plain RQ 3 Queue.enqueue_many (Queue.prepare_data, JSONSerializer, a no-op function,
                 result_ttl=0), same batches: what RQ alone costs, no state, no event

Every job is a `demo.sleep` (seconds 0) with its own name. Prints jobs/s per run, the medians, the ratios
to plain RQ, and where the CPU went per job (median): this process (the client), redis-server, and the
gunicorn worker for the HTTP ways. On a busy machine the wall-clock rates drop with the load; the CPU per
job much less, so `cpu-bound` (1e6 / the sum, what one client gets from an idle machine when nothing
overlaps) is the figure to compare across runs.

    python -m bench.enqueue --jobs 5000 --single 1000 --http 1000 --repeat 5
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from jobs import Jobs
from jobs.store.keys import INDEX_KEY
from scripts.harness import RedisServer, start_web

WAYS = ("enqueue_many", "enqueue", "http", "http-threads", "rq")


def noop(seconds: float = 0) -> None:
    """The plain RQ jobs' function (never run here)."""


def body(i: int) -> dict:
    return {"type": "demo.sleep", "name": f"bench job {i}", "params": {"seconds": 0}}


def with_enqueue_many(jobs: Jobs, count: int, batch: int) -> None:
    for start in range(0, count, batch):
        jobs.enqueue_many([body(i) for i in range(start, min(count, start + batch))])


def with_enqueue(jobs: Jobs, count: int) -> None:
    for i in range(count):
        jobs.enqueue("demo.sleep", name=f"bench job {i}", params={"seconds": 0})


def post_jobs(base: str, numbers: range) -> None:
    """POST one job per number over one keep-alive connection."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        for i in numbers:
            conn.request("POST", "/api/jobs", json.dumps(body(i)), {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            assert response.status == 201, response.status
    finally:
        conn.close()


def with_http_threads(base: str, count: int, threads: int) -> None:
    per = -(-count // threads)
    workers = [
        threading.Thread(target=post_jobs, args=(base, range(t * per, min(count, (t + 1) * per))))
        for t in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def with_rq(connection: Redis, count: int, batch: int) -> None:
    queue = Queue("bench", connection=connection, serializer=JSONSerializer)
    for start in range(0, count, batch):
        queue.enqueue_many(
            [
                Queue.prepare_data(noop, kwargs={"seconds": 0}, result_ttl=0, description=f"bench job {i}")
                for i in range(start, min(count, start + batch))
            ]
        )


@dataclass(frozen=True)
class Run:
    """One measured run: jobs/s, and CPU microseconds per job in each process."""

    rate: float
    client_us: float
    redis_us: float
    web_us: float


def cpu_seconds(process: psutil.Process | None) -> float:
    """User + system CPU of `process` and its children so far (0 without one)."""
    if process is None:
        return 0.0
    total = process.cpu_times()
    children = sum(c.cpu_times().user + c.cpu_times().system for c in process.children(recursive=True))
    return total.user + total.system + children


def redis_cpu(connection: Redis) -> float:
    info = connection.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def measure(
    connection: Redis, web: psutil.Process | None, count: int, run: Callable[[], None], created: Callable[[], int]
) -> Run:
    """Rate and CPU of `run`, which must create `count` jobs on a flushed Redis."""
    connection.flushdb()
    cpu = (time.process_time(), redis_cpu(connection), cpu_seconds(web))
    started = time.perf_counter()
    run()
    elapsed = time.perf_counter() - started
    after = (time.process_time(), redis_cpu(connection), cpu_seconds(web))
    assert created() == count, f"{created()} jobs created, {count} expected"
    client, server, gunicorn = ((b - a) * 1e6 / count for a, b in zip(cpu, after, strict=True))
    return Run(count / elapsed, client, server, gunicorn)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.enqueue", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=5000, help="jobs per run through enqueue_many and plain RQ")
    parser.add_argument("--single", type=int, default=1000, help="jobs per run through enqueue, one at a time")
    parser.add_argument("--http", type=int, default=1000, help="jobs per run through POST /api/jobs")
    parser.add_argument("--batch", type=int, default=500, help="jobs per enqueue_many call")
    parser.add_argument("--threads", type=int, default=4, help="client threads of the http-threads way")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=WAYS, action="append", help="measure only these ways (repeatable)")
    args = parser.parse_args()
    ways = args.only or list(WAYS)

    workdir = Path(tempfile.mkdtemp(prefix="jobstream-bench-"))
    server = RedisServer(workdir / "redis").start()
    web = None
    try:
        connection = server.client()
        jobs = Jobs.from_url(server.url)
        gunicorn: psutil.Process | None = None
        if {"http", "http-threads"} & set(ways):
            web, base = start_web(server.url, workdir / "logs")
            gunicorn = psutil.Process(web.pid)
            post_jobs(base, range(50))  # warm up: the first requests import and connect
        with_rq(connection, args.batch, args.batch)  # warm up RQ's and our scripts and imports alike
        with_enqueue_many(jobs, args.batch, args.batch)

        def ours() -> int:
            return connection.zcard(INDEX_KEY)

        def plain() -> int:
            return connection.llen("rq:queue:bench")

        counts = {"enqueue": args.single, "http": args.http, "http-threads": args.http}
        runs: dict[str, Callable[[], None]] = {
            "enqueue_many": lambda: with_enqueue_many(jobs, args.jobs, args.batch),
            "enqueue": lambda: with_enqueue(jobs, args.single),
            "http": lambda: post_jobs(base, range(args.http)),
            "http-threads": lambda: with_http_threads(base, args.http, args.threads),
            "rq": lambda: with_rq(connection, args.jobs, args.batch),
        }
        results: dict[str, list[Run]] = {way: [] for way in ways}
        for _ in range(args.repeat):
            for way in ways:
                created = plain if way == "rq" else ours
                watched = gunicorn if way.startswith("http") else None
                results[way].append(measure(connection, watched, counts.get(way, args.jobs), runs[way], created))
    finally:
        if web is not None:
            web.stop()
        server.stop()

    report(results, counts, args.jobs)


def report(results: dict[str, list[Run]], counts: dict[str, int], default_count: int) -> None:
    def median(way: str, field: str) -> float:
        return statistics.median(getattr(run, field) for run in results[way])

    rq_rate = median("rq", "rate") if "rq" in results else None
    print(f"{'way':<13} {'jobs':>5}  {'runs (jobs/s)':<34} {'median':>7} {'vs rq':>6}", end="")
    print(f"  {'client':>7} {'redis':>6} {'web':>6} {'cpu-bound':>9}  (CPU us/job, medians; jobs/s)")
    for way, runs in results.items():
        rate = median(way, "rate")
        ratio = f"{rate / rq_rate:.2f}" if rq_rate else "-"
        cpu = [median(way, field) for field in ("client_us", "redis_us", "web_us")]
        line = f"{way:<13} {counts.get(way, default_count):>5}  {' / '.join(f'{r.rate:.0f}' for r in runs):<34}"
        print(f"{line} {rate:>7.0f} {ratio:>6}  {cpu[0]:>7.0f} {cpu[1]:>6.0f} {cpu[2]:>6.0f} {1e6 / sum(cpu):>9.0f}")
    if rq_rate and "enqueue_many" in results:
        rq_cpu = sum(median("rq", f) for f in ("client_us", "redis_us", "web_us"))
        ours_cpu = sum(median("enqueue_many", f) for f in ("client_us", "redis_us", "web_us"))
        print(
            f"plain RQ / enqueue_many: {rq_rate / median('enqueue_many', 'rate'):.2f}x in jobs/s, "
            f"{ours_cpu / rq_cpu:.2f}x in CPU per job (target: at most 2x)"
        )


if __name__ == "__main__":
    main()

"""Job lifecycle latency and throughput on the real stack.

Measures, against a connected SSE client on one gunicorn gevent worker and the real pool:
  1. POST /api/jobs → the job's first `active` event (idle pool), p50/p99;
  2. no-op jobs per second through the pool (demo.sleep seconds=0), two ways: "live", jobs created
     back to back while the pool runs, until the last `completed` event at the client; "backlog",
     the rate at which the pool drains N jobs queued while it was paused (the queue's length polled
     every 2 ms, from its first drop to empty). Baselines in the same invocation, run for run: plain
     RQ pools on the same function, RQ's default forking `Worker` and its `SimpleWorker` (no fork,
     like jobstream's worker);
  3. POST /cancel of an active job → its `canceled` event, p50/p99.

    python -m bench.lifecycle --samples 50 --noop-jobs 600
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from redis import Redis
from rq import Queue, Worker
from rq.serializers import JSONSerializer
from rq.suspension import resume, suspend

from jobs import Jobs
from jobs.config import Settings
from jobs.store.lifecycle import JobStore
from scripts.harness import ROOT, RedisServer, request, start_pool, start_web, wait_until
from tests.helpers import SSEClient, create

PLAIN_POOL = """
import sys
import jobs.types.demo  # preloaded, as RQ's docs advise, so the horses do not import it per job
from redis import Redis
from rq import SimpleWorker, Worker
from rq.serializers import JSONSerializer
from rq.worker_pool import WorkerPool
WorkerPool(["plain"], connection=Redis.from_url(sys.argv[1]), num_workers=int(sys.argv[2]),
           worker_class=SimpleWorker if sys.argv[3] == "simple" else Worker,
           serializer=JSONSerializer).start(logging_level="WARNING")
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {"p50_ms": round(statistics.median(ms), 1), "p99_ms": round(percentile(ms, 99), 1), "n": len(ms)}


def first_event(client: SSEClient, job_id: str, status: str, timeout: float = 30) -> float:
    """The receive time of the job's first event with `status`."""
    return client.wait_for(
        lambda c: next((e["at"] for e in c.updates(job_id) if e["data"]["job"]["status"] == status), None),
        timeout,
        f"{status} event",
    )


def post_to_active(base: str, client: SSEClient, samples: int) -> list[float]:
    latencies = []
    for i in range(samples):
        sent = time.time()
        job = create(base, f"latency {i}", type_="demo.sleep", seconds=0)
        latencies.append(first_event(client, job["id"], "active") - sent)
        first_event(client, job["id"], "completed")  # keep the pool idle for the next sample
    return latencies


def cancel_to_canceled(base: str, client: SSEClient, samples: int) -> list[float]:
    latencies = []
    for i in range(samples):
        job = create(base, f"cancel {i}", steps=600, step_seconds=0.05)
        first_event(client, job["id"], "active")
        sent = time.time()
        status, _, _ = request(base, "POST", f"/api/jobs/{job['id']}/cancel")
        assert status == 202, status
        latencies.append(first_event(client, job["id"], "canceled") - sent)
    return latencies


def noop_throughput(store: JobStore, client: SSEClient, jobs: int) -> tuple[float, float]:
    """The live rate (first create to the last `completed` event, pool idle before) and the backlog rate."""
    api = Jobs(store.redis, store.settings)

    def create_all() -> list[str]:
        return [api.enqueue("demo.sleep", name=f"noop {i}", params={"seconds": 0}).id for i in range(jobs)]

    started = time.time()
    ids = create_all()
    client.wait_for(lambda c: all(_ended(c, i) for i in ids), 300, "every no-op job")
    live = jobs / (max(_ended(client, i) for i in ids) - started)
    done = store.read.counts()["completed"]
    backlog = drain_rate(store.redis, store.queue.key, create_all)
    wait_until(lambda: store.read.counts()["completed"] - done >= jobs, 300, "every no-op job")
    return live, backlog


def _ended(client: SSEClient, job_id: str) -> float | None:
    return next((e["at"] for e in client.updates(job_id) if e["data"]["job"]["status"] == "completed"), None)


def drain_rate(connection: Redis, queue_key: str, enqueue: Callable[[], None]) -> float:
    """Jobs/s at which the pool empties a backlog that `enqueue` queued while the pool was paused."""
    suspend(connection)
    enqueue()
    backlog = connection.llen(queue_key)
    resume(connection)  # a paused RQ worker looks again within a second: the clock starts at the first dequeue
    while (left := connection.llen(queue_key)) == backlog:
        time.sleep(0.002)
    first = time.perf_counter()
    while connection.llen(queue_key):
        time.sleep(0.002)
    return left / (time.perf_counter() - first)


def plain_rq_throughput(redis_url: str, jobs: int, workers: int, kind: str) -> tuple[float, float]:
    """Baseline: RQ's own pool of `kind` ("fork" or "simple") workers on the same function, no events.

    Returns the live and the backlog rate."""
    connection = Redis.from_url(redis_url)
    queue = Queue("plain", connection=connection, serializer=JSONSerializer)
    pool = subprocess.Popen([sys.executable, "-c", PLAIN_POOL, redis_url, str(workers), kind], cwd=ROOT)

    def done() -> int:
        return sum(w.successful_job_count for w in Worker.all(connection=connection, queue=queue))

    def enqueue() -> None:
        for _ in range(jobs):
            queue.enqueue_call("jobs.types.demo.sleep", kwargs={"seconds": 0}, result_ttl=0)

    try:
        wait_until(lambda: len(Worker.all(connection=connection, queue=queue)) == workers, 20, "plain workers")
        before = done()
        started = time.time()
        enqueue()
        wait_until(lambda: done() - before >= jobs, 300, "every plain job")
        live = jobs / (time.time() - started)
        before = done()
        backlog = drain_rate(connection, queue.key, enqueue)
        wait_until(lambda: done() - before >= jobs, 300, "every plain job")
        return live, backlog
    finally:
        pool.terminate()
        pool.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.lifecycle", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=50, help="latency samples per measurement")
    parser.add_argument("--noop-jobs", type=int, default=600, help="jobs for the throughput runs")
    parser.add_argument("--workers", type=int, default=5, help="JOBSTREAM_CONCURRENCY")
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs of each kind (median reported)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="jobstream-bench-"))
    redis_server = RedisServer(workdir / "redis").start()
    pool = start_pool(redis_server.url, workdir, JOBSTREAM_CONCURRENCY=str(args.workers))
    web, base = start_web(redis_server.url, workdir, WEB_CONCURRENCY="1")
    client = SSEClient(base)
    try:
        results = {
            "post_to_active": summary(post_to_active(base, client, args.samples)),
            "cancel_to_canceled": summary(cancel_to_canceled(base, client, args.samples)),
        }
        settings = Settings(redis_url=redis_server.url)
        store = JobStore(redis_server.client(), settings)
        runs: dict[str, list[tuple[float, float]]] = {"jobstream": [], "rq_fork": [], "rq_simple": []}
        for _ in range(args.repeat):  # interleaved, so all see the same machine
            runs["jobstream"].append(noop_throughput(store, client, args.noop_jobs))
            runs["rq_fork"].append(plain_rq_throughput(redis_server.url, args.noop_jobs, args.workers, "fork"))
            runs["rq_simple"].append(plain_rq_throughput(redis_server.url, args.noop_jobs, args.workers, "simple"))
        for index, way in enumerate(("live", "backlog")):
            rates = {kind: [run[index] for run in kind_runs] for kind, kind_runs in runs.items()}
            medians = {kind: statistics.median(values) for kind, values in rates.items()}
            results[f"noop_jobs_per_s_{way}"] = {
                "medians": {kind: round(rate, 1) for kind, rate in medians.items()},
                "jobstream_vs_rq_fork": round(medians["jobstream"] / medians["rq_fork"], 2),
                "jobstream_vs_rq_simple": round(medians["jobstream"] / medians["rq_simple"], 2),
                "runs": {kind: [round(x, 1) for x in values] for kind, values in rates.items()},
            }
    finally:
        client.close()
        web.stop()
        pool.stop()
        redis_server.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

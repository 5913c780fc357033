"""What one RQ worker process costs per no-op job, by kind of worker (the ceiling under jobstream).

Each measurement runs in a fresh process on a private redis-server: N `jobs.types.demo.sleep(0)` jobs are
enqueued, then one worker runs them in burst mode. Kinds, interleaved run by run:

  fork       RQ's forking `Worker`, job modules imported before the fork (jobstream's first release)
  cold-fork  the same, job modules NOT imported before (each work horse imports them itself)
  simple     RQ's `SimpleWorker`: no fork, the job runs in the worker process (what jobstream does now)

    python -m bench.rq_workers --jobs 300 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the measuring subprocesses run from here

KINDS = ("fork", "cold-fork", "simple")


def measure(kind: str, count: int, url: str) -> float:
    """Jobs per second of one burst worker of `kind` (runs in this process)."""
    import logging

    from redis import Redis
    from rq import Queue, SimpleWorker, Worker
    from rq.serializers import JSONSerializer

    if kind != "cold-fork":
        import jobs.types.demo  # noqa: F401
    logging.basicConfig(level=logging.ERROR)
    connection = Redis.from_url(url)
    connection.flushdb()
    queue = Queue("bench", connection=connection, serializer=JSONSerializer)
    for _ in range(count):
        queue.enqueue_call("jobs.types.demo.sleep", kwargs={"seconds": 0}, result_ttl=0)
    worker_class = SimpleWorker if kind == "simple" else Worker
    worker = worker_class([queue], connection=connection, serializer=JSONSerializer)
    started = time.perf_counter()
    worker.work(burst=True, logging_level="ERROR")
    elapsed = time.perf_counter() - started
    assert queue.count == 0 and queue.failed_job_registry.count == 0, "not every job succeeded"
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.rq_workers", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", nargs=2, metavar=("KIND", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(measure(args.one[0], args.jobs, args.one[1]))
        return

    from scripts.harness import RedisServer

    server = RedisServer(Path(tempfile.mkdtemp(prefix="jobstream-bench-")) / "redis").start()
    rates: dict[str, list[float]] = {kind: [] for kind in KINDS}
    try:
        for _ in range(args.repeat):
            for kind in KINDS:
                out = subprocess.run(
                    [sys.executable, "-m", "bench.rq_workers", "--jobs", str(args.jobs), "--one", kind, server.url],
                    cwd=ROOT,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                rates[kind].append(float(out.strip().splitlines()[-1]))
    finally:
        server.stop()
    base = statistics.median(rates["fork"])
    print(f"{'worker':<10} {'runs (jobs/s)':<28} {'median':>8} {'vs fork':>8}")
    for kind in KINDS:
        median = statistics.median(rates[kind])
        runs = " / ".join(f"{r:.1f}" for r in rates[kind])
        print(f"{kind:<10} {runs:<28} {median:>8.1f} {median / base:>8.2f}")


if __name__ == "__main__":
    main()

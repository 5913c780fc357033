"""The cost a webhook adds per job (issue 22): the drain rate of N no-op jobs with no webhook, and with one
subscribed to `job.completed` (a fast receiver on this machine), on the same Redis and the same pool, rounds
interleaved.

Each run: the queue paused, N `demo.noop` jobs enqueued (Jobs.enqueue_many, batches of 500), the clock started at
the resume, stopped when the N-th job completed (jobstream:counts polled at 50 Hz): drain jobs/s. With the webhook,
also the seconds from that moment until the receiver has every delivery (the lag behind the jobs), and in both
the CPU of the pool's process tree (workers, the dispatcher and its senders) per job. The first run without a
webhook has no consumer group yet; later ones do (the dispatcher still reads and acknowledges every event).

    python -m bench.webhooks --jobs 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.engines import tree_cpu
from jobs.client import Jobs
from jobs.config import Settings
from jobs.connection import connect
from jobs.store.keys import COUNTS_KEY
from jobs.webhooks.registry import Webhooks
from scripts.harness import RedisServer, free_port, start_pool, wait_until

BATCH = 500  # jobs per enqueue_many
POLL_SECONDS = 0.02
DRAIN_SECONDS = 600.0


class Receiver:
    """A fast local receiver, on a thread: counts each POST and answers 204, keeping the connection open."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver (a web server behind nginx) has

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.count += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def drain(jobs: Jobs, pool_pid: int, count: int, receiver: Receiver | None) -> dict[str, float]:
    """One run: enqueue `count` no-op jobs while paused, resume, time until every one completed."""
    client = jobs.redis
    before = int(client.hget(COUNTS_KEY, "completed") or 0)
    delivered = receiver.count if receiver else 0
    jobs.pause()
    for start in range(0, count, BATCH):
        jobs.enqueue_many({"type": "demo.noop", "name": "noop"} for _ in range(start, min(count, start + BATCH)))
    cpu, started = tree_cpu(pool_pid), time.monotonic()
    jobs.resume()
    while int(client.hget(COUNTS_KEY, "completed") or 0) < before + count:
        time.sleep(POLL_SECONDS)
    seconds = time.monotonic() - started
    result = {"drain_per_second": count / seconds}
    if receiver is not None:
        wait_until(lambda: receiver.count >= delivered + count, DRAIN_SECONDS, "every delivery")
        result["delivery_lag_seconds"] = time.monotonic() - started - seconds
    result["pool_cpu_us_per_job"] = (tree_cpu(pool_pid) - cpu) / count * 1e6
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the runs and medians here")
    options = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="jobstream-bench-webhooks-"))
    server = RedisServer(workdir / "redis").start()
    receiver = Receiver()
    pool = None
    try:
        pool = start_pool(server.url, workdir / "logs", JOBSTREAM_CONCURRENCY=str(options.concurrency))
        jobs = Jobs(connect(server.url), Settings(redis_url=server.url))
        webhooks = Webhooks(jobs.redis)
        runs: dict[str, list[dict[str, float]]] = {"none": [], "webhook": []}
        for round_number in range(1, options.rounds + 1):
            for mode in runs:
                if mode == "webhook":
                    webhooks.put("bench", f"http://127.0.0.1:{receiver.port}/", ["job.completed"], None, None)
                elif webhooks.all():
                    webhooks.delete("bench")
                result = drain(jobs, pool.pid, options.jobs, receiver if mode == "webhook" else None)
                runs[mode].append(result)
                shown = json.dumps({k: round(v, 3) for k, v in result.items()})
                print(f"round {round_number} {mode:8} {shown} load {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        none, hooked = ({k: statistics.median(r[k] for r in runs[mode]) for k in runs[mode][0]} for mode in runs)
        cost = 1e6 / hooked["drain_per_second"] - 1e6 / none["drain_per_second"]
        print(f"median drain: {none['drain_per_second']:.0f} jobs/s without, {hooked['drain_per_second']:.0f} with")
        print(f"  ratio {hooked['drain_per_second'] / none['drain_per_second']:.3f}; {cost:.0f} us of wall time a job")
        print(
            f"  pool CPU {none['pool_cpu_us_per_job']:.0f} -> {hooked['pool_cpu_us_per_job']:.0f} us a job; "
            f"last delivery {hooked['delivery_lag_seconds']:.2f} s after the last job ended"
        )
        if options.json:
            options.json.parent.mkdir(parents=True, exist_ok=True)
            options.json.write_text(json.dumps({"options": vars(options) | {"json": str(options.json)}, "runs": runs}))
    finally:
        if pool is not None:
            pool.stop()
        receiver.close()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

"""The real stack for a benchmark: a private redis-server, the worker pool, one gunicorn gevent worker.

Built on the process harness the tests use (scripts/harness.py), so the benchmark starts the processes exactly as the
tests and `make run` do. Every process started here is stopped by `close()`, even after an error.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import redis

from bench import pyspy
from jobs.model import ACTIVE, PENDING
from jobs.store.keys import STATUS_PREFIX
from scripts.harness import ROOT, RedisServer, Service, request, start_pool, start_web, wait_until


class Stack:
    """One jobstream: its own Redis, 5 RQ workers, one gunicorn gevent worker in the given fan-out mode."""

    def __init__(
        self, mode: str, heartbeat: int, logdir: Path, concurrency: int = 5, root: Path = ROOT, workers: int = 1
    ) -> None:
        self.mode = mode
        self.heartbeat = heartbeat
        self.logdir = logdir
        self._exit = contextlib.ExitStack()
        self._tmp = Path(tempfile.mkdtemp(prefix="jobstream-bench-"))
        self._exit.callback(shutil.rmtree, self._tmp, True)
        try:
            self.redis_server = RedisServer(self._tmp / "redis").start()
            self._exit.callback(self.redis_server.stop)
            self.redis = self.redis_server.client()
            self.pool = self._service(start_pool(self.redis_server.url, logdir, JOBSTREAM_CONCURRENCY=str(concurrency)))
            self.web, self.base = start_web(
                self.redis_server.url,
                logdir,
                root=root,
                WEB_CONCURRENCY=str(workers),
                JOBSTREAM_FANOUT=mode,
                JOBSTREAM_HEARTBEAT_SECONDS=str(heartbeat),
            )
            self._service(self.web)
            self.workers = self._gunicorn_workers(workers)
            self.worker = self.workers[0]
        except BaseException:
            self.close()
            raise
        host, port = self.base.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)

    def _service(self, service: Service) -> Service:
        self._exit.callback(service.stop)
        return service

    def _gunicorn_workers(self, count: int) -> list[psutil.Process]:
        """The gevent workers (the arbiter's children), which serve every stream."""
        arbiter = psutil.Process(self.web.pid)
        children = wait_until(lambda: len(c := arbiter.children()) >= count and c, 20, "the gunicorn workers")
        if count == 1:
            assert self.stats()["streams"]["pid"] == children[0].pid, "the stats come from another process"
        return children

    def close(self) -> None:
        self._exit.close()

    def refresh_worker(self) -> bool:
        """Follow the arbiter to a new worker if gunicorn replaced ours (e.g. WORKER TIMEOUT); True if it did."""
        if self.worker.is_running() and self.worker.status() != psutil.STATUS_ZOMBIE:
            return False
        self.workers = self._gunicorn_workers(len(self.workers))
        self.worker = self.workers[0]
        return True

    # -- what the benchmark reads --------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        status, data, _ = request(self.base, "GET", "/api/stats")
        assert status == 200, data
        return data

    def open_streams(self) -> int:
        return self.stats()["streams"]["open"]

    def rss(self) -> int:
        try:
            return self.worker.memory_info().rss
        except psutil.Error:  # replaced by the arbiter: the new worker's
            self.refresh_worker()
            return self.worker.memory_info().rss

    def redis_clients(self) -> int:
        return int(self.redis.info("clients")["connected_clients"])

    def pubsub_clients(self) -> int:
        """Connections holding a subscription: one per stream in request mode, one per process in process mode."""
        return len(self.redis.client_list(_type="pubsub"))

    def warnings_in_log(self) -> list[str]:
        """gunicorn's complaints: a worker timeout or a traceback means the stream server choked."""
        lines = self.web.output().splitlines()
        return [line for line in lines if "WORKER TIMEOUT" in line or "Traceback" in line or "[ERROR]" in line]

    def dump_worker(self, why: str) -> Path | None:
        """py-spy dump of the worker, kept beside the logs as evidence of what it was stuck in."""
        return pyspy.dump(self.worker.pid, self.logdir / f"py-spy-dump-{why}-{int(time.time())}.txt")

    # -- jobs ------------------------------------------------------------------------------

    def create_jobs(self, count: int, steps: int, step_seconds: float) -> tuple[list[str], list[float], list[str]]:
        """POST `count` demo.web_agent jobs at once; returns their ids, how long each POST took, the errors.

        Sent together from threads, so the jobs run concurrently even when a saturated web worker answers
        late; a POST gets 120 s (the tests' helper allows 10).
        """

        def post(number: int) -> tuple[str, float]:
            body = {
                "name": f"bench {number}",
                "type": "demo.web_agent",
                "params": {"steps": steps, "step_seconds": step_seconds},
            }
            started = time.monotonic()
            connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
            try:
                connection.request("POST", "/api/jobs", json.dumps(body), {"Content-Type": "application/json"})
                response = connection.getresponse()
                data = json.loads(response.read())
            finally:
                connection.close()
            assert response.status == 201, data
            return data["job"]["id"], time.monotonic() - started

        with ThreadPoolExecutor(count) as pool:
            futures = [pool.submit(post, number) for number in range(count)]
            done, failed = [], []
            for future in futures:
                try:
                    done.append(future.result())
                except (OSError, http.client.HTTPException, AssertionError, ValueError) as exc:
                    failed.append(f"{type(exc).__name__}: {exc}")
        if failed:
            self.dump_worker("post-failed")
        return [job_id for job_id, _ in done], [took for _, took in done], failed

    def wait_ended(self, timeout: float) -> bool:
        """Wait (polling Redis, not the web worker) until no job is pending or active; False at the deadline.

        Every job in this private Redis is the benchmark's, including one whose POST never answered.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.zcard(STATUS_PREFIX + PENDING)
                pipe.zcard(STATUS_PREFIX + ACTIVE)
                if not any(pipe.execute()):
                    return True
            time.sleep(0.1)
        return False


class Probe:
    """Samples, on a thread, the gunicorn worker's RSS, Redis's client count and /healthz latency."""

    def __init__(self, stack: Stack, others: list[int], interval: float = 0.5) -> None:
        self.stack = stack
        self.others = [psutil.Process(pid) for pid in others]
        self.interval = interval
        self.rss: list[int] = []
        self.redis_clients: list[int] = []
        self.health_ms: list[float] = []
        self.health_failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="probe", daemon=True)

    def start(self) -> Probe:
        self._wall = time.monotonic()
        self._cpu = sum(_cpu_seconds(w) for w in self.stack.workers)
        self._waited = sum(_runqueue_seconds(w.pid) for w in self.stack.workers)
        self._others_cpu = sum(_cpu_seconds(p) for p in self.others)
        psutil.cpu_percent(None)
        self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        wall = time.monotonic() - self._wall
        cpu = max(0.0, sum(_cpu_seconds(w) for w in self.stack.workers) - self._cpu)  # 0 if a worker was killed
        waited = max(0.0, sum(_runqueue_seconds(w.pid) for w in self.stack.workers) - self._waited)
        others = sum(_cpu_seconds(p) for p in self.others) - self._others_cpu
        machine = psutil.cpu_percent(None)
        load = os.getloadavg()
        self._stop.set()
        self._thread.join(10)
        health = sorted(self.health_ms)
        return {
            "worker_cpu_s": round(cpu, 2),
            "worker_cpu_pct": round(100 * cpu / wall, 1),
            "worker_runqueue_pct": round(100 * waited / wall, 1),
            "clients_cpu_pct": round(100 * others / wall, 1),
            "clients_cpu_s": round(others, 2),
            "loadavg_1m": round(load[0], 2),
            "machine_cpu_pct": round(machine, 1),
            "worker_rss_mb": round(max(self.rss, default=self.stack.rss()) / 2**20, 1),
            "redis_clients_during": max(self.redis_clients, default=0),
            "healthz_p50_ms": round(health[len(health) // 2], 1) if health else None,
            "healthz_max_ms": round(health[-1], 1) if health else None,
            "healthz_failures": self.health_failures,
        }

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.rss.append(self.stack.rss())
                self.redis_clients.append(self.stack.redis_clients())
            except (psutil.Error, redis.RedisError):
                continue
            started = time.monotonic()
            try:
                request(self.stack.base, "GET", "/healthz")
            except OSError:  # 10 s without an answer: counted, as at least that long
                self.health_failures += 1
            self.health_ms.append(1000 * (time.monotonic() - started))


def _runqueue_seconds(pid: int) -> float:
    """How long the process's threads were runnable but waited for a CPU (Linux schedstat): machine contention."""
    total = 0
    for task in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(task.read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def _cpu_seconds(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system

"""`async def` jobs through the real pool: they run on an event loop in the worker, report progress (from the
tasks they spawn too), are canceled (the coroutine sees CancelledError) as fast as a sync job, time out, and
are interrupted by a shutdown; one that swallows its cancel is ended with its worker. And the workers' names."""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from runner.stopping import STOP_GRACE
from scripts.harness import RedisServer, Service, request, start_pool, start_web, wait_until
from tests.async_jobs import SAW_CANCEL
from tests.bounds import CANCEL_SECONDS, EVENT_SECONDS, JOB_SECONDS, START_SECONDS, STOP_SECONDS
from tests.helpers import OpenSSE, SSEClient, create

JOB_MODULES = "tests.async_jobs"
WORKERS = 2
ENDED = ("completed", "failed", "canceled")
WORKER_NAME = re.compile(rf"^{re.escape(socket.gethostname())}\.(\d+)$")


@dataclass
class Stack:
    redis: RedisServer
    pool: Service
    base: str


@contextlib.contextmanager
def stack_in(workdir: Path) -> Iterator[Stack]:
    """A Redis, a pool of WORKERS workers and a web server, all with the async test types; all stopped after."""
    with contextlib.ExitStack() as services:  # stopped even when a later one fails to start
        server = RedisServer(workdir / "redis").start()
        services.callback(server.stop)
        pool = start_pool(server.url, workdir, JOBSTREAM_CONCURRENCY=str(WORKERS), JOBSTREAM_JOB_MODULES=JOB_MODULES)
        services.callback(pool.stop)
        web, base = start_web(server.url, workdir, JOBSTREAM_JOB_MODULES=JOB_MODULES)
        services.callback(web.stop)
        yield Stack(server, pool, base)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with stack_in(tmp_path_factory.mktemp("async")) as stack:
        yield stack


@pytest.fixture
def idle(shared: Stack) -> Stack:
    """The shared stack with both workers registered and idle (a test may have had one ended and replaced)."""
    wait_until(lambda: all_idle(shared.base), START_SECONDS, "both workers up and idle")
    return shared


def all_idle(base: str) -> bool:
    workers = request(base, "GET", "/api/stats")[1]["workers"]
    return len(workers) == WORKERS and all(w["state"] == "idle" and w["current_job"] is None for w in workers)


def job_of(base: str, job_id: str) -> dict[str, Any]:
    status, data, _ = request(base, "GET", f"/api/jobs/{job_id}")
    assert status == 200, data
    return dict(data["job"])


def running_on(base: str, job_id: str) -> str:
    """The worker of an active job that has reported, else ""."""
    job = job_of(base, job_id)
    return str(job["worker"]) if job["status"] == "active" and job["progress"] > 0 else ""


def statuses(client: SSEClient, job_id: str) -> list[str]:
    return [e["data"]["job"]["status"] for e in client.updates(job_id)]


def worker_pid(server: RedisServer, name: str) -> int:
    return int(server.client().hget(f"rq:worker:{name}", "pid") or 0)


def exited(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_an_async_job_completes_with_its_result_and_its_progress(idle: Stack, sse: OpenSSE) -> None:
    client = sse(idle.base)
    job = create(idle.base, "async", type_="test.async_steps", steps=3)
    client.wait_for(lambda c: "completed" in statuses(c, job["id"]), JOB_SECONDS, "completed")
    seen = [(e["data"]["job"]["status"], e["data"]["job"]["progress"]) for e in client.updates(job["id"])]
    assert seen == [("pending", 0), ("active", 0), ("active", 33), ("active", 66), ("active", 99), ("completed", 100)]
    final = job_of(idle.base, job["id"])
    assert final["result"] == {"steps": 3, "async": True}
    assert WORKER_NAME.match(final["worker"]), final["worker"]
    assert final["logs"][0] == f"started on {final['worker']}"
    assert final["logs"][1:] == ["step 1/3", "step 2/3", "step 3/3 from a spawned task", "completed"]


def test_cancel_of_a_running_async_job_cancels_its_task(idle: Stack, sse: OpenSSE) -> None:
    client = sse(idle.base)
    job = create(idle.base, "awaits", type_="test.async_wait", seconds=60)
    worker = wait_until(lambda: running_on(idle.base, job["id"]), EVENT_SECONDS, "the job running")
    pid = worker_pid(idle.redis, worker)
    asked = time.monotonic()
    status, data, _ = request(idle.base, "POST", f"/api/jobs/{job['id']}/cancel")  # RQ's stop-job, to `worker`
    assert status == 202 and data["job"]["cancel_requested"] is True
    client.wait_for(lambda c: statuses(c, job["id"])[-1:] == ["canceled"], CANCEL_SECONDS, "canceled within 2 s")
    assert time.monotonic() - asked < CANCEL_SECONDS
    final = job_of(idle.base, job["id"])
    assert SAW_CANCEL in final["logs"] and final["logs"][-1] != "stopped by request: its worker process was ended"
    wait_until(lambda: all_idle(idle.base), EVENT_SECONDS, "the worker idle again")
    assert worker_pid(idle.redis, worker) == pid and not exited(pid)  # the task ended, not its worker


def test_an_async_job_that_swallows_its_cancel_is_ended_with_its_worker(idle: Stack, sse: OpenSSE) -> None:
    client = sse(idle.base)
    job = create(idle.base, "stubborn", type_="test.async_stubborn", seconds=120)
    worker = wait_until(lambda: running_on(idle.base, job["id"]), EVENT_SECONDS, "the job running")
    pid = worker_pid(idle.redis, worker)
    asked = time.monotonic()
    assert request(idle.base, "POST", f"/api/jobs/{job['id']}/cancel")[0] == 202
    client.wait_for(lambda c: statuses(c, job["id"])[-1:] == ["canceled"], STOP_SECONDS, "canceled")
    assert time.monotonic() - asked < STOP_GRACE + 3
    assert job_of(idle.base, job["id"])["logs"][-1] == "stopped by request: its worker process was ended"
    wait_until(lambda: exited(pid), EVENT_SECONDS, "the worker process ended")


def test_an_async_job_over_its_timeout_fails_and_sees_the_cancel(idle: Stack, sse: OpenSSE) -> None:
    client = sse(idle.base)
    body = {"name": "slow", "type": "test.async_wait", "params": {"seconds": 30}, "timeout_seconds": 1}
    status, data, _ = request(idle.base, "POST", "/api/jobs", body)
    assert status == 201, data
    job_id = data["job"]["id"]
    client.wait_for(lambda c: statuses(c, job_id)[-1:] == ["failed"], 1 + EVENT_SECONDS, "failed")
    final = job_of(idle.base, job_id)
    assert final["error"] == "timed out after 1 s"
    assert SAW_CANCEL in final["logs"]


def test_workers_are_named_host_dot_pid(idle: Stack) -> None:
    status, stats, _ = request(idle.base, "GET", "/api/stats")
    assert status == 200, stats
    children = {child.pid for child in psutil.Process(idle.pool.pid).children()}
    for worker in stats["workers"]:
        match = WORKER_NAME.match(worker["name"])
        assert match, worker
        assert worker["host"] == socket.gethostname()
        assert int(match[1]) == worker_pid(idle.redis, worker["name"]) and int(match[1]) in children


def test_a_shutdown_interrupts_a_running_async_job(tmp_path: Path) -> None:
    with stack_in(tmp_path) as stack:  # its own: this test stops the pool
        job = create(stack.base, "awaits", type_="test.async_wait", seconds=60)
        wait_until(lambda: running_on(stack.base, job["id"]), EVENT_SECONDS, "the job running")
        stack.pool.signal(signal.SIGTERM)
        stack.pool.process.wait(STOP_SECONDS)  # the grace is 2 s here (start_pool)
        final = job_of(stack.base, job["id"])
        assert final["status"] == "failed" and final["error"].startswith("interrupted: the worker shut down")
        assert SAW_CANCEL in final["logs"]

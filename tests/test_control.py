"""Job control and failure handling through real processes: death, timeouts, pause, clean, outages."""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from jobs.config import Settings
from jobs.store.lifecycle import JobStore
from jobs.store.orphans import ORPHAN_AFTER
from runner.pool import SWEEP_EVERY
from runner.stopping import STOP_GRACE
from runner.watch import MONITOR_INTERVAL
from scripts.harness import RedisServer, Service, request, start_pool, start_web, wait_until
from tests.bounds import EVENT_SECONDS, JOB_SECONDS, QUIET_SECONDS, START_SECONDS, STOP_SECONDS
from tests.conftest import Stack
from tests.helpers import OpenSSE, SSEClient, create

TEST_JOBS = "tests.stubborn_jobs"


@dataclass
class Private:
    redis: RedisServer
    pool: Service
    web: Service
    base: str


@pytest.fixture
def private_stack(private_redis: RedisServer, tmp_path: Path) -> Iterator[Private]:
    """A stack of the test's own (2 workers), for tests that kill, pause or stop things."""
    with contextlib.ExitStack() as services:  # stopped even when the second one fails to start
        pool = start_pool(private_redis.url, tmp_path, JOBSTREAM_CONCURRENCY="2", JOBSTREAM_JOB_MODULES=TEST_JOBS)
        services.callback(pool.stop)
        web, base = start_web(private_redis.url, tmp_path, JOBSTREAM_JOB_MODULES=TEST_JOBS)
        services.callback(web.stop)
        yield Private(private_redis, pool, web, base)


def statuses(client: SSEClient, job_id: str) -> list[str]:
    return [e["data"]["job"]["status"] for e in client.updates(job_id)]


def job_status(base: str, job_id: str) -> dict:
    return request(base, "GET", f"/api/jobs/{job_id}")[1]["job"]


def worker_pid(server: RedisServer, worker_name: str) -> int:
    return int(server.client().hget(f"rq:worker:{worker_name}", "pid"))


def exited(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def assert_pool_serves(base: str, client: SSEClient) -> None:
    """A new job still runs to the end: the pool replaced whatever it lost."""
    after = create(base, "after", steps=1, step_seconds=0)
    client.wait_for(lambda c: "completed" in statuses(c, after["id"]), JOB_SECONDS, "a job after the loss")


def worker_names(server: RedisServer) -> set[str]:
    return {key.decode().removeprefix("rq:worker:") for key in server.client().smembers("rq:workers")}


def new_workers(stack: Private, before: set[str]) -> set[str]:
    """Workers registered since `before` was taken."""
    return worker_names(stack.redis) - before


def active_on_worker(base: str, job_id: str) -> str:
    job = job_status(base, job_id)
    return job["worker"] if job["status"] == "active" and job["progress"] > 0 else ""


def start_victim(stack: Private) -> tuple[dict, str, set[str]]:
    """A long job running: the job, the worker running it, and the workers registered meanwhile."""
    job = create(stack.base, "victim", steps=600, step_seconds=0.1)
    worker = wait_until(lambda: active_on_worker(stack.base, job["id"]), EVENT_SECONDS, "the job running")
    return job, worker, worker_names(stack.redis)


# -- death ------------------------------------------------------------------------------------


def test_kill_9_of_a_worker_fails_its_job_and_the_pool_replaces_it(private_stack: Private, sse: OpenSSE) -> None:
    base = private_stack.base
    client = sse(base)
    job, worker, before = start_victim(private_stack)
    os.kill(worker_pid(private_stack.redis, worker), signal.SIGKILL)
    client.wait_for(lambda c: statuses(c, job["id"])[-1:] == ["failed"], JOB_SECONDS, "failed")
    assert job_status(base, job["id"])["error"].startswith("worker died")
    replaced = wait_until(
        lambda: worker not in worker_names(private_stack.redis) and new_workers(private_stack, before),
        START_SECONDS,
        "the dead worker unregistered and replaced",
    )
    assert len(worker_names(private_stack.redis)) == 2, replaced
    assert_pool_serves(base, client)


def test_a_hung_worker_is_ended_and_its_job_failed(private_stack: Private, sse: OpenSSE) -> None:
    """A worker that stopped responding (here SIGSTOP; in life, a C call holding the GIL) sends no heartbeat."""
    base = private_stack.base
    client = sse(base)
    job, worker, before = start_victim(private_stack)
    pid = worker_pid(private_stack.redis, worker)
    os.kill(pid, signal.SIGSTOP)
    client.wait_for(
        lambda c: statuses(c, job["id"])[-1:] == ["failed"], ORPHAN_AFTER + SWEEP_EVERY + EVENT_SECONDS, "failed"
    )
    assert job_status(base, job["id"])["error"] == f"worker died (no heartbeat for {ORPHAN_AFTER} s)"
    wait_until(lambda: exited(pid), EVENT_SECONDS, "the hung worker killed")
    wait_until(lambda: new_workers(private_stack, before), START_SECONDS, "a replacement worker")


def test_a_worker_retires_after_its_max_jobs_and_is_replaced(private_redis: RedisServer, tmp_path: Path) -> None:
    pool = start_pool(private_redis.url, tmp_path, JOBSTREAM_CONCURRENCY="1", JOBSTREAM_MAX_JOBS_PER_WORKER="2")
    web, base = start_web(private_redis.url, tmp_path)
    try:
        ids = [create(base, f"job {n}", type_="demo.sleep", seconds=0)["id"] for n in range(5)]
        wait_until(
            lambda: all(job_status(base, i)["status"] == "completed" for i in ids), JOB_SECONDS, "every job done"
        )
        runs = collections.Counter(job_status(base, i)["worker"] for i in ids)
        assert len(runs) >= 3 and max(runs.values()) <= 2, runs
    finally:
        web.stop()
        pool.stop()


def test_a_cancel_whose_stop_command_was_lost_is_found_at_the_next_heartbeat(
    private_stack: Private, sse: OpenSSE
) -> None:
    base = private_stack.base
    client = sse(base)
    job = create(base, "victim", steps=600, step_seconds=0.1)
    wait_until(lambda: active_on_worker(base, job["id"]), EVENT_SECONDS, "the job running")
    store = JobStore(private_stack.redis.client(), Settings(redis_url=private_stack.redis.url))
    assert store.scripts.change(job["id"], guard=("active",), fields={"cancel_requested": True}).ok  # no stop-job sent
    client.wait_for(lambda c: statuses(c, job["id"])[-1:] == ["canceled"], MONITOR_INTERVAL + EVENT_SECONDS, "canceled")


def test_a_job_that_swallows_its_cancel_is_ended_with_its_worker(private_stack: Private, sse: OpenSSE) -> None:
    base = private_stack.base
    client = sse(base)
    job = create(base, "stubborn", type_="test.stubborn", seconds=120)
    worker = wait_until(lambda: active_on_worker(base, job["id"]), EVENT_SECONDS, "the job running")
    pid = worker_pid(private_stack.redis, worker)
    asked = time.monotonic()
    assert request(base, "POST", f"/api/jobs/{job['id']}/cancel")[0] == 202
    client.wait_for(lambda c: statuses(c, job["id"])[-1:] == ["canceled"], STOP_SECONDS, "canceled")
    assert time.monotonic() - asked < STOP_GRACE + 3
    final = job_status(base, job["id"])
    assert final["logs"][-1] == "stopped by request: its worker process was ended"
    wait_until(lambda: exited(pid), EVENT_SECONDS, "the worker process ended")
    assert_pool_serves(base, client)


def test_a_job_that_swallows_its_timeout_fails_with_its_worker(private_stack: Private, sse: OpenSSE) -> None:
    base = private_stack.base
    client = sse(base)
    status, data, _ = request(
        base, "POST", "/api/jobs", {"name": "stubborn", "type": "test.stubborn", "timeout_seconds": 1}
    )
    assert status == 201
    client.wait_for(
        lambda c: statuses(c, data["job"]["id"])[-1:] == ["failed"], 1 + STOP_GRACE + EVENT_SECONDS, "failed"
    )
    assert job_status(base, data["job"]["id"])["error"] == "timed out after 1 s"


def test_a_job_over_its_timeout_fails_clearly(stack: Stack, sse: OpenSSE) -> None:
    base = stack.bases["request"]
    client = sse(base)
    status, data, _ = request(
        base,
        "POST",
        "/api/jobs",
        {"name": "slow", "type": "demo.sleep", "params": {"seconds": 30}, "timeout_seconds": 1},
    )
    assert status == 201
    job_id = data["job"]["id"]
    client.wait_for(
        lambda c: any(e["data"]["job"]["status"] == "failed" for e in c.updates(job_id)), EVENT_SECONDS, "failed"
    )
    assert job_status(base, job_id)["error"] == "timed out after 1 s"


def test_never_more_jobs_active_than_the_concurrency(stack: Stack, sse: OpenSSE) -> None:
    base = stack.bases["process"]
    client = sse(base)
    jobs = [create(base, f"c{i}", steps=4, step_seconds=0.1) for i in range(15)]
    ids = {j["id"] for j in jobs}
    for job in jobs:
        client.wait_for(
            lambda c, j=job: any(e["data"]["job"]["status"] == "completed" for e in c.updates(j["id"])), JOB_SECONDS
        )
    running: set[str] = set()
    peak = 0
    for event in client.updates():
        job = event["data"]["job"]
        if job["id"] not in ids:
            continue
        if job["status"] == "active":
            running.add(job["id"])
        else:
            running.discard(job["id"])
        peak = max(peak, len(running))
    assert peak == 5


# -- queue control ----------------------------------------------------------------------------


def test_pause_holds_pending_jobs_while_running_ones_finish(private_stack: Private, sse: OpenSSE) -> None:
    base = private_stack.base
    client = sse(base)
    running = create(base, "running", steps=5, step_seconds=0.2)
    wait_until(lambda: job_status(base, running["id"])["status"] == "active", EVENT_SECONDS, "running")
    assert request(base, "POST", "/api/queue/pause")[1] == {"paused": True}
    held = create(base, "held", steps=1, step_seconds=0)
    client.wait_for(
        lambda c: any(e["data"]["job"]["status"] == "completed" for e in c.updates(running["id"])), JOB_SECONDS
    )
    with pytest.raises(AssertionError):  # nothing hands the held job out while paused
        wait_until(lambda: job_status(base, held["id"])["status"] != "pending", QUIET_SECONDS, "the held job to start")
    assert request(base, "GET", "/api/stats")[1]["paused"] is True
    assert request(base, "POST", "/api/queue/resume")[1] == {"paused": False}
    client.wait_for(
        lambda c: any(e["data"]["job"]["status"] == "completed" for e in c.updates(held["id"])), JOB_SECONDS
    )


def test_clean_deletes_ended_jobs_by_status_and_age(private_stack: Private, sse: OpenSSE) -> None:
    base = private_stack.base
    done = create(base, "done", steps=1, step_seconds=0)
    failed = create(base, "failed", steps=1, step_seconds=0, fail_rate=1)
    for job, status in ((done, "completed"), (failed, "failed")):
        wait_until(lambda j=job, s=status: job_status(base, j["id"])["status"] == s, JOB_SECONDS, status)
    client = sse(base)
    assert request(base, "POST", "/api/jobs/clean", {"older_than_seconds": 3600})[1]["deleted"] == 0
    status, data, _ = request(base, "POST", "/api/jobs/clean", {"status": "completed", "older_than_seconds": 0})
    assert status == 200 and data["ids"] == [done["id"]]
    client.wait_for(lambda c: any(e["event"] == "job-removed" for e in c.events), EVENT_SECONDS, "job-removed")
    assert request(base, "GET", f"/api/jobs/{done['id']}")[0] == 404
    assert job_status(base, failed["id"])["status"] == "failed"
    assert request(base, "POST", "/api/jobs/clean", {"status": "active"})[0] == 422


def test_stats_report_counts_workers_and_throughput(private_stack: Private) -> None:
    base = private_stack.base
    finished = create(base, "quick", steps=1, step_seconds=0)
    wait_until(lambda: job_status(base, finished["id"])["status"] == "completed", JOB_SECONDS, "completed")
    busy = create(base, "busy", steps=50, step_seconds=0.1)
    wait_until(lambda: job_status(base, busy["id"])["status"] == "active", EVENT_SECONDS, "active")
    stats = wait_until(
        lambda: (
            (s := request(base, "GET", "/api/stats")[1])
            and busy["id"] in [w["current_job"] for w in s["workers"]]
            and s
        ),
        EVENT_SECONDS,
        "the busy worker in stats",
    )
    assert stats["counts"]["completed"] == 1 and stats["counts"]["active"] == 1
    assert len(stats["workers"]) == 2
    assert {w["state"] for w in stats["workers"]} <= {"busy", "idle", "started", "suspended"}
    assert stats["paused"] is False
    assert stats["ended_per_minute"][0]["count"] >= 1 and stats["jobs_per_minute"] > 0
    request(base, "POST", f"/api/jobs/{busy['id']}/cancel")


# -- shutdown and outages -----------------------------------------------------------------------


def test_sigterm_of_the_pool_finishes_short_jobs_and_marks_cut_ones(private_stack: Private) -> None:
    base = private_stack.base
    short = create(base, "short", steps=1, step_seconds=0.5)
    long = create(base, "long", steps=300, step_seconds=0.1)
    for job in (short, long):
        wait_until(lambda j=job: job_status(base, j["id"])["status"] == "active", EVENT_SECONDS, "both running")
    started = time.monotonic()
    private_stack.pool.signal(signal.SIGTERM)
    private_stack.pool.process.wait(STOP_SECONDS)
    assert time.monotonic() - started < 10  # the grace period is 2 s here
    assert job_status(base, short["id"])["status"] == "completed"
    cut = job_status(base, long["id"])
    assert cut["status"] == "failed" and cut["error"].startswith("interrupted: the worker shut down")


def test_ctrl_c_to_the_whole_pool_lets_a_running_job_finish(private_stack: Private) -> None:
    """A terminal's Ctrl-C reaches the pool and every worker, and the pool passes it on: one stop, not two."""
    base = private_stack.base
    job = create(base, "finishing", steps=1, step_seconds=1.0)
    wait_until(lambda: job_status(base, job["id"])["status"] == "active", EVENT_SECONDS, "the job running")
    os.killpg(private_stack.pool.pid, signal.SIGINT)
    private_stack.pool.process.wait(STOP_SECONDS)
    assert job_status(base, job["id"])["status"] == "completed"


def test_redis_outage_gives_503_and_everything_recovers(private_stack: Private, sse: OpenSSE) -> None:
    base = private_stack.base
    request(base, "POST", "/api/queue/pause")
    accepted = [create(base, f"accepted {i}", steps=1, step_seconds=0) for i in range(5)]
    client = sse(base)
    private_stack.redis.stop()
    started = time.monotonic()
    status, data, _ = request(base, "GET", "/api/jobs")
    assert status == 503 and data["error"]["code"] == "redis_unavailable"
    assert time.monotonic() - started < 5
    assert request(base, "GET", "/healthz")[0] == 503
    assert request(base, "POST", "/api/jobs", {"name": "x"})[0] == 503
    assert client.closed.wait(EVENT_SECONDS), "the open stream did not end"
    private_stack.redis.start()  # same port, same AOF: no accepted job is lost
    wait_until(lambda: request(base, "GET", "/healthz")[0] == 200, EVENT_SECONDS, "web recovered")
    request(base, "POST", "/api/queue/resume")
    for job in accepted:
        wait_until(lambda j=job: job_status(base, j["id"])["status"] == "completed", JOB_SECONDS, "accepted jobs run")
    again = create(base, "after the outage", steps=1, step_seconds=0)
    wait_until(lambda: job_status(base, again["id"])["status"] == "completed", JOB_SECONDS, "workers recovered")

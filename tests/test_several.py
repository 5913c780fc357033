"""Several machines on one Redis (SPEC "Parts": several web and worker machines may share one Redis), played
on this one: two gunicorn servers (one per fan-out mode) and two worker pools of five. A client on either
server sees every job's every event, wherever it was created; a cancel from either server stops a job on
either pool; a pool's killed worker fails its job over (retried, maybe on the other pool, or failed);
/api/stats lists the workers of both pools, named `<host>.<pid>`, with their host; a job that a dying
worker had taken but not begun goes back to its queue. (Two pools starting a due job exactly once is
tests/test_delays.py's.)"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from scripts.harness import Service, request, wait_until
from tests.api_helpers import stored_events
from tests.bounds import CANCEL_SECONDS, JOB_SECONDS
from tests.helpers import THREE_STEP_LIFECYCLE, OpenSSE
from tests.schedule_helpers import Cluster, cluster_in

POOL_SIZE = 5
FAST = {"steps": 3, "step_seconds": 0.1}
LONG = {"steps": 600, "step_seconds": 0.1}  # runs for a minute unless stopped
NO_WAIT = {"type": "fixed", "delay_seconds": 0, "max_delay_seconds": 0}
ENDED = ("completed", "failed", "canceled")


class Fleet:
    """One Redis, two pools, two web servers: `bases[i]` is a server, `pools[i]` a pool."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.pools = [cluster.pool(concurrency=POOL_SIZE) for _ in range(2)]
        env = {"JOBSTREAM_HEARTBEAT_SECONDS": "1"}
        self.bases = [cluster.web(JOBSTREAM_FANOUT=mode, **env) for mode in ("request", "process")]

    def pool_of(self, worker: str) -> Service:
        """The pool whose child process `worker` is."""
        (pool,) = [pool for pool in self.pools if worker in self.cluster.workers_of(pool)]
        return pool

    def all_workers_up(self) -> bool:
        return all(len(self.cluster.workers_of(pool)) == POOL_SIZE for pool in self.pools)

    def all_workers_idle(self) -> bool:
        """Every registered worker idle, as the stats show them (a worker whose job just ended may be busy still)."""
        workers = request(self.bases[0], "GET", "/api/stats")[1]["workers"]
        return all(w["state"] == "idle" and w["current_job"] is None for w in workers)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with cluster_in(Path(tmp_path_factory.mktemp("several"))) as cluster:  # stops every process, whatever failed
        yield Fleet(cluster)


@pytest.fixture
def idle(fleet: Fleet) -> Iterator[Fleet]:
    """The fleet with all ten workers registered and idle; what a test leaves running is canceled after it."""
    wait_until(fleet.all_workers_up, JOB_SECONDS, "both pools' workers")
    wait_until(fleet.all_workers_idle, JOB_SECONDS, "every worker idle")
    yield fleet
    base = fleet.bases[0]
    ids = [job["id"] for status in ("active", "pending") for job in listed(base, status)]
    if ids:
        request(base, "POST", "/api/jobs/cancel", {"ids": ids})
        wait_until(lambda: all(job_of(base, i)["status"] in ENDED for i in ids), JOB_SECONDS, "the cleanup")


def listed(base: str, status: str) -> list[dict[str, Any]]:
    return list(request(base, "GET", f"/api/jobs?status={status}&limit=200")[1]["jobs"])


def create(base: str, params: dict[str, Any], **options: Any) -> str:
    status, data, _ = request(base, "POST", "/api/jobs", {"name": "several", "params": params, **options})
    assert status == 201, data
    return str(data["job"]["id"])


def job_of(base: str, job_id: str) -> dict[str, Any]:
    status, data, _ = request(base, "GET", f"/api/jobs/{job_id}")
    assert status == 200, data
    return dict(data["job"])


def has_status(base: str, job_id: str, status: str) -> bool:
    return job_of(base, job_id)["status"] == status


def running_on(base: str, job_id: str) -> str:
    """The worker of an active job that has begun its steps, else ""."""
    job = job_of(base, job_id)
    return str(job["worker"]) if job["status"] == "active" and job["progress"] > 0 else ""


def test_a_client_on_either_server_sees_every_event_of_every_job(idle: Fleet, sse: OpenSSE) -> None:
    clients = [sse(base) for base in idle.bases]
    ids = [create(base, FAST) for base in idle.bases for _ in range(3)]  # three through each server
    for client in clients:
        client.wait_for(
            lambda c: (
                {e["data"]["job"]["id"] for e in c.updates() if e["data"]["job"]["status"] == "completed"} >= set(ids)
            ),
            JOB_SECONDS,
            "every job's end",
        )
    stored = [e.id for e in stored_events(idle.cluster.redis) if e.job_id in ids]
    for client in clients:
        got = [e for e in client.updates() if e["data"]["job"]["id"] in ids]
        assert [e["id"] for e in got] == stored  # every event once, in Redis's order, on either server
        for job_id in ids:
            lifecycle = [
                (e["data"]["job"]["status"], e["data"]["job"]["progress"])
                for e in got
                if e["data"]["job"]["id"] == job_id
            ]
            assert lifecycle == THREE_STEP_LIFECYCLE
    workers = {job_of(idle.bases[0], i)["worker"] for i in ids}
    assert all(idle.pool_of(w) in idle.pools for w in workers)


def test_a_cancel_through_either_server_stops_a_job_on_either_pool(idle: Fleet) -> None:
    ids = [create(idle.bases[n % 2], LONG) for n in range(2 * POOL_SIZE)]  # a job for every worker of both pools
    workers = {i: wait_until(lambda i=i: running_on(idle.bases[0], i), JOB_SECONDS, "every job running") for i in ids}
    by_pool = {id(pool): [i for i in ids if idle.pool_of(workers[i]) is pool] for pool in idle.pools}
    assert sorted(len(jobs) for jobs in by_pool.values()) == [POOL_SIZE, POOL_SIZE]
    chosen = [(base, jobs[n]) for jobs in by_pool.values() for n, base in enumerate(idle.bases)]
    for base, job_id in chosen:  # each server cancels one job of each pool
        status, data, _ = request(base, "POST", f"/api/jobs/{job_id}/cancel")
        assert status == 202, data
        wait_until(partial(has_status, base, job_id, "canceled"), CANCEL_SECONDS, "the stop")
    others = [i for i in ids if i not in {job_id for _, job_id in chosen}]
    assert all(job_of(idle.bases[1], i)["status"] == "active" for i in others)  # those alone, nothing else


@pytest.mark.parametrize(
    ("max_attempts", "ends"),
    [pytest.param(2, "completed", id="retried"), pytest.param(1, "failed", id="no-attempt-left")],
)
def test_a_killed_worker_fails_its_job_over(idle: Fleet, max_attempts: int, ends: str) -> None:
    base = idle.bases[max_attempts % 2]
    job_id = create(base, {"steps": 10, "step_seconds": 0.1}, max_attempts=max_attempts, backoff=NO_WAIT)
    worker = wait_until(lambda: running_on(base, job_id), JOB_SECONDS, "the job running")
    victim = idle.pool_of(worker)
    pid = int(idle.cluster.redis.hget(f"rq:worker:{worker}", "pid") or 0)
    os.kill(pid, signal.SIGKILL)  # the worker process, not its pool
    job = wait_until(lambda: (j := job_of(base, job_id))["status"] in ENDED and j, JOB_SECONDS, "its end")
    assert (job["status"], job["attempts"]) == (ends, max_attempts), job
    assert job["error"] == f"worker died (pid {pid}, exit code -9)"
    if ends == "completed":
        assert job["worker"] != worker and job["result"] == {"steps": 10, "status": "done"}
    assert victim.process.poll() is None  # the pool lives on, and replaces the worker
    wait_until(idle.all_workers_up, JOB_SECONDS, "the killed worker replaced")


def test_stats_list_the_workers_of_both_pools_with_their_host(idle: Fleet) -> None:
    expected = set().union(*(idle.cluster.workers_of(pool) for pool in idle.pools))
    assert len(expected) == 2 * POOL_SIZE
    for base in idle.bases:
        status, stats, _ = request(base, "GET", "/api/stats")
        assert status == 200, stats
        assert {w["name"] for w in stats["workers"]} == expected
        assert {w["host"] for w in stats["workers"]} == {socket.gethostname()}
        for worker in stats["workers"]:  # named <host>.<pid>, the pid of the process that runs it
            pid = int(idle.cluster.redis.hget(f"rq:worker:{worker['name']}", "pid") or 0)
            assert worker["name"] == f"{socket.gethostname()}.{pid}"
        assert all(w["state"] == "idle" and w["current_job"] is None for w in stats["workers"])

"""Workflows through real worker pools (issue 20): a chain, a fan-out/fan-in and a diamond run each job once, after
its parents, across two pools; a worker killed while a dependency runs: the dependency is retried or fails, and
its dependent follows."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from jobs import Job
from jobs.types.registry import load
from scripts.harness import wait_until
from tests.api_helpers import Event, stored_events
from tests.bounds import EVENT_SECONDS, JOB_SECONDS
from tests.schedule_helpers import JOB_MODULES, STARTED, Cluster, cluster_in

MODULES = f"{JOB_MODULES},tests.flow_jobs"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A Redis of this module's own and two pools of 2 workers each, with the test job types."""
    load(("tests.flow_jobs",))
    with cluster_in(tmp_path_factory.mktemp("workflows")) as running:
        running.pool(concurrency=2, JOBSTREAM_JOB_MODULES=MODULES)
        running.pool(concurrency=2, JOBSTREAM_JOB_MODULES=MODULES)
        yield running


def part(name: str, key: str, seconds: float = 0.2, value: int = 1, **more: Any) -> dict[str, Any]:
    return {"type": "flow.part", "name": name, "key": key, "params": {"value": value, "seconds": seconds}, **more}


def ended(cluster: Cluster, ids: list[str]) -> dict[str, Any]:
    return {job_id: cluster.jobs.wait(job_id, JOB_SECONDS) for job_id in ids}


def assert_once_after_parents(events: list[Event], parents: dict[str, list[str]]) -> None:
    """Each job of `parents` started once, and after each of its parents completed (in Redis's order)."""
    starts: dict[str, list[int]] = {}
    completions: dict[str, int] = {}
    for at, event in enumerate(events):
        if event.name != "job-update":
            continue
        if (event.data.get("log") or "").startswith(STARTED):
            starts.setdefault(event.job_id, []).append(at)
        if event.job["status"] == "completed":
            completions[event.job_id] = at
    for job_id, its_parents in parents.items():
        assert len(starts.get(job_id, [])) == 1, f"{job_id} started {len(starts.get(job_id, []))} times"
        for parent in its_parents:
            assert completions[parent] < starts[job_id][0], f"{job_id} started before {parent} completed"


def test_a_diamond_across_two_pools_runs_each_job_once_after_its_parents(cluster: Cluster) -> None:
    top, left, right, bottom = cluster.jobs.enqueue_many(
        [
            part("top", "top", value=1),
            part("left", "left", value=10, depends_on=["top"]),
            part("right", "right", value=100, depends_on=["top"]),
            {"type": "flow.total", "name": "bottom", "key": "bottom", "depends_on": ["left", "right"]},
        ]
    )
    done = ended(cluster, [top.id, left.id, right.id, bottom.id])

    assert done[bottom.id].result == {"sum": 110, "parents": sorted([left.id, right.id])}
    parents = {top.id: [], left.id: [top.id], right.id: [top.id], bottom.id: [left.id, right.id]}
    assert_once_after_parents(stored_events(cluster.redis), parents)
    workers = {done[job_id].worker for job_id in (left.id, right.id)}
    assert len(workers) == 2  # the two branches ran at once, on two workers


def test_a_fan_out_then_fan_in_adds_every_result(cluster: Cluster) -> None:
    parts = [part(f"part {n}", f"p{n}", seconds=0.05, value=n) for n in range(12)]
    created = cluster.jobs.enqueue_many(
        [*parts, {"type": "flow.total", "name": "sum", "key": "sum", "depends_on": [p["key"] for p in parts]}]
    )
    done = ended(cluster, [job.id for job in created])

    assert done[created[-1].id].result["sum"] == sum(range(12))
    assert_once_after_parents(stored_events(cluster.redis), {created[-1].id: [job.id for job in created[:-1]]})


def test_a_chain_runs_link_by_link(cluster: Cluster) -> None:
    links = [part(f"link {n}", f"l{n}", seconds=0.05, depends_on=[f"l{n - 1}"] if n else []) for n in range(5)]
    created = cluster.jobs.enqueue_many(links)
    ended(cluster, [job.id for job in created])

    parents = {job.id: [created[n - 1].id] if n else [] for n, job in enumerate(created)}
    assert_once_after_parents(stored_events(cluster.redis), parents)


def running_on(cluster: Cluster, job_id: str) -> int:
    """The pid of the worker that runs `job_id` once the job function itself runs, else 0."""
    job = cluster.jobs.get(job_id)
    if job.status != "active" or not job.worker:
        return 0
    return int(cluster.redis.hget(f"rq:worker:{job.worker}", "pid") or 0)


def killed_while_running(cluster: Cluster, parent_type: str, child_type: str) -> tuple[Job, Job]:
    """A parent of `parent_type` (running 120 s) and its child; the parent's worker killed while it runs; both
    as they ended."""
    parent = cluster.jobs.enqueue(parent_type, name="victim", params={"seconds": 120})
    child = cluster.jobs.enqueue(child_type, name="after the victim", depends_on=[parent.id])
    pid = wait_until(lambda: running_on(cluster, parent.id), EVENT_SECONDS, "the parent running")
    os.kill(pid, signal.SIGKILL)
    done = ended(cluster, [parent.id, child.id])
    return done[parent.id], done[child.id]


def test_a_dependency_whose_worker_is_killed_is_retried_and_its_dependent_follows(cluster: Cluster) -> None:
    parent, child = killed_while_running(cluster, "test.slow_first", "flow.total")  # 2 attempts, the 1st slow

    assert (parent.status, parent.attempts) == ("completed", 2)
    assert child.result == {"sum": 0, "parents": [parent.id]}
    assert_once_after_parents(stored_events(cluster.redis), {child.id: [parent.id]})


def test_a_dependency_whose_worker_is_killed_on_its_last_attempt_cancels_its_dependent(cluster: Cluster) -> None:
    parent, child = killed_while_running(cluster, "flow.part", "flow.part")  # one attempt

    assert parent.status == "failed"
    assert (child.status, child.error, child.started_at) == ("canceled", f"dependency {parent.id} failed", None)

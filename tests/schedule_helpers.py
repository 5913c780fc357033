"""Helpers of the retry, delay, retention and limit tests: a private Redis with its pools, and the replay
stream read back as the history of each job (every change of a job is one event there, in the order Redis
made them)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

import psutil
import redis

from jobs import Jobs
from jobs.model import parse_time
from scripts.harness import RedisServer, Service, start_pool, start_web, wait_until
from tests.api_helpers import Event, stored_events
from tests.bounds import START_SECONDS

JOB_MODULES = "tests.limited_jobs,tests.stubborn_jobs"
STARTED = "started on "  # the log line of a job's start (JobStore.begin)
# How late after its scheduled_for a delayed job or a next attempt may start. The promise is 1 s at p99 on an
# idle pool (bench.delays measures it: docs/BENCHMARKS.md); a test allows twice the scheduler's tick more, as
# a loaded 2-core machine may keep the scheduler thread or the worker off the CPU for that long.
LATE_SECONDS = 2.0


class Cluster:
    """A Redis of its own (AOF on), the pools and web servers started on it; `close()` stops every one of
    them, whatever failed meanwhile."""

    base = ""  # the URL of the first web server, once one runs

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.redis_server = RedisServer(workdir / "redis", appendonly=True).start()
        self.redis: redis.Redis = self.redis_server.client()
        self.jobs = Jobs.from_url(self.redis_server.url, job_modules=tuple(JOB_MODULES.split(",")))
        self._services: list[Service] = []
        self._count = 0

    def pool(self, concurrency: int = 3, **env: str) -> Service:
        """A worker pool of `concurrency` workers on this Redis, with the test job types; returns once all of
        its workers are registered (beside those of pools already running)."""
        self._count += 1
        before = len(self.redis.smembers("rq:workers"))
        environment = {"JOBSTREAM_CONCURRENCY": str(concurrency), "JOBSTREAM_JOB_MODULES": JOB_MODULES, **env}
        service = start_pool(self.redis_server.url, self.workdir / "logs", name=f"pool-{self._count}", **environment)
        self._services.append(service)
        wait_until(
            lambda: len(self.redis.smembers("rq:workers")) >= before + concurrency,
            START_SECONDS,
            f"the workers of pool {self._count} to register",
        )
        return service

    def workers_of(self, pool: Service) -> set[str]:
        """The names of the workers that `pool` runs now (its child processes)."""
        pids = {child.pid for child in psutil.Process(pool.pid).children()}
        names = (key.decode().removeprefix("rq:worker:") for key in self.redis.smembers("rq:workers"))
        return {name for name in names if int(self.redis.hget(f"rq:worker:{name}", "pid") or 0) in pids}

    def web(self, **env: str) -> str:
        """gunicorn on this Redis; its base URL."""
        self._count += 1
        service, base = start_web(
            self.redis_server.url,
            self.workdir / "logs",
            name=f"web-{self._count}",
            JOBSTREAM_JOB_MODULES=JOB_MODULES,
            **env,
        )
        self._services.append(service)
        return base

    def stop(self, service: Service) -> None:
        service.stop()
        self._services.remove(service)

    def close(self) -> None:
        for service in reversed(self._services):
            with contextlib.suppress(Exception):
                service.stop()
        self._services.clear()
        self.redis_server.stop()


@contextlib.contextmanager
def cluster_in(workdir: Path) -> Iterator[Cluster]:
    running = Cluster(workdir)
    try:
        yield running
    finally:
        running.close()


# -- a job's history, from the replay stream ------------------------------------------------------------


def history(client: redis.Redis, job_id: str) -> list[Event]:
    """Every event of one job, oldest first."""
    return [e for e in stored_events(client) if e.job_id == job_id]


def updates(events: Iterable[Event], ids: Iterable[str] | None = None) -> list[Event]:
    wanted = None if ids is None else set(ids)
    return [e for e in events if e.name == "job-update" and (wanted is None or e.job_id in wanted)]


def starts(events: Iterable[Event]) -> list[Event]:
    """The events in which a job became active (its begin), in order."""
    return [e for e in events if e.name == "job-update" and (e.data.get("log") or "").startswith(STARTED)]


def statuses(events: Iterable[Event]) -> list[str]:
    """The status of each update, with runs of the same status folded into one."""
    folded: list[str] = []
    for event in events:
        if event.name == "job-update" and (not folded or folded[-1] != event.job["status"]):
            folded.append(event.job["status"])
    return folded


def peak_active(events: Iterable[Event], ids: Iterable[str]) -> int:
    """The most jobs of `ids` active at once, replaying their events in Redis's order."""
    wanted, running, peak = set(ids), set(), 0
    for event in events:
        if event.name != "job-update" or event.job_id not in wanted:
            continue
        if event.job["status"] == "active":
            running.add(event.job_id)
        else:
            running.discard(event.job_id)
        peak = max(peak, len(running))
    return peak


def moment(value: str | None) -> float:
    """An API timestamp as epoch seconds."""
    parsed: datetime | None = parse_time(value)
    assert parsed is not None, "a timestamp was null"
    return parsed.timestamp()

"""Every Prometheus series of jobstream, and the exposition that GET /metrics serves.

Counters, histograms and the open-streams gauge live in the process that changes them; with
PROMETHEUS_MULTIPROC_DIR set (`make run` sets one under var/) each process writes them to its own
files there and a scrape adds them up across every gunicorn worker and every pool worker of the
machine. What describes the whole system (jobs by status, queue depth, workers) is read from Redis
at scrape time instead, so it is right however many machines share that Redis.

prometheus-client reads PROMETHEUS_MULTIPROC_DIR when it is first imported: set it before the
process starts, never at run time. A folder that does not exist yet is made here, before that import.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import redis

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
# prometheus-client opens this process's files in the folder as it is imported (a series without labels gets its
# own at once): whichever process imports the core first (`make run`, gunicorn's workers, the pool) makes it.
if os.environ.get(MULTIPROC_DIR):
    os.makedirs(os.environ[MULTIPROC_DIR], exist_ok=True)

from prometheus_client import (  # noqa: E402
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess  # noqa: E402
from prometheus_client.core import GaugeMetricFamily, Metric  # noqa: E402

from jobs.model import PRIORITIES, STATUSES  # noqa: E402

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # every name here is a classic one: the format every Prometheus reads
# Jobs run from well under a second (demo.sleep) to many minutes; waits from milliseconds to hours.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)

disable_created_metrics()  # no `_created` series beside every counter: nothing here reads them

JOBS_CREATED = Counter("jobstream_jobs_created", "Jobs created, by type", ["type"])
JOBS_ENDED = Counter("jobstream_jobs_ended", "Jobs that ended, by type and final status", ["type", "status"])
JOB_DURATION = Histogram(
    "jobstream_job_duration_seconds",
    "From a job's start to its end (any end), by type",
    ["type"],
    buckets=DURATION_BUCKETS,
)
JOB_WAIT = Histogram(
    "jobstream_job_wait_seconds",
    "From a job's creation, or the time it was scheduled for, to its start, by type",
    ["type"],
    buckets=WAIT_BUCKETS,
)
OPEN_STREAMS = Gauge("jobstream_open_streams", "Open SSE streams", multiprocess_mode="livesum")
EVENTS_PUBLISHED = Counter("jobstream_events_published", "Job events published to Redis")
EVENTS_DELIVERED = Counter("jobstream_events_delivered", "Job events written to SSE streams (replays included)")
STREAM_WRITES = Counter("jobstream_stream_writes", "Writes of job events to SSE streams; one carries all ready")
EVENTS_ROUTED = Counter(
    "jobstream_events_routed", "Process mode: live job events handed to a stream that wants them (by the job index)"
)
STREAMS_CUT_OFF = Counter(
    "jobstream_streams_cut_off", "Streams ended because their client could not keep up, by reason", ["reason"]
)
WEBHOOK_DELIVERIES = Counter(
    "jobstream_webhook_deliveries",
    "Webhook delivery attempts, by outcome: delivered, retrying (failed, tried again later), given_up",
    ["outcome"],
)

# A schedule's job is due at its tick and promised within a second of it (SPEC); a catch-up after pools were down
# is hours late.
LATENESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 30, 300, 3600)
SCHEDULE_TICKS = Counter(
    "jobstream_schedule_ticks", "Schedule ticks claimed, by outcome: fired (a job created) or skipped", ["outcome"]
)
SCHEDULE_LATENESS = Histogram(
    "jobstream_schedule_lateness_seconds",
    "From a schedule's tick to the creation of its job (a catch-up: from the latest tick missed)",
    buckets=LATENESS_BUCKETS,
)


class RedisCollector:
    """The series read from Redis at scrape time (through `stats`, i.e. Jobs.stats): jobs by status, queue
    depth by priority, workers busy and idle, paused. `jobstream_redis_up` is 0 when Redis did not answer."""

    def __init__(self, stats: Callable[[], Mapping[str, Any]]) -> None:
        self.stats = stats

    def describe(self) -> list[Metric]:
        return []  # nothing to read from Redis when the collector is registered

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("jobstream_redis_up", "1 when this scrape could read the system's state from Redis")
        try:
            stats = self.stats()
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        jobs = GaugeMetricFamily("jobstream_jobs", "Jobs stored, by status", labels=["status"])
        for status in STATUSES:
            jobs.add_metric([status], stats["counts"].get(status, 0))
        yield jobs
        depth = GaugeMetricFamily("jobstream_queue_depth", "Jobs due and waiting for a worker", labels=["priority"])
        for priority in PRIORITIES:
            depth.add_metric([priority], stats["queues"].get(priority, 0))
        yield depth
        workers = GaugeMetricFamily("jobstream_workers", "Workers registered, by state", labels=["state"])
        busy = sum(1 for worker in stats["workers"] if worker["state"] == "busy")
        workers.add_metric(["busy"], busy)
        workers.add_metric(["idle"], len(stats["workers"]) - busy)
        yield workers
        paused = GaugeMetricFamily("jobstream_queue_paused", "1 while the queue is paused")
        paused.add_metric([], 1 if stats["paused"] else 0)
        yield paused


def multiprocess() -> bool:
    """Whether this process writes its series to PROMETHEUS_MULTIPROC_DIR."""
    return bool(os.environ.get(MULTIPROC_DIR))


def exposition(stats: Callable[[], Mapping[str, Any]]) -> bytes:
    """The text a scrape gets: this machine's processes (or this process alone), then Redis's state."""
    registry = CollectorRegistry()
    if multiprocess():
        _multiprocess.MultiProcessCollector(registry)  # every process's files, the dead ones' counters included
    else:
        registry.register(REGISTRY)  # a registry collects like any collector
    registry.register(RedisCollector(stats))
    return generate_latest(registry)


def process_dead(pid: int) -> None:
    """Forget a dead process's live gauges (its open streams); its counters stay in the sum."""
    if multiprocess():
        _multiprocess.mark_process_dead(pid)

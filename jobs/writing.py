"""The write path: every change of a job is one event script, called here with its keys and header."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import redis
from rq.job import Job
from rq.results import Result

from jobs.config import Settings
from jobs.events import JOB_REMOVED, JOB_UPDATE, SNAPSHOT_FIELDS, channel
from jobs.keys import (
    ALIVE_PREFIX,
    ENDED_AT_PREFIX,
    EVENTS_KEY,
    HELD_PREFIX,
    INDEX_KEY,
    JOB_PREFIX,
    RUNNING_PREFIX,
    SCHEDULED_KEY,
    STATUS_PREFIX,
    ended_key,
    job_key,
    logs_key,
)
from jobs.metrics import EVENTS_PUBLISHED
from jobs.model import ENDED, NORMAL, STATUSES, utcnow
from jobs.queues import queues, wake_key
from jobs.reading import JobReader
from jobs.registry import JobType
from jobs.script import Script

ENDED_COUNTER_TTL = 2 * 3600  # the per-minute counters of ended jobs cover the last hour
MAX_LOGS = 1000
MAX_LOG_LINE = 4000
FAILURE_TTL = 7 * 24 * 3600  # RQ's copy of a failed job (jobstream deletes it with the job)


@dataclass(frozen=True)
class Outcome:
    """What a guarded change did: `ok`, or why not (`missing`, `conflict` with the status, `held`)."""

    result: str
    status: str = ""
    event_id: str = ""
    job: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.result == "ok"


class JobWriter(JobReader):
    """The store's plumbing: the scripts, their common header, and RQ's copy of each job."""

    def __init__(self, connection: redis.Redis, settings: Settings) -> None:
        super().__init__(connection)
        self.settings = settings
        self.queues = queues(settings.queue, connection)
        self.queue = self.queues[NORMAL]  # the one RQ's worker listing and registries are read through
        # What every script is told of where things live, encoded once; only the job, the time and the change vary.
        common = {
            "job_prefix": JOB_PREFIX,
            "status_prefix": STATUS_PREFIX,
            "ended_at_prefix": ENDED_AT_PREFIX,
            "scheduled_key": SCHEDULED_KEY,
            "held_prefix": HELD_PREFIX,
            "running_prefix": RUNNING_PREFIX,
            "alive_prefix": ALIVE_PREFIX,
            "queue_keys": {priority: queue.key for priority, queue in self.queues.items()},
            "wake_key": wake_key(settings.queue),
            "rq_job_prefix": Job.redis_job_namespace_prefix,
            "rq_results_prefix": Result.get_key(""),  # a failure's Result outlives RQ's job hash by days
            "ended": list(ENDED),
            "statuses": list(STATUSES),
            "ended_ttl": ENDED_COUNTER_TTL,
            "snapshot": list(SNAPSHOT_FIELDS),
            "max_logs": MAX_LOGS,
            "replay_max": settings.replay_events,
        }
        self._apply = Script(connection, "apply", common)
        self._begin = Script(connection, "begin", common)
        self._delete = Script(connection, "delete", common)
        self._promote = Script(connection, "promote", common)
        self._rq_registries = [
            registry.key
            for queue in self.queues.values()
            for registry in (queue.failed_job_registry, queue.canceled_job_registry, queue.finished_job_registry)
        ]

    def _change(
        self,
        job_id: str,
        *,
        mode: str = "update",
        guard: tuple[str, ...] = (),
        worker: str | None = None,
        fields: dict[str, Any],
        logs: list[str] | None = None,
        schedule_at: float | None = None,
        client: Any = None,
    ) -> Outcome:
        """Run apply.lua; inside a pipeline (`client`), queue it and return the pipeline."""
        header = self._header(job_id, JOB_UPDATE)
        header.update(mode=mode, guard=list(guard), fields=_encoded(fields), logs=_lines(logs))
        if worker:
            header["worker"] = _json(worker)
        if schedule_at is not None:
            header["schedule_at"] = int(schedule_at * 1000)
        reply = self._apply(self._keys(job_id), header, client=client)
        return reply if client is not None else _outcome(reply)

    def _header(self, job_id: str, event: str) -> dict[str, Any]:
        ts = utcnow()
        moment = {"ts": ts, "now_ms": int(time.time() * 1000), "ended_keys": {s: ended_key(s, ts[:16]) for s in ENDED}}
        return {"id": job_id, "channel": channel(job_id), "event": event, **moment}

    def _removal(self, job_id: str, keep: tuple[str, ...]) -> tuple[list[str], dict[str, Any]]:
        """The keys and header of delete.lua for `job_id`."""
        header = {**self._header(job_id, JOB_REMOVED), "keep": list(keep), "rq_registries": self._rq_registries}
        return self._keys(job_id), header

    def _keys(self, job_id: str) -> list[str]:
        return [job_key(job_id), logs_key(job_id), INDEX_KEY, EVENTS_KEY]

    def _enqueue(
        self, job_type: JobType, job_id: str, params: dict[str, Any], timeout: int, priority: str, pipe: Any
    ) -> None:
        """RQ's copy of the job, pushed on its priority's queue."""
        self.queues[priority].enqueue_call(
            func=job_type.path,
            kwargs=params,
            timeout=timeout,
            job_id=job_id,
            result_ttl=0,
            failure_ttl=FAILURE_TTL,
            description=job_type.name,
            pipeline=pipe,
        )

    def _save_for_later(
        self, job_type: JobType, job_id: str, params: dict[str, Any], timeout: int, priority: str, pipe: Any
    ) -> None:
        """RQ's copy of a job that waits in the scheduled set: saved, not queued (promote.lua queues it)."""
        queue = self.queues[priority]
        job = queue.create_job(
            job_type.path,
            kwargs=params,
            timeout=timeout,
            job_id=job_id,
            result_ttl=0,
            failure_ttl=FAILURE_TTL,
            description=job_type.name,
        )
        job.save(pipeline=pipe)
        pipe.sadd(queue.redis_queues_keys, queue.key)


def _encoded(fields: dict[str, Any]) -> dict[str, str]:
    return {name: _json(value) for name, value in fields.items()}


def _lines(logs: list[str] | None) -> list[str]:
    return [line[:MAX_LOG_LINE] for text in logs or [] for line in (text.splitlines() or [""])]


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # built once: this runs per field


def _json(value: Any) -> str:
    return _ENCODER.encode(value)


def _outcome(reply: list[Any]) -> Outcome:
    """A script's reply; each reply is read here once, and an `ok` one published one event."""
    result = reply[0].decode()
    if result != "ok":
        return Outcome(result, reply[1].decode())
    EVENTS_PUBLISHED.inc()
    job = json.loads(reply[2]) if reply[2] else None
    return Outcome(result, job["status"] if job else "", reply[1].decode(), job)

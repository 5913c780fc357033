"""The event scripts of jobs/store/lua/: every change of a job is one of them, called here with its keys and one
JSON header of named arguments, whose constant part (key prefixes, event and status names) comes from Python."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import redis
from rq.job import Job, JobStatus
from rq.results import Result

from jobs.config import Settings
from jobs.model import ACTIVE, ENDED, PENDING, STATUSES, utcnow
from jobs.store.keys import (
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
from jobs.store.lua import source
from jobs.store.queues import PriorityQueue, wake_key
from jobs.stream.events import JOB_REMOVED, JOB_UPDATE, SNAPSHOT_FIELDS, channel
from jobs.telemetry.metrics import EVENTS_PUBLISHED

PRELUDE = "common"  # the header, the event and the bookkeeping every event script shares
ENDED_COUNTER_TTL = 2 * 3600  # the per-minute counters of ended jobs cover the last hour
MAX_LOGS = 1000
MAX_LOG_LINE = 4000


class Script:
    """One registered event script behind the shared prelude: EVALSHA with the header as ARGV[1], loading
    the script when Redis lacks it. `common` holds the header's fields that never change, encoded once."""

    def __init__(self, client: redis.Redis, name: str, common: dict[str, Any] | None = None) -> None:
        self._script = client.register_script(source(PRELUDE) + "\n" + source(name))
        self._common = dumps(common or {})[1:-1]

    def __call__(self, keys: list[str], header: dict[str, Any], client: Any = None) -> Any:
        """Run the script; inside a pipeline (`client`), queue it and return the pipeline."""
        varying = dumps(header)[1:-1]
        args = ["{" + ",".join(part for part in (self._common, varying) if part) + "}"]
        return self._script(keys=keys, args=args, client=client)


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


class Scripts:
    """The event scripts of one store, each told once where things live and what the statuses are called."""

    def __init__(self, connection: redis.Redis, settings: Settings, queues: dict[str, PriorityQueue]) -> None:
        common = {
            "job_prefix": JOB_PREFIX,
            "status_prefix": STATUS_PREFIX,
            "ended_at_prefix": ENDED_AT_PREFIX,
            "scheduled_key": SCHEDULED_KEY,
            "held_prefix": HELD_PREFIX,
            "running_prefix": RUNNING_PREFIX,
            "alive_prefix": ALIVE_PREFIX,
            "queue_keys": {priority: queue.key for priority, queue in queues.items()},
            "wake_key": wake_key(settings.queue),
            "rq_job_prefix": Job.redis_job_namespace_prefix,
            "rq_results_prefix": Result.get_key(""),  # a failure's Result outlives RQ's job hash by days
            "pending": PENDING,
            "active": ACTIVE,
            "rq_queued": JobStatus.QUEUED.value,
            "ended": list(ENDED),
            "statuses": list(STATUSES),
            "ended_ttl": ENDED_COUNTER_TTL,
            "snapshot": list(SNAPSHOT_FIELDS),
            "max_logs": MAX_LOGS,
            "replay_max": settings.replay_events,
        }
        self.apply = Script(connection, "apply", common)
        self.begin = Script(connection, "begin", common)
        self.delete = Script(connection, "delete", common)
        self.promote = Script(connection, "promote", common)
        self.rq_registries = [
            registry.key
            for queue in queues.values()
            for registry in (queue.failed_job_registry, queue.canceled_job_registry, queue.finished_job_registry)
        ]

    def change(
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
    ) -> Any:
        """Run apply.lua: its Outcome; inside a pipeline (`client`), queue it and return the pipeline."""
        header = self.header(job_id, JOB_UPDATE)
        header.update(mode=mode, guard=list(guard), fields=encoded(fields), logs=_lines(logs))
        if worker:
            header["worker"] = dumps(worker)
        if schedule_at is not None:
            header["schedule_at"] = int(schedule_at * 1000)
        reply = self.apply(keys(job_id), header, client=client)
        return reply if client is not None else outcome(reply)

    def header(self, job_id: str, event: str) -> dict[str, Any]:
        """What varies per call: the job, its channel, the event and the moment."""
        ts = utcnow()
        moment = {"ts": ts, "now_ms": int(time.time() * 1000), "ended_keys": {s: ended_key(s, ts[:16]) for s in ENDED}}
        return {"id": job_id, "channel": channel(job_id), "event": event, **moment}

    def remove(self, job_id: str, keep: tuple[str, ...], client: Any = None) -> Any:
        """Run delete.lua for `job_id` unless its status is in `keep`; in a pipeline, queue it."""
        header = {**self.header(job_id, JOB_REMOVED), "keep": list(keep), "rq_registries": self.rq_registries}
        reply = self.delete(keys(job_id), header, client=client)
        return reply if client is not None else outcome(reply)


def keys(job_id: str) -> list[str]:
    """KEYS of every event script: the job's hash, its logs, the index of all jobs, the replay stream."""
    return [job_key(job_id), logs_key(job_id), INDEX_KEY, EVENTS_KEY]


def encoded(fields: dict[str, Any]) -> dict[str, str]:
    """Each field's value as the JSON the job hash stores."""
    return {name: dumps(value) for name, value in fields.items()}


def _lines(logs: list[str] | None) -> list[str]:
    return [line[:MAX_LOG_LINE] for text in logs or [] for line in (text.splitlines() or [""])]


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # built once: this runs per field


def dumps(value: Any) -> str:
    """Compact JSON, as the scripts and the job hash hold it."""
    return _ENCODER.encode(value)


def outcome(reply: list[Any]) -> Outcome:
    """A script's reply; each reply is read here once, and an `ok` one published one event."""
    result = reply[0].decode()
    if result != "ok":
        return Outcome(result, reply[1].decode())
    EVENTS_PUBLISHED.inc()
    job = json.loads(reply[2]) if reply[2] else None
    return Outcome(result, job["status"] if job else "", reply[1].decode(), job)

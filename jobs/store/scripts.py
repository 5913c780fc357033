"""The event scripts of jobs/store/lua/: every change of a job is one of them, called here with one JSON header of
named arguments, whose constant part (key names and prefixes, event and status names, the types' limits) comes
from Python.

Over 300 lines because the one constant header every script shares is declared here, beside the calls that
send it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.results import Result
from rq.suspension import WORKERS_SUSPENDED
from rq.worker import WorkerStatus

from jobs.config import Settings
from jobs.model import ACTIVE, CANCELED, COMPLETED, ENDED, FAILED, PENDING, STATUSES, utcnow
from jobs.store.keys import (
    ALIVE_PREFIX,
    COUNTS_KEY,
    DEPENDENTS_SUFFIX,
    ENDED_AT_PREFIX,
    EVENTS_KEY,
    FAILURE_GROUPS_KEY,
    FAILURE_META_KEY,
    FAILURE_PREFIX,
    HELD_PREFIX,
    INDEX_KEY,
    JOB_PREFIX,
    LOGS_SUFFIX,
    RUNNING_PREFIX,
    SCHEDULED_KEY,
    SLOT_PREFIX,
    STARTS_PREFIX,
    STATUS_PREFIX,
    TYPE_PENDING_KEY,
    TYPE_STATS_PREFIX,
    ended_key,
)
from jobs.store.lua import source
from jobs.store.queues import FAILURE_TTL, wake_key
from jobs.stream.events import CHANNEL_PREFIX, CHANNEL_SUFFIX, JOB_REMOVED, JOB_UPDATE, SNAPSHOT_FIELDS
from jobs.telemetry.metrics import EVENTS_PUBLISHED
from jobs.types.registry import JobType, job_types, type_count

PRELUDE = "common"  # the header, the event and the bookkeeping every event script shares
ENDED_COUNTER_TTL = 2 * 3600  # the per-minute counters of ended jobs cover the last hour
MAX_LOGS = 1000
MAX_LOG_LINE = 4000
TAKE_TRIES = 10  # jobs that their type's limit holds back, passed over in one take before the worker waits
# What create.lua reads of the header's constant part: a script decodes its whole header each call, and the rest
# would cost a single create more than its own commands.
CREATE_NEEDS = (
    *("job_prefix", "events_key", "replay_max", "channel_prefix", "channel_suffix", "wake_key", "counts_key"),
    *(
        "statuses",
        "pending",
        "index_key",
        "status_prefix",
        "scheduled_key",
        "type_pending_key",
        "rq_job_prefix",
        "rq_queued",
    ),
    *("rq_scheduled", "rq_queues_key"),
)


class Script:
    """One registered event script behind the shared prelude: EVALSHA with one JSON header as ARGV[1], loading
    the script when Redis lacks it. The header's constant part (`common`) comes encoded already."""

    def __init__(self, client: redis.Redis, name: str, helpers: tuple[str, ...] = ()) -> None:
        parts = (PRELUDE, *helpers, name)  # `helpers`: more shared Lua between the prelude and the script
        self._script = client.register_script("\n".join(source(part) for part in parts))
        self.loaded = False  # known to Redis: a transaction sends its hash alone

    def __call__(self, common: str, header: dict[str, Any], client: Any = None, more: list[Any] | None = None) -> Any:
        """Run the script (`more`: ARGV after the header); inside a pipeline (`client`), queue it and return the
        pipeline."""
        whole = _whole(common, header)
        return self._script(keys=[], args=[whole, *more] if more else [whole], client=client)

    def queue(self, pipe: Any, common: str, header: dict[str, Any], more: list[Any]) -> None:
        """Queue the script in transaction `pipe` by its hash alone, without redis-py's SCRIPT EXISTS before every
        transaction; the first time, redis-py's way, which loads it. Redis without it (restarted, failed over)
        fails EXEC with NoScriptError: set `loaded` False and run the transaction again."""
        if not self.loaded:
            self(common, header, pipe, more)
            self.loaded = True
            return
        pipe.evalsha(self._script.sha, 0, _whole(common, header), *more)


def _whole(common: str, header: dict[str, Any]) -> str:
    """A script's header: its constant part (encoded already) and `header`, one JSON object."""
    varying = dumps(header)[1:-1]
    return "{" + ",".join(part for part in (common, varying) if part) + "}"


@dataclass(frozen=True)
class Outcome:
    """What a guarded change did: `ok`, or why not (`missing`, `conflict` with the status, `held`); `followed`:
    the jobs that its end released or canceled, each with its own event."""

    result: str
    status: str = ""
    event_id: str = ""
    job: dict[str, Any] | None = None
    followed: tuple[dict[str, Any], ...] = ()

    @property
    def ok(self) -> bool:
        return self.result == "ok"


class Scripts:
    """The event scripts of one store, each told once where things live, what the statuses are called and what
    limits the registered job types have."""

    def __init__(self, connection: redis.Redis, settings: Settings, queues: dict[str, Queue]) -> None:
        self._fixed = {
            "job_prefix": JOB_PREFIX,
            "logs_suffix": LOGS_SUFFIX,
            "dependents_suffix": DEPENDENTS_SUFFIX,
            "index_key": INDEX_KEY,
            "events_key": EVENTS_KEY,
            "counts_key": COUNTS_KEY,
            "type_pending_key": TYPE_PENDING_KEY,
            "type_stats_prefix": TYPE_STATS_PREFIX,
            "failure_groups_key": FAILURE_GROUPS_KEY,
            "failure_meta_key": FAILURE_META_KEY,
            "failure_prefix": FAILURE_PREFIX,
            "channel_prefix": CHANNEL_PREFIX,
            "channel_suffix": CHANNEL_SUFFIX,
            "status_prefix": STATUS_PREFIX,
            "ended_at_prefix": ENDED_AT_PREFIX,
            "scheduled_key": SCHEDULED_KEY,
            "held_prefix": HELD_PREFIX,
            "running_prefix": RUNNING_PREFIX,
            "alive_prefix": ALIVE_PREFIX,
            "queue_keys": {priority: queue.key for priority, queue in queues.items()},
            "queue_order": [queue.key for queue in queues.values()],  # highest priority first
            "wake_key": wake_key(settings.queue),
            "suspended_key": WORKERS_SUSPENDED,  # RQ's pause: while it exists, no worker takes a job
            "rq_job_prefix": Job.redis_job_namespace_prefix,
            "rq_queues_key": Queue.redis_queues_keys,
            "rq_results_prefix": Result.get_key(""),  # a failure's Result outlives RQ's job hash by days
            "rq_queued": JobStatus.QUEUED.value,
            "rq_scheduled": JobStatus.SCHEDULED.value,
            "rq_deferred": JobStatus.DEFERRED.value,  # RQ's state of a job that waits for its dependencies
            "rq_failed": JobStatus.FAILED.value,
            "rq_busy": WorkerStatus.BUSY.value,
            "failure_ttl": FAILURE_TTL,
            "job_update": JOB_UPDATE,
            "pending": PENDING,
            "active": ACTIVE,
            "failed": FAILED,
            "completed": COMPLETED,
            "active_json": dumps(ACTIVE),
            "canceled_json": dumps(CANCELED),
            "ended": list(ENDED),
            "statuses": list(STATUSES),
            "ended_ttl": ENDED_COUNTER_TTL,
            "snapshot": list(SNAPSHOT_FIELDS),
            "max_logs": MAX_LOGS,
            "replay_max": settings.replay_events,
            "take_tries": TAKE_TRIES,
        }
        self._known_types = -1
        self._common = ""
        self._create_common = dumps({name: self._fixed[name] for name in CREATE_NEEDS})[1:-1]
        self._apply = Script(connection, "apply")
        self._create = Script(connection, "create")
        self._delete = Script(connection, "delete")
        self._promote = Script(connection, "promote")
        self._next = Script(connection, "next")
        self._counts = Script(connection, "counts")
        self.rq_registries = [
            registry.key
            for queue in queues.values()
            for registry in (queue.failed_job_registry, queue.canceled_job_registry, queue.finished_job_registry)
        ]

    def common(self) -> str:
        """The constant part of every header, encoded again only when a job type was registered since."""
        known = type_count()  # per script call: no sort of the types unless one was registered since
        if known != self._known_types:
            self._common = dumps({**self._fixed, "limits": limits(job_types())})[1:-1]
            if self._known_types < 0:  # this store's first change: the counters must be there before it
                self._counts(self._common, {})
            self._known_types = known
        return self._common

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
        header = self.header(job_id, JOB_UPDATE) | change(mode, guard, worker, fields, logs, schedule_at)
        reply = self._apply(self.common(), header, client=client)
        return reply if client is not None else outcome(reply)

    def create(self, batch: dict[str, Any], argv: list[Any], pipe: Any, links: dict[str, Any]) -> None:
        """Queue create.lua in transaction `pipe`: the new jobs of one batch (see creates.Batch), one event each,
        and what those with dependencies wait for (`links`: they need the whole header, plain batches a part of
        it); NoScriptError from its EXEC: call `lost()` and run the transaction again."""
        common = self.common()  # the counters are made before this store's first change
        if links:
            self._create.queue(pipe, common, {**self.header("", JOB_UPDATE), **batch, "links": links}, argv)
        else:
            self._create.queue(pipe, self._create_common, {"event": JOB_UPDATE, "ts": utcnow(), **batch}, argv)

    def lost(self) -> None:
        """Redis lost its scripts: load create.lua again on its next use."""
        self._create.loaded = False

    def header(self, job_id: str, event: str) -> dict[str, Any]:
        """What varies per call: the job, the event and the moment."""
        ts = utcnow()
        moment = {"ts": ts, "now_ms": int(time.time() * 1000), "ended_keys": {s: ended_key(s, ts[:16]) for s in ENDED}}
        return {"id": job_id, "event": event, **moment}

    def remove(self, job_id: str, keep: tuple[str, ...], client: Any = None) -> Any:
        """Run delete.lua for `job_id` unless its status is in `keep`; in a pipeline, queue it."""
        header = {**self.header(job_id, JOB_REMOVED), "keep": list(keep), "rq_registries": self.rq_registries}
        reply = self._delete(self.common(), header, client=client)
        return reply if client is not None else outcome(reply)

    def promote(self, batch: int) -> int:
        """Run promote.lua: hand up to `batch` due jobs to the workers; how many were due."""
        return int(self._promote(self.common(), {**self.header("", JOB_UPDATE), "batch": batch}))

    def next(self, done: dict[str, Any] | None, take: dict[str, Any] | None) -> list[Any]:
        """Run next.lua: end a job (`done`, a change with what becomes of RQ's copy) and take the next (`take`)."""
        header = self.header("", JOB_UPDATE)
        if done is not None:
            header["done"] = {**done, "event": JOB_UPDATE, "mode": "update"}
        if take is not None:
            header["take"] = take
        return list(self._next(self.common(), header))


def change(
    mode: str,
    guard: tuple[str, ...],
    worker: str | None,
    fields: dict[str, Any],
    logs: list[str] | None,
    schedule_at: float | None,
) -> dict[str, Any]:
    """A change as the scripts take it (see common.lua's `apply`)."""
    described: dict[str, Any] = {"mode": mode, "guard": list(guard), "fields": encoded(fields), "logs": _lines(logs)}
    if worker:
        described["worker"] = dumps(worker)
    if schedule_at is not None:
        described["schedule_at"] = int(schedule_at * 1000)
    return described


def limits(types: list[JobType]) -> dict[str, dict[str, Any]]:
    """Each limited type's limits as the scripts apply them, with the action a job shows while they hold it."""
    found: dict[str, dict[str, Any]] = {}
    for job_type in types:
        limit: dict[str, Any] = {}
        if job_type.concurrency:
            limit["concurrency"] = job_type.concurrency
            limit["waiting_concurrency"] = dumps(f"waiting: {job_type.concurrency} {job_type.name} already running")
        if job_type.rate:
            starts, seconds = job_type.rate
            limit.update(rate=starts, per_ms=int(seconds * 1000), starts_key=STARTS_PREFIX + job_type.name)
            limit.update(slot_key=SLOT_PREFIX + job_type.name)
            limit["waiting_rate"] = dumps(f"waiting: at most {starts} starts per {seconds:g} s")
        if limit:
            found[job_type.name] = limit
    return found


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
    followed = tuple(json.loads(snapshot) for snapshot in reply[3]) if len(reply) > 3 else ()
    EVENTS_PUBLISHED.inc(1 + len(followed))
    job = json.loads(reply[2]) if reply[2] else None
    return Outcome(result, job["status"] if job else "", reply[1].decode(), job, followed)

"""The job model's vocabulary: statuses, ids and timestamps; the Job and the Schedule as the API shows them."""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from rq.job import JobStatus

from jobs.cadence import Cadence

PENDING = "pending"
ACTIVE = "active"
COMPLETED = "completed"
FAILED = "failed"
CANCELED = "canceled"

STATUSES = (PENDING, ACTIVE, COMPLETED, FAILED, CANCELED)
ENDED = (COMPLETED, FAILED, CANCELED)
# The statuses each action on a job accepts: the store's guards and the page's buttons read this one table.
ACTIONS = {"cancel": (PENDING, ACTIVE), "retry": (FAILED, CANCELED), "delete": (PENDING, *ENDED)}

DAY = 24 * 3600  # seconds: the unit of every long limit (retention, delays, backoffs, idempotency)

HIGH = "high"
NORMAL = "normal"
LOW = "low"
PRIORITIES = (HIGH, NORMAL, LOW)  # the order workers take them in

_RQ_TO_STATUS = {
    JobStatus.QUEUED: PENDING,
    JobStatus.DEFERRED: PENDING,
    JobStatus.SCHEDULED: PENDING,
    JobStatus.CREATED: PENDING,
    JobStatus.RATE_LIMITED: PENDING,
    JobStatus.READY_TO_ENQUEUE: PENDING,
    JobStatus.STARTED: ACTIVE,
    JobStatus.FINISHED: COMPLETED,
    JobStatus.FAILED: FAILED,
    JobStatus.CANCELED: CANCELED,
    JobStatus.STOPPED: CANCELED,
}


def status_for(rq_status: JobStatus | str | None) -> str:
    """Our status for an RQ state; the one place that knows the mapping (a job RQ lost is failed)."""
    try:
        return _RQ_TO_STATUS[JobStatus(rq_status)]
    except (KeyError, ValueError):
        return FAILED


_last_id = (0, 0)
_id_lock = threading.Lock()


def new_job_id() -> str:
    """A URL-safe id that sorts by creation time (ms, then a per-process sequence), so one sorted set
    pages newest first."""
    global _last_id
    with _id_lock:
        ms = time.time_ns() // 1_000_000
        last_ms, seq = _last_id
        _last_id = (ms, seq + 1) if ms <= last_ms else (ms, 0)
        ms, seq = max(ms, last_ms), _last_id[1]
    return f"{ms:011x}{seq:04x}{secrets.token_hex(3)}"


ID_SHAPE = re.compile(r"[0-9a-f]{21}")  # what new_job_id makes


def new_id_shape(text: str) -> bool:
    """Whether `text` could be an id that new_job_id made."""
    return ID_SHAPE.fullmatch(text) is not None


def isoformat(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and Z, the API's one time format (the year in four digits, as strftime's %Y
    is not on every platform)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def isoformat_ms(epoch_ms: int) -> str:
    """The API's format of a time kept as Unix milliseconds (a score in Redis)."""
    return isoformat(datetime.fromtimestamp(epoch_ms / 1000, UTC))


def utcnow() -> str:
    """The current time in the API's format."""
    return isoformat(datetime.now(UTC))


def parse_time(value: str | None) -> datetime | None:
    """The datetime of an API timestamp, None for None."""
    if value is None:
        return None
    return datetime.fromisoformat(value)  # Python 3.11 reads the Z; a tenth of strptime's cost, per event


@dataclass(frozen=True, slots=True)
class Job:
    """A job as the API shows it (ApiJob): the one declaration of its fields, in wire order, from which the
    events' snapshot (jobs.stream.events) and the API's schema (jobs.schemas) are derived."""

    id: str
    name: str
    type: str
    params: dict[str, Any]
    status: str
    priority: str
    progress: int
    action: str | None
    cancel_requested: bool
    created_at: str
    started_at: str | None
    ended_at: str | None
    scheduled_for: str | None
    error: str | None
    result: Any
    attempts: int
    max_attempts: int
    worker: str | None
    depends_on: list[str] = field(default_factory=list)  # jobs that must end before it runs
    allow_failure: bool = False  # runs even when a dependency failed or was canceled
    waiting_for: list[str] = field(default_factory=list)  # its dependencies that have not ended yet
    schedule_id: str | None = None  # the schedule that created it
    schedule_tick: str | None = None  # the tick it was created for (None: a schedule's run now)
    dependents: list[str] | None = field(default=None, compare=False)  # detail only: the jobs that depend on it
    logs: list[str] | None = field(default=None, compare=False)
    last_event_id: str | None = None

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    @classmethod
    def from_snapshot(cls, snapshot: dict[str, Any]) -> Job:
        """The job of a stored or published snapshot (one stored before priorities and retries: normal, and
        with no attempt left; one stored before workflows: no dependency)."""
        values = {k: v for k, v in snapshot.items() if k in _FIELD_NAMES}
        values["priority"] = values.get("priority") or NORMAL
        values["depends_on"] = values.get("depends_on") or []
        values["allow_failure"] = bool(values.get("allow_failure"))
        values["waiting_for"] = values.get("waiting_for") or []
        values["scheduled_for"] = values.get("scheduled_for")
        values["max_attempts"] = values.get("max_attempts") or values.get("attempts") or 1
        return cls(**values)


DETAIL_ONLY = ("dependents", "logs", "last_event_id")  # in a job's own view only: events and lists carry the rest
_FIELD_NAMES = frozenset(f.name for f in fields(Job))


@dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule as the API shows it: the one declaration of its fields, in wire order (the definition, id ...
    overlap, then its state), from which the API's schema (jobs.schemas) is derived."""

    id: str
    type: str
    name: str
    params: dict[str, Any]
    priority: str | None
    timeout_seconds: int | None
    max_attempts: int | None
    backoff: dict[str, Any] | None
    cron: str | None
    every_seconds: int | None
    timezone: str
    overlap: str
    paused: bool
    next_run_at: str | None
    last_run_at: str | None
    last_job_id: str | None
    created_at: str
    updated_at: str

    @property
    def cadence(self) -> Cadence:
        """When it ticks; `every_seconds` ticks count from its created_at."""
        created = parse_time(self.created_at)
        assert created is not None  # a stored schedule has its creation time
        return Cadence(self.cron, self.every_seconds, self.timezone, created.timestamp())

    def definition(self) -> dict[str, Any]:
        """Its definition's fields, in wire order (the store keeps them as one JSON object)."""
        return {name: getattr(self, name) for name in DEFINITION}


SCHEDULE_FIELDS = tuple(f.name for f in fields(Schedule))
DEFINITION = SCHEDULE_FIELDS[: SCHEDULE_FIELDS.index("overlap") + 1]
STATE = SCHEDULE_FIELDS[len(DEFINITION) :]  # what the store keeps beside the definition, one JSON value each

"""How an active job ends, and what a worker needs of the job it takes next: the two halves of next.lua, the
worker's one round trip per job (the end of one job and the start of the next, as BullMQ's moveToFinished)."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from jobs.model import ACTIVE, CANCELED, COMPLETED, FAILED, PENDING, isoformat, utcnow
from jobs.store.failures import group_of
from jobs.store.scripts import Outcome, change, dumps
from jobs.store.typestats import stat
from jobs.types.attempts import Backoff

DELETE, KEEP_FAILED, RETRY = "delete", "failed", "retry"  # what becomes of RQ's copy of an ended job
CURRENT_JOB = "current_job"  # the field of RQ's worker hash that names the job a busy worker runs


@dataclass(frozen=True)
class Ending:
    """An active job's end: its fields and log lines, when its next attempt may start (a retry), and what
    becomes of RQ's copy of it (deleted, kept as failed in `rq_registry`, or kept for the retry)."""

    job_id: str
    fields: dict[str, Any]
    logs: list[str]
    rq: str
    schedule_at: float | None = None
    rq_registry: str | None = None
    stat: dict[str, str] | None = None  # what it adds to its type's statistics (typestats.stat)
    failure: dict[str, Any] | None = None  # the failure group it joins (failures.group_of)

    def counted(self, job_type: str, started_at: str | None, ready_since: str | None) -> Ending:
        """This end with what it adds to its type's statistics and, failed, the failure group it joins."""
        status, error = self.fields.get("status"), self.fields.get("error")
        counted = stat(str(status), started_at, self.fields.get("ended_at") or utcnow(), ready_since)
        failure = group_of(job_type, error) if status == FAILED and error else None
        return replace(self, stat=counted, failure=failure)


@dataclass(frozen=True)
class Taken:
    """A job a worker has begun: its begin's outcome, RQ's copy (the hash Job.restore reads), when it could
    have started (None when unknown: a retry by hand), and what a failed attempt needs to plan the next."""

    outcome: Outcome
    rq_hash: dict[bytes, bytes]
    ready_since: str | None
    backoff: list[Any] | dict[str, Any] | None  # Backoff.packed()
    retry_budget: int | None

    @property
    def job(self) -> dict[str, Any]:
        assert self.outcome.job is not None  # a job begun has its snapshot
        return self.outcome.job

    @classmethod
    def from_reply(cls, reply: list[Any]) -> Taken:
        """next.lua's reply for a job it began (see its header)."""
        _, job_id, event_id, snapshot, flat, scheduled_for, created_at, backoff, budget = reply
        job = json.loads(snapshot)
        rq_hash = dict(zip(flat[::2], flat[1::2], strict=True))
        scheduled_for, created_at = json.loads(scheduled_for), json.loads(created_at)
        # It could start from its scheduled time (a delay, a retry's backoff), else from its creation; a retry
        # by hand (a later attempt with no time) from a moment no field keeps.
        ready_since = scheduled_for or (created_at if (job.get("attempts") or 1) == 1 else None)
        outcome = Outcome("ok", job["status"], event_id.decode(), job)
        return cls(outcome, rq_hash, ready_since, json.loads(backoff), json.loads(budget))


def ended_fields() -> dict[str, Any]:
    """The fields every end sets: when, and nothing left in progress."""
    return {"ended_at": utcnow(), "action": None, "cancel_requested": False, "scheduled_for": None}


def completed(job_id: str, result: Any) -> Ending:
    """The job returned `result`."""
    fields = {"status": COMPLETED, "progress": 100, "result": result, **ended_fields()}
    return Ending(job_id, fields, ["completed"], DELETE)


def stopped(job_id: str, reason: str = "stopped by request") -> Ending:
    """The worker stopped the job: canceled."""
    return Ending(job_id, {"status": CANCELED, **ended_fields()}, [reason], DELETE)


def failed(
    job_id: str,
    error: str,
    details: str,
    attempts: int,
    max_attempts: int,
    budget: int | None,
    backoff: list[Any] | dict[str, Any] | None,
    rq_registry: str,
) -> Ending:
    """A failed attempt: pending again for the next after its backoff while attempts are left, else failed.
    `details` (a traceback) goes to the logs."""
    trace = details.rstrip().splitlines() if details else []
    if attempts >= max_attempts:
        line = f"attempt {attempts}/{max_attempts} failed: {error}" if max_attempts > 1 else f"failed: {error}"
        fields = {"status": FAILED, "error": error[:500], **ended_fields()}
        return Ending(job_id, fields, [line, *trace], KEEP_FAILED, rq_registry=rq_registry)
    failed_in_run = attempts - (max_attempts - (budget or max_attempts))
    at = time.time() + (Backoff.unpacked(backoff).seconds(failed_in_run, random.random()) if backoff else 0.0)
    next_at = isoformat(datetime.fromtimestamp(at, UTC))
    fields = {**waiting(attempts + 1), "error": error[:500], "scheduled_for": next_at}
    lines = [f"attempt {attempts}/{max_attempts} failed: {error}", *trace, f"next attempt at {next_at}"]
    return Ending(job_id, fields, lines, RETRY, schedule_at=at)


def waiting(attempts: int) -> dict[str, Any]:
    """The fields of a job that waits for a worker: a new one and a retried one alike."""
    return {
        "status": PENDING,
        "progress": 0,
        "action": None,
        "cancel_requested": False,
        "started_at": None,
        "ended_at": None,
        "error": None,
        "result": None,
        "attempts": attempts,
        "worker": None,
    }


def take_header(worker: str, worker_key: str, job_id: str | None = None) -> dict[str, Any]:
    """next.lua's `take`: who takes the job (RQ's worker hash is marked busy with it), and which, if not the
    next in line."""
    take = {"worker": worker, "worker_json": dumps(worker), "worker_key": worker_key, "started_at": dumps(utcnow())}
    take["current_job"] = CURRENT_JOB
    if job_id is not None:
        take["id"] = job_id
    return take


def done_header(ending: Ending, worker: str | None, alive: bool = False) -> dict[str, Any]:
    """next.lua's `done`: the end as a change guarded on the job being active (on `worker`, when given)."""
    done = change("update", (ACTIVE,), worker, ending.fields, ending.logs, ending.schedule_at)
    done.update(id=ending.job_id, rq=ending.rq, alive=alive)
    extra = {"rq_registry": ending.rq_registry, "stat": ending.stat, "failure": ending.failure}
    done.update((name, value) for name, value in extra.items() if value is not None)
    return done

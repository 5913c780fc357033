"""What a process tells of the jobs it changes: one log line per job event, and the job metrics.

Called by the store in whichever process makes the change (the web for creates and cancels, a worker
for starts and ends, the pool for the jobs of a dead worker), so each event is told once. Progress
reports are not told here: they would flood the log; the stream and the job's own log carry them.
"""

from __future__ import annotations

import logging
from typing import Any

from jobs.model import CANCELED, ENDED, FAILED, PENDING, parse_time
from jobs.store.scripts import Outcome
from jobs.telemetry.metrics import JOB_DURATION, JOB_WAIT, JOBS_CREATED, JOBS_ENDED

logger = logging.getLogger("jobstream.jobs")


def created(job: dict[str, Any]) -> None:
    """A job was created (not one that its idempotency key had created before)."""
    JOBS_CREATED.labels(job["type"]).inc()
    if not logger.isEnabledFor(logging.INFO):  # a batch's thousand lines' fields not built for nothing
        return
    later = f", scheduled for {job['scheduled_for']}" if job.get("scheduled_for") else ""
    logger.info(
        "job %s created: %s, %s priority%s",
        job["id"],
        job["type"],
        job.get("priority"),
        later,
        extra=_fields(job, "created", scheduled_for=job.get("scheduled_for")),
    )


def started(outcome: Outcome, ready_since: str | None) -> Outcome:
    """A worker took the job; `ready_since` is when it could have started (its creation, the time it was
    scheduled for), None when unknown (a retry by hand)."""
    job = outcome.job
    if not outcome.ok or job is None:
        return outcome
    wait = _seconds(ready_since, job.get("started_at"))
    if wait is not None:
        JOB_WAIT.labels(job["type"]).observe(max(0.0, wait))
    waited = f", waited {wait:.3f} s" if wait is not None else ""
    logger.info(
        "job %s started: %s on %s, attempt %s/%s%s",
        job["id"],
        job["type"],
        job.get("worker"),
        job.get("attempts"),
        job.get("max_attempts"),
        waited,
        extra=_fields(job, "started", worker=job.get("worker"), attempt=job.get("attempts"), wait_seconds=wait),
    )
    return outcome


def ended(outcome: Outcome) -> Outcome:
    """The job ended (completed, failed, canceled), or its attempt failed and the next one waits; and so did the
    dependents that its end canceled (those it released are told by the worker that starts them)."""
    if outcome.ok and outcome.job is not None:
        _ended(outcome.job)
        for job in outcome.followed:
            if job["status"] in ENDED:
                _ended(job)
    return outcome


def _ended(job: dict[str, Any]) -> None:
    status = job["status"]
    if status in ENDED:
        duration = _seconds(job.get("started_at"), job.get("ended_at"))
        JOBS_ENDED.labels(job["type"], status).inc()
        if duration is not None:
            JOB_DURATION.labels(job["type"]).observe(max(0.0, duration))
        took = f" after {duration:.3f} s" if duration is not None else " before it started"
        why = f": {job.get('error')}" if status in (FAILED, CANCELED) and job.get("error") else ""
        logger.info(
            "job %s %s: %s%s%s",
            job["id"],
            status,
            job["type"],
            took,
            why,
            extra=_fields(job, "ended", duration_seconds=duration, error=job.get("error") if why else None),
        )
    elif status == PENDING:
        logger.info(
            "job %s: attempt %s/%s failed (%s); the next one at %s",
            job["id"],
            int(job.get("attempts") or 2) - 1,
            job.get("max_attempts"),
            job.get("error"),
            job.get("scheduled_for"),
            extra=_fields(job, "attempt_failed", error=job.get("error"), scheduled_for=job.get("scheduled_for")),
        )


def retried(outcome: Outcome, by: str | None) -> Outcome:
    """A failed or canceled job was sent to run again by hand."""
    job = outcome.job
    if outcome.ok and job is not None:
        who = f" by {by}" if by else ""
        logger.info(
            "job %s retried%s: attempt %s", job["id"], who, job.get("attempts"), extra=_fields(job, "retried", user=by)
        )
    return outcome


def _fields(job: dict[str, Any], event: str, **more: Any) -> dict[str, Any]:
    """The `extra` of a job line: what a JSON log line carries as fields."""
    fields = {"event": event, "job_id": job["id"], "job_type": job["type"], "job_status": job["status"]}
    fields.update((name, value) for name, value in more.items() if value is not None)
    return fields


def _seconds(since: str | None, until: str | None) -> float | None:
    start, end = parse_time(since), parse_time(until)
    return (end - start).total_seconds() if start is not None and end is not None else None

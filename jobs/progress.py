"""The one call a job function makes to report what it is doing."""

from __future__ import annotations

from rq import get_current_job

from jobs.store import JobStore


def progress(percent: int, action: str | None = None, log: str | None = None) -> None:
    """Record `percent` (0..100) and the current action for the running job, and publish it."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("progress() can only be called from inside a running job")
    JobStore.for_worker(job.connection).report(job.id, percent, action, log)

"""The one call a job function makes to report what it is doing."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobs.store.lifecycle import JobStore

# The store, id and dependencies of the job running in this context; the worker sets it around each job.
_running: ContextVar[tuple[JobStore, str, tuple[str, ...]] | None] = ContextVar("jobstream_running_job", default=None)


@contextmanager
def running(store: JobStore, job_id: str, depends_on: Sequence[str] = ()) -> Iterator[None]:
    """Make `job_id` the job that progress() reports on, through the worker's own store."""
    token = _running.set((store, job_id, tuple(depends_on)))
    try:
        yield
    finally:
        _running.reset(token)


def attempt() -> int:
    """The running job's attempt number: 1 for the first, 2 for its first retry..."""
    store, job_id, _ = _current()
    return store.read.attempts(job_id)


def dependency_results() -> dict[str, Any]:
    """{id: result} of the running job's dependencies that completed (a fan-in's inputs), in one round trip."""
    store, _, depends_on = _current()
    return store.read.results(depends_on)


def _current() -> tuple[JobStore, str, tuple[str, ...]]:
    current = _running.get()
    if current is None:
        raise RuntimeError("progress(), attempt() and dependency_results() work only inside a running job")
    return current


def progress(percent: int, action: str | None = None, log: str | None = None) -> None:
    """Record `percent` (0..100) and the current action for the running job, and publish it."""
    store, job_id, _ = _current()
    store.report(job_id, percent, action, log)

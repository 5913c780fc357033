"""Stopping a running job: the exception raised inside it, and the one record of what this process runs."""

from __future__ import annotations

import re
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from rq.job import Job
from rq.timeouts import UnixSignalDeathPenalty

from runner.lifetime import STOP_SIGNALS

STOP_SIGNAL = signal.SIGUSR1  # raises the stop inside the running job
STOP_GRACE = 3  # seconds a stopped or overdue job gets to unwind before its worker process is ended
HELPER_HELD = STOP_SIGNALS | {STOP_SIGNAL}  # signals the worker's helper threads never take
INTERRUPTED = "interrupted: the worker shut down before the job finished"


class JobStopped(BaseException):
    """Raised inside a running job to stop it; a BaseException, so job code's `except Exception` lets it through."""


class Interrupted(JobStopped):
    """The worker is shutting down and its grace period is over."""


@dataclass
class Stop:
    """A stop asked for one job: what to raise in it, and when it was asked."""

    job_id: str
    error: type[JobStopped]
    asked: float = field(default_factory=time.monotonic)


class Cancelable(Protocol):
    """An async job's task on its event loop (runner/job.py): ended by canceling it, not by a raise."""

    def cancel(self, error: BaseException) -> None: ...


class Running:
    """What this worker process is executing; read by signal handlers and the watch thread."""

    def __init__(self) -> None:
        self.job_id: str | None = None
        self.started = 0.0
        self.timeout: float = 0
        self.stop: Stop | None = None
        self.task: Cancelable | None = None  # set while an async job's event loop runs
        self.lock = threading.Lock()  # held while a job leaves, and while the watch ends the process

    def raise_stop(self) -> None:
        """Stop the job that is running now, if a stop was asked for it."""
        stop = self.stop
        if stop is not None and stop.job_id == self.job_id:
            self.interrupt(stop.error(stop.job_id))

    def interrupt(self, error: BaseException) -> None:
        """End the running job with `error`, from a signal handler in the main thread: raised here into a sync
        job; an async job's task is canceled instead (a raise would tear through its event loop), and `error`
        is raised once the task has unwound."""
        task = self.task
        if task is None:
            raise error
        task.cancel(error)


RUNNING = Running()


class DeathPenalty(UnixSignalDeathPenalty):
    """RQ's job timeout (SIGALRM), delivered through RUNNING, so that it cancels an async job's task."""

    def handle_death_penalty(self, signum: int, frame: Any) -> None:
        RUNNING.interrupt(self._exception(f"Task exceeded maximum timeout value ({self._timeout} seconds)"))


def error_line(exc_string: str, job: Job) -> str:
    """One clear line for a failure: the exception, a timeout, or a shutdown."""
    if "JobTimeoutException" in exc_string:
        return f"timed out after {job.timeout} s"
    lines = [line.strip() for line in exc_string.strip().splitlines() if line.strip()]
    if lines and re.match(rf"(\w+\.)*{Interrupted.__name__}: ", lines[-1]):
        return INTERRUPTED
    return lines[-1] if lines else "failed"

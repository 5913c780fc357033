"""The RQ worker that turns RQ's lifecycle into job events, and the body of one pooled worker process."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from typing import Any

from rq import Queue
from rq.command import handle_command, parse_payload
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.suspension import is_suspended
from rq.worker import SimpleWorker, WorkerStatus

from jobs.config import Settings
from jobs.connection import connect
from jobs.model import ACTIVE, CANCELED, PENDING, status_for
from jobs.store.lifecycle import JobStore
from jobs.store.queues import PriorityQueue, arm
from jobs.types.running import running
from runner.job import JobstreamJob
from runner.lifetime import STOP_SIGNALS, die_with_parent, signals_held, start_helper
from runner.stopping import (
    HELPER_HELD,
    RUNNING,
    STOP_SIGNAL,
    DeathPenalty,
    Interrupted,
    JobStopped,
    Stop,
    error_line,
)
from runner.watch import Watch

DUPLICATE_SECONDS = 1.0  # stop signals closer than this are one stop (its process group's copy and the pool's)


class JobstreamWorker(SimpleWorker):
    """An RQ worker that runs jobs in its own process and turns RQ's lifecycle into job events.

    No fork per job: a job is stopped by an exception raised into it (a signal to the main thread; an async
    job's task is canceled instead), and the watch thread ends the whole process when a job ignores that;
    the pool then starts a fresh worker."""

    death_penalty_class = DeathPenalty

    def __init__(self, *args: Any, store: JobStore, **kwargs: Any) -> None:
        kwargs.setdefault("job_class", JobstreamJob)
        super().__init__(*args, **kwargs)
        self.store = store
        self._main_thread = threading.main_thread().ident or 0
        self._last_stop_signal = float("-inf")

    def work(self, *args: Any, **kwargs: Any) -> bool:
        watch = Watch(self)
        start_helper(watch, HELPER_HELD)
        try:
            return super().work(*args, **kwargs)
        finally:
            watch.stop()

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ's heartbeat, in one round trip instead of three (it runs twice per job)."""
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)
            return
        with self.connection.pipeline(transaction=False) as pipe:
            super().heartbeat(timeout, pipe)
            pipe.execute()

    def subscribe(self) -> None:
        """RQ's command channel, whose listener thread never takes a stop signal (see `signals_held`)."""
        with signals_held(HELPER_HELD):
            super().subscribe()

    def unsubscribe(self) -> None:
        """RQ's, but the listener is told to stop before the reply to UNSUBSCRIBE wakes it: it ends then,
        instead of waiting for a subscription again while RQ waits a second for it."""
        if self.pubsub_thread:
            self.pubsub_thread.stop()
        super().unsubscribe()

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()
        signal.signal(STOP_SIGNAL, lambda signum, frame: RUNNING.raise_stop())

    def request_stop(self, signum: int, frame: Any) -> None:
        """The first stop signal (RQ's): between jobs the worker leaves at once, a running job may finish."""
        self._last_stop_signal = time.monotonic()
        super().request_stop(signum, frame)

    def handle_payload(self, message: dict[str, Any]) -> None:
        """RQ's commands, but `stop-job` raises the stop inside the job instead of killing a work horse."""
        payload = parse_payload(message)
        if payload.get("command") == "stop-job" and payload.get("job_id"):
            self.stop_job(payload["job_id"], JobStopped)
        else:
            handle_command(self, payload)

    def stop_job(self, job_id: str, error: type[JobStopped]) -> None:
        """Stop `job_id` if it runs here (now, or once it starts): safe from any thread."""
        stop = RUNNING.stop
        if stop is not None and stop.job_id == job_id and stop.error is error:
            return  # asked again (a second cancel): one exception per job, and the grace runs from the first
        if error is JobStopped:
            self._stopped_job_id = job_id  # RQ's marker: handle_job_failure then records STOPPED
        RUNNING.stop = Stop(job_id, error)
        if RUNNING.job_id == job_id:
            signal.pthread_kill(self._main_thread, STOP_SIGNAL)

    def request_force_stop(self, signum: int, frame: Any) -> None:
        """A further stop: interrupt the running job (once), then leave as RQ does after a job.

        One Ctrl-C reaches a worker twice, from its process group (a terminal, honcho, systemd) and from the
        pool, which passes it on: signals less than DUPLICATE_SECONDS after the previous one are that same
        stop. (RQ counts its 1 s from the first signal: both copies of a second Ctrl-C would count.)"""
        previous, self._last_stop_signal = self._last_stop_signal, time.monotonic()
        if self._last_stop_signal - previous < DUPLICATE_SECONDS:
            return
        job_id = RUNNING.job_id
        if job_id is None:
            super().request_force_stop(signum, frame)  # between jobs: RQ's cold shutdown
            return
        self._stop_requested = True
        self.stop_job(job_id, Interrupted)

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Mark the job active and run it here, unless it was paused, canceled or deleted meanwhile."""
        RUNNING.stop, self._stopped_job_id = None, None  # a late stop for an earlier job
        if is_suspended(self.connection):
            # Paused while this worker waited on the queue: hand the job back untouched.
            with self.connection.pipeline() as pipe:
                pipe.lrem(queue.intermediate_queue_key, 1, job.id)
                pipe.lpush(queue.key, job.id)
                arm(pipe, self.store.settings.queue)
                pipe.execute()
            return
        outcome = self.store.begin(job.id, self.name, queue.intermediate_queue_key)
        if outcome.result == "held":  # its type's limit: it waits, pending, and the script took it back
            return
        if not outcome.ok:
            # Canceled or deleted while queued, or not created through jobstream: never run it. (Running or
            # waiting, it was queued twice: leave its copy to the worker that has it.)
            self.connection.lrem(queue.intermediate_queue_key, 1, job.id)
            if outcome.status not in (ACTIVE, PENDING):
                job.delete()
            return
        execution = self.prepare_execution(job)
        with running(self.store, job.id):
            self.perform_job(job, queue, execution)
        self.set_state(WorkerStatus.IDLE)

    def handle_job_success(self, job: Job, queue: Queue, started_job_registry: Any, execution: Any) -> None:
        super().handle_job_success(job, queue, started_job_registry, execution)
        result = job._result  # RQ keeps the return value here; result_ttl=0 stores none in Redis
        try:
            json.dumps(result)
        except (TypeError, ValueError):
            self.store.fail(job.id, f"result is not JSON: {type(result).__name__}")
            return
        self.store.complete(job.id, result)

    def handle_job_failure(
        self,
        job: Job,
        queue: Queue,
        started_job_registry: Any = None,
        exc_string: str = "",
        execution: Any = None,
    ) -> None:
        super().handle_job_failure(job, queue, started_job_registry, exc_string, execution)
        if status_for(job.get_status(refresh=False)) == CANCELED:
            self.store.stopped(job.id)
        else:
            self.store.fail(job.id, error_line(exc_string, job), exc_string)


def worker_name(pid: int) -> str:
    """The name of the worker in process `pid` of this machine, `<host>.<pid>`: where a job runs, at a glance."""
    return f"{socket.gethostname()}.{pid}"


def make_worker(store: JobStore) -> JobstreamWorker:
    """A worker on every priority's queue, highest first, that records what it does through `store`."""
    return JobstreamWorker(
        list(store.queues.values()),
        name=worker_name(os.getpid()),
        connection=store.redis,
        serializer=JSONSerializer,
        queue_class=PriorityQueue,
        store=store,
    )


def run_worker(settings: Settings, burst: bool, logging_level: str, pool_pid: int) -> None:
    """The body of one pooled worker process: its own connection, then RQ's work loop."""
    # Forked with stop signals held (JobstreamPool.start_worker) and the pool's handlers: until the work
    # loop installs the worker's own, a stop simply ends this process, which has taken no job yet.
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    die_with_parent()  # no job runs on after its pool was killed
    if os.getppid() != pool_pid:  # the pool died before prctl could take effect
        return
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    connection = connect(settings.redis_url)
    worker = make_worker(JobStore(connection, settings))  # named as the pool names it: worker_name(its pid)
    # Jobs share their worker process: after max_jobs it exits and the pool starts a fresh one, so what
    # a job leaves behind (leaked memory, changed globals) lasts a bounded number of jobs.
    worker.work(burst=burst, logging_level=logging_level, max_jobs=settings.max_jobs_per_worker or None)

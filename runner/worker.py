"""The RQ worker that turns RQ's lifecycle into job events, and the body of one pooled worker process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

import redis
from rq import Queue
from rq.command import handle_command, parse_payload
from rq.job import Job
from rq.job_lifecycle import format_exc_info
from rq.serializers import JSONSerializer
from rq.timeouts import JobTimeoutException
from rq.worker import SimpleWorker, WorkerStatus

from jobs.config import Settings
from jobs.connection import connect
from jobs.store.handoff import CURRENT_JOB, Ending, Taken, completed, failed, stopped
from jobs.store.lifecycle import JobStore
from jobs.store.queues import wake_key
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
HEARTBEAT_EVERY = 5.0  # seconds between the worker's own heartbeats (a busy one's watch beats as often)


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
        self._next: Taken | None = None  # taken with the end of the previous job: the next to run
        self._taken: Taken | None = None  # the job running (or about to)
        self._watch: Watch | None = None
        self._max_jobs: int | None = None
        self._jobs_done = 0
        self._beat_at = float("-inf")

    def work(self, *args: Any, **kwargs: Any) -> bool:
        self._max_jobs = kwargs.get("max_jobs")
        self._watch = Watch(self)
        start_helper(self._watch, HELPER_HELD)
        try:
            return super().work(*args, **kwargs)
        finally:
            self._watch.stop()
            with contextlib.suppress(redis.RedisError):  # else its worker's death fails it, as any job it held
                self.give_back()

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ's heartbeat, in one round trip, and outside a pipeline at most every HEARTBEAT_EVERY seconds: RQ
        sends it three times per job, while the worker's key lives for minutes (worker_ttl)."""
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)
            return
        if time.monotonic() - self._beat_at < HEARTBEAT_EVERY and timeout is None:
            return
        self._beat_at = time.monotonic()
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

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> Any:
        """The job taken in the same round trip as the end of the previous one; else take the next in line, and
        while there is none, wait on the wake list that every enqueue arms (as RQ waits on its queues)."""
        if self._next is not None:
            return self._restore(self._next)
        self.set_state(WorkerStatus.IDLE)
        if self._stop_requested:  # asked while it was still busy with its last job's end
            return None
        self.procline("Listening on " + ",".join(self.queue_names()))
        idle_since = time.monotonic()
        backoff = 1.0
        while True:
            try:
                self.heartbeat()
                taken = self.store.next(self.name, take=True)[1]
                if isinstance(taken, Taken):
                    return self._restore(taken)
                if taken is not None and taken[0] == "paused":
                    super().check_for_suspension(timeout is None)  # polls until resumed; in a burst, stops
                    continue
                if timeout is None:
                    return None
                wait = timeout if max_idle_time is None else min(timeout, max_idle_time)
                if self.connection.blpop([wake_key(self.store.settings.queue)], wait) is None:
                    if max_idle_time is not None and time.monotonic() - idle_since >= max_idle_time:
                        return None
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self.log.error("Worker %s: Redis unavailable (%s); trying again in %.0f s", self.name, exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * self.exponential_backoff_factor, self.max_connection_wait_time)

    def set_state(self, state: str, pipeline: Any = None) -> None:
        """RQ's, and a worker that is not busy runs no job (next.lua names the job of a busy one)."""
        connection = pipeline if pipeline is not None else self.connection
        if state != WorkerStatus.BUSY:
            connection.hdel(self.key, CURRENT_JOB)
        super().set_state(state, pipeline)

    def _restore(self, taken: Taken) -> tuple[Job, Queue]:
        """RQ's job of a job taken, from the hash that next.lua returned (no fetch), and the queue it came from."""
        self._next, self._taken = None, taken
        self._state = WorkerStatus.BUSY  # next.lua marked it so in Redis; a stop now waits for the job
        job = self.job_class(taken.job["id"], connection=self.connection, serializer=self.serializer)
        job.restore(taken.rq_hash)
        return job, self.store.queues[taken.job["priority"]]

    def check_for_suspension(self, burst: bool) -> None:
        """Nothing per job: a take finds the queue paused itself (and then waits in RQ's check)."""

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run a job that its take has begun, then end it and take the next in one round trip, unless this
        worker is about to leave (stopping, or at its max_jobs)."""
        taken = self._taken
        assert taken is not None and taken.job["id"] == job.id  # dequeue_job_and_maintain_ttl took it
        stop = RUNNING.stop
        if stop is not None and stop.job_id != job.id:
            RUNNING.stop = None  # a late stop for an earlier job
        with running(self.store, job.id, taken.job.get("depends_on") or ()):
            ending = self._perform(job, queue, taken)
        ending = ending.counted(taken.job["type"], taken.job["started_at"], taken.ready_since)
        self._jobs_done += 1
        leaving = self._stop_requested or (self._max_jobs is not None and self._jobs_done >= self._max_jobs)
        alive = self._watch is not None and self._watch.beaten == job.id
        _, following = self.store.next(self.name, ending, take=not leaving, alive=alive)
        self._taken = None
        self._next = following if isinstance(following, Taken) else None
        if self._next is None:
            self._state = WorkerStatus.IDLE  # between jobs: a stop signal now leaves at once, as RQ's

    def _perform(self, job: Job, queue: Queue, taken: Taken) -> Ending:
        """Run the job's function under its timeout; how it ended (RQ's perform_job without RQ's bookkeeping,
        which jobstream's own keeps: one round trip per job instead of a dozen)."""
        try:
            with self.death_penalty_class(job.timeout or Queue.DEFAULT_TIMEOUT, JobTimeoutException, job_id=job.id):
                result = job.perform()
        except BaseException:  # noqa: B036 - a stop is a BaseException, and every end is recorded
            exc_info = sys.exc_info()
            self.handle_exception(job, *exc_info)  # RQ's log line and exception handlers (Sentry...)
            return self._failure(job, queue, taken, exc_info)
        try:
            json.dumps(result)
        except (TypeError, ValueError):
            return self._failed(job, queue, taken, f"result is not JSON: {type(result).__name__}")
        return completed(job.id, result)

    def _failure(self, job: Job, queue: Queue, taken: Taken, exc_info: Any) -> Ending:
        """The end of a job that raised: stopped by request (canceled), or a failed attempt."""
        error = exc_info[1]
        if isinstance(error, JobStopped) and not isinstance(error, Interrupted):
            return stopped(job.id)
        details = format_exc_info(exc_info)
        return self._failed(job, queue, taken, error_line(details, job), details)

    def _failed(self, job: Job, queue: Queue, taken: Taken, error: str, details: str = "") -> Ending:
        attempts, most = taken.job.get("attempts") or 1, taken.job.get("max_attempts") or 1
        registry = queue.failed_job_registry.key
        return failed(job.id, error, details, attempts, most, taken.retry_budget, taken.backoff, registry)

    def give_back(self) -> None:
        """A job taken for this worker that it will not run (it is leaving): pending again, at once."""
        taken, self._next = self._next, None
        if taken is not None:
            self.store.give_back(taken.job["id"], self.name, taken.job.get("attempts") or 1)


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

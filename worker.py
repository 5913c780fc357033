"""The worker skin: an RQ worker that publishes every lifecycle change, and the pool that runs N of them."""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing.connection
import os
import re
import signal
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import redis
from rq import Queue
from rq.command import handle_command, parse_payload
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.job import Job
from rq.logutils import setup_loghandlers
from rq.serializers import JSONSerializer
from rq.suspension import is_suspended
from rq.utils import utcparse
from rq.worker import SimpleWorker, WorkerStatus
from rq.worker_pool import ForkProcess, WorkerData, WorkerPool

from jobs import logs
from jobs.config import Settings
from jobs.connection import connect, text, wait_for_redis
from jobs.health import warn_about
from jobs.keys import alive_key
from jobs.lifetime import STOP_SIGNALS, die_with_parent, signals_held, start_helper
from jobs.metrics import process_dead
from jobs.model import ACTIVE, CANCELED, PENDING, parse_time, status_for
from jobs.progress import running
from jobs.queues import PriorityQueue, Stranded, arm
from jobs.registry import load
from jobs.scheduler import Scheduler
from jobs.store import JobStore

logger = logging.getLogger("jobstream.worker")

STOP_SIGNAL = signal.SIGUSR1  # raises the stop inside the running job
STOP_GRACE = 3  # seconds a stopped or overdue job gets to unwind before its worker process is ended
MONITOR_INTERVAL = 5  # seconds between a busy worker's heartbeats
ORPHAN_AFTER = 30  # seconds without a heartbeat before a worker's active job is failed
SWEEP_EVERY = 10
DUPLICATE_SECONDS = 1.0  # stop signals closer than this are one stop (its process group's copy and the pool's)
FORCE_AFTER_MIN = 1.5  # the pool's forced stop comes this long after its last stop, so it is no duplicate
STOP_WAIT = 1.0  # the longest a stopping pool waits for its workers before it looks at the grace again
CHECK_EVERY = 1.0  # seconds between the running pool's looks at its workers
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


class Running:
    """What this worker process is executing; read by signal handlers and the watch thread."""

    def __init__(self) -> None:
        self.job_id: str | None = None
        self.started = 0.0
        self.timeout: float = 0
        self.stop: Stop | None = None
        self.lock = threading.Lock()  # held while a job leaves, and while the watch ends the process

    def raise_stop(self) -> None:
        """Raise the stop asked for the job that is running now, if any."""
        stop = self.stop
        if stop is not None and stop.job_id == self.job_id:
            raise stop.error(stop.job_id)


RUNNING = Running()


class JobstreamJob(Job):
    """An RQ job whose function can be stopped from outside while it runs."""

    def _execute(self) -> Any:
        try:
            RUNNING.started, RUNNING.timeout = time.monotonic(), self.timeout or Queue.DEFAULT_TIMEOUT
            RUNNING.job_id = self.id
            RUNNING.raise_stop()  # a stop that came while RQ prepared the job
            return super()._execute()
        finally:
            with RUNNING.lock:
                RUNNING.job_id = None


class JobstreamWorker(SimpleWorker):
    """An RQ worker that runs jobs in its own process and turns RQ's lifecycle into job events.

    No fork per job: a job is stopped by an exception raised into it (a signal to the main thread), and the
    watch thread ends the whole process when a job ignores that; the pool then starts a fresh worker."""

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


class Watch(threading.Thread):
    """Beside the work loop: heartbeats during a long job; ends the process when a job will not stop."""

    def __init__(self, worker: JobstreamWorker) -> None:
        super().__init__(name="jobstream-watch", daemon=True)
        self.worker = worker
        self.store = worker.store
        self._done = threading.Event()

    def stop(self) -> None:
        self._done.set()

    def run(self) -> None:
        next_beat = 0.0
        while not self._done.wait(0.25):
            job_id = RUNNING.job_id
            if job_id is None:
                continue
            try:
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + MONITOR_INTERVAL
                    self._beat(job_id)
                    stop = RUNNING.stop
                    lost = stop is None or stop.job_id != job_id
                    if lost and self.store.cancel_requested(job_id):  # its stop-job never arrived
                        self.worker.stop_job(job_id, JobStopped)
                self._end_if_stuck(job_id)
            except Exception:  # the watch must outlive any one failure, or heartbeats and stops end with it
                logger.exception("watch: job %s", job_id)

    def _beat(self, job_id: str) -> None:
        """The worker's heartbeat and the job's own sign of life; its end deletes the sign, and one written as
        the job left (after that end, perhaps) is taken back: the job is off RUNNING before its end is written."""
        with self.worker.connection.pipeline(transaction=False) as pipe:
            self.worker.heartbeat(MONITOR_INTERVAL + 60, pipe)
            pipe.set(alive_key(job_id), self.worker.name, ex=ORPHAN_AFTER)
            pipe.execute()
        if RUNNING.job_id != job_id:
            self.worker.connection.delete(alive_key(job_id))

    def _end_if_stuck(self, job_id: str) -> None:
        """A job that ignored its stop or overran its timeout by STOP_GRACE: record why, end the process."""
        with RUNNING.lock:  # the job cannot finish meanwhile: either it left already, or it never will
            if RUNNING.job_id != job_id:
                return
            stop, now = RUNNING.stop, time.monotonic()
            if stop is not None and stop.job_id == job_id and now - stop.asked > STOP_GRACE:
                if stop.error is Interrupted:
                    record = partial(self.store.fail, job_id, INTERRUPTED, worker=self.worker.name)
                else:
                    record = partial(self.store.stopped, job_id, "stopped by request: its worker process was ended")
            elif now - RUNNING.started > RUNNING.timeout + STOP_GRACE:
                error = f"timed out after {RUNNING.timeout} s"
                record = partial(self.store.fail, job_id, error, worker=self.worker.name)
            else:
                return
            logger.error("job %s did not stop: ending worker process %d", job_id, os.getpid())
            try:
                record()
            finally:  # if Redis is away, the pool fails the job when it sees this process gone
                os._exit(1)


def error_line(exc_string: str, job: Job) -> str:
    """One clear line for a failure: the exception, a timeout, or a shutdown."""
    if "JobTimeoutException" in exc_string:
        return f"timed out after {job.timeout} s"
    lines = [line.strip() for line in exc_string.strip().splitlines() if line.strip()]
    if lines and re.match(rf"(\w+\.)*{Interrupted.__name__}: ", lines[-1]):
        return INTERRUPTED
    return lines[-1] if lines else "failed"


class JobstreamPool(WorkerPool):
    """RQ's pool of worker processes, plus: fail the jobs of workers that die, bound the shutdown."""

    def __init__(self, settings: Settings, store: JobStore) -> None:
        super().__init__(
            [settings.queue],
            connection=store.redis,
            num_workers=settings.concurrency,
            worker_class=JobstreamWorker,
            serializer=JSONSerializer,
        )
        self.store = store
        self.settings = settings
        self.scheduler = Scheduler(JobStore(connect(settings.redis_url), settings))  # its own connection
        self.grace = settings.shutdown_grace_seconds
        self._stop_at: float | None = None
        self._last_stop = 0.0
        self._forced = False
        self._next_sweep = 0.0
        self._unmarked: dict[str, str] = {}  # dead workers whose jobs Redis could not be told of yet: name -> why
        self.stranded = Stranded(settings.queue, store.redis)
        self._wake_read, self._wake = os.pipe()  # request_stop writes here: the loop's wait ends at once
        os.set_blocking(self._wake, False)

    def start(self, burst: bool = False, logging_level: str = "INFO") -> None:
        """RQ's pool loop (WorkerPool.start), but its waits end at a stop signal instead of sleeping on for up
        to 1.5 s, and it leaves the moment its last worker has; the scheduler thread runs beside it."""
        setup_loghandlers(logging_level, DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT, name="rq.worker_pool")
        self._burst, self.status = burst, self.Status.STARTED
        start_helper(self.scheduler)
        try:
            self.start_workers(burst=burst, logging_level=logging_level)
            self._install_signal_handlers()  # after the forks, as RQ's: a stop until then ends the pool at once
            while self.status != self.Status.STOPPED:
                self.check_workers(respawn=not burst)
                if burst and not self.worker_dict:
                    return
                multiprocessing.connection.wait([self._wake_read], CHECK_EVERY)  # 1 s between respawns, as RQ
            while not self.all_workers_have_stopped():
                logger.info("waiting for %d workers to finish their jobs", len(self.worker_dict))
        finally:
            self.scheduler.stop()

    def get_worker_process(self, name: str, burst: bool, _sleep: float = 0, logging_level: str = "INFO") -> Any:
        """A forked worker process, as RQ's pool makes them but without RQ's scheduler (jobs/scheduler.py is ours).

        RQ's per-job lines are left out (WARNING): the dashboard shows every job, and a replacement worker
        gets the same level as the first ones (RQ's respawn passes none)."""
        args = (name, self.settings, burst, "WARNING", os.getpid())
        return ForkProcess(target=run_worker, args=args, name=f"jobstream {name}")

    def start_worker(self, *args: Any, **kwargs: Any) -> None:
        """RQ's, but the new process starts with stop signals held: until run_worker lets go of this pool's
        handlers, a stop stays pending instead of running the pool's request_stop inside the worker."""
        with signals_held():
            super().start_worker(*args, **kwargs)

    def request_stop(self, signum: Any = None, frame: Any = None) -> None:
        """Every stop signal is passed on to every worker (RQ's): the first lets running jobs finish, a
        later one ends them at once."""
        self._last_stop = time.monotonic()
        with contextlib.suppress(BlockingIOError):  # a full pipe has woken the loop already
            os.write(self._wake, b"x")
        if self._stop_at is None:
            self._stop_at = self._last_stop
            logger.info("stopping: running jobs get %d s to finish (stop again to end them now)", self.grace)
        super().request_stop(signum, frame)

    def all_workers_have_stopped(self) -> bool:
        """RQ's check, but it waits (a second at most) for the workers to end, so the pool leaves the moment
        the last one has, not at its next one-second look; after the grace, running jobs are stopped."""
        if self._stop_at is None:
            return super().all_workers_have_stopped()
        force_at = max(self._stop_at + self.grace, self._last_stop + FORCE_AFTER_MIN)
        if not self._forced and time.monotonic() > force_at:
            self._forced = True
            logger.warning("grace period over: stopping the jobs still running")
            for data in list(self.worker_dict.values()):
                self.stop_worker(data, signal.SIGTERM)
        now = time.monotonic()
        deadline = now + STOP_WAIT if self._forced else min(now + STOP_WAIT, force_at)
        sentinels = [data.process.sentinel for data in self.worker_dict.values()]
        while sentinels and (left := deadline - time.monotonic()) > 0:
            ended = multiprocessing.connection.wait(sentinels, left)
            sentinels = [s for s in sentinels if s not in ended]
        return super().all_workers_have_stopped()

    def handle_dead_worker(self, worker_data: WorkerData) -> None:
        super().handle_dead_worker(worker_data)
        process_dead(worker_data.pid)  # its live gauges leave the metrics' sum; its counters stay
        with contextlib.suppress(redis.RedisError):  # else its key expires by itself within a minute
            key = SimpleWorker.redis_worker_namespace_prefix + worker_data.name
            dead = SimpleWorker.find_by_key(key, connection=self.store.redis)
            if dead is not None:
                dead.register_death()  # so /api/stats stops listing it at once
        if self._stop_at is not None:
            error = INTERRUPTED
        else:
            error = f"worker died (pid {worker_data.pid}, exit code {worker_data.process.exitcode})"
        self._unmarked[worker_data.name] = error
        self._fail_jobs_of_dead(report=True)

    def _fail_jobs_of_dead(self, report: bool = False) -> None:
        """Fail the active jobs of the workers that died. While Redis is away (a worker dies of that too, in the
        middle of a job) this is tried again at every check, so they fail, or get their next attempt, a second
        after Redis is back (a Sentinel failover takes a few), not ORPHAN_AFTER later."""
        for name, error in list(self._unmarked.items()):
            try:
                failed = self.store.fail_jobs_of(name, error)
            except redis.RedisError as exc:
                if report:
                    logger.warning("could not fail the jobs of %d dead workers yet: %s", len(self._unmarked), exc)
                return
            del self._unmarked[name]
            for job_id in failed:
                logger.warning("job %s: %s", job_id, error)

    def check_workers(self, respawn: bool = True) -> None:
        super().check_workers(respawn)
        if self._unmarked:
            self._fail_jobs_of_dead()
        with contextlib.suppress(redis.RedisError):  # Redis away: at the next check
            for job_id in self.stranded.sweep():
                logger.warning("job %s: its worker died before it began; queued again", job_id)
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + SWEEP_EVERY
            try:
                silent = sweep_orphans(self.store)
            except redis.RedisError as exc:
                logger.warning("orphan sweep skipped: %s", exc)
                return
            for data in list(self.worker_dict.values()):
                if data.name in silent:  # hung (a C call holding the GIL, a stopped process): replace it
                    logger.warning("worker %s (pid %d) sent no heartbeat: ending it", data.name, data.pid)
                    self.stop_worker(data, signal.SIGKILL)


def make_worker(store: JobStore, name: str | None = None) -> JobstreamWorker:
    """A worker on every priority's queue, highest first, that records what it does through `store`."""
    return JobstreamWorker(
        list(store.queues.values()),
        name=name,
        connection=store.redis,
        serializer=JSONSerializer,
        queue_class=PriorityQueue,
        store=store,
    )


def run_worker(name: str, settings: Settings, burst: bool, logging_level: str, pool_pid: int) -> None:
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
    worker = make_worker(JobStore(connection, settings), name)
    # Jobs share their worker process: after max_jobs it exits and the pool starts a fresh one, so what
    # a job leaves behind (leaked memory, changed globals) lasts a bounded number of jobs.
    worker.work(burst=burst, logging_level=logging_level, max_jobs=settings.max_jobs_per_worker or None)


def sweep_orphans(store: JobStore) -> set[str]:
    """Fail active jobs that nothing runs any more, wherever they ran: their worker is gone or silent, or it
    lives on without them (a failover lost the writes of their end); returns the silent workers."""
    silent = set()
    for job_id in store.ids_with_status(ACTIVE):
        job = store.get(job_id)
        started = parse_time(job["started_at"]) if job else None
        if job is None or not job["worker"] or store.redis.exists(alive_key(job_id)):
            continue
        if started is not None and time.time() - started.timestamp() < ORPHAN_AFTER:
            continue
        heartbeat = store.redis.hget(SimpleWorker.redis_worker_namespace_prefix + job["worker"], "last_heartbeat")
        beating = heartbeat is not None and time.time() - utcparse(text(heartbeat)).timestamp() < ORPHAN_AFTER
        if beating:
            error = f"lost: its worker lives but has not run it for {ORPHAN_AFTER} s"
        else:
            error = f"worker died (no heartbeat for {ORPHAN_AFTER} s)"
        if store.fail(job_id, error, worker=job["worker"]).ok:
            logger.warning("job %s: %s", job_id, error)
            if not beating:
                silent.add(job["worker"])
    return silent


def main() -> None:
    """Run the pool in the foreground until SIGINT/SIGTERM."""
    settings = Settings.from_env()
    logs.configure(settings.log_format)  # before the fork: every worker process logs the same way
    load(settings.job_type_modules)  # imported once here: every forked worker inherits them
    connection = connect(settings.redis_url)
    wait_for_redis(connection)
    warn_about(connection)  # once per pool, not once per worker process
    store = JobStore(connection, settings)
    sweep_orphans(store)
    logger.info("%d workers on queue %r (pid %d)", settings.concurrency, settings.queue, os.getpid())
    JobstreamPool(settings, store).start(logging_level="INFO")


if __name__ == "__main__":
    main()

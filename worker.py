"""The worker skin: an RQ worker that publishes every lifecycle change, and the pool that runs N of them."""

from __future__ import annotations

import ctypes
import json
import logging
import os
import re
import signal
import time
from typing import Any

import redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.suspension import is_suspended
from rq.utils import utcparse
from rq.worker import Worker, WorkerStatus
from rq.worker_pool import ForkProcess, WorkerData, WorkerPool

from jobs.config import Settings
from jobs.connection import connect, wait_for_redis
from jobs.model import ACTIVE, CANCELED, parse_time, status_for
from jobs.registry import job_types
from jobs.store import JobStore

logger = logging.getLogger("jobstream.worker")

PR_SET_PDEATHSIG = 1
MONITOR_INTERVAL = 5  # seconds between a busy worker's heartbeats
ORPHAN_AFTER = 30  # seconds without a heartbeat before a worker's active job is failed
SWEEP_EVERY = 10


class JobstreamWorker(Worker):
    """An RQ worker that turns RQ's lifecycle into job events; job functions only report progress."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("job_monitoring_interval", MONITOR_INTERVAL)
        super().__init__(*args, **kwargs)
        self.store = JobStore.for_worker(self.connection)
        job_types()  # import every job module once here, not again in each forked work horse

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Mark the job active, run it in a work horse, and stop it at once if a cancel came first."""
        if is_suspended(self.connection):
            # Paused while this worker waited on the queue: hand the job back untouched.
            with self.connection.pipeline() as pipe:
                pipe.lrem(queue.intermediate_queue_key, 1, job.id)
                pipe.lpush(queue.key, job.id)
                pipe.execute()
            return
        if not self.store.begin(job.id, self.name).ok:
            # Canceled or deleted while queued, or not created through jobstream: never run it.
            self.connection.lrem(queue.intermediate_queue_key, 1, job.id)
            job.delete()
            return
        execution = self.prepare_execution(job)
        self.fork_work_horse(job, queue)
        if self.store.cancel_requested(job.id):
            self._stopped_job_id = job.id  # RQ's marker for "stopped on purpose"
            self.kill_horse()
        self.monitor_work_horse(job, queue, execution)
        self.set_state(WorkerStatus.IDLE)

    def kill_horse(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """RQ's kill, but never before the fork: with no horse, pid 0 would name our own process group."""
        if self.horse_pid:
            super().kill_horse(sig)

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        """Run the job in the horse, which dies with its worker so no job runs unsupervised."""
        _die_with_parent()
        super().main_work_horse(job, queue)

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


def error_line(exc_string: str, job: Job) -> str:
    """One clear line for a failure: the exception, a timeout, or the horse's death."""
    if "JobTimeoutException" in exc_string:
        return f"timed out after {job.timeout} s"
    died = re.search(r"Work-horse terminated unexpectedly; waitpid returned (\d+)(?: \(signal (\d+)\))?", exc_string)
    if died:
        how = f"killed by {signal.Signals(int(died.group(2))).name}" if died.group(2) else f"exit {died.group(1)}"
        return f"worker died: the process running the job was {how}"
    lines = [line for line in exc_string.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "failed"


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        logger.debug("prctl unavailable: a work horse may outlive a killed worker")


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
        self.grace = settings.shutdown_grace_seconds
        self._stop_at: float | None = None
        self._forced = False
        self._next_sweep = 0.0

    def get_worker_process(self, name: str, burst: bool, _sleep: float = 0, logging_level: str = "INFO") -> Any:
        """A forked worker process, as RQ's pool makes them but without a scheduler (we schedule nothing)."""
        return ForkProcess(
            target=run_worker, args=(name, self.settings, burst, logging_level), name=f"jobstream {name}"
        )

    def request_stop(self, signum: Any = None, frame: Any = None) -> None:
        if self._stop_at is None:
            self._stop_at = time.monotonic()
            logger.info("stopping: running jobs get %d s to finish", self.grace)
        super().request_stop(signum, frame)

    def all_workers_have_stopped(self) -> bool:
        if self._stop_at is not None and not self._forced and time.monotonic() - self._stop_at > self.grace:
            self._forced = True
            logger.warning("grace period over: stopping the jobs still running")
            for data in list(self.worker_dict.values()):
                self.stop_worker(data, signal.SIGTERM)
        return super().all_workers_have_stopped()

    def handle_dead_worker(self, worker_data: WorkerData) -> None:
        super().handle_dead_worker(worker_data)
        if self._stop_at is not None:
            error = "interrupted: the worker shut down before the job finished"
        else:
            error = f"worker died (pid {worker_data.pid}, exit code {worker_data.process.exitcode})"
        try:
            for job_id in self.store.fail_jobs_of(worker_data.name, error):
                logger.warning("job %s: %s", job_id, error)
        except redis.RedisError as exc:  # the periodic sweep fails them once Redis is back
            logger.warning("could not mark the jobs of dead worker %s: %s", worker_data.name, exc)

    def check_workers(self, respawn: bool = True) -> None:
        super().check_workers(respawn)
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + SWEEP_EVERY
            try:
                sweep_orphans(self.store)
            except redis.RedisError as exc:
                logger.warning("orphan sweep skipped: %s", exc)


def run_worker(name: str, settings: Settings, burst: bool, logging_level: str) -> None:
    """The body of one pooled worker process: its own connection, then RQ's work loop."""
    connection = connect(settings.redis_url)
    queue = Queue(settings.queue, connection=connection, serializer=JSONSerializer)
    worker = JobstreamWorker([queue], name=name, connection=connection, serializer=JSONSerializer)
    worker.work(burst=burst, logging_level=logging_level)


def sweep_orphans(store: JobStore) -> None:
    """Fail active jobs whose worker is gone or silent, wherever that worker ran."""
    for job_id in store.ids_with_status(ACTIVE):
        job = store.get(job_id)
        if job is None or not job["worker"]:
            continue
        heartbeat = store.redis.hget(f"rq:worker:{job['worker']}", "last_heartbeat")
        last_sign = utcparse(heartbeat.decode()) if heartbeat else parse_time(job["started_at"])
        if last_sign is not None and time.time() - last_sign.timestamp() < ORPHAN_AFTER:
            continue
        error = "worker died (no heartbeat)"
        if store.fail(job_id, error, worker=job["worker"]).ok:
            logger.warning("job %s: %s", job_id, error)


def main() -> None:
    """Run the pool in the foreground until SIGINT/SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = Settings.from_env()
    connection = connect(settings.redis_url)
    wait_for_redis(connection)
    store = JobStore(connection, settings)
    sweep_orphans(store)
    logger.info("%d workers on queue %r (pid %d)", settings.concurrency, settings.queue, os.getpid())
    JobstreamPool(settings, store).start(logging_level="INFO")


if __name__ == "__main__":
    main()

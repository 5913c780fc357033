"""RQ's pool of worker processes, plus: the jobs of workers that die are failed, and the shutdown is bounded."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing.connection
import os
import signal
import time
from typing import Any

import redis
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.logutils import setup_loghandlers
from rq.serializers import JSONSerializer
from rq.worker import SimpleWorker
from rq.worker_pool import ForkProcess, WorkerData, WorkerPool

from jobs.config import Settings
from jobs.connection import connect
from jobs.store.lifecycle import JobStore
from jobs.store.orphans import sweep_orphans
from jobs.store.schedules import ScheduleStore
from jobs.store.ticker import Ticker
from jobs.store.upkeep import Upkeep
from jobs.telemetry.metrics import process_dead
from jobs.webhooks.dispatcher import Dispatcher
from runner.lifetime import signals_held, start_helper
from runner.stopping import INTERRUPTED
from runner.worker import JobstreamWorker, run_worker, worker_name

logger = logging.getLogger("jobstream.worker")

SWEEP_EVERY = 10  # seconds between the pool's sweeps for orphaned jobs
FORCE_AFTER_MIN = 1.5  # the pool's forced stop comes this long after its last stop, so it is no duplicate
STOP_WAIT = 1.0  # the longest a stopping pool waits for its workers before it looks at the grace again
CHECK_EVERY = 1.0  # seconds between the running pool's looks at its workers


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
        self.upkeep = Upkeep(JobStore(connect(settings.redis_url), settings))  # its own connection
        self.dispatcher = Dispatcher(connect(settings.redis_url), settings.webhook_retry_seconds)  # and its own
        self.ticker = Ticker(ScheduleStore(JobStore(connect(settings.redis_url), settings)))  # and its own
        self.grace = settings.shutdown_grace_seconds
        self._stop_at: float | None = None
        self._last_stop = 0.0
        self._forced = False
        self._next_sweep = 0.0
        self._unmarked: dict[str, str] = {}  # dead workers whose jobs Redis could not be told of yet: name -> why
        self._wake_read, self._wake = os.pipe()  # request_stop writes here: the loop's wait ends at once
        os.set_blocking(self._wake, False)

    def start(self, burst: bool = False, logging_level: str = "INFO") -> None:
        """RQ's pool loop (WorkerPool.start), but its waits end at a stop signal instead of sleeping on for up
        to 1.5 s, and it leaves the moment its last worker has; the upkeep, webhook and
        schedule threads run beside it."""
        setup_loghandlers(logging_level, DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT, name="rq.worker_pool")
        self._burst, self.status = burst, self.Status.STARTED
        start_helper(self.upkeep)
        start_helper(self.dispatcher)
        start_helper(self.ticker)
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
            self.upkeep.stop()
            self.dispatcher.stop()
            self.ticker.stop()

    def start_worker(
        self, count: int | None = None, burst: bool = True, _sleep: float = 0, logging_level: str = "INFO"
    ) -> None:
        """RQ's, but the worker is named `<host>.<pid>` (worker_name), which only the fork tells: the child
        names itself, and the pool knows it by the same name from the child's pid. Without RQ's scheduler
        (jobs/store/upkeep.py is ours), and RQ's per-job lines left out (WARNING: the dashboard shows every
        job; a replacement worker gets the same level as the first ones, where RQ's respawn passes none).

        The process starts with stop signals held: until run_worker lets go of this pool's handlers, a stop
        stays pending instead of running the pool's request_stop inside the worker."""
        process = ForkProcess(target=run_worker, args=(self.settings, burst, "WARNING", os.getpid()))
        with signals_held():
            process.start()
        assert process.pid is not None  # started
        name = worker_name(process.pid)
        process.name = f"jobstream {name}"
        self.worker_dict[name] = WorkerData(name=name, pid=process.pid, process=process)

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

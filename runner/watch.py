"""The watch thread beside a worker's loop: heartbeats during a long job, the end of a job that will not stop."""

from __future__ import annotations

import logging
import os
import threading
import time
from functools import partial
from typing import TYPE_CHECKING

from jobs.store.keys import alive_key
from jobs.store.orphans import ORPHAN_AFTER
from runner.stopping import INTERRUPTED, RUNNING, STOP_GRACE, Interrupted, JobStopped

if TYPE_CHECKING:
    from runner.worker import JobstreamWorker

logger = logging.getLogger("jobstream.worker")

MONITOR_INTERVAL = 5  # seconds between a busy worker's heartbeats


class Watch(threading.Thread):
    """Beside the work loop: heartbeats during a long job; ends the process when a job will not stop."""

    def __init__(self, worker: JobstreamWorker) -> None:
        super().__init__(name="jobstream-watch", daemon=True)
        self.worker = worker
        self.store = worker.store
        self._done = threading.Event()
        self.beaten: str | None = None  # the last job given a sign of life: its end deletes the sign

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
                    if lost and self.store.read.cancel_requested(job_id):  # its stop-job never arrived
                        self.worker.stop_job(job_id, JobStopped)
                self._end_if_stuck(job_id)
            except Exception:  # the watch must outlive any one failure, or heartbeats and stops end with it
                logger.exception("watch: job %s", job_id)

    def _beat(self, job_id: str) -> None:
        """The worker's heartbeat and the job's own sign of life; its end deletes the sign, and one written as
        the job left (after that end, perhaps) is taken back: the job is off RUNNING before its end is written."""
        self.beaten = job_id
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

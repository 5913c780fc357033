"""RQ's job, made stoppable from outside while its function runs."""

from __future__ import annotations

import time
from typing import Any

from rq import Queue
from rq.job import Job

from runner.stopping import RUNNING


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

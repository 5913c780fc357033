"""Upkeep: hands due jobs (delays, retries' backoff, rate-limit waits) to the workers, on time,
and runs retention now and then. Any number of them may run, on any host: promotion is atomic per job,
retention takes a lock."""

from __future__ import annotations

import logging
import threading
import time

import redis

from jobs.store import retention
from jobs.store.keys import SCHEDULED_KEY
from jobs.store.lifecycle import JobStore

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.5  # the longest a due job waits for promotion (a new job may be due before the next one known)
SWEEP_SECONDS = 10  # how often retention runs


class Upkeep(threading.Thread):
    """A thread of the worker pool's process; it ends with the process, or when stopped."""

    def __init__(self, store: JobStore) -> None:
        super().__init__(name="jobstream-upkeep", daemon=True)
        self.store = store
        self.stopping = threading.Event()

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        next_sweep = 0.0
        while not self.stopping.is_set():
            try:
                self.store.promote()
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + SWEEP_SECONDS
                    retention.sweep(self.store)
                wait = self._until_next_due()
            except redis.RedisError as exc:  # Redis away: try again shortly, never die
                logger.warning("upkeep: %s", exc)
                wait = TICK_SECONDS * 2
            self.stopping.wait(wait)

    def _until_next_due(self) -> float:
        head = self.store.redis.zrange(SCHEDULED_KEY, 0, 0, withscores=True)
        if not head:
            return TICK_SECONDS
        return max(0.0, min(TICK_SECONDS, float(head[0][1]) / 1000 - time.time()))

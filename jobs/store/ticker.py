"""The ticker: a thread of each worker pool that fires the schedules' ticks as they fall due. Any number may run,
on any host: tick.lua claims each tick and creates its job at once, so a tick is fired once, by one of them."""

from __future__ import annotations

import logging
import random
import threading
import time

import redis

from jobs.store.schedules import ScheduleStore, due, next_due

logger = logging.getLogger(__name__)

BATCH = 200  # due ticks read at once
# The longest the ticker sleeps on a head it knows: a schedule upserted meanwhile with an earlier tick (at least
# 1 s after its upsert) is seen within this, and fired within SPEC's second of its tick.
WAIT_SECONDS = 0.5
RETRY_SECONDS = 1.0  # after a Redis error
# A schedule whose tick raised stays due and is tried again after this, by this ticker; the others keep their
# ticks meanwhile. Long enough that a schedule failing on every tick logs a few lines a minute, not a flood.
HOLD_SECONDS = 5.0
# Each wake comes up to this much after the tick, at random: pools that would all wake at one instant and race for
# the same tick (each preparing its job, all but one in vain) mostly find it fired already. It halves the tickers'
# CPU with two pools and costs a tick at most this much lateness (docs/BENCHMARKS.md "Schedules (issue 19)").
JITTER_SECONDS = 0.02


class Ticker(threading.Thread):
    """Wakes at the earliest next tick (or every WAIT_SECONDS) and fires every tick due; ends with its process."""

    def __init__(self, schedules: ScheduleStore) -> None:
        super().__init__(name="jobstream-ticker", daemon=True)
        self.schedules = schedules
        self.stopping = threading.Event()
        self.held: dict[str, float] = {}  # schedule id -> when (time.time()) its failed tick is tried again

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                wait = self.fire_due()
            except redis.RedisError as exc:  # Redis away: try again shortly, never die
                logger.warning("ticker: %s", exc)
                wait = RETRY_SECONDS
            self.stopping.wait(wait)

    def fire_due(self) -> float:
        """Fire what is due now, but the schedules held after a failure; how long to sleep before the next look."""
        now = time.time()
        self.held = {schedule_id: until for schedule_id, until in self.held.items() if until > now}
        limit = BATCH + len(self.held)  # the held ones may come first: read past them
        found = due(self.schedules.store, now * 1000, limit)
        more = len(found) == limit  # a full batch: more may be due behind it
        found = [(schedule_id, due_ms) for schedule_id, due_ms in found if schedule_id not in self.held]
        random.shuffle(found)  # pools that wake together each win a share, not race down the same order
        for schedule_id, due_ms in found:
            if self.stopping.is_set():
                return 0.0
            self.fire(schedule_id, due_ms)
        if more:
            return 0.0
        head = next_due(self.schedules.store, self.held)
        wait = WAIT_SECONDS if head is None else head - time.time() + random.uniform(0, JITTER_SECONDS)
        return max(0.0, min(WAIT_SECONDS, wait, *(until - time.time() for until in self.held.values())))

    def fire(self, schedule_id: str, due_ms: int) -> None:
        """Fire one tick; a schedule whose tick raises is held for HOLD_SECONDS, so it never delays the others."""
        try:
            self.schedules.tick(schedule_id, due_ms)
        except redis.RedisError:
            raise
        except Exception:  # one schedule's fault never stops the others; it stays due, tried again after the hold
            logger.exception("schedule %s: tick failed, tried again in %.0f s", schedule_id, HOLD_SECONDS)
            self.held[schedule_id] = time.time() + HOLD_SECONDS

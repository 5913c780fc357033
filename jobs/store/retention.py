"""Retention: ended jobs are deleted by themselves once older than their keep time, oldest first past the cap.

Each ended status has a sorted set of ids by end time, kept by the event scripts, so a sweep costs what
it deletes, never a scan of the history. Every deletion is delete.lua's, with its job-removed event.
"""

from __future__ import annotations

import logging
import time
import uuid

from jobs.connection import text
from jobs.model import ACTIVE, ENDED, PENDING
from jobs.store.keys import ENDED_AT_PREFIX, SWEEP_LOCK
from jobs.store.lifecycle import NEEDED, JobStore

logger = logging.getLogger(__name__)

BATCH = 500  # jobs deleted per round trip
LOCK_SECONDS = 30  # one sweeper at a time across every host; a sweep stops well within it
BUDGET_SECONDS = LOCK_SECONDS / 2


def ended_before(store: JobStore, status: str, cutoff: float, limit: int = BATCH) -> list[str]:
    """Up to `limit` ids of jobs that ended with `status` before `cutoff` (epoch seconds), oldest first."""
    raw = store.redis.zrangebyscore(ENDED_AT_PREFIX + status, "-inf", int(cutoff * 1000), start=0, num=limit)
    return [text(i) for i in raw]


def delete(store: JobStore, status: str, ids: list[str]) -> list[str]:
    """Delete these ended jobs (never one that ran again since: it is pending or active); their ids. One that a
    job not ended yet depends on (it waits for it, or will read its result) is kept, as if it ended now."""
    outcomes = store.delete_each(ids, keep=(ACTIVE, PENDING))
    needed = [job_id for job_id, done in outcomes if done.result == NEEDED]
    gone = [job_id for job_id, done in outcomes if done.result != NEEDED]
    with store.redis.pipeline(transaction=False) as pipe:
        if gone:
            pipe.zrem(ENDED_AT_PREFIX + status, *gone)  # also an id whose job is gone or running again
        if needed:
            pipe.zadd(ENDED_AT_PREFIX + status, dict.fromkeys(needed, int(time.time() * 1000)), xx=True)
        pipe.execute()
    return [job_id for job_id, done in outcomes if done.ok]


def delete_ended(store: JobStore, statuses: tuple[str, ...], cutoff: float, deadline: float) -> list[str]:
    """Delete every job of `statuses` that ended before `cutoff`, until `deadline` (monotonic)."""
    deleted: list[str] = []
    for status in statuses:
        while time.monotonic() < deadline and (ids := ended_before(store, status, cutoff)):
            deleted += delete(store, status, ids)
            if len(ids) < BATCH:
                break
    return deleted


def sweep(store: JobStore) -> int:
    """One pass of retention, if no other process runs one now; returns how many jobs it deleted."""
    if not store.redis.set(SWEEP_LOCK, uuid.uuid4().hex, nx=True, ex=LOCK_SECONDS):
        return 0
    deadline = time.monotonic() + BUDGET_SECONDS
    now = time.time()
    count = 0
    for status in ENDED:
        count += len(delete_ended(store, (status,), now - store.settings.keep_seconds(status), deadline))
    count += trim(store, deadline)
    store.redis.delete(SWEEP_LOCK)  # done: the next tick (SWEEP_SECONDS) may sweep again, not LOCK_SECONDS later
    if count:
        logger.info("retention: deleted %d ended jobs", count)
    return count


def trim(store: JobStore, deadline: float) -> int:
    """Delete the oldest ended jobs while more than JOBSTREAM_KEEP_ENDED_MAX exist; stop when the oldest are all
    jobs kept in this sweep (needed by a dependent: more may exist than the limit then)."""
    count = 0
    kept: set[str] = set()
    while time.monotonic() < deadline:
        with store.redis.pipeline(transaction=False) as pipe:
            for status in ENDED:
                pipe.zcard(ENDED_AT_PREFIX + status)
            excess = sum(pipe.execute()) - store.settings.keep_ended_max
        if excess <= 0:
            break
        take = min(excess, BATCH)
        with store.redis.pipeline(transaction=False) as pipe:
            for status in ENDED:
                pipe.zrange(ENDED_AT_PREFIX + status, 0, take - 1, withscores=True)
            heads = pipe.execute()
        oldest = sorted(
            (score, status, raw.decode()) for status, head in zip(ENDED, heads, strict=True) for raw, score in head
        )
        candidates = {job_id for _, _, job_id in oldest[:take]}
        if candidates <= kept:
            break
        for status in ENDED:
            ids = [job_id for _, each, job_id in oldest[:take] if each == status]
            if ids:
                deleted = delete(store, status, ids)
                count += len(deleted)
                kept.update(set(ids) - set(deleted))
    return count

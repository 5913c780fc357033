"""Queue-wide control: pause and resume, statistics, cleaning ended jobs."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from rq import Worker
from rq.serializers import JSONSerializer
from rq.suspension import is_suspended, resume, suspend

from jobs.connection import text
from jobs.model import ENDED
from jobs.store import retention, typestats
from jobs.store.handoff import CURRENT_JOB
from jobs.store.keys import ended_key
from jobs.store.lifecycle import JobStore
from jobs.store.queues import depths
from jobs.types.registry import job_types


def pause(store: JobStore) -> None:
    """Stop handing out pending jobs; running ones finish (RQ's suspension, checked before each job)."""
    suspend(store.redis)


def unpause(store: JobStore) -> None:
    """Hand out pending jobs again."""
    resume(store.redis)


def is_paused(store: JobStore) -> bool:
    return bool(is_suspended(store.redis))


def stats(store: JobStore) -> dict[str, Any]:
    """Counts, workers with their state and current job, paused?, jobs ended per minute (last hour)."""
    found = Worker.all(connection=store.redis, queue=store.queue, serializer=JSONSerializer)
    with store.redis.pipeline(transaction=False) as pipe:
        for worker in found:
            pipe.hget(worker.key, CURRENT_JOB)
        current = [text(job_id) if job_id else None for job_id in pipe.execute()]
    workers = [
        {"name": w.name, "host": w.hostname, "state": str(w.get_state()), "current_job": job_id}
        for w, job_id in zip(found, current, strict=True)
    ]
    now = datetime.now(UTC)
    minutes = [(now - timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M") for i in range(60)]
    keys = [ended_key(status, m) for m in minutes for status in ENDED]
    counts = iter(int(n or 0) for n in store.redis.mget(keys))
    per_minute: list[dict[str, Any]] = []
    for minute in minutes:
        row = {status: next(counts) for status in ENDED}
        per_minute.append({"minute": minute + ":00Z", **row, "count": sum(row.values())})
    return {
        "counts": store.read.counts(),
        "workers": sorted(workers, key=lambda w: w["name"]),
        "paused": is_paused(store),
        "queues": depths(store.settings.queue, store.redis),
        "jobs_per_minute": round(sum(int(row["count"]) for row in per_minute) / 60, 2),
        "ended_per_minute": per_minute,
        "types": typestats.read(store.redis, [job_type.name for job_type in job_types()], now),
    }


def clean(store: JobStore, status: str | None, older_than_seconds: int) -> list[str]:
    """Delete ended jobs (of `status`, or all ended ones) that ended at least that long ago."""
    statuses = (status,) if status else ENDED
    return retention.delete_ended(store, statuses, time.time() - older_than_seconds, deadline=float("inf"))

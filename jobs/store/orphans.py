"""Orphaned jobs: active jobs that nothing runs any more, found by their worker's silence and failed."""

from __future__ import annotations

import logging
import time

from rq.utils import utcparse
from rq.worker import SimpleWorker

from jobs.connection import text
from jobs.model import ACTIVE, parse_time
from jobs.store.keys import alive_key
from jobs.store.lifecycle import JobStore

logger = logging.getLogger(__name__)

ORPHAN_AFTER = 30  # seconds without a sign of life before an active job is failed


def sweep_orphans(store: JobStore) -> set[str]:
    """Fail active jobs that nothing runs any more, wherever they ran: their worker is gone or silent, or it
    lives on without them (a failover lost the writes of their end); returns the silent workers."""
    silent = set()
    for job_id in store.read.ids_with_status(ACTIVE):
        job = store.read.get(job_id)
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

"""Creating jobs: a batch stored and enqueued in one transaction, each job once per idempotency key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from rq import Queue

from jobs.config import Settings
from jobs.connection import replicated
from jobs.errors import IdempotencyConflict
from jobs.model import DAY, isoformat, new_job_id, utcnow
from jobs.store.handoff import waiting
from jobs.store.keys import idempotency_key, job_key
from jobs.store.queues import arm, save_rq_job
from jobs.store.reads import Reader
from jobs.store.scripts import Scripts, dumps, outcome
from jobs.telemetry import observe
from jobs.types.attempts import Backoff
from jobs.types.registry import JobType

IDEMPOTENCY_SECONDS = DAY


@dataclass(frozen=True)
class NewJob:
    """A validated job to create: its type, name, loaded params and options."""

    job_type: JobType
    name: str
    params: dict[str, Any]
    timeout: int
    priority: str
    max_attempts: int
    backoff: Backoff
    run_at: datetime | None = None  # None: queued now
    idempotency_key: str | None = None
    start: str | None = None  # when it may start, as asked ("delay_seconds=30", "run_at=..."), not as computed

    @property
    def fingerprint(self) -> str:
        """What an idempotency key remembers of its request, to refuse the key for a different one."""
        body = [self.job_type.name, self.name, self.params, self.timeout, self.priority, self.max_attempts]
        body += [self.backoff.as_dict(), self.start]
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class Creator:
    """Creates jobs for one store: its Redis, its priority queues, its event scripts and its reader."""

    def __init__(
        self,
        connection: redis.Redis,
        settings: Settings,
        queues: dict[str, Queue],
        scripts: Scripts,
        read: Reader,
    ) -> None:
        self.redis = connection
        self.settings = settings
        self.queues = queues
        self.scripts = scripts
        self.read = read

    def create_many(self, batch: Sequence[NewJob]) -> list[tuple[dict[str, Any], bool]]:
        """Store and enqueue every job of `batch` in one transaction (all or none). Each comes back with
        True when created, False when it is the job that its idempotency key created before."""
        keys = sorted({idempotency_key(n.idempotency_key) for n in batch if n.idempotency_key})
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    if keys:
                        pipe.watch(*keys)  # a concurrent create with one of these keys fails EXEC: try again
                    return self._create_watched(pipe, batch, _claims(pipe, keys))
                except redis.WatchError:
                    continue

    def _create_watched(
        self, pipe: Any, batch: Sequence[NewJob], claims: dict[str, tuple[str, str]]
    ) -> list[tuple[dict[str, Any], bool]]:
        ids: list[str] = []
        replies_at: dict[str, int] = {}  # a created job's id -> where its script's reply comes in EXEC's
        pipe.multi()
        for new in batch:
            key = idempotency_key(new.idempotency_key) if new.idempotency_key else None
            if key is not None and key in claims:
                job_id, fingerprint = claims[key]
                if fingerprint != new.fingerprint:
                    message = "this Idempotency-Key was used in the last 24 h for a different request"
                    raise IdempotencyConflict(message, {"job_id": job_id})
                ids.append(job_id)
                continue
            job_id = new_job_id()
            if key is not None:
                claims[key] = (job_id, new.fingerprint)
                pipe.set(key, dumps({"job": job_id, "fingerprint": new.fingerprint}), ex=IDEMPOTENCY_SECONDS)
            replies_at[job_id] = len(pipe)
            start = new.run_at.timestamp() if new.run_at else None
            self.scripts.change(job_id, mode="create", fields=_new_fields(job_id, new), schedule_at=start, client=pipe)
            queue = self.queues[new.priority]
            save_rq_job(queue, new.job_type, job_id, new.params, new.timeout, pipe, queued=start is None)
            ids.append(job_id)
        if replies_at:
            arm(pipe, self.settings.queue)
        replies = pipe.execute()
        if ids:  # a job returned for its Idempotency-Key too: the request that created it may have got a 503
            replicated(self.redis, self.settings.redis_min_replicas)
        jobs: dict[str, dict[str, Any]] = {}
        for job_id, at in replies_at.items():
            job = outcome(replies[at]).job
            assert job is not None  # a fresh id cannot be taken
            jobs[job_id] = job
        for job in jobs.values():
            observe.created(job)
        jobs.update((job["id"], job) for job in self.read.snapshots([i for i in ids if i not in jobs]))
        return [(jobs[job_id], job_id in replies_at) for job_id in ids]


def _claims(pipe: Any, keys: list[str]) -> dict[str, tuple[str, str]]:
    """The (job id, fingerprint) each idempotency key names; a key whose job is gone is free again."""
    claims = {}
    for key, raw in zip(keys, pipe.mget(keys) if keys else [], strict=True):
        if raw is not None:
            claim = json.loads(raw)
            pipe.watch(job_key(claim["job"]))  # deleted meanwhile: EXEC fails and the key is free
            if pipe.exists(job_key(claim["job"])):
                claims[key] = (claim["job"], claim["fingerprint"])
    return claims


def _new_fields(job_id: str, new: NewJob) -> dict[str, Any]:
    fields: dict[str, Any] = {"id": job_id, "name": new.name, "type": new.job_type.name, "params": new.params}
    fields.update(created_at=utcnow(), priority=new.priority, timeout=new.timeout, **waiting(attempts=1))
    fields.update(max_attempts=new.max_attempts, retry_budget=new.max_attempts, backoff=new.backoff.packed())
    fields["scheduled_for"] = isoformat(new.run_at) if new.run_at else None
    return fields

"""Creating jobs: a batch stored and enqueued in one transaction, each job once per idempotency key."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import redis
from rq import Queue

from jobs.config import Settings
from jobs.connection import replicated, text
from jobs.errors import IdempotencyConflict
from jobs.model import CANCELED, DAY, Job, isoformat, new_job_id
from jobs.store.handoff import waiting
from jobs.store.keys import idempotency_key, job_key
from jobs.store.queues import rq_data, rq_fields
from jobs.store.reads import Reader
from jobs.store.scripts import Outcome, Scripts, dumps
from jobs.stream.events import SNAPSHOT_FIELDS
from jobs.telemetry import observe
from jobs.telemetry.metrics import EVENTS_PUBLISHED
from jobs.types.attempts import Backoff
from jobs.types.registry import JobType

IDEMPOTENCY_SECONDS = DAY
# A new job's fields that its Shape leaves open, in the snapshot's order (created_at: the same in one batch).
VARYING = ("id", "name", "params", "created_at", "scheduled_for")
STRIDE = 9  # create.lua's ARGV entries per job
# The snapshot's fields that a new job leaves at the model's default (schedule_id...): not written to its hash
DEFAULTS = {f.name: f.default for f in dataclasses.fields(Job) if f.default is not dataclasses.MISSING}


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
    # What it waits for: stored jobs' ids, and (in a batch) other items of the batch by their place in it.
    depends_on: tuple[str | int, ...] = ()
    allow_failure: bool = False

    @property
    def fingerprint(self) -> str:
        """What an idempotency key remembers of its request, to refuse the key for a different one."""
        body = [self.job_type.name, self.name, self.params, self.timeout, self.priority, self.max_attempts]
        body += [self.backoff.as_dict(), self.start]
        if self.depends_on or self.allow_failure:  # a key remembered before workflows keeps its fingerprint
            body += [list(self.depends_on), self.allow_failure]
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class MissingDependency(Exception):
    """A job of the batch depends on a stored job that is not (any more): nothing was created."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id}")
        self.job_id = job_id


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
                except redis.exceptions.NoScriptError:  # its SETs ran: each names a job that is not, so is free
                    self.scripts.lost()

    def _create_watched(
        self, pipe: Any, batch: Sequence[NewJob], claims: dict[str, tuple[str, str]]
    ) -> list[tuple[dict[str, Any], bool]]:
        ids: list[str] = []
        fresh: list[tuple[str, NewJob]] = []
        taken: list[str] = []  # the idempotency keys this transaction claims
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
                taken.append(key)
                pipe.set(key, dumps({"job": job_id, "fingerprint": new.fingerprint}), ex=IDEMPOTENCY_SECONDS)
            fresh.append((job_id, new))
            ids.append(job_id)
        jobs: dict[str, dict[str, Any]] = {}
        links = _links(fresh, ids)
        if fresh:
            batch_of = Batch(self.queues)
            argv = [arg for job_id, new in fresh for arg in batch_of.add(job_id, new, jobs)]
            self.scripts.create(batch_of.header(), argv, pipe, links)
        replies = pipe.execute()
        if links:
            reply = replies[-1]
            if reply[0] == b"missing":  # the script wrote nothing; the keys claimed name no job: free them
                if taken:
                    self.redis.delete(*taken)
                raise MissingDependency(reply[1].decode())
            linked = reply[1]
            jobs.update((text(linked[at]), json.loads(linked[at + 1])) for at in range(0, len(linked), 2))
        if ids:  # a job returned for its Idempotency-Key too: the request that created it may have got a 503
            replicated(self.redis, self.settings.redis_min_replicas)
        canceled = sum(job["status"] == CANCELED for job in jobs.values())  # created, then canceled: two events
        EVENTS_PUBLISHED.inc(len(jobs) + canceled)
        for job in jobs.values():
            observe.created(job)
            if job["status"] == CANCELED:  # a stored dependency failed or was canceled: created canceled
                observe.ended(Outcome("ok", CANCELED, "", job))
        created = set(jobs)
        claimed = [i for i in ids if i not in created]
        if claimed:
            jobs.update((job["id"], job) for job in self.read.snapshots(claimed))
        return [(jobs[job_id], job_id in created) for job_id in ids]


@dataclass(frozen=True, eq=False)  # one per shape (see shape()): compared by identity
class Shape:
    """A type and options of new jobs, as create.lua takes them: what their job hashes and RQ's share, encoded."""

    script: dict[str, Any]  # create.lua's shape: `fields`, `rq`, `queue`, `type`
    values: dict[str, Any]  # the snapshot's values, but for VARYING
    pieces: list[str]  # the snapshot's JSON around the VARYING values


def _links(fresh: list[tuple[str, NewJob]], ids: list[str]) -> dict[str, dict[str, Any]]:
    """create.lua's `links`: per new job with dependencies (by its place among `fresh`, from 1), their ids (a
    batch item's: the id `ids` gives its place) and its allow_failure."""
    links = {}
    for place, (_, new) in enumerate(fresh, 1):
        if new.depends_on:
            on = dict.fromkeys(ids[ref] if isinstance(ref, int) else ref for ref in new.depends_on)
            links[str(place)] = {"on": list(on), "allow": new.allow_failure}
    return links


@lru_cache(maxsize=256)
def shape(  # noqa: PLR0913 (each is a part of the shape)
    job_type: JobType,
    priority: str,
    timeout: int,
    max_attempts: int,
    backoff: Backoff,
    allow_failure: bool,
    queue: Queue,
) -> Shape:
    """The Shape of new jobs of these: each encoded once per process (a job with dependencies has its own
    `depends_on` and `waiting_for`, which create.lua writes)."""
    fields: dict[str, Any] = {"type": job_type.name, "priority": priority, "timeout": timeout, **waiting(attempts=1)}
    fields.update(depends_on=[], allow_failure=allow_failure, waiting_for=[])
    fields.update(max_attempts=max_attempts, retry_budget=max_attempts, backoff=backoff.packed())
    script = {
        "fields": [part for name, value in fields.items() for part in (name, dumps(value))],
        "rq": rq_fields(queue, job_type, timeout),
        "queue": queue.key,
        "type": job_type.name,
    }
    values = {**DEFAULTS, **fields, **dict.fromkeys(VARYING)}
    pieces, text = [], "{"
    for at, name in enumerate(SNAPSHOT_FIELDS):
        text += ("," if at else "") + f'"{name}":'
        if name in VARYING:
            pieces.append(text)
            text = ""
        else:
            text += dumps(values[name])
    return Shape(script, {name: values[name] for name in SNAPSHOT_FIELDS}, [*pieces, text + "}"])


class Batch:
    """What create.lua is told of a batch: each Shape of its jobs once, and per job only what differs."""

    def __init__(self, queues: dict[str, Queue]) -> None:
        self.queues = queues
        self.moment = datetime.now(UTC)
        self.created_at = isoformat(self.moment)
        self._at: dict[Shape, int] = {}  # each shape's place in create.lua's `shapes`, from 1

    def add(self, job_id: str, new: NewJob, snapshots: dict[str, dict[str, Any]]) -> list[Any]:
        """The job's entries of create.lua's ARGV (see there); its snapshot goes in `snapshots`."""
        queue = self.queues[new.priority]
        found = shape(new.job_type, new.priority, new.timeout, new.max_attempts, new.backoff, new.allow_failure, queue)
        at = self._at.setdefault(found, len(self._at) + 1)
        scheduled_for = isoformat(new.run_at) if new.run_at else None
        varying: dict[str, Any] = {"id": job_id, "name": new.name, "params": new.params}
        varying.update(created_at=self.created_at, scheduled_for=scheduled_for)
        encoded = [dumps(varying[name]) for name in VARYING]
        pieces = found.pieces
        snapshot = pieces[0] + "".join(value + piece for value, piece in zip(encoded, pieces[1:], strict=True))
        snapshots[job_id] = {**found.values, **varying}
        start = int(new.run_at.timestamp() * 1000) if new.run_at else ""
        return [job_id, at, *encoded[1:], start, snapshot, rq_data(new.job_type, encoded[2])]

    def header(self) -> dict[str, Any]:
        """What create.lua's jobs share."""
        rq_now = self.moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # rq.utils.utcformat
        return {"shapes": [found.script for found in self._at], "rq_now": rq_now, "stride": STRIDE}


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

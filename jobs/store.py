"""The job store: job state in Redis beside RQ's queue, changed only through the event scripts."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from rq.command import send_command
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from jobs.config import Settings
from jobs.errors import IdempotencyConflict
from jobs.events import EVENTS_KEY, JOB_REMOVED, JOB_UPDATE, SNAPSHOT_FIELDS, channel
from jobs.model import ACTIVE, CANCELED, COMPLETED, ENDED, FAILED, NORMAL, PENDING, new_job_id, utcnow
from jobs.queues import arm, queues
from jobs.reading import INDEX_KEY, STATUS_PREFIX, JobReader, job_key, logs_key
from jobs.registry import JobType, get_type
from jobs.script import Script

logger = logging.getLogger(__name__)

ENDED_PREFIX = "jobstream:ended:"  # + minute (YYYY-MM-DDTHH:MM): how many jobs ended in it
ENDED_COUNTER_TTL = 2 * 3600
IDEMPOTENCY_PREFIX = "jobstream:idempotency:"
IDEMPOTENCY_SECONDS = 24 * 3600
MAX_LOGS = 1000
MAX_LOG_LINE = 4000
FAILURE_TTL = 7 * 24 * 3600


def idempotency_key(key: str) -> str:
    """Where an idempotency key names the job it created (hashed: any text makes a short key)."""
    return IDEMPOTENCY_PREFIX + hashlib.sha256(key.encode()).hexdigest()


def ended_key(minute: str) -> str:
    """The counter of jobs that ended in `minute` (an API timestamp's first 16 characters)."""
    return ENDED_PREFIX + minute


@dataclass(frozen=True)
class NewJob:
    """A validated job to create: its type, name, loaded params, timeout and priority."""

    job_type: JobType
    name: str
    params: dict[str, Any]
    timeout: int
    priority: str
    idempotency_key: str | None = None

    @property
    def fingerprint(self) -> str:
        """What an idempotency key remembers of its request, to refuse the key for a different one."""
        body = [self.job_type.name, self.name, self.params, self.timeout, self.priority]
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Outcome:
    """What a guarded change did: `ok`, or why not (`missing`, or `conflict` with the status)."""

    result: str
    status: str = ""
    event_id: str = ""
    job: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.result == "ok"


class JobStore(JobReader):
    """Creates, reads, changes and deletes jobs; every change publishes its event."""

    def __init__(self, connection: redis.Redis, settings: Settings) -> None:
        super().__init__(connection)
        self.settings = settings
        self.queues = queues(settings.queue, connection)
        self.queue = self.queues[NORMAL]  # the one RQ's worker listing and registries are read through
        self._apply = Script(connection, "apply")
        self._delete = Script(connection, "delete")

    # -- changing --------------------------------------------------------------------------

    def create(self, new: NewJob) -> dict[str, Any]:
        """Store a pending job and enqueue it for RQ in one transaction."""
        return self.create_many([new])[0][0]

    def create_many(self, batch: Sequence[NewJob]) -> list[tuple[dict[str, Any], bool]]:
        """Store and enqueue every job of `batch` in one transaction (all or none). Each comes back with
        True when created, False when it is the job that its idempotency key created before."""
        keys = sorted({idempotency_key(n.idempotency_key) for n in batch if n.idempotency_key})
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    if keys:
                        pipe.watch(*keys)  # a concurrent create with one of these keys fails EXEC: try again
                    return self._create_watched(pipe, batch, self._claims(pipe, keys))
                except redis.WatchError:
                    continue

    def _claims(self, pipe: Any, keys: list[str]) -> dict[str, tuple[str, str]]:
        """The (job id, fingerprint) each idempotency key names; a key whose job is gone is free again."""
        claims = {}
        for key, raw in zip(keys, pipe.mget(keys) if keys else [], strict=True):
            if raw is not None:
                claim = json.loads(raw)
                pipe.watch(job_key(claim["job"]))  # deleted meanwhile: EXEC fails and the key is free
                if pipe.exists(job_key(claim["job"])):
                    claims[key] = (claim["job"], claim["fingerprint"])
        return claims

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
                pipe.set(key, _json({"job": job_id, "fingerprint": new.fingerprint}), ex=IDEMPOTENCY_SECONDS)
            replies_at[job_id] = len(pipe)
            self._change(job_id, mode="create", fields=_new_fields(job_id, new), client=pipe)
            self._enqueue(new.job_type, job_id, new.params, new.timeout, new.priority, pipe)
            ids.append(job_id)
        if replies_at:
            arm(pipe, self.settings.queue)
        replies = pipe.execute()
        jobs: dict[str, dict[str, Any]] = {}
        for job_id, at in replies_at.items():
            job = _outcome(replies[at]).job
            assert job is not None  # a fresh id cannot be taken
            jobs[job_id] = job
        jobs.update((job["id"], job) for job in self._snapshots([i for i in ids if i not in jobs]))
        return [(jobs[job_id], job_id in replies_at) for job_id in ids]

    def begin(self, job_id: str, worker: str) -> Outcome:
        """pending → active on `worker`; fails when the job was canceled or deleted meanwhile."""
        fields = {"status": ACTIVE, "worker": worker, "started_at": utcnow(), "progress": 0, "action": None}
        return self._change(job_id, guard=(PENDING,), fields=fields, logs=[f"started on {worker}"])

    def report(self, job_id: str, percent: int, action: str | None = None, log: str | None = None) -> Outcome:
        """Record a running job's progress."""
        fields: dict[str, Any] = {"progress": max(0, min(100, int(percent)))}
        if action is not None:
            fields["action"] = str(action)[:200]
        return self._change(job_id, guard=(ACTIVE,), fields=fields, logs=[] if log is None else [str(log)])

    def complete(self, job_id: str, result: Any) -> Outcome:
        """active → completed with its result."""
        fields = {"status": COMPLETED, "progress": 100, "result": result, **_ended()}
        return self._change(job_id, guard=(ACTIVE,), fields=fields, logs=["completed"])

    def fail(self, job_id: str, error: str, details: str = "", worker: str | None = None) -> Outcome:
        """active → failed with a one-line error; `details` (a traceback) goes to the logs."""
        lines = [f"failed: {error}"] + ([line for line in details.rstrip().splitlines()] if details else [])
        fields = {"status": FAILED, "error": error[:500], **_ended()}
        return self._change(job_id, guard=(ACTIVE,), worker=worker, fields=fields, logs=lines)

    def stopped(self, job_id: str, reason: str = "stopped by request") -> Outcome:
        """active → canceled: the worker stopped it."""
        return self._change(job_id, guard=(ACTIVE,), fields={"status": CANCELED, **_ended()}, logs=[reason])

    def cancel(self, job_id: str) -> Outcome:
        """Cancel a pending job at once, or ask the worker to stop an active one (cancel_requested)."""
        fields = {"status": CANCELED, **_ended()}
        outcome = self._change(job_id, guard=(PENDING,), fields=fields, logs=["canceled before it ran"])
        if outcome.ok:
            self._discard_rq_job(job_id)
            return outcome
        if outcome.status != ACTIVE:
            return outcome
        outcome = self._change(job_id, guard=(ACTIVE,), fields={"cancel_requested": True}, logs=["cancel requested"])
        if outcome.ok and outcome.job and outcome.job["worker"]:
            # RQ's stop command, addressed to the worker we recorded; it raises the stop inside the job,
            # and a worker that missed the message finds cancel_requested at its next heartbeat.
            send_command(self.redis, outcome.job["worker"], "stop-job", job_id=job_id)
        return outcome

    def cancel_many(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        """Cancel each job once, in order; each id's `outcome`: canceled, cancel_requested, not_found, conflict."""
        results = []
        for job_id in dict.fromkeys(ids):
            outcome = self.cancel(job_id)
            if outcome.ok:
                kind = "cancel_requested" if outcome.status == ACTIVE else "canceled"
            else:
                kind = "not_found" if outcome.result == "missing" else "conflict"
            results.append({"id": job_id, "outcome": kind, "status": outcome.status or None, "job": outcome.job})
        return results

    def retry(self, job_id: str) -> Outcome:
        """failed or canceled → pending again, same id, attempts + 1, logs kept."""
        key = job_key(job_id)
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.hmget(key, ["status", "type", "params", "attempts", "timeout", "priority"])
                    if raw[0] is None:
                        return Outcome("missing")
                    status, type_name, params, attempts, timeout, priority = (json.loads(v or "null") for v in raw)
                    job_type = get_type(type_name)
                    if status not in (FAILED, CANCELED) or job_type is None:
                        return Outcome("conflict", status)
                    pipe.multi()
                    fields = _waiting(attempts=attempts + 1)
                    log = f"retry: attempt {attempts + 1}"
                    self._change(job_id, guard=(FAILED, CANCELED), fields=fields, logs=[log], client=pipe)
                    pipe.delete(Job.key_for(job_id))
                    queue = self.queues[priority or NORMAL]
                    for registry in (queue.failed_job_registry, queue.canceled_job_registry):
                        registry.remove(job_id, pipeline=pipe)
                    self._enqueue(job_type, job_id, params, timeout, priority or NORMAL, pipe)
                    arm(pipe, self.settings.queue)
                    return _outcome(pipe.execute()[0])
                except redis.WatchError:
                    continue

    def delete(self, job_id: str, keep: tuple[str, ...] = (ACTIVE,)) -> Outcome:
        """Delete a job unless its status is in `keep` (a conflict), and RQ's copy of it."""
        header = {**self._header(job_id, JOB_REMOVED), "keep": list(keep)}
        outcome = _outcome(self._delete(self._keys(job_id), header))
        if outcome.ok:
            self._discard_rq_job(job_id)
        return outcome

    def fail_jobs_of(self, worker: str, error: str) -> list[str]:
        """Fail every active job that `worker` was running (the worker died); returns their ids."""
        failed = []
        for job_id in self.ids_with_status(ACTIVE):
            raw = self.redis.hget(job_key(job_id), "worker")
            if raw is not None and json.loads(raw) == worker and self.fail(job_id, error, worker=worker).ok:
                failed.append(job_id)
        return failed

    # -- plumbing --------------------------------------------------------------------------

    def _enqueue(
        self, job_type: JobType, job_id: str, params: dict[str, Any], timeout: int, priority: str, pipe: Any
    ) -> None:
        self.queues[priority].enqueue_call(
            func=job_type.path,
            kwargs=params,
            timeout=timeout,
            job_id=job_id,
            result_ttl=0,
            failure_ttl=FAILURE_TTL,
            description=job_type.name,
            pipeline=pipe,
        )

    def _discard_rq_job(self, job_id: str) -> None:
        try:
            Job.fetch(job_id, connection=self.redis, serializer=JSONSerializer).delete()
        except NoSuchJobError:
            pass

    def _change(
        self,
        job_id: str,
        *,
        mode: str = "update",
        guard: tuple[str, ...] = (),
        worker: str | None = None,
        fields: dict[str, Any],
        logs: list[str] | None = None,
        client: Any = None,
    ) -> Outcome:
        header = self._header(job_id, JOB_UPDATE)
        header.update(
            mode=mode,
            guard=list(guard),
            fields={name: _json(value) for name, value in fields.items()},
            logs=[line[:MAX_LOG_LINE] for text in logs or [] for line in (text.splitlines() or [""])],
            max_logs=MAX_LOGS,
            ended=list(ENDED),
            ended_key=ended_key(header["ts"][:16]),
            ended_ttl=ENDED_COUNTER_TTL,
            snapshot=list(SNAPSHOT_FIELDS),
        )
        if worker:
            header["worker"] = _json(worker)
        reply = self._apply(self._keys(job_id), header, client=client)
        return reply if client is not None else _outcome(reply)

    def _header(self, job_id: str, event: str) -> dict[str, Any]:
        """What every script needs to name the job, its event and where they go."""
        return {
            "id": job_id,
            "channel": channel(job_id),
            "event": event,
            "ts": utcnow(),
            "replay_max": self.settings.replay_events,
            "status_prefix": STATUS_PREFIX,
        }

    def _keys(self, job_id: str) -> list[str]:
        return [job_key(job_id), logs_key(job_id), INDEX_KEY, EVENTS_KEY]


def _new_fields(job_id: str, new: NewJob) -> dict[str, Any]:
    fields: dict[str, Any] = {"id": job_id, "name": new.name, "type": new.job_type.name, "params": new.params}
    fields.update(created_at=utcnow(), priority=new.priority, timeout=new.timeout, **_waiting(attempts=1))
    return fields


def _waiting(attempts: int) -> dict[str, Any]:
    """The fields of a job that waits for a worker: a new one and a retried one alike."""
    return {
        "status": PENDING,
        "progress": 0,
        "action": None,
        "cancel_requested": False,
        "started_at": None,
        "ended_at": None,
        "error": None,
        "result": None,
        "attempts": attempts,
        "worker": None,
    }


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _ended() -> dict[str, Any]:
    return {"ended_at": utcnow(), "action": None, "cancel_requested": False}


def _outcome(reply: list[Any]) -> Outcome:
    result = reply[0].decode()
    if result != "ok":
        return Outcome(result, reply[1].decode())
    job = json.loads(reply[2]) if reply[2] else None
    return Outcome(result, job["status"] if job else "", reply[1].decode(), job)

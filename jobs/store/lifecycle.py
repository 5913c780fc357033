"""The job store: job state in Redis beside RQ's queue, changed only through the event scripts."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

import redis
from rq.command import send_command
from rq.job import Job
from rq.worker import SimpleWorker

from jobs.config import Settings
from jobs.model import ACTIONS, ACTIVE, CANCELED, ENDED, NORMAL, PENDING, STATUSES
from jobs.store.creates import Creator, NewJob
from jobs.store.handoff import (
    Ending,
    Taken,
    completed,
    done_header,
    ended_fields,
    failed,
    stopped,
    take_header,
    waiting,
)
from jobs.store.keys import job_key
from jobs.store.queues import arm, queues, save_rq_job
from jobs.store.reads import Reader
from jobs.store.scripts import Outcome, Scripts, outcome
from jobs.telemetry import observe
from jobs.telemetry.metrics import EVENTS_PUBLISHED
from jobs.types.registry import get_type

logger = logging.getLogger(__name__)

NEEDED = "needed"  # delete.lua's refusal: a job that has not ended depends on this one
PROMOTE_BATCH = 500  # due jobs handed to the workers per promote.lua call
UNDELETABLE = tuple(status for status in STATUSES if status not in ACTIONS["delete"])  # a worker holds an active job


class JobStore:
    """Creates, changes and deletes jobs, each change one event script; `read` reads them."""

    def __init__(self, connection: redis.Redis, settings: Settings) -> None:
        self.redis = connection
        self.settings = settings
        self.queues = queues(settings.queue, connection)
        self.queue = self.queues[NORMAL]  # the one RQ's worker listing and registries are read through
        self.scripts = Scripts(connection, settings, self.queues)
        self.read = Reader(connection)
        self.creator = Creator(connection, settings, self.queues, self.scripts, self.read)

    def create(self, new: NewJob) -> dict[str, Any]:
        """Store a pending job and enqueue it for RQ in one transaction."""
        return self.create_many([new])[0][0]

    def create_many(self, batch: Sequence[NewJob]) -> list[tuple[dict[str, Any], bool]]:
        """Store and enqueue every job of `batch` in one transaction (all or none); see Creator.create_many."""
        return self.creator.create_many(batch)

    def begin(self, job_id: str, worker: str) -> Outcome:
        """pending → active on `worker` (as a worker takes it), `held` when its type's limit keeps it waiting, a
        conflict when it was canceled or deleted meanwhile."""
        taken = self.next(worker, take=True, job_id=job_id)[1]
        if isinstance(taken, Taken):
            return taken.outcome
        assert taken is not None  # a take always answers
        return Outcome(*taken)

    def next(
        self,
        worker: str,
        ending: Ending | None = None,
        *,
        take: bool = False,
        alive: bool = False,
        job_id: str | None = None,
    ) -> tuple[Outcome | None, Taken | tuple[str, str] | None]:
        """End a job that `worker` ran (`alive`: its watch wrote a sign of life) and take the next, in one round
        trip. The take is a Taken, or why none: ("paused", ""), ("empty", ""), or for `job_id`, (held or
        conflict or missing, the status)."""
        done = done_header(ending, worker, alive) if ending is not None else None
        rq_worker = SimpleWorker.redis_worker_namespace_prefix + worker
        replies = self.scripts.next(done, take_header(worker, rq_worker, job_id) if take else None)
        ended = observe.ended(outcome(replies[0])) if replies[0] else None
        reply = replies[1]
        if not reply:
            return ended, None
        if reply[0] != b"ok":
            return ended, (reply[0].decode(), reply[1].decode() if len(reply) > 1 else "")
        taken = Taken.from_reply(reply)
        EVENTS_PUBLISHED.inc()
        observe.started(taken.outcome, taken.ready_since)
        return ended, taken

    def end(self, ending: Ending, worker: str | None = None) -> Outcome:
        """End an active job (on `worker`, when given) without taking another: one its worker did not see end
        (a timeout past its grace, a death, a test), so its type and start are read first."""
        job_type, started_at = (
            json.loads(v) if v else None for v in self.redis.hmget(job_key(ending.job_id), ["type", "started_at"])
        )
        if job_type is not None:
            ending = ending.counted(job_type, started_at, None)
        done = done_header(ending, worker)
        return observe.ended(outcome(self.scripts.next(done, None)[0]))

    def report(self, job_id: str, percent: int, action: str | None = None, log: str | None = None) -> Outcome:
        """Record a running job's progress."""
        fields: dict[str, Any] = {"progress": max(0, min(100, int(percent)))}
        if action is not None:
            fields["action"] = str(action)[:200]
        return self.scripts.change(job_id, guard=(ACTIVE,), fields=fields, logs=[] if log is None else [str(log)])

    def give_back(self, job_id: str, worker: str, attempts: int) -> Outcome:
        """A job taken for `worker` that it will not run (it is leaving): pending again, and handed out again at
        once, through the scheduled set."""
        fields = waiting(attempts)
        logs = [f"given back: {worker} stopped before it began"]
        return self.scripts.change(
            job_id, guard=(ACTIVE,), worker=worker, fields=fields, logs=logs, schedule_at=time.time()
        )

    def complete(self, job_id: str, result: Any) -> Outcome:
        """active → completed with its result."""
        return self.end(completed(job_id, result))

    def fail(self, job_id: str, error: str, details: str = "", worker: str | None = None) -> Outcome:
        """A failed attempt of an active job (an exception, a timeout, its worker's death): pending again for
        its next attempt after the backoff while it has attempts left, else failed."""
        names = ["attempts", "max_attempts", "retry_budget", "backoff", "priority"]
        attempts, max_attempts, budget, backoff, priority = (
            json.loads(v) if v is not None else None for v in self.redis.hmget(job_key(job_id), names)
        )
        registry = self.queues[priority or NORMAL].failed_job_registry.key
        ending = failed(job_id, error, details, attempts or 1, max_attempts or 1, budget, backoff, registry)
        return self.end(ending, worker)

    def stopped(self, job_id: str, reason: str = "stopped by request") -> Outcome:
        """active → canceled: the worker stopped it."""
        return self.end(stopped(job_id, reason))

    def cancel(self, job_id: str, by: str | None = None) -> Outcome:
        """Cancel a pending job at once, or ask the worker to stop an active one (cancel_requested)."""
        fields = {"status": CANCELED, **ended_fields(), "waiting_for": []}
        outcome = self.scripts.change(
            job_id, guard=(PENDING,), fields=fields, logs=["canceled before it ran" + _by(by)]
        )
        if outcome.ok and outcome.job:
            observe.ended(outcome)
            with self.redis.pipeline(transaction=False) as pipe:  # RQ's copy and its place in the queue
                pipe.lrem(self.queues[outcome.job.get("priority") or NORMAL].key, 0, job_id)
                pipe.delete(Job.key_for(job_id))
                pipe.execute()
            return outcome
        if outcome.status != ACTIVE:
            return outcome
        requested = {"cancel_requested": True}
        outcome = self.scripts.change(job_id, guard=(ACTIVE,), fields=requested, logs=["cancel requested" + _by(by)])
        if outcome.ok and outcome.job and outcome.job["worker"]:
            # RQ's stop command, addressed to the worker we recorded; it raises the stop inside the job,
            # and a worker that missed the message finds cancel_requested at its next heartbeat.
            send_command(self.redis, outcome.job["worker"], "stop-job", job_id=job_id)
        return outcome

    def cancel_many(self, ids: Iterable[str], by: str | None = None) -> list[dict[str, Any]]:
        """Cancel each job once, in order; each id's `outcome`: canceled, cancel_requested, not_found, conflict."""
        results = []
        for job_id in dict.fromkeys(ids):
            outcome = self.cancel(job_id, by)
            if outcome.ok:
                kind = "cancel_requested" if outcome.status == ACTIVE else "canceled"
            else:
                kind = "not_found" if outcome.result == "missing" else "conflict"
            results.append({"id": job_id, "outcome": kind, "status": outcome.status or None, "job": outcome.job})
        return results

    def retry(self, job_id: str, by: str | None = None) -> Outcome:
        """failed or canceled → pending again now, same id, attempts + 1, logs kept, and as many automatic
        attempts as a new job of it would have; one with dependencies that have not ended waits for them again."""
        key = job_key(job_id)
        names = ["status", "type", "params", "attempts", "timeout", "priority", "max_attempts", "retry_budget"]
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.hmget(key, [*names, "depends_on"])
                    if raw[0] is None:
                        return Outcome("missing")
                    status, type_name, params, attempts, timeout, priority, most, budget, parents = (
                        json.loads(v or "null") for v in raw
                    )
                    job_type = get_type(type_name)
                    if status not in ACTIONS["retry"] or job_type is None:
                        return Outcome("conflict", status)
                    budget = budget or most or 1
                    waiting_for = self._unended(pipe, parents or [])
                    pipe.multi()
                    fields = {**waiting(attempts + 1), "max_attempts": attempts + budget, "scheduled_for": None}
                    fields["waiting_for"] = waiting_for
                    log = f"retry{_by(by)}: attempt {attempts + 1}"
                    self.scripts.change(job_id, guard=ACTIONS["retry"], fields=fields, logs=[log], client=pipe)
                    pipe.delete(Job.key_for(job_id))
                    queue = self.queues[priority or NORMAL]
                    for registry in (queue.failed_job_registry, queue.canceled_job_registry):
                        registry.remove(job_id, pipeline=pipe)
                    save_rq_job(queue, job_type, job_id, params, timeout, pipe, queued=not waiting_for)
                    arm(pipe, self.settings.queue)
                    return observe.retried(outcome(pipe.execute()[0]), by)
                except redis.WatchError:
                    continue

    def _unended(self, pipe: Any, parents: list[str]) -> list[str]:
        """The jobs of `parents` that have not ended (a deleted one has), watched in `pipe` till its EXEC."""
        if not parents:
            return []
        pipe.watch(*(job_key(parent) for parent in parents))
        statuses = [pipe.hget(job_key(parent), "status") for parent in parents]
        return [p for p, raw in zip(parents, statuses, strict=True) if raw and json.loads(raw) not in ENDED]

    def delete(self, job_id: str, keep: tuple[str, ...] = UNDELETABLE) -> Outcome:
        """Delete a job unless its status is in `keep` (a conflict), with its logs and RQ's copy."""
        return self.scripts.remove(job_id, keep)

    def delete_many(self, ids: Iterable[str], keep: tuple[str, ...]) -> list[str]:
        """Delete each job unless its status is in `keep`, in one round trip; returns the deleted ids."""
        return [job_id for job_id, done in self.delete_each(ids, keep) if done.ok]

    def delete_each(self, ids: Iterable[str], keep: tuple[str, ...]) -> list[tuple[str, Outcome]]:
        """Delete each job unless its status is in `keep` or a job not ended depends on it (NEEDED), in one
        round trip; each id with its outcome."""
        ids = list(ids)
        with self.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                self.scripts.remove(job_id, keep, client=pipe)
            replies = pipe.execute()
        return [(job_id, outcome(reply)) for job_id, reply in zip(ids, replies, strict=True)]

    def promote(self) -> int:
        """Hand the due jobs of the scheduled set to the workers; returns how many were due."""
        total = 0
        while (count := self.scripts.promote(PROMOTE_BATCH)) > 0:
            total += count
            if count < PROMOTE_BATCH:
                break
        return total

    def fail_jobs_of(self, worker: str, error: str) -> list[str]:
        """Fail the attempt of every active job that `worker` was running (the worker died); their ids."""
        failed = []
        for job_id in self.read.ids_with_status(ACTIVE):
            raw = self.redis.hget(job_key(job_id), "worker")
            if raw is not None and json.loads(raw) == worker and self.fail(job_id, error, worker=worker).ok:
                failed.append(job_id)
        return failed


def _by(user: str | None) -> str:
    return f" by {user}" if user else ""

"""Priorities: one RQ queue per priority, and a dequeue that always takes high before normal before low.

RQ listens to several queues with one BLPOP, which takes in order but leaves no trace of a job between
the pop and its start. Here a script moves the first job of the first non-empty queue into that queue's
intermediate list (RQ's own crash-safe LMOVE), and an idle worker blocks on a one-token wake list that
every enqueue arms.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import redis
from rq import Queue
from rq.exceptions import DequeueTimeout
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from jobs.connection import text
from jobs.model import DAY, HIGH, LOW, NORMAL, PRIORITIES
from jobs.store.lua import source
from jobs.types.registry import JobType

SUFFIXES = {HIGH: ":high", NORMAL: "", LOW: ":low"}  # the normal queue keeps the plain JOBSTREAM_QUEUE name
STRANDED_SECONDS = 5.0  # a taken job not begun after this long was left by a worker that died (it takes ms)


def queue_name(base: str, priority: str) -> str:
    """The RQ queue of `priority` jobs."""
    return base + SUFFIXES[priority]


def wake_key(base: str) -> str:
    """The list an idle worker blocks on: at most one token, pushed by every enqueue."""
    return f"{Queue.redis_queue_namespace_prefix}{base}:wake"


def queues(base: str, connection: redis.Redis) -> dict[str, PriorityQueue]:
    """The queue of each priority, highest first."""
    return {p: PriorityQueue(queue_name(base, p), connection=connection, serializer=JSONSerializer) for p in PRIORITIES}


def arm(pipe: Any, base: str) -> None:
    """Wake one idle worker (queued in `pipe`, beside the push of a job)."""
    pipe.rpush(wake_key(base), 1)
    pipe.ltrim(wake_key(base), -1, -1)


def depths(base: str, connection: redis.Redis) -> dict[str, int]:
    """How many jobs wait in each priority's queue (due and not held back)."""
    with connection.pipeline(transaction=False) as pipe:
        for priority in PRIORITIES:
            pipe.llen(Queue.redis_queue_namespace_prefix + queue_name(base, priority))
        return dict(zip(PRIORITIES, pipe.execute(), strict=True))


class PriorityQueue(Queue):
    """An RQ queue whose workers dequeue across the priorities in order, never losing a popped job."""

    def __init__(self, name: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(name, *args, **kwargs)
        self.base = name.removesuffix(SUFFIXES[HIGH]).removesuffix(SUFFIXES[LOW])

    @classmethod
    def dequeue_any(
        cls,
        queues: Iterable[Queue],
        timeout: int | None,
        connection: redis.Redis,
        job_class: type[Job] | None = None,
        serializer: Any = None,
        death_penalty_class: Any = None,
    ) -> tuple[Job, Queue] | None:
        """The next job of the highest priority; with a timeout, wait up to that long for one."""
        ordered = list(queues)
        keys = [k for q in ordered for k in (q.key, q.intermediate_queue_key)] + [wake_key(_base(ordered[0]))]
        take = connection.register_script(source("dequeue"))
        while True:
            taken = take(keys=keys)
            if not taken:
                if timeout is None:
                    return None
                if connection.blpop([keys[-1]], timeout) is None:
                    raise DequeueTimeout(timeout, keys[:-1])
                continue
            queue_key, job_id = (text(part) for part in taken)
            fetched = cls._fetch_dequeued_job(connection, queue_key, job_id, job_class, serializer, death_penalty_class)
            if fetched is not None:
                return fetched


def _base(queue: Queue) -> str:
    return queue.base if isinstance(queue, PriorityQueue) else queue.name


class Stranded:
    """Jobs that a worker took into an intermediate list and died before it began them (killed, or Redis went
    away, as in a failover): once one has been seen there for STRANDED_SECONDS, it goes back to the head of
    its queue. (RQ's own cleanup would fail it, at its maintenance ten minutes later.) Should a slow worker
    begin it after all, whichever worker takes the copy finds it begun and drops it, as any job queued twice."""

    def __init__(self, base: str, connection: redis.Redis, after: float = STRANDED_SECONDS) -> None:
        self.connection = connection
        self.lists = [(q.intermediate_queue_key, q.key) for q in queues(base, connection).values()]
        self.wake = wake_key(base)
        self.after = after
        self.first_seen: dict[tuple[str, str], float] = {}  # (intermediate list, job id) -> when
        self._give_back = connection.register_script(source("requeue"))

    def sweep(self) -> list[str]:
        """Look at the intermediate lists; give back what has been there long enough, and return those ids."""
        with self.connection.pipeline(transaction=False) as pipe:
            for intermediate, _ in self.lists:
                pipe.lrange(intermediate, 0, -1)
            listed = pipe.execute()
        now = time.monotonic()
        self.first_seen = {
            (intermediate, text(job_id)): self.first_seen.get((intermediate, text(job_id)), now)
            for (intermediate, _), ids in zip(self.lists, listed, strict=True)
            for job_id in ids
        }
        given: list[str] = []
        for intermediate, queue_key in self.lists:
            due = [i for (key, i), seen in self.first_seen.items() if key == intermediate and now - seen >= self.after]
            if due:
                given += [text(i) for i in self._give_back(keys=[intermediate, queue_key, self.wake], args=due)]
        return given


FAILURE_TTL = 7 * DAY  # RQ's copy of a failed job (jobstream deletes it with the job)


def save_rq_job(
    queue: Queue, job_type: JobType, job_id: str, params: dict[str, Any], timeout: int, pipe: Any, *, queued: bool
) -> None:
    """RQ's copy of a job, in `pipe`: pushed on `queue` when `queued`, else saved for promote.lua to queue later."""
    job = queue.create_job(
        job_type.path,
        kwargs=params,
        timeout=timeout,
        job_id=job_id,
        result_ttl=0,
        failure_ttl=FAILURE_TTL,
        description=job_type.name,
        status=JobStatus.QUEUED if queued else JobStatus.SCHEDULED,
    )
    if queued:
        queue.enqueue_job(job, pipeline=pipe)
        return
    job.save(pipeline=pipe)
    pipe.sadd(queue.redis_queues_keys, queue.key)

"""Priorities: one RQ queue per priority, high taken before normal before low, and RQ's copy of each job.

A worker takes its next job with next.lua, which pops the first non-empty queue and begins the job in the same
script (nothing is lost between the pop and the start), and an idle worker blocks on a one-token wake list that
every enqueue arms.
"""

from __future__ import annotations

import zlib
from typing import Any

import redis
from rq import Queue
from rq.job import JobStatus
from rq.serializers import JSONSerializer

from jobs.model import DAY, HIGH, LOW, NORMAL, PRIORITIES
from jobs.types.registry import JobType

SUFFIXES = {HIGH: ":high", NORMAL: "", LOW: ":low"}  # the normal queue keeps the plain JOBSTREAM_QUEUE name


def queue_name(base: str, priority: str) -> str:
    """The RQ queue of `priority` jobs."""
    return base + SUFFIXES[priority]


def wake_key(base: str) -> str:
    """The list an idle worker blocks on: at most one token, pushed by every enqueue."""
    return f"{Queue.redis_queue_namespace_prefix}{base}:wake"


def queues(base: str, connection: redis.Redis) -> dict[str, Queue]:
    """The queue of each priority, highest first."""
    return {p: Queue(queue_name(base, p), connection=connection, serializer=JSONSerializer) for p in PRIORITIES}


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


def rq_fields(queue: Queue, job_type: JobType, timeout: int) -> list[Any]:
    """RQ's hash of a job that save_rq_job saves, but for what differs by job (data, created_at, status,
    enqueued_at): the fields Job.to_dict() writes, flat (name, value, ...), for create.lua to write many at once."""
    empty = ("success_callback_name", "failure_callback_name", "stopped_callback_name", "started_at", "ended_at")
    fields: list[Any] = [f for name in (*empty, "last_heartbeat", "worker_name", "group_id") for f in (name, "")]
    fields += ["origin", queue.name, "description", job_type.name, "timeout", timeout, "result_ttl", 0]
    return [*fields, "failure_ttl", FAILURE_TTL]


def rq_data(job_type: JobType, params_json: str) -> bytes:
    """RQ's `data` of a job: its JSONSerializer's dump of (function, no instance, no args, the params), zipped."""
    return zlib.compress(f'["{job_type.path}",null,[],{params_json}]'.encode())

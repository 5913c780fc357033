"""Following jobs from Python: the stream's events as JobEvent objects, resumable, and the wait for one job's end."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import redis

from jobs.errors import JobNotFound
from jobs.model import ENDED, Job
from jobs.stream.events import (
    BEGINNING,
    JOB_REMOVED,
    RESET,
    SCHEDULE_EVENTS,
    Event,
    channel,
    id_key,
    missed,
    newest_id,
)
from jobs.stream.subscription import RedisSubscription

logger = logging.getLogger(__name__)

RECONNECT_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)  # the waits between tries when Redis goes away under events()
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError)  # Redis gone, or answering nothing for a while


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One event of the stream: `job-update` (with the job), `job-removed`, `schedule-update` (with the schedule
    as a dict, and `skipped`), `schedule-removed` (`schedule_id`), or `reset` (the events after the id you
    resumed from are gone: refetch what you show, then go on from this event's id)."""

    id: str | None
    type: str
    job_id: str | None
    job: Job | None = None
    log: str | None = None
    counts: dict[str, int] | None = None
    timestamp: str | None = None
    schedule_id: str | None = None
    schedule: dict[str, Any] | None = None
    skipped: str | None = None

    @classmethod
    def from_event(cls, event: Event) -> JobEvent:
        data = json.loads(event.data)
        if event.job_id.startswith(SCHEDULE_EVENTS):
            schedule_id = event.job_id.removeprefix(SCHEDULE_EVENTS)
            return cls(
                event.id,
                event.name,
                None,
                None,
                None,
                None,
                data.get("timestamp"),
                schedule_id,
                data.get("schedule"),
                data.get("skipped"),
            )
        job = Job.from_snapshot(data["job"]) if "job" in data else None
        return cls(event.id, event.name, event.job_id, job, data.get("log"), data.get("counts"), data.get("timestamp"))


def wait(client: redis.Redis, job_id: str, timeout: float, get: Callable[[str], Job]) -> Job:
    """Block until the job has ended and return it; TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    with client.pubsub(ignore_subscribe_messages=True) as pubsub:
        pubsub.subscribe(channel(job_id))  # first: an end published after the read below is not missed
        job = get(job_id)
        while job.status not in ENDED:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"job {job_id} is still {job.status} after {timeout} s")
            message = pubsub.get_message(timeout=min(left, 1.0))
            if message is not None:
                event = JobEvent.from_event(Event.from_message(message["channel"], message["data"]))
                if event.type == JOB_REMOVED:
                    raise JobNotFound(f"job {job_id} was deleted before it ended")
                job = event.job or job
                if job.status in ENDED:
                    return get(job_id)  # with its logs, however the end arrived
    return job


def events(client: redis.Redis, after: str | None = None, job: str | None = None) -> Iterator[JobEvent]:
    """The stream's events from Redis: those after `after` (an event id), then live ones, for ever.

    Resumable: pass the last id you handled. When those events are gone, yields a `reset` event first.
    Redis going away is waited out (reconnecting, then replaying), so no event is lost or repeated."""
    last = after
    failures = 0
    while True:
        try:
            if last is None:  # now, read before subscribing: what comes between is replayed, not lost
                last = newest_id(client) or BEGINNING
            subscription = RedisSubscription(client)
        except UNAVAILABLE as exc:
            time.sleep(RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)])
            failures += 1
            logger.info("events: Redis unavailable (%s); trying again", exc)
            continue
        try:
            backlog = missed(client, last)
            if backlog is None:
                last = newest_id(client) or BEGINNING
                yield JobEvent(last, RESET, None)
                backlog = []
            failures = 0
            for event in backlog:
                last = event.id
                if job is None or event.job_id == job:
                    yield JobEvent.from_event(event)
            while True:
                for event in subscription.get(1.0):
                    if event.key > id_key(last) and (job is None or event.job_id == job):
                        last = event.id
                        yield JobEvent.from_event(event)
        except UNAVAILABLE as exc:
            logger.info("events: lost Redis (%s); resuming after %s", exc, last)
        finally:
            subscription.close()

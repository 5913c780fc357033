"""The Python API: `Jobs`, one per process like rq.Queue. The REST API's views call the same methods.

Over 300 lines because it is the whole public surface, each method a few lines over the store, in one class.
"""

from __future__ import annotations

import builtins
import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from marshmallow import Schema, ValidationError

from jobs import schemas
from jobs.config import CHECKOUT, Settings
from jobs.connection import connect
from jobs.errors import InvalidRequest, JobConflict, JobNotFound
from jobs.model import ENDED, Job, isoformat
from jobs.options import CreateOptions
from jobs.store import control
from jobs.store.creates import NewJob
from jobs.store.lifecycle import JobStore
from jobs.store.scripts import Outcome
from jobs.stream.events import BEGINNING, JOB_REMOVED, RESET, Event, channel, id_key, missed, newest_id
from jobs.stream.subscription import RedisSubscription
from jobs.types.attempts import Backoff
from jobs.types.registry import JobFunction, describe_types, get_type, load, provide_default

logger = logging.getLogger(__name__)

RECONNECT_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)  # the waits between tries when Redis goes away under events()
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError)  # Redis gone, or answering nothing for a while


@dataclass(frozen=True, slots=True)
class Page:
    """A page of the list, newest first, with the counts and the event to resume the stream after."""

    jobs: list[Job]
    next_cursor: str | None
    counts: dict[str, int]
    last_event_id: str | None


@dataclass(frozen=True, slots=True)
class CancelResult:
    """What a cancel of one id of many did: canceled, cancel_requested, not_found or conflict."""

    id: str
    outcome: str
    status: str | None
    job: Job | None


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One event of the stream: `job-update` (with the job), `job-removed`, or `reset` (the events after the
    id you resumed from are gone: refetch what you show, then go on from this event's id)."""

    id: str | None
    type: str
    job_id: str | None
    job: Job | None = None
    log: str | None = None
    counts: dict[str, int] | None = None
    timestamp: str | None = None

    @classmethod
    def from_event(cls, event: Event) -> JobEvent:
        data = json.loads(event.data)
        job = Job.from_snapshot(data["job"]) if "job" in data else None
        return cls(event.id, event.name, event.job_id, job, data.get("log"), data.get("counts"), data.get("timestamp"))


class Jobs:
    """Enqueue, read, control and follow jobs; thread-safe, and needs nothing but a Redis that it can reach."""

    _default: Jobs | None = None
    _default_lock = threading.Lock()

    def __init__(self, connection: redis.Redis, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.redis = connection
        self.store = JobStore(connection, self.settings)
        load(self.settings.job_type_modules)  # enqueue knows every type its workers run

    @classmethod
    def from_url(cls, url: str, **settings: Any) -> Jobs:
        """Jobs on the Redis at `url` (redis://host:port/db); other Settings fields by keyword."""
        return cls(connect(url), Settings(redis_url=url, redis_url_source="Jobs.from_url", **settings))

    @classmethod
    def from_env(cls) -> Jobs:
        """Jobs configured as the web and the workers are, from REDIS_URL and the JOBSTREAM_* variables.
        Without REDIS_URL, the Redis of a running `make run` of this checkout (the URL it keeps in
        var/redis.url; ConfigError if that Redis does not answer), else redis://127.0.0.1:6379/0."""
        settings = Settings.from_env(checkout=CHECKOUT)
        return cls(connect(settings.redis_url), settings)

    @classmethod
    def default(cls) -> Jobs:
        """The process's Jobs from the environment, built on first use: what `my_job.enqueue(...)` uses."""
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls.from_env()
            return cls._default

    # -- creating ----------------------------------------------------------------------------

    def enqueue(
        self,
        type: str | JobFunction[Any, Any],
        *,
        name: str,
        params: Mapping[str, Any] | None = None,
        priority: str | None = None,
        timeout_seconds: int | None = None,
        delay_seconds: float | None = None,
        run_at: datetime | str | None = None,
        max_attempts: int | None = None,
        backoff: Backoff | Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Create a job and enqueue it (after `delay_seconds`, or at `run_at`); with `max_attempts` > 1, a
        failed attempt is retried after `backoff`. InvalidRequest names each bad field, as the REST 422 does."""
        options = CreateOptions(
            priority=priority,
            timeout_seconds=timeout_seconds,
            delay_seconds=delay_seconds,
            run_at=run_at,
            max_attempts=max_attempts,
            backoff=backoff,
            idempotency_key=idempotency_key,
        )
        return self.submit(type, name, params, options)

    def submit(
        self,
        type: str | JobFunction[Any, Any],
        name: str,
        params: Mapping[str, Any] | None = None,
        options: CreateOptions | None = None,
    ) -> Job:
        """enqueue() with its options in one CreateOptions: what a job function's `.using()` calls."""
        options = options or CreateOptions()
        return self.create(_body(type, name, params, options), options.idempotency_key)[0]

    def enqueue_many(self, items: Iterable[Mapping[str, Any]]) -> builtins.list[Job]:
        """Create many jobs in one transaction, all or none; each item takes enqueue()'s keyword arguments
        (and `type`). InvalidRequest's details are keyed by the position of each bad item."""
        batch, errors = [], {}
        for index, item in enumerate(items):
            try:
                given = dict(item)
                type, name, params = given.pop("type", None), given.pop("name", None), given.pop("params", None)
                options = CreateOptions(**given)
                body = _body(type, name, params, options)
                batch.append(self._new(_load(schemas.job_create, body), options.idempotency_key))
            except (InvalidRequest, TypeError) as exc:
                errors[str(index)] = exc.details if isinstance(exc, InvalidRequest) else {"_schema": [str(exc)]}
        if errors:
            raise InvalidRequest("some jobs are not valid: none was created", errors)
        return [Job.from_snapshot(job) for job, _ in self.store.create_many(batch)]

    def create(self, body: Mapping[str, Any], idempotency_key: str | None = None) -> tuple[Job, bool]:
        """Create a job from a create request (POST /api/jobs's body); returns it and True, or, for a key used
        before, the job it created then and False. IdempotencyConflict when that was a different request."""
        job, created = self.store.create_many([self._new(_load(schemas.job_create, body), idempotency_key)])[0]
        return Job.from_snapshot(job), created

    def _new(self, data: Mapping[str, Any], idempotency_key: str | None) -> NewJob:
        """A loaded create body checked against its job type and that type's params schema."""
        key = None
        if idempotency_key is not None:
            key = _load(schemas.idempotency, {"Idempotency-Key": idempotency_key})["idempotency_key"]
        job_type = get_type(data["type"])
        if job_type is None:
            raise InvalidRequest("the request is not valid", {"type": [f"unknown job type {data['type']!r}"]})
        try:
            params = job_type.schema.load(data["params"])
        except ValidationError as exc:
            raise InvalidRequest("the request is not valid", {"params": exc.messages}) from None
        timeout = data["timeout_seconds"] or job_type.timeout
        now = datetime.now(UTC)
        run_at, start = data["run_at"], None
        if run_at is not None:
            start = f"run_at={isoformat(run_at)}"
        if data["delay_seconds"] is not None:
            run_at = now + timedelta(seconds=data["delay_seconds"])
            start = f"delay_seconds={data['delay_seconds']:g}"
        return NewJob(
            job_type,
            data["name"],
            params,
            timeout,
            data["priority"] or job_type.priority,
            data["max_attempts"] or job_type.max_attempts,
            data["backoff"] or job_type.backoff,
            run_at if run_at is not None and run_at > now else None,  # no delay, or a past run_at: queued now
            key,
            start,
        )

    # -- reading -----------------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        """The job with its logs and `last_event_id` (events after it carry lines not in `logs`)."""
        job = self.store.read.get(job_id, with_logs=True)
        if job is None:
            raise JobNotFound(f"no job {job_id}")
        return Job.from_snapshot(job)

    def list(self, status: str | None = None, q: str | None = None, limit: int = 50, cursor: str | None = None) -> Page:
        """A page of jobs, newest first; pass `next_cursor` back as `cursor` for the next one."""
        query = _load(schemas.job_query, {"status": status, "q": q, "limit": limit, "cursor": cursor})
        page = self.store.read.page(**query)
        return Page(
            [Job.from_snapshot(j) for j in page["jobs"]], page["next_cursor"], page["counts"], page["last_event_id"]
        )

    def job_types(self) -> builtins.list[dict[str, Any]]:
        """The registered types, with their params' JSON Schema and their defaults."""
        return describe_types()

    def stats(self) -> dict[str, Any]:
        """Counts, queue depth by priority, workers and what they run, paused?, jobs ended per minute."""
        return control.stats(self.store)

    # -- changing ----------------------------------------------------------------------------

    def cancel(self, job_id: str, by: str | None = None) -> Job:
        """Cancel a pending job at once; an active one is stopped by its worker (cancel_requested until then).
        `by` names who asked, in the job's log."""
        return _changed(job_id, self.store.cancel(job_id, by), "cancel")

    def cancel_many(self, ids: Iterable[str], by: str | None = None) -> builtins.list[CancelResult]:
        """Cancel each id once, in order, and say what happened to each."""
        return [
            CancelResult(r["id"], r["outcome"], r["status"], Job.from_snapshot(r["job"]) if r["job"] else None)
            for r in self.store.cancel_many(ids, by)
        ]

    def retry(self, job_id: str, by: str | None = None) -> Job:
        """Run a failed or canceled job again now: same id, attempts + 1, logs kept."""
        return _changed(job_id, self.store.retry(job_id, by), "retry")

    def delete(self, job_id: str, by: str | None = None) -> None:
        """Delete a job that is not active, with its logs (the server's log says who deleted it)."""
        _check(job_id, self.store.delete(job_id), "delete")
        logger.info("job %s deleted%s", job_id, f" by {by}" if by else "")

    def pause(self) -> None:
        """Stop handing out pending jobs; running ones finish."""
        control.pause(self.store)

    def resume(self) -> None:
        """Hand out pending jobs again."""
        control.unpause(self.store)

    def clean(self, status: str | None = None, older_than_seconds: int = 0) -> builtins.list[str]:
        """Delete ended jobs (of `status`, or every ended one) that ended that long ago; returns their ids."""
        query = _load(schemas.clean, {"status": status, "older_than_seconds": older_than_seconds})
        return control.clean(self.store, query["status"], query["older_than_seconds"])

    # -- following ---------------------------------------------------------------------------

    def wait(self, job_id: str, timeout: float = 60.0) -> Job:
        """Block until the job has ended and return it; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
            pubsub.subscribe(channel(job_id))  # first: an end published after the read below is not missed
            job = self.get(job_id)
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
                        return self.get(job_id)  # with its logs, however the end arrived
        return job

    def events(self, after: str | None = None, job: str | None = None) -> Iterator[JobEvent]:
        """The stream's events from Redis: those after `after` (an event id), then live ones, for ever.

        Resumable: pass the last id you handled. When those events are gone, yields a `reset` event first.
        Redis going away is waited out (reconnecting, then replaying), so no event is lost or repeated."""
        last = after
        failures = 0
        while True:
            try:
                if last is None:  # now, read before subscribing: what comes between is replayed, not lost
                    last = newest_id(self.redis) or BEGINNING
                subscription = RedisSubscription(self.redis)
            except UNAVAILABLE as exc:
                time.sleep(RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)])
                failures += 1
                logger.info("events: Redis unavailable (%s); trying again", exc)
                continue
            try:
                backlog = missed(self.redis, last)
                if backlog is None:
                    last = newest_id(self.redis) or BEGINNING
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


provide_default(Jobs.default)


def _body(
    type: str | JobFunction[Any, Any] | None, name: Any, params: Mapping[str, Any] | None, options: CreateOptions
) -> dict[str, Any]:
    """A create request as the REST API receives it (absent fields left out, so defaults apply)."""
    given = {
        "type": type.job_type if isinstance(type, JobFunction) else type,
        "name": name,
        "params": params,  # as given: the schema refuses what is not a mapping, as the REST API does
    }
    return {**{field: value for field, value in given.items() if value is not None}, **options.body()}


def _load(schema: Schema, data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` loaded by `schema`; InvalidRequest with marshmallow's messages (the REST details) otherwise."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        details = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise InvalidRequest("the request is not valid", details) from None


def _check(job_id: str, outcome: Outcome, action: str) -> Outcome:
    """The outcome of a change that happened; JobNotFound or JobConflict (with the status) otherwise."""
    if outcome.result == "missing":
        raise JobNotFound(f"no job {job_id}")
    if not outcome.ok:
        raise JobConflict(f"cannot {action} a job that is {outcome.status}", {"status": outcome.status})
    return outcome


def _changed(job_id: str, outcome: Outcome, action: str) -> Job:
    """The job as the change left it."""
    snapshot = _check(job_id, outcome, action).job
    assert snapshot is not None  # a change that happened returns the new snapshot
    return Job.from_snapshot(snapshot)

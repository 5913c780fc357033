"""The Python API: `Jobs`, one per process like rq.Queue. The REST API's views call the same methods.

Over 300 lines because it is the whole public surface, each method a few lines over the store, in one class.
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from marshmallow import Schema, ValidationError, missing

from jobs import graph, schemas
from jobs.cadence import preview
from jobs.config import CHECKOUT, Settings
from jobs.connection import connect
from jobs.errors import InvalidRequest, JobConflict, JobNotFound
from jobs.model import Job, Schedule, isoformat
from jobs.options import CreateOptions
from jobs.schedules import declared, preview_of
from jobs.schedules import schedule_id as checked_schedule_id
from jobs.store import control, failures
from jobs.store.creates import MissingDependency, NewJob
from jobs.store.lifecycle import NEEDED, UNDELETABLE, JobStore
from jobs.store.schedules import ScheduleStore
from jobs.store.scripts import Outcome
from jobs.stream import follow
from jobs.stream.follow import JobEvent
from jobs.types.attempts import Backoff
from jobs.types.registry import JobFunction, describe_types, get_type, load, provide_default

logger = logging.getLogger(__name__)


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


class Jobs:
    """Enqueue, read, control and follow jobs; thread-safe, and needs nothing but a Redis that it can reach."""

    _default: Jobs | None = None
    _default_lock = threading.Lock()

    def __init__(self, connection: redis.Redis, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.redis = connection
        self.store = JobStore(connection, self.settings)
        self.schedule_store = ScheduleStore(self.store)
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
        depends_on: Sequence[str] | None = None,
        allow_failure: bool | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Create a job and enqueue it (after `delay_seconds`, or at `run_at`, once the jobs of `depends_on` have
        ended); with `max_attempts` > 1, a failed attempt is retried after `backoff`. InvalidRequest names each bad
        field, as the REST 422 does."""
        options = CreateOptions(
            priority=priority,
            timeout_seconds=timeout_seconds,
            delay_seconds=delay_seconds,
            run_at=run_at,
            max_attempts=max_attempts,
            backoff=backoff,
            depends_on=depends_on,
            allow_failure=allow_failure,
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
        """Create up to 1,000 jobs in one transaction, all or none; each item takes enqueue()'s keyword arguments
        (and `type`), and `key`, which later items' `depends_on` may name beside stored jobs' ids, so a graph is
        created at once. InvalidRequest's details are keyed by the position of each bad item, under `jobs`."""
        items = builtins.list(items)
        if len(items) > schemas.BATCH_MAX:
            raise InvalidRequest("the request is not valid", {"jobs": [f"at most {schemas.BATCH_MAX} jobs per batch"]})
        batch, errors = [], {}
        kinds: dict[str, NewJob] = {}  # the type and options of items checked before: checked once per batch
        refs: builtins.list[tuple[str | None, builtins.list[str]]] = []  # each item's key and dependencies
        for index, item in enumerate(items):
            found: dict[str, Any] = {}
            refs.append((None, []))
            try:
                given = dict(item)
                type, name, params = given.pop("type", None), given.pop("name", None), given.pop("params", None)
                refs[-1] = _refs(given.pop("key", None), given.pop("depends_on", None), found)
                options = CreateOptions(**given)
                given.pop("idempotency_key", None)
                seen = repr((type, given))
                kind, checked = kinds.get(seen), _name_params(name, params)
                if kind is None or checked is None:  # the schema checks all, and names each bad field
                    data = _load(schemas.job_create, _body(type, name, params, options))
                    key = _idempotency(options.idempotency_key)
                    kind = kinds[seen] = self._kind(data)
                    checked = data["name"], data["params"]
                else:
                    key = _idempotency(options.idempotency_key)
                batch.append(_of_kind(kind, *checked, key))
            except (InvalidRequest, TypeError, ValueError) as exc:
                found.update(exc.details if isinstance(exc, InvalidRequest) else {"_schema": [str(exc)]})
            if found:
                errors[str(index)] = found
        if not errors:
            graph.check(refs, errors)
        if errors:
            for place, details in errors.items():
                item_key = refs[int(place)][0]
                if item_key is not None and "key" not in details:
                    details["key"] = item_key  # the item's own key, beside its position
            raise InvalidRequest("some jobs are not valid: none was created", {"jobs": errors})
        resolved = graph.resolve(refs)
        linked = [replace(new, depends_on=on) if on else new for new, on in zip(batch, resolved, strict=True)]
        try:
            created = self.store.create_many(linked)
        except MissingDependency as exc:
            bad = {str(at): {"depends_on": [str(exc)]} for at, new in enumerate(linked) if exc.job_id in new.depends_on}
            raise InvalidRequest("some jobs are not valid: none was created", {"jobs": bad}) from None
        return [Job.from_snapshot(job) for job, _ in created]

    def create_batch(self, body: Mapping[str, Any]) -> builtins.list[Job]:
        """Create the jobs of a batch request (POST /api/jobs/batch's body, `{jobs: [...]}`), all or none."""
        data = _load(schemas.batch, body)
        errors = {
            str(at): {name: ["Unknown field."] for name in item if name not in schemas.batch_item.fields}
            for at, item in enumerate(data["jobs"])
        }
        errors = {at: found for at, found in errors.items() if found}
        if errors:
            raise InvalidRequest("some jobs are not valid: none was created", {"jobs": errors})
        return self.enqueue_many(data["jobs"])

    def create(self, body: Mapping[str, Any], idempotency_key: str | None = None) -> tuple[Job, bool]:
        """Create a job from a create request (POST /api/jobs's body); returns it and True, or, for a key used
        before, the job it created then and False. IdempotencyConflict when that was a different request."""
        data = _load(schemas.job_create, body)
        key = _idempotency(idempotency_key)
        new = _of_kind(self._kind(data), data["name"], data["params"], key)
        new = replace(new, depends_on=tuple(dict.fromkeys(data["depends_on"])))
        try:
            job, created = self.store.create_many([new])[0]
        except MissingDependency as exc:
            raise InvalidRequest("the request is not valid", {"depends_on": [str(exc)]}) from None
        return Job.from_snapshot(job), created

    def _kind(self, data: Mapping[str, Any]) -> NewJob:
        """A loaded create body's type and options checked and defaulted: a job of that kind, but for its name,
        params and idempotency key."""
        job_type = get_type(data["type"])
        if job_type is None:
            raise InvalidRequest("the request is not valid", {"type": [f"unknown job type {data['type']!r}"]})
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
            "",
            {},
            timeout,
            data["priority"] or job_type.priority,
            data["max_attempts"] or job_type.max_attempts,
            data["backoff"] or job_type.backoff,
            run_at if run_at is not None and run_at > now else None,  # no delay, or a past run_at: queued now
            None,
            start,
            allow_failure=data["allow_failure"],
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
        """Delete a job that is not active, and that no job which has not ended depends on, with its logs (the
        server's log says who deleted it)."""
        deleted = self.store.delete(job_id)
        if deleted.result == NEEDED:
            message = "cannot delete a job that others depend on before they end"
            raise JobConflict(message, {"status": deleted.status, "dependents": self.get(job_id).dependents})
        _check(job_id, deleted, "delete")
        logger.info("job %s deleted%s", job_id, f" by {by}" if by else "")

    def pause(self) -> None:
        """Stop handing out pending jobs; running ones finish."""
        control.pause(self.store)

    def resume(self) -> None:
        """Hand out pending jobs again."""
        control.unpause(self.store)

    # -- schedules ---------------------------------------------------------------------------

    def schedule(
        self,
        schedule_id: str,
        type: str | JobFunction[Any, Any],
        *,
        cron: str | None = None,
        every_seconds: int | None = None,
        timezone: str | None = None,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        overlap: str | None = None,
        paused: bool | None = None,
        **options: Any,
    ) -> Schedule:
        """Create or replace (upsert) the schedule `schedule_id`: a job of `type` on a `cron` in `timezone`, or
        every `every_seconds`; `options` as enqueue()'s (priority, timeout_seconds, max_attempts, backoff).
        Its next run and created_at stay when its cadence does, so code may declare it at every start."""
        given = {"cron": cron, "every_seconds": every_seconds, "timezone": timezone, "name": name, "params": params}
        given.update(overlap=overlap, paused=paused, **CreateOptions(**options).body())
        body: dict[str, Any] = {"type": type.job_type if isinstance(type, JobFunction) else type}
        body.update((key, value) for key, value in given.items() if value is not None)
        return self.put_schedule(schedule_id, body)[0]

    def put_schedule(self, schedule_id: str, body: Mapping[str, Any]) -> tuple[Schedule, bool]:
        """schedule() from a PUT /api/schedules/<id> body: the schedule, and True when it is new."""
        return self.schedule_store.put(declared(schedule_id, body))

    def schedules(self) -> builtins.list[Schedule]:
        """Every schedule, by id."""
        return self.schedule_store.all()

    def get_schedule(self, schedule_id: str) -> Schedule:
        """One schedule (ScheduleNotFound when there is none)."""
        return self.schedule_store.get(checked_schedule_id(schedule_id))

    def pause_schedule(self, schedule_id: str) -> Schedule:
        """No more ticks until resumed."""
        return self.schedule_store.pause(checked_schedule_id(schedule_id))

    def resume_schedule(self, schedule_id: str) -> Schedule:
        """Tick again, from the next tick after now."""
        return self.schedule_store.resume(checked_schedule_id(schedule_id))

    def run_schedule(self, schedule_id: str) -> Job:
        """The schedule's job, now (paused or not, whatever runs): its next run and pause stay as they are."""
        return Job.from_snapshot(self.schedule_store.run(checked_schedule_id(schedule_id)))

    def unschedule(self, schedule_id: str) -> None:
        """Delete a schedule; the jobs it made stay."""
        self.schedule_store.remove(checked_schedule_id(schedule_id))

    def preview_schedule(self, **query: Any) -> builtins.list[str]:
        """The next ticks (UTC, the API's format) of a cadence: `cron` or `every_seconds`, `timezone`, `after`
        (default now), `count` (default 5), as GET /api/schedules/preview takes them."""
        cadence, after, count = preview_of(query)
        return [isoformat(tick) for tick in preview(cadence, after, count)]

    # -- failures ----------------------------------------------------------------------------

    def failures(self) -> builtins.list[dict[str, Any]]:
        """The failure groups, largest first: failed jobs by type and error, numbers, ids and quoted values aside."""
        return failures.groups(self.redis)

    def retry_failures(self, key: str, by: str | None = None) -> builtins.list[str]:
        """Retry every job of failure group `key` (JobNotFound when there is none); the ids retried."""
        return [job_id for job_id in self._group(key) if self.store.retry(job_id, by).ok]

    def delete_failures(self, key: str, by: str | None = None) -> builtins.list[str]:
        """Delete every job of failure group `key` (JobNotFound when there is none); the ids deleted."""
        deleted = self.store.delete_many(self._group(key), keep=UNDELETABLE)
        logger.info("failure group %s: %d jobs deleted%s", key, len(deleted), f" by {by}" if by else "")
        return deleted

    def _group(self, key: str) -> builtins.list[str]:
        ids = failures.members(self.redis, key)
        if ids is None:
            raise JobNotFound(f"no failure group {key}")
        return ids

    def clean(self, status: str | None = None, older_than_seconds: int = 0) -> builtins.list[str]:
        """Delete ended jobs (of `status`, or every ended one) that ended that long ago; returns their ids."""
        query = _load(schemas.clean, {"status": status, "older_than_seconds": older_than_seconds})
        return control.clean(self.store, query["status"], query["older_than_seconds"])

    # -- following ---------------------------------------------------------------------------

    def wait(self, job_id: str, timeout: float = 60.0) -> Job:
        """Block until the job has ended and return it, with its logs; TimeoutError after `timeout` seconds."""
        return follow.wait(self.redis, job_id, timeout, self.get)

    def events(self, after: str | None = None, job: str | None = None) -> Iterator[JobEvent]:
        """The stream's events from Redis: those after `after` (an event id), then live ones, for ever; resumable,
        with a `reset` first when those events are gone, and Redis going away waited out (see stream.follow)."""
        return follow.events(self.redis, after, job)


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


def _name_params(name: Any, params: Any) -> tuple[str, dict[str, Any]] | None:
    """`name` and `params` as the create schema loads them, by its own fields; None when it would refuse them."""
    given = schemas.job_create.fields
    try:
        return given["name"].deserialize(name), given["params"].deserialize(missing if params is None else params)
    except ValidationError:
        return None


def _refs(key: Any, depends_on: Any, found: dict[str, Any]) -> tuple[str | None, builtins.list[str]]:
    """A batch item's `key` and `depends_on` as the batch item schema loads them; what it refuses goes in
    `found`, by field (the item is then left out of the graph)."""
    given = schemas.batch_item.fields
    loaded: dict[str, Any] = {"key": None, "depends_on": []}
    for name, value in (("key", key), ("depends_on", depends_on)):
        if value is not None:
            try:
                loaded[name] = given[name].deserialize(value)
            except ValidationError as exc:
                found[name] = exc.messages
    return loaded["key"], builtins.list(dict.fromkeys(loaded["depends_on"]))


def _idempotency(key: str | None) -> str | None:
    """An idempotency key checked as the Idempotency-Key header is."""
    if key is None:
        return None
    return _load(schemas.idempotency, {"Idempotency-Key": key})["idempotency_key"]


def _of_kind(kind: NewJob, name: str, params: Mapping[str, Any], key: str | None) -> NewJob:
    """A job of `kind` (see Jobs._kind) with its params checked by its type's schema."""
    try:
        loaded = kind.job_type.schema.load(params)
    except ValidationError as exc:
        raise InvalidRequest("the request is not valid", {"params": exc.messages}) from None
    return replace(kind, name=name, params=loaded, idempotency_key=key)


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

"""The schedules kept in Redis beside the jobs: every change one script with its event, and each tick claimed
together with the creation of its job (tick.lua), so any number of pools may fire them, each tick once."""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from jobs.connection import replicated, text
from jobs.errors import InvalidRequest
from jobs.model import DEFINITION, STATE, Schedule, isoformat, new_job_id
from jobs.schedules import ScheduleNotFound, job_kind
from jobs.schemas import SKIP
from jobs.store.creates import shape
from jobs.store.keys import SCHEDULE_DUE_KEY, SCHEDULE_PREFIX, SCHEDULES_KEY
from jobs.store.lifecycle import JobStore
from jobs.store.queues import rq_data
from jobs.store.scripts import Script, dumps, encoded
from jobs.stream.events import JOB_UPDATE, SCHEDULE_EVENTS, SCHEDULE_REMOVED, SCHEDULE_UPDATE
from jobs.telemetry import observe
from jobs.telemetry.metrics import EVENTS_PUBLISHED, SCHEDULE_LATENESS, SCHEDULE_TICKS

logger = logging.getLogger(__name__)

HELPERS = ("schedules",)  # the Lua every schedule script shares, after common.lua
OVERLAP, UNKNOWN_TYPE = "overlap", "unknown_type"  # why a tick made no job (a schedule-update's `skipped`)
CREATED, SKIPPED, TAKEN, MISSING = "created", "skipped", "taken", "missing"  # tick.lua's answers (and "stale")
# What the schedule scripts are told of where things live and what the events are called.
WHERE = {
    "schedule_prefix": SCHEDULE_PREFIX,
    "schedules_key": SCHEDULES_KEY,
    "schedule_due_key": SCHEDULE_DUE_KEY,
    "schedule_state": list(STATE),
    "schedule_update": SCHEDULE_UPDATE,
    "schedule_removed": SCHEDULE_REMOVED,
    "schedule_events": SCHEDULE_EVENTS,
}


class ScheduleStore:
    """Schedules on one job store's Redis, changed only through schedule.lua and tick.lua."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.redis = store.redis
        self._change = Script(self.redis, "schedule", HELPERS)
        self._tick = Script(self.redis, "tick", HELPERS)

    # -- reading -------------------------------------------------------------------------------

    def get(self, schedule_id: str) -> Schedule:
        """The schedule; ScheduleNotFound when there is none."""
        return self._stored(schedule_id)[0]

    def all(self) -> list[Schedule]:
        """Every schedule, by id."""
        ids = self.redis.zrange(SCHEDULES_KEY, 0, -1)
        with self.redis.pipeline(transaction=False) as pipe:
            for schedule_id in ids:
                pipe.hgetall(SCHEDULE_PREFIX + text(schedule_id))
            stored = pipe.execute()
        return [_decoded(raw)[0] for raw in stored if raw]

    def _stored(self, schedule_id: str) -> tuple[Schedule, str, str]:
        """The schedule, its version and its next tick's ms ('' while paused)."""
        raw: Any = self.redis.hgetall(SCHEDULE_PREFIX + schedule_id)
        if not raw:
            raise ScheduleNotFound(f"no schedule {schedule_id!r}", {"id": schedule_id})
        return _decoded(raw)

    # -- changing ------------------------------------------------------------------------------

    def put(self, data: dict[str, Any]) -> tuple[Schedule, bool]:
        """Create or replace a schedule (`data`: schedules.declared()); True when it is new. Its next tick and
        created_at stay when its cron, every_seconds and timezone do (and it keeps running)."""
        while True:
            try:
                old, version, next_ms = self._stored(data["id"])
            except ScheduleNotFound:
                old, version, next_ms = None, "", ""
            now = datetime.now(UTC)
            cadence = (data["cron"], data["every_seconds"], data["timezone"])
            same = old is not None and (old.cron, old.every_seconds, old.timezone) == cadence
            paused = data["paused"] if data["paused"] is not None else bool(old and old.paused)
            stamp = isoformat(now)
            created_at = old.created_at if old is not None and same else stamp
            schedule = Schedule(
                **{name: data[name] for name in DEFINITION},
                paused=paused,
                next_run_at=None,
                last_run_at=None,
                last_job_id=None,
                created_at=created_at,
                updated_at=stamp,
            )
            fields = {"def": dumps(schedule.definition()), "created_at": dumps(created_at)}
            keep = old is not None and same and not old.paused and not paused  # its next tick stays
            if keep and old is not None:
                fields["next_run_at"] = dumps(old.next_run_at)
            result = self._set(schedule, fields, version, next_ms if keep else None, now)
            if result is not None:
                return result, old is None

    def pause(self, schedule_id: str) -> Schedule:
        """No ticks until resumed (next_run_at null)."""
        return self._state(schedule_id, paused=True)

    def resume(self, schedule_id: str) -> Schedule:
        """Tick again from the next tick after now (none for the ticks that fell while paused)."""
        return self._state(schedule_id, paused=False)

    def _state(self, schedule_id: str, paused: bool) -> Schedule:
        while True:
            schedule, version, _ = self._stored(schedule_id)
            stamp = datetime.now(UTC)
            changed = self._set(
                schedule, {"paused": dumps(paused), "updated_at": dumps(isoformat(stamp))}, version, None, stamp
            )
            if changed is not None:
                return changed

    def _set(
        self, schedule: Schedule, fields: dict[str, str], version: str, keep_ms: str | None, now: datetime
    ) -> Schedule | None:
        """Write `fields` and the next tick (`keep_ms`, or the next after now unless paused) if the schedule's
        version is still `version`; None when another change came first."""
        paused = json.loads(fields.get("paused", dumps(schedule.paused)))
        next_ms = keep_ms or ""
        if not paused and keep_ms is None:
            tick = schedule.cadence.next_after(now)
            fields["next_run_at"] = dumps(isoformat(tick))
            next_ms = str(int(tick.timestamp() * 1000))
        elif paused:
            fields["next_run_at"] = dumps(None)
        fields = {"paused": dumps(paused), "updated_at": dumps(isoformat(now)), **fields}
        header = {**self._header(schedule.id), "mode": "set", "version": version, "fields": fields, "next_ms": next_ms}
        reply = self._change(self.store.scripts.common(), header)
        if reply[0] != b"ok":
            return None
        EVENTS_PUBLISHED.inc()
        return Schedule(**json.loads(reply[1]))

    def remove(self, schedule_id: str) -> None:
        """Delete a schedule (its jobs stay)."""
        reply = self._change(self.store.scripts.common(), {**self._header(schedule_id), "mode": "remove"})
        if reply[0] != b"ok":
            raise ScheduleNotFound(f"no schedule {schedule_id!r}", {"id": schedule_id})
        EVENTS_PUBLISHED.inc()

    # -- ticks ---------------------------------------------------------------------------------

    def run(self, schedule_id: str) -> dict[str, Any]:
        """Create the schedule's job now (schedule_tick null), paused or not, whatever ran before; its snapshot."""
        schedule = self.get(schedule_id)
        if job_kind(schedule) is None:
            raise InvalidRequest("the request is not valid", {"type": [f"unknown job type {schedule.type!r}"]})
        _, job = self._fire(schedule, None, None, None)
        if job is None:  # deleted since read
            raise ScheduleNotFound(f"no schedule {schedule_id!r}", {"id": schedule_id})
        return job

    def tick(self, schedule_id: str, due_ms: int) -> str:
        """Fire the tick of `schedule_id` due at `due_ms`, unless another pool has: created, skipped, or why not
        (taken, stale: changed since read, missing). A tick found late stands for every tick missed since: its job
        carries the latest of them, and the next tick is the first after now."""
        try:
            schedule, version, next_ms = self._stored(schedule_id)
        except ScheduleNotFound:
            self.redis.zrem(SCHEDULE_DUE_KEY, schedule_id)
            return MISSING
        if next_ms != str(due_ms):
            return TAKEN
        now = datetime.now(UTC)
        cadence = schedule.cadence
        tick = cadence.latest_until(datetime.fromtimestamp(due_ms / 1000, UTC), now)
        following = cadence.next_after(now)
        claim = {"expected_ms": next_ms, "version": version, "next_ms": str(int(following.timestamp() * 1000))}
        claim["next_run_at"] = dumps(isoformat(following))
        outcome, _ = self._fire(schedule, isoformat(tick), claim, now)
        if outcome == CREATED:
            SCHEDULE_LATENESS.observe(max(0.0, now.timestamp() - tick.timestamp()))
        if outcome in (CREATED, SKIPPED):
            SCHEDULE_TICKS.labels("fired" if outcome == CREATED else "skipped").inc()
        return outcome

    def _fire(
        self, schedule: Schedule, tick: str | None, claim: dict[str, Any] | None, now: datetime | None
    ) -> tuple[str, dict[str, Any] | None]:
        """Run tick.lua: the claim (None: a run now) and the job of `tick`; the outcome and the new job."""
        moment = now or datetime.now(UTC)
        header = {**self._header(schedule.id), "expected_ms": "", **(claim or {})}
        header.update(skip_live=schedule.overlap == SKIP, skipped=OVERLAP, last_run_at=dumps(isoformat(moment)))
        kind = job_kind(schedule)
        if kind is None:  # a type this process does not know: the tick goes, skipped, rather than stay due
            logger.warning("schedule %s: unknown job type %r, tick skipped", schedule.id, schedule.type)
            header["skip"] = UNKNOWN_TYPE
            more: list[Any] = []
        else:
            job_type, priority, timeout, max_attempts, backoff = kind
            queue = self.store.queues[priority]
            found = shape(job_type, priority, timeout, max_attempts, backoff, False, queue)  # no dependencies
            flat = found.script["fields"]
            fields = dict(zip(flat[::2], flat[1::2], strict=True))
            job_id = new_job_id()
            varying: dict[str, Any] = {"id": job_id, "name": schedule.name, "params": schedule.params}
            varying.update(created_at=isoformat(moment), scheduled_for=None)
            varying.update(schedule_id=schedule.id, schedule_tick=tick)
            fields.update(encoded(varying))
            job = {"id": job_id, "mode": "create", "event": JOB_UPDATE, "fields": fields, "logs": [], "guard": []}
            header.update(job=job, rq=found.script["rq"], queue=found.script["queue"])
            header["rq_now"] = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # rq.utils.utcformat
            more = [rq_data(job_type, dumps(schedule.params))]
        reply = self._tick(self.store.scripts.common(), header, more=more)
        outcome = reply[0].decode()
        if outcome == SKIPPED:
            EVENTS_PUBLISHED.inc()
        if outcome != CREATED:
            return outcome, None
        EVENTS_PUBLISHED.inc(2)  # the job's, the schedule's
        replicated(self.redis, self.store.settings.redis_min_replicas)  # as a job created by the API waits
        created: dict[str, Any] = json.loads(reply[2])
        observe.created(created)
        return outcome, created

    def _header(self, schedule_id: str) -> dict[str, Any]:
        return {**self.store.scripts.header("", JOB_UPDATE), **WHERE, "sid": schedule_id}


def _decoded(raw: dict[bytes, bytes]) -> tuple[Schedule, str, str]:
    """A schedule's hash read back: the schedule, its version, its next tick's ms."""
    values = json.loads(raw[b"def"])
    for name in STATE:
        stored = raw.get(name.encode())
        values[name] = json.loads(stored) if stored is not None else None
    return Schedule(**values), raw[b"version"].decode(), raw.get(b"next_ms", b"").decode()


def due(store: JobStore, now_ms: float, limit: int) -> list[tuple[str, int]]:
    """Up to `limit` schedules due by `now_ms`, with their ticks (ms)."""
    found: Any = store.redis.zrangebyscore(SCHEDULE_DUE_KEY, "-inf", now_ms, start=0, num=limit, withscores=True)
    return [(text(schedule_id), int(ms)) for schedule_id, ms in found]


def next_due(store: JobStore, held: Collection[str] = ()) -> float | None:
    """The earliest next tick of any schedule not `held` (epoch seconds), None when none runs."""
    head: Any = store.redis.zrange(SCHEDULE_DUE_KEY, 0, len(held), withscores=True)
    return next((float(ms) / 1000 for schedule_id, ms in head if text(schedule_id) not in held), None)

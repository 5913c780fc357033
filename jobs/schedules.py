"""Schedules: the checks of a declared one, before the store keeps it (what one is: jobs.model.Schedule)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError

from jobs import schemas
from jobs.cadence import Cadence, CadenceError, check_cron, zone
from jobs.errors import InvalidRequest, JobsError
from jobs.model import Schedule
from jobs.types.attempts import Backoff
from jobs.types.registry import JobType, get_type


class ScheduleNotFound(JobsError):
    code = "not_found"


def schedule_id(value: str) -> str:
    """`value` if it may name a schedule; InvalidRequest at `id` otherwise."""
    try:
        return str(schemas.schedule_id.load({"id": value})["id"])
    except ValidationError as exc:
        raise InvalidRequest("the request is not valid", _details(exc)) from None


def declared(schedule_id_: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """A PUT body checked (every bad field named at once, as a 422): the definition's fields, and `paused` (None:
    as it was). The params are loaded by the type's schema; the cadence parsed once here."""
    errors: dict[str, Any] = {}
    checked_id = _loaded(schemas.schedule_id, {"id": schedule_id_}, errors).get("id")
    data = _loaded(schemas.schedule_put, body, errors)
    _check_cadence(data, errors)
    job_type = get_type(data["type"]) if "type" in data else None
    if "type" in data and job_type is None:
        errors["type"] = [f"unknown job type {data['type']!r}"]
    if job_type is not None and "params" in data:
        try:
            data["params"] = job_type.schema.load(data["params"])
        except ValidationError as exc:
            errors["params"] = exc.messages
    if errors:
        raise InvalidRequest("the request is not valid", errors)
    backoff: Backoff | None = data["backoff"]
    data.update(id=checked_id, name=data["name"] or checked_id, backoff=backoff.as_dict() if backoff else None)
    return data


def preview_of(query: Mapping[str, Any]) -> tuple[Cadence, datetime, int]:
    """A preview query checked (every bad field named at once): the cadence (every_seconds counted from `after`),
    `after` (default now), and how many ticks."""
    errors: dict[str, Any] = {}
    data = _loaded(schemas.schedule_preview, query, errors)
    _check_cadence(data, errors)
    if errors:
        raise InvalidRequest("the request is not valid", errors)
    after: datetime = data["after"] or datetime.now(UTC)
    cadence = Cadence(data["cron"], data["every_seconds"], data["timezone"], after.timestamp())
    return cadence, after, data["count"]


def job_kind(schedule: Schedule) -> tuple[JobType, str, int, int, Backoff] | None:
    """The type and options of the schedule's next job, its type's defaults where it leaves them; None when this
    process knows no such type."""
    job_type = get_type(schedule.type)
    if job_type is None:
        return None
    backoff = Backoff(**schedule.backoff) if schedule.backoff else job_type.backoff
    return (
        job_type,
        schedule.priority or job_type.priority,
        schedule.timeout_seconds or job_type.timeout,
        schedule.max_attempts or job_type.max_attempts,
        backoff,
    )


def _loaded(schema: Schema, values: Mapping[str, Any], errors: dict[str, Any]) -> dict[str, Any]:
    """`values` loaded by `schema`: the fields that failed are left out, their messages added to `errors`."""
    try:
        return dict(schema.load(values))
    except ValidationError as exc:
        errors.update(_details(exc))
        return dict(exc.valid_data or {})


def _check_cadence(data: dict[str, Any], errors: dict[str, Any]) -> None:
    """Check the time zone and the cron of `data` each on its own (the cron normalised in place); their faults
    added to `errors`, beside (never over) what the schema found."""
    if "timezone" in data:
        try:
            zone(data["timezone"])
        except CadenceError as exc:
            errors.setdefault(exc.field, [str(exc)])
    if data.get("cron") is not None:
        try:
            data["cron"] = check_cron(data["cron"])
        except CadenceError as exc:
            errors.setdefault(exc.field, [str(exc)])


def _details(exc: ValidationError) -> dict[str, Any]:
    return exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}

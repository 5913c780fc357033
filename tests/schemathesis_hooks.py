"""What the create body's schema cannot say, taught to schemathesis (SCHEMATHESIS_HOOKS=tests.schemathesis_hooks).

JSON Schema has no "now": `run_at` must lie at most a year ahead. Nor can it compare two fields: a
backoff's `max_delay_seconds` (default 3600) must not be less than its `delay_seconds` (default 1). The server
refuses both with a 422 (tests/test_bad_input.py). So each generated create is moved into those bounds, in a
way that keeps a negative case negative: only a well-formed date is moved, and the two delays are swapped or
matched, which leaves a value out of range out of range. A schedule's `cron` and `timezone` strings are made real
ones (a JSON Schema cannot tell a cron from text), and a preview's query gets exactly one of cron and every_seconds
(query parameters cannot say "one of"; the PUT body's document does).

Nor can it say which ids exist, or that a batch's keys are unique: a well-formed `depends_on` (job ids, or a
batch's keys) is emptied, and each well-formed key of a batch made unique, so a positive case stays positive;
one out of shape is left as it is, negative.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import schemathesis

from jobs.schemas import DEPENDS_MAX, JOB_ID_PATTERN, KEY_MAX
from jobs.types.attempts import Backoff

SOON = timedelta(hours=1)
CRON, ZONE = "*/5 * * * *", "Europe/Berlin"
DEFAULTS = Backoff()


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
    if case.method.upper() == "POST" and case.path == "/api/jobs" and isinstance(case.body, dict):
        case.body = within_bounds(case.body, lambda ref: re.fullmatch(JOB_ID_PATTERN, ref) is not None)
    if case.method.upper() == "POST" and case.path == "/api/jobs/batch" and isinstance(case.body, dict):
        items = case.body.get("jobs")
        if isinstance(items, list):
            case.body = {**case.body, "jobs": [batch_item(item, at) for at, item in enumerate(items)]}
    if case.method.upper() == "PUT" and case.path == "/api/schedules/{schedule_id}" and isinstance(case.body, dict):
        case.body = a_real_cadence(case.body)
    if case.method.upper() == "GET" and case.path == "/api/schedules/preview" and isinstance(case.query, dict):
        case.query = one_cadence(a_real_cadence(case.query))
    return case


def a_real_cadence(given: dict[str, Any]) -> dict[str, Any]:
    """A cron or time zone that is a string becomes a real one (a JSON Schema cannot tell cron from text); what
    is no string stays as it is, so a negative case stays negative."""
    given = dict(given)
    if isinstance(given.get("cron"), str):
        given["cron"] = CRON
    if isinstance(given.get("timezone"), str):
        given["timezone"] = ZONE
    backoff = given.get("backoff")
    if isinstance(backoff, dict):
        given["backoff"] = _ordered(dict(backoff))
    return given


def one_cadence(query: dict[str, Any]) -> dict[str, Any]:
    """A preview's query with exactly one of cron and every_seconds (query parameters cannot say "one of")."""
    if query.get("cron") is not None and query.get("every_seconds") is not None:
        query.pop("every_seconds")
    elif query.get("cron") is None and query.get("every_seconds") is None:
        query["cron"] = CRON
    return query


def batch_item(item: Any, at: int) -> Any:
    """A batch's item within bounds, its well-formed key unique in the batch."""
    if not isinstance(item, dict):
        return item
    item = within_bounds(item, lambda ref: 1 <= len(ref) <= KEY_MAX)
    if isinstance(item.get("key"), str) and 1 <= len(item["key"]) <= KEY_MAX:
        item["key"] = f"item-{at}"
    return item


def within_bounds(body: dict[str, Any], well_formed: Callable[[str], bool]) -> dict[str, Any]:
    body = dict(body)
    refs = body.get("depends_on")
    if isinstance(refs, list) and len(refs) <= DEPENDS_MAX and all(isinstance(r, str) and well_formed(r) for r in refs):
        body["depends_on"] = []
    if _is_date(body.get("run_at")):
        body["run_at"] = (datetime.now(UTC) + SOON).isoformat().replace("+00:00", "Z")
    backoff = body.get("backoff")
    if isinstance(backoff, dict):
        body["backoff"] = _ordered(dict(backoff))
    return body


def _is_date(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _ordered(backoff: dict[str, Any]) -> dict[str, Any]:
    delay, most = backoff.get("delay_seconds"), backoff.get("max_delay_seconds")
    if _number(delay) and _number(most) and most < delay:
        backoff["delay_seconds"], backoff["max_delay_seconds"] = most, delay
    elif _number(delay) and "max_delay_seconds" not in backoff and delay > DEFAULTS.max_delay_seconds:
        backoff["max_delay_seconds"] = delay
    elif _number(most) and "delay_seconds" not in backoff and most < DEFAULTS.delay_seconds:
        backoff["delay_seconds"] = most
    return backoff


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)

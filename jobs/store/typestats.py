"""Per-type statistics of the last hour, kept as jobs end: no scan of jobs, ever.

Each completed or failed job adds 1 to one field of its type's hash for the minute it ended
(`jobstream:type-stats:<type>:<minute>`, kept two hours), the field naming its status and the log-scale buckets
of its duration and of its wait (created or due → started): `c|17|3`, `f|40|-`. One HINCRBY per job in the
script that ends it; an hour's percentiles and per-minute counts are then 60 small hashes per type.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from jobs.connection import text
from jobs.model import COMPLETED, FAILED, PENDING, parse_time
from jobs.store.keys import RUNNING_PREFIX, TYPE_PENDING_KEY, TYPE_STATS_PREFIX

SMALLEST = 0.001  # seconds: bucket 0 holds everything up to a millisecond
GROWTH = 1.25  # each bucket 25 % wider than the one before: percentiles within a quarter of the truth
BUCKETS = 100  # up to SMALLEST * GROWTH ** 99: about 45 days
UNKNOWN = "-"  # a wait that no field tells (a retry by hand, an end not seen by its worker)
STATUS_CODES = {COMPLETED: "c", FAILED: "f"}
PERCENTILES = (50, 95, 99)
MINUTES = 60


def bucket(seconds: float | None) -> str:
    """The histogram bucket of a duration, as the field spells it."""
    if seconds is None:
        return UNKNOWN
    if seconds <= SMALLEST:
        return "0"
    return str(min(BUCKETS - 1, math.ceil(math.log(seconds / SMALLEST, GROWTH))))


def upper_bound(index: int) -> float:
    """The longest duration bucket `index` holds, in seconds (what a percentile in it reports)."""
    return round(SMALLEST * GROWTH**index, 6)


def stat(status: str, started_at: str | None, ended_at: str, ready_since: str | None) -> dict[str, str] | None:
    """What an end adds to its type's statistics (next.lua's J.stat), None for ends they do not count."""
    code = STATUS_CODES.get(status)
    if code is None:
        return None
    start, end, ready = parse_time(started_at), parse_time(ended_at), parse_time(ready_since)
    duration = (end - start).total_seconds() if start and end else None
    wait = (start - ready).total_seconds() if start and ready else None
    duration = None if duration is None else max(0.0, duration)
    wait = None if wait is None else max(0.0, wait)
    field = f"{code}|{bucket(duration)}|{bucket(wait)}"
    return {"minute": ended_at[:16], "field": field}


def read(client: redis.Redis, types: Iterable[str], now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Each type's last hour: pending and active now, completed and failed, duration and wait percentiles, and
    `per_minute` (60 × {minute, completed, failed}, newest first)."""
    names = list(types)
    now = now or datetime.now(UTC)
    minutes = [(now - timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M") for i in range(MINUTES)]
    with client.pipeline(transaction=False) as pipe:
        pipe.hgetall(TYPE_PENDING_KEY)
        for name in names:
            pipe.scard(RUNNING_PREFIX + name)
            for minute in minutes:
                pipe.hgetall(f"{TYPE_STATS_PREFIX}{name}:{minute}")
        replies = iter(pipe.execute())
    pending = {text(name): int(count) for name, count in next(replies).items()}
    found = {}
    for name in names:
        active = int(next(replies))
        per_minute: list[dict[str, Any]] = []
        durations, waits = Counter[int](), Counter[int]()
        for minute in minutes:
            ended = {COMPLETED: 0, FAILED: 0}
            for raw_field, raw_count in next(replies).items():
                code, duration, wait = text(raw_field).split("|")
                count = int(raw_count)
                ended[COMPLETED if code == STATUS_CODES[COMPLETED] else FAILED] += count
                if duration != UNKNOWN:
                    durations[int(duration)] += count
                if wait != UNKNOWN:
                    waits[int(wait)] += count
            per_minute.append({"minute": minute + ":00Z", **ended})
        found[name] = {
            PENDING: max(0, pending.get(name, 0)),
            "active": active,
            COMPLETED: sum(m[COMPLETED] for m in per_minute),
            FAILED: sum(m[FAILED] for m in per_minute),
            "duration_seconds": percentiles(durations),
            "wait_seconds": percentiles(waits),
            "per_minute": per_minute,
        }
    return found


def percentiles(histogram: Counter[int]) -> dict[str, float] | None:
    """p50, p95 and p99 of a bucket histogram (each the upper bound of its bucket), None when it is empty."""
    total = sum(histogram.values())
    if total == 0:
        return None
    ordered = sorted(histogram.items())
    found = {}
    for p in PERCENTILES:
        rank, seen = math.ceil(total * p / 100), 0
        for index, count in ordered:
            seen += count
            if seen >= rank:
                found[f"p{p}"] = upper_bound(index)
                break
    return found

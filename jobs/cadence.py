"""A schedule's cadence: a cron expression in a time zone, or every N seconds; its ticks, as cron runs them.

croniter parses and matches the cron fields. Its own time-zone handling (7.0.0) runs a wall-clock time that
the autumn change repeats twice (02:30 CEST and 02:30 CET), so ticks are found here on naive wall-clock times
and each is placed on the time line once: a repeated time at its first occurrence, a time that the spring
change skips at the change itself (tests/test_schedules.py holds both tables).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

from croniter import croniter
from croniter.croniter import CroniterError

NAMED = ("@hourly", "@daily", "@weekly", "@monthly")  # the @-names a cron may be, beside five fields
FIELDS = 5
# A field as cron has it: numbers, *, ranges, lists and steps; month and weekday names in their fields. Not
# croniter's extensions (L, W, #, ?, and H or R, which hash or draw a different time per process).
PLAIN_FIELD = re.compile(r"[\d*/,-]+")
NAMES = (
    None,
    None,
    None,
    re.compile(r"jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"),
    re.compile(r"sun|mon|tue|wed|thu|fri|sat"),
)
TOO_LATE = (OverflowError, ValueError, CroniterError)  # a tick past year 9999
SEARCH_LIMIT = 1000  # wall-clock candidates looked at for one tick: a cron that never matches ends here
# Files of the zone database that name no place: the host's own zone (a link that differs between hosts) and
# tzdata's placeholder for "zone unknown". posix/ and right/ copies are not listed by available_timezones().
NOT_ZONES = frozenset({"localtime", "Factory"})


class CadenceError(ValueError):
    """A cron, time zone or interval that cannot make ticks; `field` names the request field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@functools.cache
def zone_names() -> frozenset[str]:
    """The IANA names a schedule may use: the zone database's, read once (it lists some 600 files)."""
    return frozenset((available_timezones() - NOT_ZONES) | {"UTC"})


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`; CadenceError at `timezone` otherwise (also for names of files in the zone
    database that are no IANA zone, which ZoneInfo would load)."""
    if name not in zone_names():
        raise CadenceError("timezone", f"unknown time zone {name!r} (an IANA name, e.g. Europe/Berlin)")
    return ZoneInfo(name)


def check_cron(expression: str) -> str:
    """`expression` if it is five cron fields or one of NAMED; CadenceError at `cron` otherwise."""
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text.lower() not in NAMED:
            raise CadenceError("cron", f"not one of {', '.join(NAMED)}")
        return text.lower()
    parts = text.split(" ")
    if len(parts) != FIELDS:
        raise CadenceError("cron", "needs five fields: minute hour day-of-month month day-of-week")
    for part, names in zip(parts, NAMES, strict=True):
        if not PLAIN_FIELD.fullmatch(names.sub("0", part.lower()) if names else part):
            raise CadenceError("cron", f"not a cron field: {part!r} (numbers, *, -, /, and names of months and days)")
    try:
        croniter(text, datetime(2000, 1, 1)).get_next(datetime)  # one that never matches (Feb 30) fails here
    except (CroniterError, ValueError, KeyError, IndexError) as exc:
        raise CadenceError("cron", f"not a cron expression: {exc}") from None
    return text


@dataclass(frozen=True)
class Cadence:
    """When a schedule ticks: `cron` in `timezone`, or every `every_seconds` from `anchor` (epoch seconds)."""

    cron: str | None
    every_seconds: int | None
    timezone: str = "UTC"
    anchor: float = 0.0

    def next_after(self, after: datetime) -> datetime:
        """The first tick strictly after `after` (aware), in UTC."""
        return next(self.ticks(after))

    def ticks(self, after: datetime) -> Iterator[datetime]:
        """The ticks strictly after `after`, in order, in UTC (until the year 9999 ends)."""
        try:
            if self.every_seconds is not None:
                yield from self._every(after)
            else:
                yield from self._cron(after)
        except CadenceError:
            raise  # a ValueError too, but a fault of the cadence, not the end of time
        except TOO_LATE:
            return

    def latest_until(self, start: datetime, now: datetime) -> datetime:
        """The last tick at or before `now`, `start` (a tick) being one: the tick a catch-up job stands for."""
        if self.every_seconds is not None:
            passed = math.floor((now.timestamp() - start.timestamp()) / self.every_seconds)
            return start + timedelta(seconds=max(0, passed) * self.every_seconds)
        latest = start
        for tick in self._cron(start):
            if tick > now:
                break
            latest = tick
        return latest

    def _every(self, after: datetime) -> Iterator[datetime]:
        assert self.every_seconds is not None
        k = max(1, math.floor((after.timestamp() - self.anchor) / self.every_seconds) + 1)
        while True:
            tick = datetime.fromtimestamp(self.anchor + k * self.every_seconds, UTC)
            if tick > after:
                yield tick
            k += 1

    def _cron(self, after: datetime) -> Iterator[datetime]:
        assert self.cron is not None
        tz = zone(self.timezone)
        wall = after.astimezone(tz).replace(tzinfo=None)
        candidates = croniter(self.cron, wall - timedelta(minutes=1))
        last = after
        misses = 0
        while misses < SEARCH_LIMIT:
            moment = placed(candidates.get_next(datetime), tz)
            if moment > last:
                misses = 0
                last = moment
                yield moment
            else:
                misses += 1


def placed(wall: datetime, tz: ZoneInfo) -> datetime:
    """The UTC moment of naive wall-clock time `wall` in `tz`, as cron runs it: a time that occurs twice at its
    first occurrence, a time that does not exist at the moment the clocks changed."""
    first = wall.replace(tzinfo=tz, fold=0)
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall:
        return first.astimezone(UTC)
    # In a gap: fold=1 reads `wall` with the offset after the change, fold=0 with the one before; the change
    # lies between the two readings. Find it to the second.
    low = int(wall.replace(tzinfo=tz, fold=1).astimezone(UTC).timestamp())
    high = int(first.astimezone(UTC).timestamp())
    offset = datetime.fromtimestamp(low, UTC).astimezone(tz).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, UTC).astimezone(tz).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def preview(cadence: Cadence, after: datetime, count: int) -> list[datetime]:
    """The next `count` ticks after `after`."""
    ticks = cadence.ticks(after)
    return [tick for _, tick in zip(range(count), ticks, strict=False)]

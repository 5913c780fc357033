"""Events: the channel names, the event shapes, the replay stream and the SSE framing.

Every change to a job runs one Lua script (jobs/lua/) that updates the job's hash, appends the
event to the capped replay stream (`XADD ... MAXLEN ~`) and PUBLISHes it on the job's channel,
atomically; the stream entry id is the event id. A published message is
`<event id>\\n<event name>\\n<json data>` so that a subscriber frames it without parsing the JSON.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import redis

from jobs.connection import text
from jobs.model import DETAIL_ONLY, Job
from jobs.store.keys import EVENTS_KEY

CHANNEL_PREFIX, CHANNEL_SUFFIX = "job:", ":progress"
JOB_UPDATE = "job-update"
JOB_REMOVED = "job-removed"
SCHEDULE_UPDATE = "schedule-update"
SCHEDULE_REMOVED = "schedule-removed"
# A schedule's events go out as a job's would, named by this prefix and its id: never a job id, so a ?job= stream
# leaves them out and a stream of every job carries them.
SCHEDULE_EVENTS = "schedule:"
RESET = "reset"

BEGINNING = "0-0"  # the id before every event: where a client that has seen none starts
BEGINNING_KEY = (0, 0)
REPLAY_CHUNK = 500  # events read from the replay stream per XRANGE
RETRY_FRAME = b"retry: 3000\n\n"
PING_FRAME = b": ping\n\n"

# The ApiJob fields every event carries, in wire order: Job's but the detail view's; each is stored JSON-encoded in
# the job hash.
SNAPSHOT_FIELDS = tuple(f.name for f in dataclasses.fields(Job) if f.name not in DETAIL_ONLY)


def channel(job_id: str) -> str:
    """The pub/sub channel of one job's events."""
    return f"{CHANNEL_PREFIX}{job_id}{CHANNEL_SUFFIX}"


PATTERN = channel("*")  # every job's channel


def job_id_of(channel_name: bytes | str) -> str:
    """The job id in a channel name made by channel()."""
    name = channel_name.decode() if isinstance(channel_name, bytes) else channel_name
    return name[len(CHANNEL_PREFIX) : -len(CHANNEL_SUFFIX)]


def id_key(event_id: str) -> tuple[int, int]:
    """A Redis stream id as a comparable pair; raises ValueError for anything else."""
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


def frame(event: str, data: str, event_id: str | None = None) -> bytes:
    """One SSE message; multi-line data becomes several `data:` lines."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    body = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"{head}event: {event}\n{body}\n".encode()


@dataclass(frozen=True, slots=True)
class Event:
    """A published job event as a stream sees it; `key` orders it against a replay."""

    id: str
    key: tuple[int, int]
    job_id: str
    name: str
    data: str  # JSON, as the script wrote it
    frame: bytes

    @classmethod
    def of(cls, event_id: str, job_id: str, name: str, data: str) -> Event:
        return cls(event_id, id_key(event_id), job_id, name, data, frame(name, data, event_id))

    @classmethod
    def from_message(cls, channel_name: bytes, message: bytes) -> Event:
        """Parse a pub/sub message published by the scripts."""
        event_id, name, data = message.decode().split("\n", 2)
        return cls.of(event_id, job_id_of(channel_name), name, data)

    @classmethod
    def from_entry(cls, entry_id: Any, fields: Any) -> Event:
        """Parse one entry of the replay stream (XRANGE's bytes; typed Any, as redis-py types replies loosely)."""
        return cls.of(entry_id.decode(), fields[b"job"].decode(), fields[b"event"].decode(), fields[b"data"].decode())


def missed(client: redis.Redis, last_event_id: str) -> list[Event] | None:
    """Every event after `last_event_id`, in order; None when the replay stream no longer holds that event:
    trimmed away with older ones, lost with its job in a failover (the client saw it on the old primary), or
    never one of ours. The client must then start over from a fresh list."""
    try:
        after = id_key(last_event_id)
    except ValueError:
        return None
    if after == BEGINNING_KEY:  # a client that has seen no event, when there was none: every event is new to it
        entries = client.xrange(EVENTS_KEY, count=REPLAY_CHUNK) or []
        first = 0
    else:  # from the client's own event on (inclusive): it must still be there, or what followed may be gone too
        entries = client.xrange(EVENTS_KEY, min=f"{after[0]}-{after[1]}", count=REPLAY_CHUNK) or []
        if not entries or id_key(text(entries[0][0])) != after:
            return None
        first = 1
    events = [Event.from_entry(entry_id, fields) for entry_id, fields in entries[first:]]
    while len(entries) == REPLAY_CHUNK:
        entries = client.xrange(EVENTS_KEY, min=f"({text(entries[-1][0])}", count=REPLAY_CHUNK) or []
        events.extend(Event.from_entry(entry_id, fields) for entry_id, fields in entries)
    return events


def newest_id(client: redis.Redis) -> str | None:
    """The id of the newest event in the replay stream, None when it is empty."""
    newest = client.xrevrange(EVENTS_KEY, count=1)
    return text(newest[0][0]) if newest else None

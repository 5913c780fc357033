"""Reading jobs: a snapshot, pages of the list, search and counts."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import redis

from jobs.connection import text
from jobs.model import COMPLETED, STATUSES, new_id_shape
from jobs.store.keys import COUNTS_KEY, EVENTS_KEY, INDEX_KEY, STATUS_PREFIX, dependents_key, job_key, logs_key
from jobs.stream.events import SNAPSHOT_FIELDS, newest_id

SEARCH_BUDGET = 10_000  # ids a name search looks at per call


class Reader:
    """Reads of the job store: each costs what it returns, not the history."""

    def __init__(self, connection: redis.Redis) -> None:
        self.redis = connection

    def get(self, job_id: str, with_logs: bool = False) -> dict[str, Any] | None:
        """The job's snapshot, or None. With logs, also `last_event_id`, read in the same transaction:
        a later event's log line is not in `logs`, an earlier one is."""
        with self.redis.pipeline(transaction=with_logs) as pipe:
            pipe.hmget(job_key(job_id), SNAPSHOT_FIELDS)
            if with_logs:
                pipe.lrange(logs_key(job_id), 0, -1)
                pipe.xrevrange(EVENTS_KEY, count=1)
                pipe.smembers(dependents_key(job_id))
            replies = pipe.execute()
        job = _decode(replies[0])
        if job is not None and with_logs:
            job["logs"] = [line.decode("utf-8", "replace") for line in replies[1]]
            job["last_event_id"] = replies[2][0][0].decode() if replies[2] else None
            job["dependents"] = sorted(text(i) for i in replies[3])
        return job

    def results(self, ids: Iterable[str]) -> dict[str, Any]:
        """{id: result} of the jobs of `ids` that completed, in one round trip."""
        ids = list(ids)
        with self.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hmget(job_key(job_id), ["status", "result"])
            rows = pipe.execute()
        return {
            job_id: json.loads(result)
            for job_id, (status, result) in zip(ids, rows, strict=True)
            if status is not None and json.loads(status) == COMPLETED
        }

    def page(
        self, status: str | None = None, q: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> dict[str, Any]:
        """A page of the list with the counts and `last_event_id`, read first: every later event is newer than
        the page, so a stream resumed from it misses nothing."""
        last_event_id = self.last_event_id()
        jobs, next_cursor = self.find(status, q, limit, cursor)
        return {"jobs": jobs, "next_cursor": next_cursor, "counts": self.counts(), "last_event_id": last_event_id}

    def find(
        self, status: str | None = None, q: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of jobs, newest first, and the cursor of the next page (None at the end). `q` is a job's
        exact id (that job, if it has `status`), or else a part of names, matched case-insensitively."""
        key = STATUS_PREFIX + status if status else INDEX_KEY
        start = f"({cursor}" if cursor else "+"
        if q and not cursor and new_id_shape(q) and self.redis.zscore(key, q) is not None:
            return self.snapshots([q]), None
        if not q:
            ids = [text(i) for i in self.redis.zrange(key, start, "-", desc=True, bylex=True, offset=0, num=limit + 1)]
            page = ids[:limit]
            return self.snapshots(page), (page[-1] if len(ids) > limit else None)
        return self._search(key, start, q.casefold(), limit)

    def _search(self, key: str, start: str, needle: str, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        """Jobs whose name contains `needle`, scanning at most SEARCH_BUDGET ids per call."""
        found: list[str] = []
        scanned = 0
        while scanned < SEARCH_BUDGET:
            ids = [text(i) for i in self.redis.zrange(key, start, "-", desc=True, bylex=True, offset=0, num=500)]
            if not ids:
                return self.snapshots(found), None
            with self.redis.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.hget(job_key(job_id), "name")
                names = pipe.execute()
            for job_id, raw in zip(ids, names, strict=False):
                scanned += 1
                if raw is not None and needle in json.loads(raw).casefold():
                    if len(found) == limit:  # one more match exists: there is a next page
                        return self.snapshots(found), found[-1]
                    found.append(job_id)
            start = f"({ids[-1]}"
        return self.snapshots(found), start[1:]

    def snapshots(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        with self.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hmget(job_key(job_id), SNAPSHOT_FIELDS)
            rows = pipe.execute()
        return [job for job in map(_decode, rows) if job is not None]

    def attempts(self, job_id: str) -> int:
        """The job's attempt number (0 when it is gone)."""
        raw = self.redis.hget(job_key(job_id), "attempts")
        return int(raw) if raw is not None else 0

    def cancel_requested(self, job_id: str) -> bool:
        """Whether a cancel of the running job was accepted (one field; the worker reads it at each heartbeat)."""
        return self.redis.hget(job_key(job_id), "cancel_requested") == b"true"

    def counts(self) -> dict[str, int]:
        """How many jobs have each status: the counters every script keeps beside the status sets, or the sets'
        sizes before the first change made them (a new store, or one from before the counters)."""
        stored = {text(status): int(count) for status, count in self.redis.hgetall(COUNTS_KEY).items()}
        if stored:
            return {status: stored.get(status, 0) for status in STATUSES}
        with self.redis.pipeline(transaction=False) as pipe:
            for status in STATUSES:
                pipe.zcard(STATUS_PREFIX + status)
            return dict(zip(STATUSES, pipe.execute(), strict=True))

    def ids_with_status(self, status: str) -> list[str]:
        """Every id with `status` (the active set is small: at most the pool's size)."""
        return [text(i) for i in self.redis.zrange(STATUS_PREFIX + status, 0, -1)]

    def last_event_id(self) -> str | None:
        """The id of the newest event in the replay stream, None when it is empty."""
        return newest_id(self.redis)


def _decode(values: list[bytes | None]) -> dict[str, Any] | None:
    if values[0] is None:
        return None
    return {
        name: (None if raw is None else json.loads(raw)) for name, raw in zip(SNAPSHOT_FIELDS, values, strict=False)
    }

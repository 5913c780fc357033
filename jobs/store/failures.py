"""Failure groups: failed jobs grouped by type and error, like an error tracker's issues, kept as jobs fail.

A failed job's end carries its group (a key from its type and its error's normalized first line); the script
that ends it adds it to the group, and the script that retries or deletes it takes it out, so a group counts
the jobs that are failed now, each once, and reading the groups costs what they are, never the history.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import redis

from jobs.connection import text
from jobs.model import isoformat_ms
from jobs.store.keys import FAILURE_GROUPS_KEY, FAILURE_META_KEY, FAILURE_PREFIX

SAMPLES = 5  # the latest ids a group shows
# What varies between two failures of one cause, each replaced by a placeholder, in this order: quoted values,
# UUIDs, hex ids of 8+ characters, then every run of digits with its decimal part, wherever it stands.
PLACEHOLDERS = (
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<str>"),
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<uuid>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b"), "<hex>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
)


def normalized(error: str) -> str:
    """The error's first line with what varies between failures of one cause replaced by placeholders."""
    line = error.strip().splitlines()[0] if error.strip() else ""
    for pattern, placeholder in PLACEHOLDERS:
        line = pattern.sub(placeholder, line)
    return line


def group_of(job_type: str, error: str) -> dict[str, Any]:
    """The group a failure of `job_type` with `error` joins: its key and what the group shows of it."""
    pattern = normalized(error)
    key = hashlib.sha256(f"{job_type}\n{pattern}".encode()).hexdigest()[:16]
    meta = json.dumps({"type": job_type, "error": pattern, "example": error.strip().splitlines()[0][:500]})
    return {"key": key, "meta": meta}


def groups(client: redis.Redis) -> list[dict[str, Any]]:
    """Every group, largest first: {key, type, error, example, count, first_failed_at, last_failed_at, sample_ids}."""
    scored: list[tuple[Any, float]] = client.zrevrange(FAILURE_GROUPS_KEY, 0, -1, withscores=True)  # type: ignore[assignment]
    ranked = [(text(key), int(count)) for key, count in scored]
    with client.pipeline(transaction=False) as pipe:
        for key, _ in ranked:
            pipe.hget(FAILURE_META_KEY, key)
            pipe.zrange(FAILURE_PREFIX + key, 0, 0, withscores=True)
            pipe.zrevrange(FAILURE_PREFIX + key, 0, SAMPLES - 1, withscores=True)
        replies = pipe.execute()
    found = []
    for index, (key, count) in enumerate(ranked):
        meta, first, latest = replies[3 * index : 3 * index + 3]
        if not meta or not latest:
            continue  # emptied between the two reads
        found.append(
            {
                "key": key,
                **json.loads(meta),
                "count": count,
                "first_failed_at": isoformat_ms(int(first[0][1])),
                "last_failed_at": isoformat_ms(int(latest[0][1])),
                "sample_ids": [text(job_id) for job_id, _ in latest],
            }
        )
    return found


def members(client: redis.Redis, key: str) -> list[str] | None:
    """The ids of the failed jobs in group `key`, oldest first; None when there is no such group."""
    ids = [text(job_id) for job_id in client.zrange(FAILURE_PREFIX + key, 0, -1)]
    return ids or None

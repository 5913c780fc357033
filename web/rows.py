"""The rows of the list's first page as static/row.js draws them (makeRow, drawRow), drawn by the server into the
HTML so that they paint with the page, before any script or fetch. templates/row.html holds their markup.

The texts follow row.js `texts()` and static/format.js line by line; tests/test_dashboard_rows.py checks that a
row drawn here equals the one the page draws for the same job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import url_for

from jobs.model import ACTIONS, ACTIVE, FAILED, NORMAL, PENDING


@dataclass(frozen=True, slots=True)
class Row:
    """What one row shows, every string from the job as it is (the template escapes it)."""

    id: str
    name: str
    href: str
    status: str
    badge: str
    badge_class: str
    hidden: frozenset[str]  # the actions (their buttons) the job does not offer
    type: str
    priority: str
    progress: int
    attempt: str
    attempt_title: str
    what: str
    why: str
    time: str
    pace: str


def draw_blocks(jobs: list[dict[str, Any]], status: str | None, now: datetime, size: int) -> list[list[Row]]:
    """The rows of `jobs` (as /api/jobs dumps them) in blocks of `size`, each a <tbody> (static/blocks.js)."""
    rows = [draw_row(job, status, now) for job in jobs]
    return [rows[start : start + size] for start in range(0, len(rows), size)]


def draw_row(job: dict[str, Any], status: str | None, now: datetime) -> Row:
    """One row as row.js draws it at `now`; `status` is the list's filter (its links keep it)."""
    canceling = job["status"] == ACTIVE and job["cancel_requested"]
    several = job["max_attempts"] > 1
    what, why, time = texts(job, now)
    return Row(
        id=job["id"],
        name=job["name"],
        href=url_for("index", job_id=job["id"], status=status or None),
        status=job["status"],
        badge="canceling…" if canceling else job["status"],
        badge_class=f"badge status-{job['status']}{' canceling' if canceling else ''}",
        hidden=frozenset(what for what in ACTIONS if not allowed(job, what)),
        type=job["type"],
        priority=job["priority"] or NORMAL,
        progress=job["progress"],
        attempt=f"{job['attempts']}/{job['max_attempts']}" if several else "",
        attempt_title=f"attempt {job['attempts']} of {job['max_attempts']}" if several else "",
        what=what,
        why=why,
        time=time,
        pace="—" if job["status"] == ACTIVE else "",  # no progress reports seen yet: row.js's paceText(null)
    )


def allowed(job: dict[str, Any], what: str) -> bool:
    """Whether the job offers `what` (static/actions.js `allowed`)."""
    return job["status"] in ACTIONS[what] and not (what == "cancel" and job["cancel_requested"])


def texts(job: dict[str, Any], now: datetime) -> tuple[str, str, str]:
    """What the job does or waits for, why, and its time: row.js `texts()`. A scheduled job's clock is the
    browser's local time, which the server does not know: left empty, the page writes it once its scripts run."""
    attempts, most, error = job["attempts"], job["max_attempts"], job["error"]
    retrying = attempts > 1 and bool(error)
    status = job["status"]
    if status == PENDING:
        if job["waiting_for"]:
            n = len(job["waiting_for"])
            return f"waiting for {n} job{'' if n == 1 else 's'}", "", queued(job, now)
        if job["scheduled_for"]:
            wait = until(job["scheduled_for"], now)
            if retrying:
                return f"attempt {attempts}/{most} — {'retry now' if wait == 'now' else f'retry in {wait}'}", error, ""
            return "starting now" if wait == "now" else f"starts in {wait}", job["action"] or "", ""
        waiting = f"attempt {attempts}/{most} — waiting" if attempts > 1 else "waiting"
        return job["action"] or waiting, error if retrying else "", queued(job, now)
    if status == ACTIVE:
        return (
            "stopping…" if job["cancel_requested"] else job["action"] or "starting…",
            f"last attempt: {error}" if retrying else "",
            duration(since(job["started_at"], now)) if job["started_at"] else "",
        )
    if status == FAILED:
        return error or "failed", "", total(job, now)
    return job["action"] or "", "", total(job, now)


def queued(job: dict[str, Any], now: datetime) -> str:
    """How long a pending job has waited."""
    return f"queued {duration(since(job['created_at'], now))}"


def total(job: dict[str, Any], now: datetime) -> str:
    """An ended job's run time; "—" when it never ran."""
    if not job["started_at"]:
        return "—"
    ended = datetime.fromisoformat(job["ended_at"]) if job["ended_at"] else now
    return duration(since(job["started_at"], ended))


def since(iso: str, now: datetime) -> float:
    """Seconds from `iso` to `now` (format.js `between`)."""
    return (now - datetime.fromisoformat(iso)).total_seconds()


def until(iso: str, now: datetime) -> str:
    """A wait until `iso`, coarser as it is longer (format.js `until`)."""
    seconds = -since(iso, now)
    if seconds < 0.5:
        return "now"
    if seconds < 60:
        return f"{math.ceil(seconds)} s"
    if seconds < 3600:
        return f"{rounded(seconds / 60)} min"
    return duration(rounded(seconds / 60) * 60)


def duration(seconds: float) -> str:
    """A length of time in whole seconds: "12 s", "4 min 12 s", "2 h 3 min", "3 d 2 h" (format.js `duration`)."""
    s = max(0, rounded(seconds))
    if s < 60:
        return f"{s} s"
    minutes = s // 60
    if minutes < 60:
        return f"{minutes} min {s % 60} s" if s % 60 else f"{minutes} min"
    hours = minutes // 60
    if hours < 24:
        return f"{hours} h {minutes % 60} min" if minutes % 60 else f"{hours} h"
    days = hours // 24
    return f"{days} d {hours % 24} h" if hours % 24 else f"{days} d"


def rounded(x: float) -> int:
    """JavaScript's Math.round: halves go up (Python's round() goes to the even one)."""
    return math.floor(x + 0.5)

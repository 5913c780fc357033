"""How jobs look in a terminal: rich tables and lines, every string from a job as plain text (never markup)."""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from jobs import Job
from jobs.config import DEFAULT_SOURCE
from jobs.model import PRIORITIES, STATUSES

STATUS_STYLES = {
    "pending": "yellow",
    "active": "cyan",
    "completed": "green",
    "failed": "red",
    "canceled": "magenta",
}


def to_json(value: Any) -> str:
    """A job, a list of them, a page or any dataclass of the API as JSON, the REST API's field names."""
    return json.dumps(_plain(value), ensure_ascii=False, indent=2)


def to_json_line(value: Any) -> str:
    """The same on one line (JSON Lines), for streams of events."""
    return json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":"))


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def status(value: str) -> Text:
    return Text(value, style=STATUS_STYLES.get(value, ""))


def when(timestamp: str | None) -> str:
    """An API timestamp, shorter: `2026-11-28 17:00:00`."""
    return timestamp[:19].replace("T", " ") if timestamp else ""


def note(job: Job) -> str:
    """What to say beside a job: why it failed, when it starts (and why its last attempt failed), what it does."""
    if job.status == "failed":
        return job.error or ""
    if job.status == "pending" and job.scheduled_for:
        retry = f" (attempt {job.attempts}/{job.max_attempts}; last: {job.error})" if job.error else ""
        return f"starts {when(job.scheduled_for)} UTC{retry}"
    return job.action or ""


def job_line(job: Job) -> Text:
    """One line for a job: id, status, progress, name, and its note."""
    line = Text.assemble(job.id, "  ", status(job.status), f"  {job.progress:>3}%  ", job.name)
    if note(job):
        line.append(f"  {note(job)}", style="dim")
    return line


def jobs_table(jobs: list[Job]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("id", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("priority", no_wrap=True)
    table.add_column("progress", justify="right", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("type", no_wrap=True)
    table.add_column("action / error / start", overflow="fold")
    table.add_column("created", no_wrap=True)
    for job in jobs:
        table.add_row(
            Text(job.id),
            status(job.status),
            Text(job.priority),
            Text(f"{job.progress}%"),
            Text(job.name),
            Text(job.type),
            Text(note(job)),
            Text(when(job.created_at)),
        )
    return table


def counts_line(counts: dict[str, int]) -> Text:
    """`pending 3  active 1  completed 10  failed 0  canceled 2`."""
    parts: list[str | tuple[str, str] | Text] = []
    for name in STATUSES:
        parts += [status(name), f" {counts.get(name, 0)}  "]
    return Text.assemble(*parts)


def job_detail(job: Job) -> RenderableType:
    """Every field of a job, then its log."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    rows: list[tuple[str, Text]] = [
        ("id", Text(job.id)),
        ("name", Text(job.name)),
        ("type", Text(job.type)),
        ("status", status(job.status) + (Text(" (cancel requested)") if job.cancel_requested else Text(""))),
        ("priority", Text(job.priority)),
        ("progress", Text(f"{job.progress}%" + (f"  {job.action}" if job.action else ""))),
        ("params", Text(json.dumps(job.params, ensure_ascii=False))),
        ("attempts", Text(f"{job.attempts} of {job.max_attempts}")),
        ("worker", Text(job.worker or "")),
        ("created", Text(when(job.created_at))),
        ("scheduled", Text(when(job.scheduled_for))),
        ("started", Text(when(job.started_at))),
        ("ended", Text(when(job.ended_at))),
    ]
    if job.depends_on:
        rows.append(("depends on", Text(" ".join(job.depends_on) + ("  (allow failure)" if job.allow_failure else ""))))
        rows.append(("waiting for", Text(" ".join(job.waiting_for))))
    if job.dependents:
        rows.append(("dependents", Text(" ".join(job.dependents))))
    if job.error:
        rows.append(("error", Text(job.error, style="red")))
    if job.result is not None:
        rows.append(("result", Text(json.dumps(job.result, ensure_ascii=False))))
    for label, value in rows:
        grid.add_row(label, value)
    logs = job.logs or []
    return Group(grid, Text(f"\nlog ({len(logs)} lines)", style="bold"), *(Text(line) for line in logs))


def stats_view(stats: dict[str, Any], running: dict[str, str]) -> RenderableType:
    """`rq info`'s picture: counts by status, queue depth by priority, workers and what they run, paused?"""
    queues = stats.get("queues", {})
    depth = Text.assemble(*(f"{name} {queues.get(name, 0)}  " for name in PRIORITIES))
    workers = Table(box=None, header_style="bold", pad_edge=False)
    workers.add_column("worker", no_wrap=True)
    workers.add_column("state", no_wrap=True)
    workers.add_column("running", overflow="fold")
    for worker in stats.get("workers", []):
        job_id = worker.get("current_job")
        doing = Text.assemble(job_id, "  ", running.get(job_id, "")) if job_id else Text("")
        workers.add_row(Text(worker["name"]), Text(_state(worker["state"])), doing)
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold", no_wrap=True)
    summary.add_column()
    summary.add_row("jobs", counts_line(stats.get("counts", {})))
    summary.add_row("queued", depth)
    summary.add_row("paused", Text("yes", style="yellow") if stats.get("paused") else Text("no"))
    summary.add_row("ended", Text(f"{stats.get('jobs_per_minute', 0)} jobs/min over the last hour"))
    summary.add_row("workers", Text(str(len(stats.get("workers", [])))))
    summary.add_row("redis", Text(f"{stats['redis']['url']} ({_origin(stats['redis']['source'])})"))
    return Group(summary, Text(""), workers)


def _origin(source: str) -> str:
    """Where the command found its Redis URL, as a phrase."""
    return "the default" if source == DEFAULT_SOURCE else f"from {source}"


def _state(value: str) -> str:
    """RQ's worker state, `busy` rather than `WorkerStatus.BUSY`."""
    return value.rsplit(".", 1)[-1].lower()

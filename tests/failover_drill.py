"""The Redis failover drill that tests/test_failover.py checks and bench/failover.py measures.

A Sentinel group (scripts/sentinel.py), one worker pool and one gunicorn server on its redis+sentinel:// URL.
While jobs run, a client creates jobs one after another through the web and a browser-like client follows
the stream, the primary is killed (SIGKILL). Optionally the replicas are cut off first (SIGSTOP, a
partition), so the primary accepts writes that no replica has. The drill records what users would see:
which creates were answered 201 before the kill and are gone afterwards (lost), how long until the web
accepts a create again and until the stream delivers a live event again, how the stream resumed, and how
the jobs that ran through the kill ended.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs.connection import text
from jobs.model import parse_time
from jobs.store.keys import EVENTS_KEY
from jobs.store.orphans import ORPHAN_AFTER
from jobs.stream.events import RESET, id_key
from runner.pool import SWEEP_EVERY
from scripts.harness import Response, Service, request, start_pool, start_web, wait_until
from scripts.sentinel import FAILOVER_SECONDS, SentinelGroup
from tests.bounds import EVENT_SECONDS, JOB_SECONDS, OPEN_SECONDS
from tests.helpers import STREAM_PATH, SSEClient

CALM_CREATES = 40  # creates answered before anything happens: the latency figures, and traffic to kill into
PARTITION_CREATES = 20  # a partition lasts until this many more are answered (without WAIT) ...
PARTITION_BLOCKED_SECONDS = 1.0  # ... or until a create has waited this long for a replica (with WAIT)
AFTER_CREATES = 20  # creates answered by the new primary before the creator stops
RUNNING = {"steps": 10, "step_seconds": 0.4}  # demo.web_agent jobs that run through the kill ...
RUNNING_OPTIONS = {  # a second attempt at once, ahead of the backlog of quick creates
    "max_attempts": 2,
    "backoff": {"type": "fixed", "delay_seconds": 0, "max_delay_seconds": 0},
    "priority": "high",
}
QUICK = {"steps": 2, "step_seconds": 0.1}  # ... and the ones created once the new primary took over
BROWSER_RETRY_MS = 3000  # what EventSource waits before reconnecting when the server sent no `retry:`
ENDED = ("completed", "failed", "canceled")


@dataclass(frozen=True)
class Scenario:
    min_replicas: int = 0  # JOBSTREAM_REDIS_MIN_REPLICAS of web and pool
    replicas: int = 1
    partition: bool = False  # the replicas are cut off before the kill
    fanout: str = "request"

    def __str__(self) -> str:
        cut = "partition, then kill" if self.partition else "kill"
        return f"{cut}, {self.replicas} replica(s), MIN_REPLICAS={self.min_replicas}, {self.fanout} fan-out"


@dataclass
class Create:
    """One POST /api/jobs: when it was sent, how long it took, and its answer."""

    sent: float
    seconds: float
    status: int | None  # None: no answer (the connection was refused, reset or timed out)
    job_id: str | None

    @property
    def answered(self) -> float:
        return self.sent + self.seconds


class Creator(threading.Thread):
    """Creates demo.sleep jobs through the web, one after another, until stopped; records every answer."""

    def __init__(self, base: str) -> None:
        super().__init__(name="failover-creator", daemon=True)
        self.base = base
        self.creates: list[Create] = []
        self.sending_since: float | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        number = 0
        while not self._halt.is_set():
            number += 1
            body = {"name": f"failover {number}", "type": "demo.sleep", "params": {"seconds": 0}}
            self.sending_since = sent = time.monotonic()
            try:
                status, data, _ = request(self.base, "POST", "/api/jobs", body)
            except OSError:
                status, data = None, None
            self.sending_since = None
            job_id = str(data["job"]["id"]) if status == 201 and data else None
            self.creates.append(Create(sent, time.monotonic() - sent, status, job_id))
            if status != 201:
                self._halt.wait(0.05)  # refused while Redis is away: again soon, as a client would

    def accepted_after(self, moment: float) -> list[Create]:
        return [c for c in list(self.creates) if c.status == 201 and c.sent > moment]

    def blocked_for(self) -> float:
        since = self.sending_since
        return 0.0 if since is None else time.monotonic() - since

    def stop(self) -> None:
        self._halt.set()
        self.join(EVENT_SECONDS)


class BrowserStream(threading.Thread):
    """What the dashboard's EventSource does: when a stream ends, it reconnects after the server's `retry:`
    with Last-Event-ID; when the server refuses one (a 503 while Redis is away), the page starts over (it
    refetches the list and follows the stream from the list's event id), also after `retry:`."""

    def __init__(self, base: str) -> None:
        super().__init__(name="failover-stream", daemon=True)
        self.base = base
        self.connections: list[SSEClient] = []
        self.refused: list[int | None] = []  # the status of every refused connection (None: no answer)
        self.baselines: list[str] = []  # event ids of the lists the page refetched after a refusal
        self._halt = threading.Event()

    def run(self) -> None:
        last_id: str | None = None
        while not self._halt.is_set():
            client = SSEClient(self.base, STREAM_PATH, last_id, wait_ready=False)
            self.connections.append(client)
            client.closed.wait()  # until the server ends the stream (or `stop` closes it)
            retry = (client.retry or BROWSER_RETRY_MS) / 1000
            if client.status == 200:
                last_id = client.last_id() or last_id
            else:
                self.refused.append(client.status)
            if self._halt.wait(retry):
                return
            if client.status != 200:
                last_id = self._start_over()

    def _start_over(self) -> str | None:
        try:
            status, data, _ = request(self.base, "GET", "/api/jobs?limit=1")
        except OSError:
            return None
        event_id = data.get("last_event_id") if status == 200 and data else None
        if event_id:
            self.baselines.append(event_id)
        return event_id

    def ready(self) -> bool:
        return bool(self.connections) and self.connections[-1].retry is not None

    def received(self) -> list[dict[str, Any]]:
        """Every event of every connection, in order of arrival."""
        return [event for client in list(self.connections) for event in list(client.events)]

    def stop(self) -> None:
        self._halt.set()
        for client in self.connections:
            client.close()
        self.join(EVENT_SECONDS)


@dataclass
class Figures:
    """What one drill found; times in seconds from the kill."""

    scenario: Scenario
    accepted_before: int = 0  # creates answered 201 before the kill
    lost: list[str] = field(default_factory=list)  # of those, the ids no longer found afterwards
    refused: int = 0  # creates answered otherwise, or not at all, while Redis was away
    failover: float = 0.0  # until every sentinel named the new primary
    web_again: float = 0.0  # until a create sent after the kill was answered 201
    stream_again: float = 0.0  # until the stream delivered an event published after the kill
    reconnects: int = 0  # stream connections after the first
    resets: int = 0  # `reset` events (the client must refetch: the server could not replay what it missed)
    restarts: int = 0  # streams refused (503) after which the page started over from a fresh list
    phantoms: int = 0  # events the client got that the new primary never had (their jobs were lost)
    gaps: int = 0  # events of the new primary's history that the client never got and no reset covered
    duplicates: int = 0  # events the client got twice
    active_at_kill: int = 0  # of the jobs meant to run through the kill
    running: list[dict[str, Any]] = field(default_factory=list)  # those jobs at their end
    after_completed: int = 0  # of the jobs created once the new primary took over
    after_created: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # jobs by status once every job ended
    create_p50_ms: float = 0.0  # creates before anything happened
    create_p90_ms: float = 0.0

    @property
    def resumed_by(self) -> str:
        """How the stream came back: replay (Last-Event-ID), reset, or start over (after a refused stream)."""
        ways = ["reset"] * bool(self.resets) + ["start over"] * bool(self.restarts)
        return " + ".join(ways) or "replay"


@dataclass
class Stack:
    group: SentinelGroup
    base: str
    figures: Figures


@contextmanager
def stack_for(scenario: Scenario, workdir: Path) -> Iterator[Stack]:
    """The Sentinel group, a pool and a web server on it; every process stopped on the way out."""
    group = SentinelGroup(workdir / "redis", replicas=scenario.replicas).start()
    env = {"JOBSTREAM_REDIS_MIN_REPLICAS": str(scenario.min_replicas), "JOBSTREAM_HEARTBEAT_SECONDS": "1"}
    logs, services = workdir / "logs", []
    try:
        with ThreadPoolExecutor(2) as starting:  # side by side: each takes seconds to come up
            pool = starting.submit(start_pool, group.url, logs, name="pool", **env)
            web = starting.submit(start_web, group.url, logs, name="web", JOBSTREAM_FANOUT=scenario.fanout, **env)
        services += [pool.result()] if pool.exception() is None else []
        services += [web.result()[0]] if web.exception() is None else []
        pool.result()  # raises what failed
        yield Stack(group, web.result()[1], Figures(scenario))
    finally:
        with ThreadPoolExecutor(2) as stopping:  # side by side too
            list(stopping.map(Service.stop, services))
        group.stop()


def run_drill(scenario: Scenario, workdir: Path) -> Figures:
    """Kill the primary among creates, running jobs and an open stream; measure what users saw."""
    with stack_for(scenario, workdir) as stack:
        stream = BrowserStream(stack.base)
        creator = Creator(stack.base)
        stream.start()
        try:
            wait_until(stream.ready, OPEN_SECONDS, "the stream to open")
            killed_at, killed_wall, running = _kill_among_traffic(stack, creator, stream)
            _after_the_failover(stack, creator, stream, killed_at, killed_wall, running)
        finally:
            creator.stop()
            stream.stop()
        _check_stream(stack, stream)
        return stack.figures


def _kill_among_traffic(stack: Stack, creator: Creator, stream: BrowserStream) -> tuple[float, float, list[str]]:
    base, group, figures = stack.base, stack.group, stack.figures
    group.wait_watching()
    creator.start()
    wait_until(lambda: len(creator.accepted_after(0)) >= CALM_CREATES, JOB_SECONDS, "calm creates")
    calm = sorted(c.seconds * 1000 for c in creator.accepted_after(0))
    figures.create_p50_ms = statistics.median(calm)
    figures.create_p90_ms = calm[len(calm) * 9 // 10]
    running = [_create(base, "demo.web_agent", RUNNING, **RUNNING_OPTIONS) for _ in range(3)]
    wait_until(lambda: all(_job(base, i)["status"] == "active" for i in running), JOB_SECONDS, "running jobs")
    if figures.scenario.partition:
        cut_at = time.monotonic()
        group.stall_replicas()
        wait_until(
            lambda: (
                len(creator.accepted_after(cut_at)) >= PARTITION_CREATES
                or creator.blocked_for() >= PARTITION_BLOCKED_SECONDS
            ),
            JOB_SECONDS,
            "creates during the partition",
        )
    figures.active_at_kill = sum(_job(base, i)["status"] == "active" for i in running)
    killed_at, killed_wall = time.monotonic(), time.time()
    group.kill_primary()
    group.resume_replicas()
    group.wait_failover(FAILOVER_SECONDS)
    figures.failover = time.monotonic() - killed_at
    return killed_at, killed_wall, running


def _after_the_failover(
    stack: Stack, creator: Creator, stream: BrowserStream, killed_at: float, killed_wall: float, running: list[str]
) -> None:
    base, figures = stack.base, stack.figures
    first = wait_until(lambda: creator.accepted_after(killed_at)[:1], JOB_SECONDS, "a create accepted after the kill")
    figures.web_again = first[0].answered - killed_at
    live = wait_until(
        lambda: [e for e in stream.received() if _published(e) > killed_wall][:1],
        JOB_SECONDS,
        "an event published after the kill, on the stream",
    )
    figures.stream_again = live[0]["at"] - killed_wall
    wait_until(lambda: len(creator.accepted_after(killed_at)) >= AFTER_CREATES, JOB_SECONDS, "creates after it")
    creator.stop()
    after = [_create(base, "demo.web_agent", QUICK) for _ in range(3)]
    wait_until(lambda: all(_job(base, i)["status"] in ENDED for i in after + running), JOB_SECONDS, "jobs to end")
    figures.after_created = len(after)
    figures.after_completed = sum(_job(base, i)["status"] == "completed" for i in after)
    figures.running = [_job(base, i) for i in running]
    before = [c for c in creator.creates if c.status == 201 and c.answered < killed_at]
    figures.accepted_before = len(before)
    figures.lost = [c.job_id for c in before if c.job_id and _job(base, c.job_id)["status"] == "lost"]
    figures.refused = sum(c.status != 201 for c in creator.creates)
    # A job whose end the failover lost looks active until the pool's sweep finds nothing runs it.
    orphans_found = ORPHAN_AFTER + SWEEP_EVERY + EVENT_SECONDS
    wait_until(lambda: _counts(base)["pending"] + _counts(base)["active"] == 0, orphans_found, "every job to end")
    figures.counts = _counts(base)
    wait_until(lambda: set(after) <= _ends(stream), EVENT_SECONDS, "the stream to show the new jobs end")


def _check_stream(stack: Stack, stream: BrowserStream) -> None:
    """Compare what the client got with the history of the new primary."""
    figures = stack.figures
    history = [text(entry_id) for entry_id, _ in stack.group.primary_client().xrange(EVENTS_KEY) or []]
    events = [e for e in stream.received() if e["id"]]
    got = [e["id"] for e in events]
    covered = [id_key(e["id"]) for e in events if e["event"] == RESET] + [id_key(i) for i in stream.baselines]
    first, last = id_key(got[0]), id_key(got[-1])
    known, seen = set(history), set(got)
    figures.reconnects = len(stream.connections) - 1
    figures.resets = sum(e["event"] == RESET for e in events)
    figures.restarts = len(stream.refused)
    figures.phantoms = sum(i not in known for i in got)
    figures.duplicates = len(got) - len(seen)
    figures.gaps = sum(
        1
        for i in history
        if first < id_key(i) <= last and i not in seen and not any(id_key(i) <= mark for mark in covered)
    )


def _ended(event: dict[str, Any]) -> bool:
    return bool(event["data"]["job"]["status"] in ENDED)


def _ends(stream: BrowserStream) -> set[str]:
    return {e["data"]["job"]["id"] for e in stream.received() if e["event"] == "job-update" and _ended(e)}


def _published(event: dict[str, Any]) -> float:
    stamp = parse_time((event.get("data") or {}).get("timestamp"))
    return stamp.timestamp() if stamp else 0.0


def _counts(base: str) -> dict[str, int]:
    status, data, _ = request(base, "GET", "/api/jobs?limit=1")
    assert status == 200, (status, data)
    return dict(data["counts"])


def _create(base: str, type_: str, params: dict[str, Any], **options: Any) -> str:
    """Create a job, again after a 503 as a client would (with MIN_REPLICAS, until a replica is back)."""
    body = {"name": type_, "type": type_, "params": params, **options}

    def answered() -> Response | None:
        reply = request(base, "POST", "/api/jobs", body)
        return None if reply[0] == 503 else reply

    reply = wait_until(answered, JOB_SECONDS, "a create")
    assert reply is not None and reply[0] == 201, reply
    return str(reply[1]["job"]["id"])


def _job(base: str, job_id: str) -> dict[str, Any]:
    """The job as the API shows it; status "lost" when it is not found."""
    status, data, _ = request(base, "GET", f"/api/jobs/{job_id}")
    if status == 404:
        return {"id": job_id, "status": "lost"}
    assert status == 200, (status, data)
    job: dict[str, Any] = data["job"]
    return job


def describe(figures: Figures) -> str:
    """The figures of one drill, in a few lines."""
    running = ", ".join(f"{job['status']} at attempt {job.get('attempts')}" for job in figures.running)
    return "\n".join(
        [
            f"{figures.scenario}:",
            f"  lost {len(figures.lost)} of {figures.accepted_before} creates accepted before the kill; "
            f"{figures.refused} refused or unanswered meanwhile",
            f"  failover {figures.failover:.1f} s; web accepts creates again after {figures.web_again:.1f} s; "
            f"stream live again after {figures.stream_again:.1f} s (resumed by {figures.resumed_by}; "
            f"{figures.phantoms} events seen of lost jobs, {figures.gaps} missed, {figures.duplicates} twice)",
            f"  jobs running through the kill: {running}; created after it: "
            f"{figures.after_completed}/{figures.after_created} completed",
            f"  create latency before: p50 {figures.create_p50_ms:.1f} ms, p90 {figures.create_p90_ms:.1f} ms",
        ]
    )

"""Jobs.events(): the stream's events from Redis, replay then live, as the SSE stream has them; `reset` when
the history is gone; resumed across a Redis restart without losing or repeating an event."""

from __future__ import annotations

import contextlib
import signal
import threading
import uuid
from collections.abc import Callable, Generator, Iterator
from typing import Any, cast

import pytest
import redis

from jobs import Job, JobEvent, Jobs
from jobs.config import Settings
from jobs.store.keys import EVENTS_KEY
from scripts.harness import RedisServer, wait_until
from tests.bounds import EVENT_SECONDS, JOB_SECONDS, START_SECONDS
from tests.conftest import Stack
from tests.helpers import OpenSSE

SLEEP = {"seconds": 0}
STALL_MILLISECONDS = 6000  # a Redis that answers nothing for longer than the clients' 5 s socket timeout
Events = Generator[JobEvent, None, None]
Follow = Callable[..., Events]


class Overdue(AssertionError):
    """Raised into a blocked events() when what the test waits for did not come in time."""


@contextlib.contextmanager
def within(seconds: float, what: str) -> Iterator[None]:
    """Fail with Overdue when the block takes longer than `seconds` (SIGALRM: events() blocks in a socket read,
    and ends, closing its subscription, when the exception passes through it)."""

    def expire(signum: int, frame: Any) -> None:
        raise Overdue(f"timed out after {seconds} s waiting for {what}")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def take_until(events: Events, last: Callable[[JobEvent], bool], seconds: float, what: str) -> list[JobEvent]:
    """The next events, up to and including the first one that is `last`; the generator stays open."""
    taken = []
    with within(seconds, what):
        for event in events:
            taken.append(event)
            if last(event):
                return taken
    raise AssertionError("events() ended")


def is_id(event_id: str) -> Callable[[JobEvent], bool]:
    return lambda event: event.id == event_id


@pytest.fixture
def follow() -> Iterator[Follow]:
    """Opens `jobs.events(...)` generators and closes each after the test, so no subscription outlives it."""
    opened: list[Events] = []

    def open_events(jobs: Jobs, after: str | None = None, job: str | None = None) -> Events:
        events = cast(Events, jobs.events(after=after, job=job))
        opened.append(events)
        return events

    yield open_events
    for events in opened:
        events.close()


@pytest.fixture
def unserved(stack: Stack) -> Jobs:
    """Jobs on the stack's Redis whose queue no worker serves: the test makes every event itself."""
    return Jobs.from_url(stack.redis_server.url, queue="unserved")


def running_job(jobs: Jobs, name: str = "fake") -> Job:
    """A job made active without a worker, so the test reports its progress at its own pace."""
    job = jobs.enqueue("demo.sleep", name=f"{name} {uuid.uuid4().hex[:8]}", params=SLEEP)
    assert jobs.store.begin(job.id, "test").ok
    return job


def as_job_event(sse_event: dict[str, Any]) -> JobEvent:
    """An event an SSE client received, as events() describes it."""
    data = sse_event["data"]
    job = data.get("job")
    return JobEvent(
        sse_event["id"],
        sse_event["event"],
        job["id"] if job else data.get("id"),
        Job.from_snapshot(job) if job else None,
        data.get("log"),
        data.get("counts"),
        data.get("timestamp"),
    )


def received_until(client: Any, event_id: str) -> list[JobEvent]:
    """What an SSE client received, up to and including `event_id`."""
    ids = [e["id"] for e in client.events]
    return [as_job_event(e) for e in client.events[: ids.index(event_id) + 1]]


# -- replay, as the SSE stream replays ---------------------------------------------------------------------


def test_events_after_an_id_replay_what_the_sse_stream_replays(
    base: str, unserved: Jobs, sse: OpenSSE, follow: Follow
) -> None:
    job = running_job(unserved, "replayed")
    since = unserved.store.report(job.id, 1, "seen").event_id
    other = unserved.enqueue("demo.sleep", name="other", params=SLEEP)
    for n in range(30):
        unserved.store.report(job.id, n + 2, f"step {n}", log=f"line {n}\nand its second line")
    unserved.cancel(other.id)  # a change of counts
    unserved.delete(other.id)  # a job-removed
    last = unserved.store.report(job.id, 99, "last").event_id

    client = sse(base, last_event_id=since)
    client.wait_for(lambda c: any(e["id"] == last for e in c.events), EVENT_SECONDS, "the SSE replay")
    replayed = take_until(follow(unserved, after=since), is_id(last), EVENT_SECONDS, "the replay")

    assert replayed == received_until(client, last)
    assert len(replayed) >= 34
    assert {"job-update", "job-removed"} == {event.type for event in replayed}
    assert next(event.log for event in replayed if event.log) == "line 0\nand its second line"
    assert any(event.counts for event in replayed)


def test_events_go_on_live_after_the_replay_as_the_sse_stream_does(
    base: str, unserved: Jobs, sse: OpenSSE, follow: Follow
) -> None:
    job = running_job(unserved, "live")
    since = unserved.store.report(job.id, 1, "before").event_id
    unserved.store.report(job.id, 2, "missed")
    client = sse(base, last_event_id=since)
    events = follow(unserved, after=since, job=job.id)
    take_until(events, lambda e: e.job is not None and e.job.action == "missed", EVENT_SECONDS, "the replay")

    live = unserved.store.report(job.id, 3, "live", log="a live line").event_id

    got = take_until(events, is_id(live), EVENT_SECONDS, "the live event")
    client.wait_for(lambda c: any(e["id"] == live for e in c.events), EVENT_SECONDS, "the live event at SSE")
    assert got == [as_job_event(e) for e in client.events if e["id"] == live]
    assert got[0].job is not None and (got[0].job.progress, got[0].log) == (3, "a live line")


def test_events_of_one_job_are_what_the_sse_stream_of_that_job_replays(
    base: str, unserved: Jobs, sse: OpenSSE, follow: Follow
) -> None:
    wanted, other = running_job(unserved, "wanted"), running_job(unserved, "other")
    since = unserved.store.report(other.id, 1, "x").event_id
    for n in range(10):
        unserved.store.report(wanted.id, n, f"wanted {n}")
        unserved.store.report(other.id, n, f"other {n}")
    last = unserved.store.report(wanted.id, 50, "wanted last").event_id

    client = sse(base, path=f"/api/jobs/stream?job={wanted.id}", last_event_id=since)
    client.wait_for(lambda c: any(e["id"] == last for e in c.events), EVENT_SECONDS, "the SSE replay")
    replayed = take_until(follow(unserved, after=since, job=wanted.id), is_id(last), EVENT_SECONDS, "the replay")

    assert replayed == received_until(client, last)
    assert {event.job_id for event in replayed} == {wanted.id}
    assert len(replayed) == 11


def test_a_page_then_events_after_its_id_follow_a_job_through_the_workers(stack: Stack, follow: Follow) -> None:
    jobs = Jobs.from_url(stack.redis_server.url)
    page = jobs.list(limit=1)
    job = jobs.enqueue(
        "demo.web_agent", name=f"followed {uuid.uuid4().hex[:8]}", params={"steps": 2, "step_seconds": 0}
    )

    events = follow(jobs, after=page.last_event_id, job=job.id)
    got = take_until(events, lambda e: e.job is not None and e.job.ended, JOB_SECONDS, "the job's end")

    assert all(isinstance(event.job, Job) for event in got)
    assert [(e.job.status, e.job.progress) for e in got if e.job] == [
        ("pending", 0),
        ("active", 0),
        ("active", 50),
        ("active", 100),
        ("completed", 100),
    ]
    assert got[-1].job is not None and got[-1].job.result == {"steps": 2, "status": "done"}


def test_events_without_an_id_start_with_what_happens_next(jobs_in_process: Jobs, follow: Follow) -> None:
    job = running_job(jobs_in_process)
    jobs_in_process.store.report(job.id, 1, "before")
    events = follow(jobs_in_process)
    stop = threading.Event()

    def publish() -> None:  # until the test has its event: events() starts from its first next()
        wait_until(lambda: stop.is_set() or not jobs_in_process.store.report(job.id, 2, "after").ok, JOB_SECONDS)

    publisher = threading.Thread(target=publish)
    publisher.start()
    try:
        with within(EVENT_SECONDS, "an event"):
            first = next(events)
    finally:
        stop.set()
        publisher.join()
    assert first.job is not None and first.job.action == "after"


def test_events_on_a_redis_that_never_had_one_start_with_the_first_not_a_reset(
    jobs_in_process: Jobs, follow: Follow
) -> None:
    events = follow(jobs_in_process)  # the replay stream is empty: nothing happened yet
    created: list[Job] = []

    def publish() -> None:  # events() subscribes at its first next(): the first job comes once it has
        wait_until(lambda: jobs_in_process.redis.pubsub_numpat() > 0, EVENT_SECONDS)
        created.append(jobs_in_process.enqueue("demo.sleep", name="the first", params=SLEEP))

    publisher = threading.Thread(target=publish)
    publisher.start()
    try:
        with within(EVENT_SECONDS, "an event"):
            first = next(events)
    finally:
        publisher.join()
    assert first.type == "job-update" and first.job is not None and first.job.id == created[0].id


# -- reset -------------------------------------------------------------------------------------------------


@pytest.fixture
def jobs_in_process(redis_client: redis.Redis, settings: Settings) -> Jobs:
    return Jobs(redis_client, settings)


def test_an_id_older_than_the_capped_history_yields_reset_then_live_events(
    redis_client: redis.Redis, redis_server: RedisServer, follow: Follow
) -> None:
    jobs = Jobs(redis_client, Settings(redis_url=redis_server.url, replay_events=100))
    job = running_job(jobs)
    first = jobs.store.report(job.id, 0, "soon forgotten").event_id
    for n in range(600):
        jobs.store.report(job.id, n % 100, f"step {n}")
    oldest = redis_client.xrange(EVENTS_KEY, count=1)[0][0].decode()
    assert redis_client.xlen(EVENTS_KEY) < 600 and oldest > first  # the stream was capped past `first`
    newest = jobs.store.read.last_event_id()
    events = follow(jobs, after=first)

    with within(EVENT_SECONDS, "the reset"):
        reset = next(events)
    live = jobs.store.report(job.id, 7, "after the reset").event_id
    after_reset = take_until(events, is_id(live), EVENT_SECONDS, "the live event")

    assert (reset.type, reset.id, reset.job, reset.job_id) == ("reset", newest, None, None)
    assert [event.id for event in after_reset] == [live]
    resumed = take_until(follow(jobs, after=reset.id), is_id(live), EVENT_SECONDS, "the events after the reset")
    assert [event.type for event in resumed] == ["job-update"]  # from the reset's id: no second reset


@pytest.mark.parametrize("after", ["not-an-id", "1-0"])
def test_an_id_that_is_not_in_the_history_yields_reset(jobs_in_process: Jobs, follow: Follow, after: str) -> None:
    running_job(jobs_in_process)

    with within(EVENT_SECONDS, "the reset"):
        reset = next(follow(jobs_in_process, after=after))

    assert (reset.type, reset.id) == ("reset", jobs_in_process.store.read.last_event_id())


# -- Redis restarts ----------------------------------------------------------------------------------------


def test_events_resume_after_a_redis_restart_missing_nothing(private_redis: RedisServer, follow: Follow) -> None:
    jobs = Jobs.from_url(private_redis.url, queue="unserved")
    job = running_job(jobs)
    since = jobs.store.report(job.id, 1, "seen").event_id
    jobs.store.report(job.id, 2, "before the restart")
    events = follow(jobs, after=since)
    take_until(events, lambda e: e.job is not None and e.job.progress == 2, EVENT_SECONDS, "the first event")
    private_redis.stop()
    errors: list[BaseException] = []

    def restart_and_publish() -> None:  # while events() waits on a Redis that is gone
        try:
            private_redis.start()  # same port and directory: the AOF kept the history
            publisher = Jobs.from_url(private_redis.url, queue="unserved")
            for progress in (3, 4):
                publisher.store.report(job.id, progress, f"after the restart {progress}")
        except BaseException as exc:
            errors.append(exc)

    restarter = threading.Thread(target=restart_and_publish)
    restarter.start()
    try:
        got = take_until(
            events, lambda e: e.job is not None and e.job.progress == 4, START_SECONDS + EVENT_SECONDS, "resumption"
        )
    finally:
        restarter.join()
    assert not errors, errors
    live = jobs.store.report(job.id, 5, "live again").event_id
    got += take_until(events, is_id(live), EVENT_SECONDS, "a live event after the restart")

    assert [e.job.progress for e in got if e.job] == [3, 4, 5]
    assert len({event.id for event in got}) == 3


def test_events_wait_out_a_redis_that_stalls(private_redis: RedisServer, follow: Follow) -> None:
    jobs = Jobs.from_url(private_redis.url, queue="unserved")
    job = running_job(jobs)
    since = jobs.store.report(job.id, 1, "seen").event_id
    jobs.store.report(job.id, 2, "published before the stall")
    private_redis.client().execute_command("CLIENT", "PAUSE", STALL_MILLISECONDS, "ALL")  # a slow fork, a failover

    got = take_until(
        follow(jobs, after=since),
        lambda e: e.job is not None and e.job.progress == 2,
        STALL_MILLISECONDS / 1000 + EVENT_SECONDS,
        "the event after the stall",
    )

    assert [e.job.action for e in got if e.job] == ["published before the stall"]

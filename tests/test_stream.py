"""The live stream through real gunicorn + gevent and real workers, in both fan-out modes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jobs import Jobs
from jobs.config import Settings
from jobs.store.lifecycle import JobStore
from jobs.stream.events import EVENTS_KEY
from scripts.harness import RedisServer, Service, free_port, request, start_web, wait_until
from tests.bounds import (
    BURST_SECONDS,
    CANCEL_SECONDS,
    DEPARTURE_SECONDS,
    EVENT_SECONDS,
    JOB_SECONDS,
    OPEN_SECONDS,
    STOP_SECONDS,
    STREAMS_RELEASED_SECONDS,
)
from tests.conftest import Stack
from tests.helpers import THREE_STEP_LIFECYCLE, OpenSSE, SSEClient, create

Launch = Callable[..., tuple[Service, str]]


def statuses(client: SSEClient, job_id: str) -> list[str]:
    return [e["data"]["job"]["status"] for e in client.updates(job_id)]


def ended(client: SSEClient, job_id: str, status: str = "completed") -> bool:
    return status in statuses(client, job_id)


def bursts(client: SSEClient, job_id: str) -> list[str]:
    """The actions of a job's "burst n" progress events, in the order received."""
    actions = (e["data"]["job"]["action"] for e in client.updates(job_id))
    return [a for a in actions if a and a.startswith("burst ")]


def fake_active_job(store: JobStore, name: str = "fake") -> str:
    """A job that is active without a worker, so a test can publish progress at its own pace."""
    job = Jobs(store.redis, store.settings).enqueue("demo.sleep", name=name, params={"seconds": 0})
    assert store.begin(job.id, "test").ok
    return job.id


def open_streams(base: str) -> int:
    return request(base, "GET", "/api/stats")[1]["streams"]["open"]


@pytest.fixture
def launch_web(tmp_path: Path) -> Iterator[Launch]:
    """Start gunicorn servers of the test's own; stopped afterwards even when the test fails."""
    started: list[Service] = []

    def launch(redis_url: str, name: str = "web", **env: str) -> tuple[Service, str]:
        web, base = start_web(redis_url, tmp_path, name=name, **env)
        started.append(web)
        return web, base

    yield launch
    for web in started:
        web.stop()


@pytest.fixture
def stack_store(stack: Stack) -> JobStore:
    """A store whose jobs go to a queue no worker serves, so tests publish their events by hand."""
    return JobStore(stack.redis, Settings(redis_url=stack.redis_server.url, queue="unserved"))


# -- the whole loop ----------------------------------------------------------------------------


def test_twenty_jobs_go_pending_active_progress_completed_in_order(base: str, sse: OpenSSE) -> None:
    client = sse(base)
    client.wait_for(lambda c: c.retry == 3000, OPEN_SECONDS, "retry: 3000 first")
    jobs = [create(base, f"job {i}", steps=3, step_seconds=0.05) for i in range(20)]
    for job in jobs:
        client.wait_for(lambda c, j=job: ended(c, j["id"]), JOB_SECONDS, f"{job['name']} completed")
    for job in jobs:
        updates = client.updates(job["id"])
        seen = [(e["data"]["job"]["status"], e["data"]["job"]["progress"]) for e in updates]
        assert seen == THREE_STEP_LIFECYCLE
        assert updates[-1]["data"]["job"]["result"] == {"steps": 3, "status": "done"}
    keys = [tuple(map(int, e["id"].split("-"))) for e in client.updates()]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


def test_cancel_pending_and_running_jobs(base: str, sse: OpenSSE) -> None:
    client = sse(base)
    running = [create(base, f"long {i}", steps=300, step_seconds=0.1) for i in range(5)]
    waiting = create(base, "waits", steps=1, step_seconds=0)
    for job in running:
        client.wait_for(lambda c, j=job: "active" in statuses(c, j["id"]), JOB_SECONDS, "long jobs active")
    status, data, _ = request(base, "POST", f"/api/jobs/{waiting['id']}/cancel")
    assert (status, data["job"]["status"]) == (200, "canceled")
    asked = time.monotonic()
    status, data, _ = request(base, "POST", f"/api/jobs/{running[0]['id']}/cancel")
    assert status == 202 and data["job"]["cancel_requested"] is True
    client.wait_for(lambda c: ended(c, running[0]["id"], "canceled"), CANCEL_SECONDS, "running job canceled within 2 s")
    assert time.monotonic() - asked < 2
    final = client.updates(running[0]["id"])[-1]["data"]["job"]
    assert final["cancel_requested"] is False and final["ended_at"]
    for job in running[1:]:
        request(base, "POST", f"/api/jobs/{job['id']}/cancel")
    for job in running[1:]:
        client.wait_for(lambda c, j=job: ended(c, j["id"], "canceled"), EVENT_SECONDS, "cleanup cancels")
    assert "active" not in statuses(client, waiting["id"])


def test_retry_of_a_failed_job_runs_it_again(base: str, sse: OpenSSE) -> None:
    client = sse(base)
    job = create(base, "fails", steps=1, step_seconds=0, fail_rate=1)
    client.wait_for(lambda c: ended(c, job["id"], "failed"), JOB_SECONDS, "failed")
    status, data, _ = request(base, "POST", f"/api/jobs/{job['id']}/retry")
    assert status == 202 and data["job"]["attempts"] == 2 and data["job"]["status"] == "pending"
    client.wait_for(lambda c: statuses(c, job["id"]).count("failed") == 2, JOB_SECONDS, "second failure")
    assert statuses(client, job["id"]) == ["pending", "active", "failed", "pending", "active", "failed"]


def test_150_concurrent_streams_are_all_served(base: str, sse: OpenSSE) -> None:
    clients = [sse(base) for _ in range(150)]
    for client in clients:
        client.wait_for(lambda c: c.retry == 3000, OPEN_SECONDS, "every stream opened")
    job = create(base, "for everyone", steps=2, step_seconds=0.05)
    for client in clients:
        client.wait_for(lambda c: ended(c, job["id"]), JOB_SECONDS, "every stream sees completion")


def test_a_burst_of_300_stream_opens_is_all_served(base: str, sse: OpenSSE) -> None:
    """As when every browser reconnects at once after a deploy: none may be refused."""
    clients = [sse(base, wait_ready=False) for _ in range(300)]
    for client in clients:
        client.wait_for(lambda c: c.retry == 3000 or c.closed.is_set(), OPEN_SECONDS, "every stream answered")
    assert [c.status for c in clients] == [200] * 300


# -- resources -------------------------------------------------------------------------------


def test_departed_clients_leave_no_subscription_or_queue(stack: Stack, base: str, sse: OpenSSE) -> None:
    mode = "request" if base == stack.bases["request"] else "process"
    wait_until(lambda: open_streams(base) == 0, EVENT_SECONDS, "no stream open")
    before = stack.redis_server.pattern_subscribers()
    clients = [sse(base) for _ in range(5)]
    wait_until(lambda: open_streams(base) == 5, EVENT_SECONDS, "5 streams open")
    during = stack.redis_server.pattern_subscribers()
    assert during == before + (5 if mode == "request" else 0)
    for client in clients:
        client.close()
    # heartbeats are 1 s here: a departed client is noticed within two of them
    wait_until(lambda: open_streams(base) == 0, DEPARTURE_SECONDS, "streams released")
    wait_until(lambda: stack.redis_server.pattern_subscribers() == before, DEPARTURE_SECONDS, "subscriptions released")


def test_300_connect_disconnect_cycles_leak_nothing(stack: Stack, base: str, sse: OpenSSE) -> None:
    wait_until(lambda: open_streams(base) == 0, EVENT_SECONDS, "no stream open")
    subscribers = stack.redis_server.pattern_subscribers()
    connections = stack.redis.info("clients")["connected_clients"]
    for _ in range(30):
        batch = [sse(base) for _ in range(10)]
        for client in batch:
            client.wait_for(lambda c: c.retry == 3000, OPEN_SECONDS, "stream opened")
            client.close()
    wait_until(lambda: open_streams(base) == 0, EVENT_SECONDS, "all streams released")
    wait_until(lambda: stack.redis_server.pattern_subscribers() == subscribers, EVENT_SECONDS, "subscriptions released")
    # pooled command connections may stay open, but never one per departed stream
    assert stack.redis.info("clients")["connected_clients"] <= connections + 5


# -- replay ----------------------------------------------------------------------------------


def test_reconnect_with_last_event_id_gets_exactly_the_missed_events(
    base: str, stack_store: JobStore, sse: OpenSSE
) -> None:
    job_id = fake_active_job(stack_store)
    first = sse(base)
    before = stack_store.report(job_id, 1, "before").event_id
    first.wait_for(lambda c: any(e["id"] == before for e in c.updates(job_id)), EVENT_SECONDS, "the event")
    last = before  # the id the client saw last for this job
    first.close()
    for n in range(100):
        stack_store.report(job_id, n % 100, f"missed {n}")
    again = sse(base, last_event_id=last)
    again.wait_for(lambda c: len(c.updates(job_id)) >= 100, EVENT_SECONDS, "the 100 missed events")
    stack_store.report(job_id, 50, "live")
    again.wait_for(lambda c: len(c.updates(job_id)) == 101, EVENT_SECONDS, "then the live one")
    actions = [e["data"]["job"]["action"] for e in again.updates(job_id)]
    assert actions == [f"missed {n}" for n in range(100)] + ["live"]


def test_last_event_id_as_query_parameter(base: str, stack_store: JobStore, sse: OpenSSE) -> None:
    job_id = fake_active_job(stack_store)
    since = stack_store.report(job_id, 5, "a").event_id
    stack_store.report(job_id, 6, "b")
    client = sse(base, path=f"/api/jobs/stream?last_event_id={since}")
    client.wait_for(lambda c: c.updates(job_id), EVENT_SECONDS, "replayed event")
    assert [e["data"]["job"]["action"] for e in client.updates(job_id)] == ["b"]


def test_an_id_older_than_the_replay_history_gets_reset(base: str, stack_store: JobStore, sse: OpenSSE) -> None:
    fake_active_job(stack_store)
    client = sse(base, last_event_id="1-0")
    client.wait_for(lambda c: any(e["event"] == "reset" for e in c.events), EVENT_SECONDS, "reset")
    reset = next(e for e in client.events if e["event"] == "reset")
    assert reset["id"] == stack_store.read.last_event_id() or reset["id"] < stack_store.read.last_event_id()


def test_events_published_during_the_replay_are_neither_lost_nor_doubled(
    base: str, stack_store: JobStore, sse: OpenSSE
) -> None:
    job_id = fake_active_job(stack_store)
    since = stack_store.report(job_id, 0, "start").event_id
    for n in range(2000):  # a long backlog, so the replay read overlaps the publisher below
        stack_store.report(job_id, n % 100, f"backlog {n}")
    publisher_store = JobStore(stack_store.redis, stack_store.settings)

    def publish() -> None:
        for n in range(300):
            publisher_store.report(job_id, n % 100, f"during {n}")

    publisher = threading.Thread(target=publish)
    publisher.start()
    client = sse(base, last_event_id=since)
    publisher.join()
    expected = [entry_id.decode() for entry_id, _ in stack_store.redis.xrange(EVENTS_KEY, min=f"({since}")]
    client.wait_for(lambda c: len(c.updates(job_id)) >= len(expected), BURST_SECONDS, "every event")
    received = [e["id"] for e in client.updates(job_id)]
    assert received == expected


# -- filters, heartbeats, slow clients --------------------------------------------------------


def test_job_filter_narrows_the_stream(base: str, stack_store: JobStore, sse: OpenSSE) -> None:
    wanted, other = fake_active_job(stack_store, "wanted"), fake_active_job(stack_store, "other")
    client = sse(base, path=f"/api/jobs/stream?job={wanted}")
    client.wait_for(lambda c: c.retry == 3000, OPEN_SECONDS, "open")
    stack_store.report(other, 1, "x")
    stack_store.report(wanted, 2, "y")
    client.wait_for(lambda c: c.updates(wanted), EVENT_SECONDS, "the wanted job's event")
    stack_store.report(wanted, 3, "z")
    client.wait_for(lambda c: len(c.updates(wanted)) == 2, EVENT_SECONDS, "both events")
    assert {e["data"]["job"]["id"] for e in client.updates()} == {wanted}


def test_heartbeat_comes_on_a_clock(base: str, sse: OpenSSE) -> None:
    client = sse(base, path=f"/api/jobs/stream?job={'0' * 20}")  # a job that never has events
    client.wait_for(lambda c: len([t for t, text in c.comments if text == "ping"]) >= 3, EVENT_SECONDS, "three pings")
    times = [t for t, text in client.comments if text == "ping"]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(0.7 < gap < 1.6 for gap in gaps), gaps


def test_a_slow_reader_is_cut_off_while_a_fast_one_keeps_receiving(
    base: str, stack_store: JobStore, sse: OpenSSE
) -> None:
    job_id = fake_active_job(stack_store)
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", int(base.rsplit(":", 1)[1])))
    slow.sendall(b"GET /api/jobs/stream HTTP/1.1\r\nHost: x\r\n\r\n")
    fast = sse(base)
    wait_until(lambda: open_streams(base) >= 2, EVENT_SECONDS, "both streams open")
    big = "x" * 3900
    for n in range(3000):  # about 12 MB: far more than the slow socket's kernel buffers hold
        stack_store.report(job_id, n % 100, f"burst {n}", log=big)
    fast.wait_for(lambda c: len(bursts(c, job_id)) == 3000, BURST_SECONDS, "the fast client gets everything")
    wait_until(lambda: open_streams(base) == 1, EVENT_SECONDS, "the slow stream cut off")
    stack_store.report(job_id, 1, "after")
    fast.wait_for(
        lambda c: c.updates(job_id)[-1]["data"]["job"]["action"] == "after", EVENT_SECONDS, "the fast client still live"
    )
    slow.close()


def test_a_backlog_after_a_stall_is_handed_out_without_overflowing_queues(
    stack: Stack, stack_store: JobStore, launch_web: Launch, sse: OpenSSE
) -> None:
    """Events that pile up while the web process is starved of CPU reach every reader; no queue overflows."""
    _, base = launch_web(stack.redis_server.url, JOBSTREAM_FANOUT="process", JOBSTREAM_STREAM_QUEUE_EVENTS="100")
    job_id = fake_active_job(stack_store)
    clients = [sse(base) for _ in range(3)]
    pid = request(base, "GET", "/api/stats")[1]["streams"]["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        for n in range(1000):  # ten times what a stream's queue holds
            stack_store.report(job_id, n % 100, f"burst {n}", log="x" * 1000)
    finally:
        os.kill(pid, signal.SIGCONT)
    for client in clients:
        client.wait_for(lambda c: len(bursts(c, job_id)) == 1000 or c.closed.is_set(), BURST_SECONDS, "the burst")
        assert bursts(client, job_id) == [f"burst {n}" for n in range(1000)]
        assert not client.closed.is_set()


# -- shutdown and Redis restarts --------------------------------------------------------------


@pytest.mark.parametrize("mode", ["request", "process"])
def test_sigterm_ends_200_streams_promptly_and_clients_resume_elsewhere(
    mode: str, stack: Stack, stack_store: JobStore, launch_web: Launch, sse: OpenSSE
) -> None:
    web, base = launch_web(stack.redis_server.url, JOBSTREAM_FANOUT=mode)
    job_id = fake_active_job(stack_store)
    clients = [sse(base) for _ in range(200)]
    wait_until(lambda: open_streams(base) == 200, OPEN_SECONDS, "200 streams open")
    stack_store.report(job_id, 1, "seen by all")
    for client in clients:
        client.wait_for(lambda c: c.updates(job_id), EVENT_SECONDS, "first event")
    started = time.monotonic()
    web.signal(signal.SIGTERM)
    web.process.wait(STOP_SECONDS)
    # gunicorn's graceful_timeout is 10 s: well under it means the streams did not hold the shutdown
    assert time.monotonic() - started < STREAMS_RELEASED_SECONDS, "gunicorn waited for the streams"
    for client in clients:
        assert client.closed.wait(EVENT_SECONDS), "a stream stayed open"
    for n in range(10):  # published while no server runs
        stack_store.report(job_id, 10 + n, f"gap {n}")
    _, new_base = launch_web(stack.redis_server.url, name="replacement", JOBSTREAM_FANOUT=mode)
    resumed = [sse(new_base, last_event_id=c.last_id()) for c in clients[:20]]
    for client in resumed:
        client.wait_for(lambda c: len(c.updates(job_id)) == 10, EVENT_SECONDS, "the gap replayed")
        assert [e["data"]["job"]["action"] for e in client.updates(job_id)] == [f"gap {n}" for n in range(10)]


@pytest.mark.parametrize("mode", ["request", "process"])
def test_sigterm_ends_a_stream_stuck_writing_to_a_client_that_does_not_read(
    mode: str, stack: Stack, stack_store: JobStore, launch_web: Launch, sse: OpenSSE
) -> None:
    env = {"JOBSTREAM_FANOUT": mode, "JOBSTREAM_STREAM_QUEUE_EVENTS": "10000", "JOBSTREAM_STREAM_WRITE_TIMEOUT": "60"}
    web, base = launch_web(stack.redis_server.url, **env)
    job_id = fake_active_job(stack_store)
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(("127.0.0.1", int(base.rsplit(":", 1)[1])))
    try:
        stuck.sendall(b"GET /api/jobs/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        fast = sse(base)
        wait_until(lambda: open_streams(base) == 2, EVENT_SECONDS, "both streams open")
        for n in range(3000):  # about 12 MB: the stuck stream's kernel buffers fill, the rest waits in its backlog
            stack_store.report(job_id, n % 100, f"burst {n}", log="x" * 3900)
        fast.wait_for(lambda c: len(bursts(c, job_id)) == 3000, BURST_SECONDS, "every event handed out")
        started = time.monotonic()
        web.signal(signal.SIGTERM)
        web.process.wait(STOP_SECONDS)
        assert time.monotonic() - started < STREAMS_RELEASED_SECONDS, "gunicorn waited for the stuck write"
    finally:
        stuck.close()


@pytest.mark.parametrize("mode", ["request", "process"])
def test_redis_restart_under_open_streams(
    mode: str, private_redis: RedisServer, launch_web: Launch, sse: OpenSSE
) -> None:
    _, base = launch_web(private_redis.url, JOBSTREAM_FANOUT=mode, JOBSTREAM_HEARTBEAT_SECONDS="1")
    store = JobStore(private_redis.client(), Settings(redis_url=private_redis.url, queue="unserved"))
    job_id = fake_active_job(store)
    client = sse(base)
    store.report(job_id, 1, "before")
    client.wait_for(lambda c: c.updates(job_id), EVENT_SECONDS, "an event")
    last = client.last_id()
    private_redis.stop()
    assert client.closed.wait(EVENT_SECONDS), "the stream did not end when Redis went away"
    private_redis.start()  # same port; the AOF kept the replay history
    store = JobStore(private_redis.client(), store.settings)
    wait_until(lambda: request(base, "GET", "/healthz")[0] == 200, EVENT_SECONDS, "web sees Redis again")
    store.report(job_id, 2, "after")
    again = sse(base, last_event_id=last)
    again.wait_for(lambda c: c.updates(job_id), EVENT_SECONDS, "the event published after the restart")
    store.report(job_id, 3, "live")
    again.wait_for(lambda c: len(c.updates(job_id)) == 2, EVENT_SECONDS, "live events again")
    assert [e["data"]["job"]["action"] for e in again.updates(job_id)] == ["after", "live"]


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[RedisServer, str]]:
    """A Redis that also listens with TLS (a self-signed certificate made here), and the rediss:// URL of it."""
    if shutil.which("openssl") is None:
        pytest.fail("these tests make their certificate with the openssl command: apt-get install openssl")
    cert, key, port = tmp_path / "cert.pem", tmp_path / "key.pem", free_port()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    tls = ("--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key))
    tls += ("--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no")
    server = RedisServer(tmp_path / "redis", options=tls)
    server.start()
    yield server, f"rediss://localhost:{port}/0?ssl_cert_reqs=none"
    server.stop()


@pytest.mark.parametrize("mode", ["request", "process"])
def test_streams_over_a_tls_redis_keep_receiving(
    mode: str, tls_redis: tuple[RedisServer, str], launch_web: Launch, sse: OpenSSE
) -> None:
    """Over TLS a subscription cannot be polled by its descriptor: it stays with its own greenlet, and an empty
    read is "nothing yet", not a lost subscription."""
    server, url = tls_redis
    _, base = launch_web(url, JOBSTREAM_FANOUT=mode)
    store = JobStore(server.client(), Settings(redis_url=server.url, queue="unserved"))
    job_id = fake_active_job(store)
    client = sse(base)
    for n in range(1, 4):
        store.report(job_id, n, f"step {n}")
        client.wait_for(lambda c, n=n: len(c.updates(job_id)) == n, EVENT_SECONDS, f"step {n} over TLS")
    assert not client.closed.is_set()


def test_reset_when_redis_lost_its_history(private_redis: RedisServer, launch_web: Launch, sse: OpenSSE) -> None:
    _, base = launch_web(private_redis.url)
    store = JobStore(private_redis.client(), Settings(redis_url=private_redis.url))
    job_id = fake_active_job(store)
    last = store.report(job_id, 1, "before").event_id
    private_redis.client().delete(EVENTS_KEY)  # as after a restart without persistence
    store.report(job_id, 2, "after")
    client = sse(base, last_event_id=last)
    client.wait_for(lambda c: any(e["event"] == "reset" for e in c.events), EVENT_SECONDS, "reset")
    store.report(job_id, 3, "live")
    client.wait_for(lambda c: c.updates(job_id), EVENT_SECONDS, "live events after the reset")

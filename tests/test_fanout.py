"""What issue 21 added to the stream, counted on the server: the job index, the direct writes, the coalescing."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from jobs.stream.events import JOB_UPDATE, Event, channel
from jobs.stream.hub import Outlet, ProcessFanout
from scripts.harness import wait_until
from tests.bounds import EVENT_SECONDS
from tests.conftest import Stack
from tests.helpers import OpenSSE
from tests.test_metrics import Samples, delta, scrape, value

BURST = 20


def publish(client: redis.Redis, job_id: str, count: int) -> None:
    """`count` job-update events of `job_id`, published in one transaction, so they reach a subscriber together."""
    pipe = client.pipeline(transaction=True)
    base = int(time.time() * 1000)
    for n in range(count):
        data = json.dumps({"type": JOB_UPDATE, "job": {"id": job_id, "status": "active", "action": f"step {n}"}})
        pipe.publish(channel(job_id), f"{base}-{n}\n{JOB_UPDATE}\n{data}")
    pipe.execute()


def counted(base: str, before: Samples, name: str) -> float:
    return delta(scrape(base), before, name)


def test_a_job_stream_is_handed_only_its_own_job_events(stack: Stack, sse: OpenSSE) -> None:
    base = stack.bases["process"]
    quiet, busy = uuid.uuid4().hex, uuid.uuid4().hex
    watchers = [sse(base, path=f"/api/jobs/stream?job={quiet}") for _ in range(5)]
    everything = sse(base)
    wait_until(lambda: value(scrape(base), "jobstream_open_streams") == 6, EVENT_SECONDS, "6 open streams")
    before = scrape(base)
    publish(stack.redis, busy, BURST)
    everything.wait_for(lambda c: len(c.updates(busy)) == BURST, EVENT_SECONDS, "the busy job's events")
    # Only the all-jobs stream was handed them: the five quiet ?job= streams cost nothing per event.
    wait_until(lambda: counted(base, before, "jobstream_events_delivered_total") == BURST, EVENT_SECONDS, "deliveries")
    assert counted(base, before, "jobstream_events_routed_total") == BURST
    publish(stack.redis, quiet, 1)
    for watcher in watchers:
        watcher.wait_for(lambda c: len(c.updates(quiet)) == 1, EVENT_SECONDS, "the quiet job's event")
        assert not watcher.updates(busy)
    assert counted(base, before, "jobstream_events_routed_total") == BURST + 6


@pytest.mark.parametrize("mode", ["request", "process"])
def test_events_ready_together_go_out_in_one_write(mode: str, stack: Stack, sse: OpenSSE) -> None:
    base = stack.bases[mode]
    job_id = uuid.uuid4().hex
    client = sse(base, path=f"/api/jobs/stream?job={job_id}")
    wait_until(lambda: value(scrape(base), "jobstream_open_streams") == 1, EVENT_SECONDS, "the stream open")
    before = scrape(base)
    publish(stack.redis, job_id, BURST)
    client.wait_for(lambda c: len(c.updates(job_id)) == BURST, EVENT_SECONDS, "the burst")
    wait_until(lambda: counted(base, before, "jobstream_events_delivered_total") == BURST, EVENT_SECONDS, "counted")
    assert counted(base, before, "jobstream_stream_writes_total") <= 2  # one, or two if Redis split its output


def test_an_http_1_0_client_gets_the_events_unchunked(stack: Stack) -> None:
    """The hub frames a write as the response does: an HTTP/1.0 body has no chunks (and ends with the socket)."""
    base = stack.bases["process"]
    job_id = uuid.uuid4().hex
    with socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=EVENT_SECONDS) as sock:
        sock.sendall(f"GET /api/jobs/stream?job={job_id} HTTP/1.0\r\n\r\n".encode())
        received = b""
        while b"retry: 3000\n\n" not in received:
            received += sock.recv(65536)
        wait_until(lambda: value(scrape(base), "jobstream_open_streams") == 1, EVENT_SECONDS, "the stream open")
        publish(stack.redis, job_id, 3)
        while received.count(b"event: job-update\n") < 3:
            received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head
    assert body.startswith(b"retry: 3000\n\n") and b"\r\n" not in body  # SSE frames only, no chunk sizes
    assert [line for line in body.split(b"\n") if line.startswith(b"data: ")][-1].endswith(b'"step 2"}}')


# -- the hub in-process, on a socket pair ---------------------------------------------------------


def events(job_id: str, first: int, count: int, size: int = 10) -> list[Event]:
    return [
        Event.of(f"{n}-0", job_id, JOB_UPDATE, json.dumps({"n": n, "pad": "x" * size}))
        for n in range(first, first + count)
    ]


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    yield ours, theirs
    ours.close()
    theirs.close()


def test_a_direct_stream_skips_what_its_replay_covered(pair: tuple[socket.socket, socket.socket]) -> None:
    """The hub may still be reading events published before the stream subscribed: they were replayed."""
    hub = ProcessFanout(redis.Redis(), queue_limit=100, heartbeat=15)
    outlet = Outlet(hub, None, 100)
    hub.everyone.add(outlet)
    outlet.go_direct(pair[0], chunked=False, after=(5, 0))
    hub.route(events("a", 1, 3))  # all replayed
    hub.route(events("a", 4, 4))  # 4 and 5 replayed, 6 and 7 new
    hub.route(events("a", 8, 1))
    pair[1].settimeout(EVENT_SECONDS)
    received = b""
    while received.count(b"id: ") < 3:
        received += pair[1].recv(65536)
    assert [line for line in received.split(b"\n") if line.startswith(b"id: ")] == [b"id: 6-0", b"id: 7-0", b"id: 8-0"]


def test_a_socket_that_would_block_gets_a_backlog_then_is_cut_off(pair: tuple[socket.socket, socket.socket]) -> None:
    """A full socket costs the hub no wait: the rest waits in the stream's backlog, up to the limit."""
    hub = ProcessFanout(redis.Redis(), queue_limit=50, heartbeat=15)
    slow, fast = Outlet(hub, "a", 50), Outlet(hub, "a", 50)
    hub.by_job["a"] = {slow, fast}
    slow.go_direct(pair[0], chunked=True, after=(0, 0))
    sink_ours, sink_theirs = socket.socketpair()
    try:
        fast.go_direct(sink_ours, chunked=True, after=(0, 0))
        n = 0
        while not slow.backlog:  # fill the slow socket's buffers; nobody reads them
            hub.route(events("a", n, 1, size=60_000))
            n += 1
            drain(sink_theirs)
        assert slow.ready.is_set() and not slow.ended
        while not slow.ended:
            hub.route(events("a", n, 1, size=60_000))
            n += 1
            drain(sink_theirs)
        assert slow.ended == "client too slow: its queue is full" and slow.backlog_events <= 50
        assert not fast.ended and not fast.backlog  # the other stream of the job kept receiving
    finally:
        sink_ours.close()
        sink_theirs.close()


def drain(sock: socket.socket) -> None:
    sock.setblocking(False)
    try:
        while sock.recv(1 << 20):
            pass
    except BlockingIOError:
        pass

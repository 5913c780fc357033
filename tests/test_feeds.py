"""Request mode's loop (jobs/stream/feeds.py) against a real Redis, with a socket pair as the client's socket."""

from __future__ import annotations

import selectors
import socket
import uuid
from collections.abc import Iterator

import pytest
import redis

from jobs.stream.events import JOB_UPDATE, channel
from jobs.stream.feeds import Feed, RequestFanout
from scripts.harness import RedisServer, wait_until
from tests.bounds import EVENT_SECONDS

HEARTBEAT_SECONDS = 0.2  # the loop's heartbeat in these tests: its checks come every 0.05 s


@pytest.fixture
def fanout(redis_server: RedisServer) -> Iterator[RequestFanout]:
    """A request-mode fan-out whose feeds are all closed after the test (its loop is a daemon thread)."""
    selector = selectors.DefaultSelector()  # this process is not patched by gevent: the OS's own
    fanout = RequestFanout(redis_server.client(), queue_limit=100, heartbeat=HEARTBEAT_SECONDS, selector=selector)
    yield fanout
    for feed in list(fanout.feeds.values()):
        feed.close()


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    theirs.settimeout(EVENT_SECONDS)
    yield ours, theirs
    ours.close()
    theirs.close()


def publish(client: redis.Redis, job_id: str, ids: range) -> None:
    """job-update events of `job_id` with ids `n-0`, in one transaction."""
    pipe = client.pipeline(transaction=True)
    for n in ids:
        pipe.publish(channel(job_id), f"{n}-0\n{JOB_UPDATE}\n{{}}")
    pipe.execute()


def received_ids(sock: socket.socket, count: int) -> list[bytes]:
    """The ids of the next `count` events the client reads (failing after EVENT_SECONDS)."""
    data = b""
    while data.count(b"id: ") < count:
        data += sock.recv(65536)
    return [line.removeprefix(b"id: ") for line in data.split(b"\n") if line.startswith(b"id: ")]


def direct(feed: Feed, sock: socket.socket, chunked: bool = False, after: tuple[int, int] = (0, 0)) -> None:
    """Hand the feed to the loop as the stream does once its replay is written."""
    assert feed.take() == [] or after > (0, 0)
    feed.go_direct(sock, chunked, after)


def test_the_loop_sends_what_the_replay_did_not_cover_straight_to_the_socket(
    fanout: RequestFanout, redis_server: RedisServer, pair: tuple[socket.socket, socket.socket]
) -> None:
    feed = fanout.subscribe()
    publish(redis_server.client(), "a", range(1, 6))  # 1–3 replayed, 4 and 5 not: still in the subscription
    feed.go_direct(pair[0], chunked=False, after=(3, 0))
    assert received_ids(pair[1], 2) == [b"4-0", b"5-0"]
    publish(redis_server.client(), "b", range(6, 7))
    assert received_ids(pair[1], 1) == [b"6-0"]
    assert fanout.feeds == {feed.subscription.raw.fileno(): feed}


def test_a_chunked_stream_gets_one_chunk_per_write(
    fanout: RequestFanout, redis_server: RedisServer, pair: tuple[socket.socket, socket.socket]
) -> None:
    feed = fanout.subscribe()
    direct(feed, pair[0], chunked=True)
    publish(redis_server.client(), "a", range(1, 4))  # ready together: one write
    frames = b"".join(b"id: %d-0\nevent: job-update\ndata: {}\n\n" % n for n in range(1, 4))
    expected = b"%x\r\n%s\r\n" % (len(frames), frames)
    data = b""
    while len(data) < len(expected):
        data += pair[1].recv(65536)
    assert data[: len(expected)] == expected  # a heartbeat may follow


def test_a_job_stream_subscribes_to_its_job_alone(
    fanout: RequestFanout, redis_server: RedisServer, pair: tuple[socket.socket, socket.socket]
) -> None:
    """Redis leaves out the other jobs' events: they cost this process nothing."""
    client = redis_server.client()
    mine = uuid.uuid4().hex
    patterns = redis_server.pattern_subscribers()
    feed = fanout.subscribe(mine)
    assert dict(client.pubsub_numsub(channel(mine))) == {channel(mine).encode(): 1}
    assert redis_server.pattern_subscribers() == patterns
    direct(feed, pair[0])
    publish(client, "other", range(1, 50))
    publish(client, mine, range(50, 51))
    assert received_ids(pair[1], 1) == [b"50-0"]
    feed.close()
    wait_until(lambda: client.pubsub_numsub(channel(mine)) == [(channel(mine).encode(), 0)], EVENT_SECONDS, "released")


def test_a_quiet_direct_stream_gets_heartbeats_from_the_loop(
    fanout: RequestFanout, pair: tuple[socket.socket, socket.socket]
) -> None:
    feed = fanout.subscribe()
    direct(feed, pair[0])
    data = b""
    while data.count(b": ping") < 2:
        data += pair[1].recv(65536)
    assert not feed.ended


def test_a_lost_subscription_ends_its_stream_and_leaves_the_loop(
    fanout: RequestFanout, redis_server: RedisServer, pair: tuple[socket.socket, socket.socket]
) -> None:
    feed = fanout.subscribe()
    direct(feed, pair[0])
    redis_server.client().client_kill_filter(_type="pubsub")
    wait_until(lambda: feed.ended, EVENT_SECONDS, "the feed to end")
    assert feed.ended == "event subscription lost" and feed.ready.is_set()
    assert fanout.feeds == {}


def test_closing_a_feed_releases_its_subscription_once(
    fanout: RequestFanout, redis_server: RedisServer, pair: tuple[socket.socket, socket.socket]
) -> None:
    client = redis_server.client()
    before = len(client.client_list(_type="pubsub"))
    feed = fanout.subscribe()
    direct(feed, pair[0])
    assert len(client.client_list(_type="pubsub")) == before + 1
    feed.close()
    feed.close()  # the response's call_on_close after the stream's own finally
    assert fanout.feeds == {}
    wait_until(lambda: len(client.client_list(_type="pubsub")) == before, EVENT_SECONDS, "unsubscribed")
    other = fanout.subscribe()  # the selector holds nothing of the closed one
    direct(other, pair[0])
    publish(client, "a", range(1, 2))
    assert received_ids(pair[1], 1) == [b"1-0"]


def test_a_stream_whose_events_cannot_be_read_ends_alone(
    fanout: RequestFanout, redis_server: RedisServer, pair: tuple[socket.socket, socket.socket]
) -> None:
    """Whatever goes wrong with one stream's subscription, the loop goes on serving the others."""
    broken, healthy = fanout.subscribe(), fanout.subscribe()
    other_ours, other_theirs = socket.socketpair()
    try:
        direct(broken, other_ours)
        direct(healthy, pair[0])

        def unreadable() -> list:
            raise ValueError("not what a subscription should ever hold")

        broken.subscription.drain = unreadable  # type: ignore[method-assign]
        publish(redis_server.client(), "a", range(1, 2))
        assert received_ids(pair[1], 1) == [b"1-0"]
        wait_until(lambda: broken.ended, EVENT_SECONDS, "the broken stream to end")
        assert list(fanout.feeds.values()) == [healthy]
        publish(redis_server.client(), "a", range(2, 3))
        assert received_ids(pair[1], 1) == [b"2-0"]
    finally:
        broken.close()
        other_ours.close()
        other_theirs.close()

"""Request mode's own subscription (jobs.stream.RedisSubscription) against a real Redis."""

from __future__ import annotations

import redis

from jobs.stream.events import channel
from jobs.stream.subscription import WAKE_CHANNEL, RedisSubscription
from scripts.harness import RedisServer, wait_until
from tests.bounds import EVENT_SECONDS


def one_connection_client(server: RedisServer) -> redis.Redis:
    """A client whose pool holds a single connection, so the next subscription reuses the last one's."""
    return redis.Redis(connection_pool=redis.ConnectionPool.from_url(server.url, max_connections=1))


def test_events_arrive_parsed_and_the_wake_channel_is_skipped(redis_server: RedisServer) -> None:
    client = one_connection_client(redis_server)
    subscription = RedisSubscription(client)
    publisher = redis_server.client()
    publisher.publish(WAKE_CHANNEL, b"wake")
    publisher.publish(channel("job1"), b"1-1\njob-update\n{}")
    publisher.publish(channel("job2"), b"1-2\njob-update\n{}")
    events: list = []
    wait_until(lambda: events.extend(subscription.get(0.1)) or len(events) == 2, EVENT_SECONDS, "both events")
    assert [(e.id, e.job_id) for e in events] == [("1-1", "job1"), ("1-2", "job2")]
    assert events[0].frame == b"id: 1-1\nevent: job-update\ndata: {}\n\n"
    subscription.close()


def test_closing_twice_never_touches_the_connection_another_stream_took(redis_server: RedisServer) -> None:
    client = one_connection_client(redis_server)
    first = RedisSubscription(client)
    first.close()  # the stream's own finally
    second = RedisSubscription(client)  # the pool's one connection again
    first.close()  # the response's call_on_close, after the other stream took the connection
    redis_server.client().publish(channel("job"), b"1-1\njob-update\n{}")
    assert wait_until(lambda: second.get(0.1), EVENT_SECONDS, "the second stream still receiving")
    second.close()


def test_a_closed_subscription_leaves_no_pubsub_client(redis_server: RedisServer) -> None:
    client = one_connection_client(redis_server)
    before = len(redis_server.client().client_list(_type="pubsub"))
    subscription = RedisSubscription(client)
    assert len(redis_server.client().client_list(_type="pubsub")) == before + 1
    subscription.close()
    wait_until(lambda: len(redis_server.client().client_list(_type="pubsub")) == before, EVENT_SECONDS, "unsubscribed")


def test_a_zero_timeout_returns_nothing_rather_than_failing(redis_server: RedisServer) -> None:
    subscription = RedisSubscription(one_connection_client(redis_server))
    assert subscription.get(0.0) == []
    assert not subscription.behind
    subscription.close()


def test_a_message_that_is_not_a_jobstream_event_is_skipped(redis_server: RedisServer) -> None:
    subscription = RedisSubscription(one_connection_client(redis_server))
    publisher = redis_server.client()
    publisher.publish(channel("odd"), b"\xff\xfe not utf-8")
    publisher.publish(channel("odd"), b"no newlines at all")
    publisher.publish(channel("job"), b"1-1\njob-update\n{}")
    events: list = []
    wait_until(lambda: events.extend(subscription.get(0.1)) or events, EVENT_SECONDS, "the real event")
    assert [e.id for e in events] == ["1-1"]
    subscription.close()


def test_a_job_subscription_reads_its_channel_and_skips_the_wake_channel(redis_server: RedisServer) -> None:
    subscription = RedisSubscription(one_connection_client(redis_server), "job1")
    publisher = redis_server.client()
    publisher.publish(WAKE_CHANNEL, b"wake")
    publisher.publish(channel("job2"), b"1-1\njob-update\n{}")
    publisher.publish(channel("job1"), b"1-2\njob-update\n{}")
    events: list = []
    wait_until(lambda: events.extend(subscription.get(0.1)) or events, EVENT_SECONDS, "its job's event")
    assert [(e.id, e.job_id) for e in events] == [("1-2", "job1")]
    subscription.close()

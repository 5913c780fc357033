"""The live stream: replay from the capped event stream, then live events, batched, with heartbeats.

Two fan-outs feed the same generator: `request` gives each stream its own Redis pub/sub
subscription; `process` shares one subscription per process among bounded per-stream queues.
Written against `threading`, so under gevent's monkey patching every wait is a greenlet switch.
Over 300 lines because both fan-outs share the framing, the replay and the batching below (issue 21 reworks it).
"""

from __future__ import annotations

import collections
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import hiredis
import redis

from jobs.stream.events import (
    PATTERN,
    PING_FRAME,
    REPLAY_CHUNK,
    RESET,
    RETRY_FRAME,
    Event,
    channel,
    frame,
    id_key,
    missed,
    newest_id,
)
from jobs.telemetry.metrics import EVENTS_DELIVERED, OPEN_STREAMS, STREAMS_CUT_OFF

logger = logging.getLogger(__name__)

WAKE_CHANNEL = channel("-")  # matches PATTERN but names no job: wakes request-mode streams to look at flags
DRAIN_LIMIT = 200
READ_SIZE = 65536


class StreamEnded(Exception):
    """The stream must end now: shutdown, a slow client, or a lost subscription (the client resumes)."""


class Subscription(Protocol):
    behind: bool  # more events were waiting when `get` returned

    def get(self, timeout: float) -> list[Event]: ...

    def wake(self) -> None: ...

    def close(self) -> None: ...


class RedisSubscription:
    """A stream's own PSUBSCRIBE, confirmed before use and released on close.

    Read straight from its socket with a hiredis reader: redis-py's `PubSub.get_message` costs about
    five times as much CPU per event, and request mode pays it once per client per event
    (bench/pubsub_receive.py)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.pool = client.connection_pool
        connection = self.pool.get_connection()
        self.connection: redis.connection.Connection | None = connection
        self.reader = hiredis.Reader()
        self.pending: list[Any] = []
        self.behind = False
        try:
            connection.send_command("PSUBSCRIBE", PATTERN)
            if connection._sock is None:
                raise redis.ConnectionError("the subscription has no socket")
            self.sock: socket.socket = connection._sock
            self._confirm()
        except BaseException:
            self.close()
            raise

    def _confirm(self) -> None:
        """Wait for Redis to confirm the PSUBSCRIBE, so a replay read after it cannot miss an event."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            self._read(max(0.0, deadline - time.monotonic()))
            while self.pending:
                if self.pending.pop(0)[0] == b"psubscribe":
                    return
        raise redis.TimeoutError("PSUBSCRIBE was not confirmed")

    def _read(self, timeout: float) -> None:
        """Add every complete message that arrives within `timeout` to `pending`."""
        self.behind = False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(READ_SIZE)
        except (TimeoutError, BlockingIOError):  # nothing within `timeout` (a zero timeout raises the latter)
            return
        except OSError as exc:
            raise redis.ConnectionError(f"the subscription's connection failed: {exc}") from exc
        if not data:
            raise redis.ConnectionError("Redis closed the subscription")
        self.behind = len(data) == READ_SIZE
        self.reader.feed(data)
        try:
            while (message := self.reader.gets()) is not False:
                if isinstance(message, hiredis.ReplyError):
                    raise redis.ResponseError(str(message))
                self.pending.append(message)
        except hiredis.ProtocolError as exc:
            raise redis.ConnectionError(f"unreadable reply on the subscription: {exc}") from exc

    def get(self, timeout: float) -> list[Event]:
        self._read(timeout)
        messages, self.pending = self.pending, []
        wake = WAKE_CHANNEL.encode()
        events = []
        for message in messages:
            if message[0] != b"pmessage" or message[2] == wake:
                continue
            try:
                events.append(Event.from_message(message[2], message[3]))
            except ValueError:  # not published by jobstream's scripts (UnicodeDecodeError is a ValueError)
                logger.warning("skipped a message on %r that is not a jobstream event", message[2])
        return events

    def wake(self) -> None:
        self.client.publish(WAKE_CHANNEL, b"wake")

    def close(self) -> None:
        """Give the connection back, unsubscribed; only once, as another stream may take it right after."""
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.disconnect()  # never back in the pool subscribed; the pool reconnects it when needed
            self.pool.release(connection)


class RequestFanout:
    """JOBSTREAM_FANOUT=request: one Redis subscription per stream."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def subscribe(self) -> Subscription:
        return RedisSubscription(self.client)


class QueueSubscription:
    """A bounded queue that the process's subscriber fills; overflowing it ends the stream."""

    behind = False  # `get` takes the whole queue

    def __init__(self, fanout: ProcessFanout, limit: int) -> None:
        self.fanout = fanout
        self.limit = limit
        self.events: collections.deque[Event] = collections.deque()
        self.ready = threading.Event()
        self.ended: str | None = None

    def put(self, event: Event) -> None:
        if len(self.events) >= self.limit:
            if not self.ended:
                STREAMS_CUT_OFF.labels("queue_full").inc()
            self.end("client too slow: its queue is full")
            return
        self.events.append(event)
        self.ready.set()

    def end(self, reason: str) -> None:
        self.ended = reason
        self.ready.set()

    def get(self, timeout: float) -> list[Event]:
        self.ready.wait(timeout)
        self.ready.clear()
        if self.ended:
            raise StreamEnded(self.ended)
        events = list(self.events)
        self.events.clear()
        return events

    def wake(self) -> None:
        self.ready.set()

    def close(self) -> None:
        self.fanout.remove(self)


class ProcessFanout:
    """JOBSTREAM_FANOUT=process: one subscription per process, started on first use."""

    def __init__(self, client: redis.Redis, queue_limit: int) -> None:
        self.client = client
        self.queue_limit = queue_limit
        self.subscribers: set[QueueSubscription] = set()
        self.ready = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def subscribe(self) -> Subscription:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="jobstream-fanout", daemon=True)
                self._thread.start()
        if not self.ready.wait(5):
            raise redis.ConnectionError("the process's event subscription is not connected")
        subscription = QueueSubscription(self, self.queue_limit)
        self.subscribers.add(subscription)
        return subscription

    def remove(self, subscription: QueueSubscription) -> None:
        self.subscribers.discard(subscription)

    def _run(self) -> None:
        delay = 0.1
        while True:  # for the life of the process: re-subscribe after every loss
            pubsub = self.client.pubsub()
            try:
                pubsub.psubscribe(PATTERN)
                _confirm(pubsub)
                self.ready.set()
                delay = 0.1
                self._pump(pubsub)
            except (redis.RedisError, OSError, StreamEnded) as exc:
                logger.warning("event subscription lost (%s); streams end and resume", exc)
            finally:
                self.ready.clear()
                pubsub.close()
                for subscription in list(self.subscribers):
                    subscription.end("event subscription lost")
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _pump(self, pubsub: redis.client.PubSub) -> None:
        wake = WAKE_CHANNEL.encode()
        turn = max(1, min(DRAIN_LIMIT, self.queue_limit // 2))
        handed = 0
        while True:
            message = pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            handed += 1
            if handed % turn == 0:
                time.sleep(0)  # reading a backlog never blocks: let the streams drain their queues before they fill
            if message["type"] == "psubscribe":
                raise StreamEnded("re-subscribed")
            if message["type"] != "pmessage" or message["channel"] == wake:
                continue
            event = Event.from_message(message["channel"], message["data"])
            for subscription in list(self.subscribers):
                subscription.put(event)


def _confirm(pubsub: redis.client.PubSub) -> None:
    """Wait for Redis to confirm the PSUBSCRIBE, so a replay read after it cannot miss an event."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
        if message is not None and message["type"] == "psubscribe":
            return
    raise redis.TimeoutError("PSUBSCRIBE was not confirmed")


class StreamHandle:
    """One open stream as the registry sees it: what it is doing and how to stop it."""

    def __init__(self, close_socket: Callable[[int], None]) -> None:
        self.close_socket = close_socket  # shutdown(how) of the client's socket
        self.writing_since: float | None = None
        self.subscription: Subscription | None = None
        self.closing = False


class StreamRegistry:
    """The open streams of this process: ended together at shutdown, cut off when a write stalls."""

    def __init__(self, write_timeout: float) -> None:
        self.write_timeout = write_timeout
        self.handles: set[StreamHandle] = set()
        self.closing = False
        self._watchdog: threading.Thread | None = None

    def add(self, handle: StreamHandle) -> None:
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, name="jobstream-watchdog", daemon=True)
            self._watchdog.start()
        self.handles.add(handle)
        OPEN_STREAMS.inc()

    def discard(self, handle: StreamHandle) -> None:
        if handle in self.handles:
            self.handles.discard(handle)
            OPEN_STREAMS.dec()

    def close_all(self) -> None:
        """End every open stream promptly so browsers reconnect to another process."""
        self.closing = True
        woken: set[int] = set()
        for handle in list(self.handles):
            handle.closing = True
            subscription = handle.subscription
            if isinstance(subscription, RedisSubscription):
                if id(subscription.client) not in woken:  # one PUBLISH wakes them all
                    woken.add(id(subscription.client))
                    try:
                        subscription.wake()
                    except redis.RedisError:
                        handle.close_socket(socket.SHUT_RDWR)
            elif subscription is not None:
                subscription.wake()

    def _watch(self) -> None:
        while True:
            time.sleep(1.0)
            now = time.monotonic()
            for handle in list(self.handles):
                since = handle.writing_since
                if since is not None and now - since > self.write_timeout:
                    logger.info("cutting off a stream whose client has not read for %.0f s", now - since)
                    STREAMS_CUT_OFF.labels("write_timeout").inc()
                    handle.writing_since = None
                    handle.close_socket(socket.SHUT_RDWR)


def stream(
    subscription: Subscription,
    client: redis.Redis,
    registry: StreamRegistry,
    handle: StreamHandle,
    heartbeat: float,
    last_event_id: str | None = None,
    job_id: str | None = None,
) -> Iterator[bytes]:
    """Yield SSE bytes: retry, the replay after `last_event_id` (or reset), then live events.

    `subscription` is already confirmed, so a client that sees `retry` misses nothing after it."""
    registry.add(handle)
    handle.subscription = subscription

    def write(chunk: bytes, events: int = 0) -> Iterator[bytes]:
        handle.writing_since = time.monotonic()
        yield chunk
        handle.writing_since = None
        if events:
            EVENTS_DELIVERED.inc(events)  # once per write, not per event: a write carries a batch

    try:
        yield from write(RETRY_FRAME)
        last_sent = (0, 0)
        if last_event_id is not None:
            chunks, last_sent = _replay(client, last_event_id, job_id)
            for chunk, count in chunks:
                yield from write(chunk, count)
        next_ping = time.monotonic() + heartbeat
        while not (handle.closing or registry.closing):
            events = subscription.get(max(0.0, next_ping - time.monotonic()))
            fresh = [e for e in events if e.key > last_sent and (job_id is None or e.job_id == job_id)]
            if fresh:
                last_sent = fresh[-1].key
                yield from write(b"".join(e.frame for e in fresh), len(fresh))
                next_ping = time.monotonic() + heartbeat
            if len(events) >= DRAIN_LIMIT or subscription.behind:
                time.sleep(0)  # behind: under gevent, let the other streams and requests run meanwhile
            if time.monotonic() >= next_ping:  # even while behind on other jobs' events (a ?job= stream)
                yield from write(PING_FRAME)
                next_ping = time.monotonic() + heartbeat
    except StreamEnded as exc:
        logger.info("stream ended: %s", exc)
    except (redis.RedisError, OSError) as exc:
        logger.warning("stream ended by a Redis error: %s", exc)
    finally:
        registry.discard(handle)
        subscription.close()
        # The browser reconnects on a new request: end the keep-alive too, so a shutdown never waits on it.
        handle.close_socket(socket.SHUT_RD)


def _replay(
    client: redis.Redis, last_event_id: str, job_id: str | None
) -> tuple[list[tuple[bytes, int]], tuple[int, int]]:
    """The writes a client missed after `last_event_id` (each with its number of events), or a reset when
    they are gone."""
    events = missed(client, last_event_id)
    if events is None:
        tip = newest_id(client)
        return [(frame(RESET, '{"type": "reset"}', tip), 0)], (id_key(tip) if tip else (0, 0))
    chunks = []
    for i in range(0, len(events), REPLAY_CHUNK):
        chosen = [e for e in events[i : i + REPLAY_CHUNK] if job_id is None or e.job_id == job_id]
        if chosen:
            chunks.append((b"".join(e.frame for e in chosen), len(chosen)))
    return chunks, (events[-1].key if events else id_key(last_event_id))

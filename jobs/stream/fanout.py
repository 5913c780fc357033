"""The live stream: replay from the capped event stream, then live events, batched, with heartbeats.

Two fan-outs feed the same generator: `request` gives each stream its own Redis pub/sub subscription
(jobs/stream/feeds.py); `process` shares one per process (jobs/stream/hub.py). In both, once the replay is
out and the server hands over the socket, one loop per process writes straight to it (jobs/stream/sink.py).
Written against `threading`, so under gevent's monkey patching every wait is a greenlet switch.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator

import redis

from jobs.stream.events import PING_FRAME, REPLAY_CHUNK, RESET, RETRY_FRAME, frame, id_key, missed, newest_id
from jobs.stream.feeds import Feed
from jobs.stream.sink import Sink
from jobs.stream.subscription import RedisSubscription, StreamEnded, Subscription
from jobs.telemetry.metrics import EVENTS_DELIVERED, OPEN_STREAMS, STREAM_WRITES, STREAMS_CUT_OFF

logger = logging.getLogger(__name__)

DRAIN_LIMIT = 200


class StreamHandle:
    """One open stream as the registry sees it: what it is doing and how to stop it."""

    def __init__(
        self, close_socket: Callable[[int], None], sock: socket.socket | None = None, chunked: bool = False
    ) -> None:
        self.close_socket = close_socket  # shutdown(how) of the client's socket
        self.sock = sock  # the client's socket, when the response's body may be written to it directly
        self.chunked = chunked  # ... framed as HTTP/1.1 chunks
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
        woken: dict[int, bool] = {}  # by client: whether its one PUBLISH went out
        for handle in list(self.handles):
            handle.closing = True
            subscription = handle.subscription
            if isinstance(subscription, Feed) and subscription.raw is None:
                subscription = subscription.subscription  # its greenlet waits on Redis
            if isinstance(subscription, RedisSubscription):
                if id(subscription.client) not in woken:  # one PUBLISH wakes them all
                    woken[id(subscription.client)] = _wake(subscription)
                if not woken[id(subscription.client)]:
                    handle.close_socket(socket.SHUT_RDWR)  # Redis is gone: end the stream from our side
            elif subscription is not None:
                subscription.wake()
            if handle.writing_since is not None:  # stuck writing to a client that does not read: not for long
                handle.close_socket(socket.SHUT_RDWR)

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


def _wake(subscription: RedisSubscription) -> bool:
    """Wake every request-mode stream waiting on Redis; False when Redis cannot be told."""
    try:
        subscription.wake()
    except redis.RedisError:
        return False
    return True


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
            STREAM_WRITES.inc()
            EVENTS_DELIVERED.inc(events)  # once per write, not per event: a write carries a batch

    try:
        yield from write(RETRY_FRAME)
        last_sent = (0, 0)
        if last_event_id is not None:
            chunks, last_sent = _replay(client, last_event_id, job_id)
            for chunk, count in chunks:
                yield from write(chunk, count)
        if isinstance(subscription, Sink) and subscription.direct and handle.sock is not None:
            yield from _go_direct(subscription, registry, handle, last_sent, write)
            return
        next_ping = time.monotonic() + heartbeat
        while not (handle.closing or registry.closing):
            events = subscription.get(max(0.0, next_ping - time.monotonic()))
            if events and subscription.coalesce and not subscription.behind:
                time.sleep(subscription.coalesce)  # the rest of a burst (other jobs' steps) goes in the same write
                events += subscription.get(0)
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


def _go_direct(
    sink: Sink,
    registry: StreamRegistry,
    handle: StreamHandle,
    last_sent: tuple[int, int],
    write: Callable[[bytes, int], Iterator[bytes]],
) -> Iterator[bytes]:
    """Write what queued during the replay, hand the socket to the fan-out's loop (which sends the heartbeats
    too), then only wake for a backlog or the end."""
    while fresh := [e for e in sink.take() if e.key > last_sent]:
        last_sent = fresh[-1].key
        yield from write(b"".join(e.frame for e in fresh), len(fresh))
    assert handle.sock is not None
    sink.go_direct(handle.sock, handle.chunked, last_sent)  # no switch since the queue was found empty
    sink.ready.clear()

    def watch(since: float | None) -> None:
        handle.writing_since = since

    while not (handle.closing or registry.closing):
        sink.ready.wait()
        sink.ready.clear()
        if sink.ended:
            raise StreamEnded(sink.ended)
        sink.flush(watch)

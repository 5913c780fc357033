"""Request mode: every stream has its own Redis subscription, and one loop per process reads them all.

Once a stream's replay is written, its subscription's socket joins the process's selector: a burst of events
wakes one loop (not a greenlet per stream), which reads each ready subscription without waiting and sends its
new events straight to that stream's socket (jobs/stream/sink.py). Before that, and for good when the server
gives no raw socket (TLS, Flask's test client), the stream's greenlet reads its subscription itself.
"""

from __future__ import annotations

import logging
import select
import selectors
import socket
import threading
import time

import redis

from jobs.stream.events import Event
from jobs.stream.sink import Sink, beat
from jobs.stream.subscription import COALESCE_SECONDS, RedisSubscription
from jobs.telemetry.metrics import EVENTS_DELIVERED, STREAM_WRITES

logger = logging.getLogger(__name__)

WAIT_SECONDS = 1.0  # the loop's longest single wait


class Feed(Sink):
    """A request-mode stream: its own subscription, read by its greenlet until the replay is out, then by the
    process's loop."""

    coalesce = COALESCE_SECONDS

    def __init__(self, fanout: RequestFanout, job_id: str | None, limit: int, subscription: RedisSubscription):
        super().__init__(job_id, limit)
        self.fanout = fanout
        self.subscription = subscription
        self.direct = subscription.pollable  # a TLS subscription stays with its greenlet

    @property
    def behind(self) -> bool:
        return self.subscription.behind

    def get(self, timeout: float) -> list[Event]:
        return self.subscription.get(timeout)

    def take(self) -> list[Event]:
        self.check()
        return self.subscription.get(0)

    def go_direct(self, sock: socket.socket, chunked: bool, after: tuple[int, int]) -> None:
        super().go_direct(sock, chunked, after)
        self.fanout.attach(self)

    def wake(self) -> None:
        """Wake the stream's greenlet once direct (before, it waits on Redis: StreamRegistry.close_all publishes)."""
        self.ready.set()

    def close(self) -> None:
        """Leave the loop, then give the subscription back: at once, whoever calls first."""
        self.fanout.detach(self)
        self.subscription.close()


class RequestFanout:
    """JOBSTREAM_FANOUT=request: one Redis subscription per stream, read by one loop per process."""

    def __init__(
        self, client: redis.Redis, queue_limit: int, heartbeat: float, selector: selectors.BaseSelector
    ) -> None:
        """`selector` must be the operating system's own (epoll, kqueue: it has a descriptor to wait on), not
        gevent's replacement; the loop asks it only once its descriptor is readable."""
        self.client = client
        self.queue_limit = queue_limit
        self.heartbeat = heartbeat
        self.selector = selector
        self.ready_fd: int = selector.fileno()  # type: ignore[attr-defined]  # epoll's or kqueue's own descriptor
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def feeds(self) -> dict[int, Feed]:
        """The direct streams, by their subscription's file descriptor: what the selector holds."""
        return {key.fd: key.data for key in self.selector.get_map().values()}

    def subscribe(self, job_id: str | None = None) -> Feed:
        """A stream's own subscription, confirmed: nothing published after this returns is missed; a `?job=`
        stream's holds that job's channel only."""
        return Feed(self, job_id, self.queue_limit, RedisSubscription(self.client, job_id))

    def attach(self, feed: Feed) -> None:
        with self._lock:
            self.selector.register(feed.subscription.raw.fileno(), selectors.EVENT_READ, feed)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="jobstream-feeds", daemon=True)
                self._thread.start()
                heartbeats = threading.Thread(
                    target=beat, args=(lambda: list(self.feeds.values()), self.heartbeat), daemon=True
                )
                heartbeats.start()

    def detach(self, feed: Feed) -> None:
        """Take the feed out of the selector before its socket closes (a closed descriptor may be reused)."""
        with self._lock:
            if feed.subscription.connection is None:
                return
            fd = feed.subscription.raw.fileno()
            key = self.selector.get_map().get(fd)
            if key is not None and key.data is feed:
                self.selector.unregister(fd)

    def _run(self) -> None:
        """For the life of the process: wait until a subscription has something, let the burst's rest arrive,
        then send what every ready one has."""
        while True:
            try:
                if not select.select([self.ready_fd], [], [], WAIT_SECONDS)[0]:
                    continue
                time.sleep(COALESCE_SECONDS)  # the rest of a burst (other jobs' steps) goes in the same writes
                self._send()
            except Exception:  # the loop must outlive any one failure: its streams would hear nothing more
                logger.exception("request-mode event loop failed; it goes on")
                time.sleep(WAIT_SECONDS)

    def _send(self) -> None:
        """Read every ready subscription and send what it has; under the lock, so no feed leaves meanwhile."""
        delivered = writes = 0
        behind = False
        with self._lock:
            for key, _ in self.selector.select(0):
                feed: Feed = key.data
                try:
                    events = feed.subscription.drain()
                    behind = behind or feed.subscription.behind
                    if events and not feed.ended:
                        sent = feed.send(events)
                        delivered += sent
                        writes += sent > 0
                except Exception as exc:  # redis.RedisError, OSError, or anything unforeseen: this stream only
                    if isinstance(exc, (redis.RedisError, OSError)):
                        logger.warning("a stream's subscription was lost (%s); it ends and resumes", exc)
                    else:
                        logger.exception("a stream's events could not be read; it ends and resumes")
                    self.selector.unregister(key.fd)
                    feed.end("event subscription lost")
        if delivered:
            EVENTS_DELIVERED.inc(delivered)
            STREAM_WRITES.inc(writes)
        if behind:
            time.sleep(0)  # reading a backlog never blocks: let the streams write theirs meanwhile

"""Process mode's hub: one subscription per process, an index by job, and each batch sent straight to the sockets.

The hub frames each batch once and sends it to every stream's socket itself (jobs/stream/sink.py). Until its
replay is written a stream queues events instead (and for good when the server gives no raw socket, as in
Flask's test client).
"""

from __future__ import annotations

import collections
import logging
import threading
import time

import redis

from jobs.stream.events import Event
from jobs.stream.sink import Sink, beat, chunk
from jobs.stream.subscription import COALESCE_SECONDS, RedisSubscription
from jobs.telemetry.metrics import EVENTS_DELIVERED, EVENTS_ROUTED, STREAM_WRITES

logger = logging.getLogger(__name__)


class Batch:
    """Events ready together, framed once for every stream they go to."""

    __slots__ = ("events", "raw", "chunked")

    def __init__(self, events: list[Event]) -> None:
        self.events = events
        self.raw = b"".join(e.frame for e in events)
        self.chunked = chunk(self.raw)


class Outlet(Sink):
    """One stream as the hub sees it: a queue until it goes direct, then its socket and a backlog."""

    behind = False  # `get` takes the whole queue
    coalesce = 0.0  # the hub hands over a batch at a time already

    def __init__(self, hub: ProcessFanout, job_id: str | None, limit: int) -> None:
        super().__init__(job_id, limit)
        self.hub = hub
        self.events: collections.deque[Event] = collections.deque()

    def offer(self, batch: Batch) -> int:
        """Take a batch from the hub; returns the events written to the socket now."""
        if self.ended:
            return 0
        if self.raw is None:  # queued: before the replay is written, or without a raw socket
            if len(self.events) + len(batch.events) > self.limit:
                self.cut_off()
                return 0
            self.events.extend(batch.events)
            self.ready.set()
            return 0
        if batch.events[0].key <= self.last_sent:  # the hub may still be reading events the replay covered
            if batch.events[-1].key <= self.last_sent:
                return 0
            batch = Batch([e for e in batch.events if e.key > self.last_sent])
        self.last_sent = batch.events[-1].key
        return self.write(batch.chunked if self.chunked else batch.raw, len(batch.events))

    def get(self, timeout: float) -> list[Event]:
        self.ready.wait(timeout)
        self.ready.clear()
        return self.take()

    def take(self) -> list[Event]:
        self.check()
        events = list(self.events)
        self.events.clear()
        return events

    def wake(self) -> None:
        self.ready.set()

    def close(self) -> None:
        self.hub.remove(self)


class ProcessFanout:
    """JOBSTREAM_FANOUT=process: one subscription per process, started on first use, and the streams by job."""

    def __init__(self, client: redis.Redis, queue_limit: int, heartbeat: float) -> None:
        self.client = client
        self.queue_limit = queue_limit
        self.heartbeat = heartbeat
        self.everyone: set[Outlet] = set()  # the streams of every job
        self.by_job: dict[str, set[Outlet]] = {}  # ?job= streams, by that job
        self.ready = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def outlets(self) -> list[Outlet]:
        return [*self.everyone, *(o for outlets in self.by_job.values() for o in outlets)]

    def subscribe(self, job_id: str | None = None) -> Outlet:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="jobstream-fanout", daemon=True)
                self._thread.start()
                heartbeats = threading.Thread(
                    target=beat, args=(lambda: self.outlets, self.heartbeat), name="jobstream-heartbeat", daemon=True
                )
                heartbeats.start()
        if not self.ready.wait(5):
            raise redis.ConnectionError("the process's event subscription is not connected")
        outlet = Outlet(self, job_id, self.queue_limit)
        if job_id is None:
            self.everyone.add(outlet)
        else:
            self.by_job.setdefault(job_id, set()).add(outlet)
        return outlet

    def remove(self, outlet: Outlet) -> None:
        if outlet.job_id is None:
            self.everyone.discard(outlet)
        elif (outlets := self.by_job.get(outlet.job_id)) is not None:
            outlets.discard(outlet)
            if not outlets:
                del self.by_job[outlet.job_id]

    def _run(self) -> None:
        delay = 0.1
        while True:  # for the life of the process: re-subscribe after every loss
            subscription = None
            try:
                subscription = RedisSubscription(self.client)
                self.ready.set()
                delay = 0.1
                while True:
                    events = subscription.get(1.0)
                    if events and not subscription.behind:
                        time.sleep(COALESCE_SECONDS)  # the rest of a burst goes out in the same writes
                        events += subscription.get(0)
                    if events:
                        self.route(events)
                    if subscription.behind:
                        time.sleep(0)  # reading a backlog never blocks: let the streams write theirs meanwhile
            except (redis.RedisError, OSError) as exc:
                logger.warning("event subscription lost (%s); streams end and resume", exc)
            finally:
                self.ready.clear()
                if subscription is not None:
                    subscription.close()
                for outlet in self.outlets:
                    outlet.end("event subscription lost")
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def route(self, events: list[Event]) -> None:
        """Hand `events` to the streams that want them: every all-jobs stream, and each job's own."""
        batch = Batch(events)
        routed, delivered, writes = len(events) * len(self.everyone), 0, 0
        for outlet in list(self.everyone):
            sent = outlet.offer(batch)
            delivered += sent
            writes += sent > 0
        if self.by_job:
            groups: dict[str, list[Event]] = {}
            for event in events:
                if event.job_id in self.by_job:
                    groups.setdefault(event.job_id, []).append(event)
            for job_id, chosen in groups.items():
                outlets = list(self.by_job[job_id])
                part = batch if len(chosen) == len(events) else Batch(chosen)
                routed += len(chosen) * len(outlets)
                for outlet in outlets:
                    sent = outlet.offer(part)
                    delivered += sent
                    writes += sent > 0
        EVENTS_ROUTED.inc(routed)
        if delivered:
            EVENTS_DELIVERED.inc(delivered)
            STREAM_WRITES.inc(writes)

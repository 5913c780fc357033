"""A stream's socket once its replay is out: events sent straight to it, never waiting, and its heartbeats.

Both fan-outs end here. A delivery is one non-blocking `send` of bytes framed once per batch, made by the loop
that read the event: no greenlet switch. Only a socket that would block keeps the rest as a backlog, which the
stream's own greenlet (the request's, parked otherwise) writes out; a backlog over the limit, or a write stalled
past the registry's timeout, ends the stream.
"""

from __future__ import annotations

import abc
import socket
import threading
import time
from collections.abc import Callable, Iterable

from jobs.stream.events import PING_FRAME, Event
from jobs.stream.subscription import StreamEnded
from jobs.telemetry.metrics import EVENTS_DELIVERED, STREAM_WRITES, STREAMS_CUT_OFF


def chunk(data: bytes) -> bytes:
    """`data` as one HTTP/1.1 chunk, the framing gunicorn gives a streamed response without a length."""
    return b"%x\r\n%s\r\n" % (len(data), data)


class Sink(abc.ABC):
    """One stream's socket, written by whichever loop has its events; a backlog only when the socket is full.

    The loop, the heartbeats and the stream's greenlet share it without a lock: under gevent (gunicorn.conf.py's
    worker class) none of them yields between reading the backlog and writing."""

    direct = True  # whether a loop may take the stream over once its replay is written

    def __init__(self, job_id: str | None, limit: int) -> None:
        self.job_id = job_id
        self.limit = limit
        self.ready = threading.Event()
        self.ended: str | None = None
        self.sock: socket.socket | None = None  # set by go_direct: the stream's greenlet writes a backlog here
        self.raw: socket.socket | None = None  # and the loop writes here, never waiting
        self.chunked = False
        self.backlog: list[bytes] = []
        self.backlog_events = 0
        self.flushing = False
        self.last_write = time.monotonic()
        self.last_sent = (0, 0)  # the newest event written (or in the backlog): the ones up to it are skipped

    @abc.abstractmethod
    def take(self) -> list[Event]:
        """What arrived while the replay was written, without waiting (each fan-out keeps it its own way)."""

    def go_direct(self, sock: socket.socket, chunked: bool, after: tuple[int, int]) -> None:
        """From now on the loop writes to `sock` the events after `after` (the last one written); call with
        nothing left to take and no switch since."""
        self.last_sent = after
        self.sock = sock
        self.raw = getattr(sock, "_sock", sock)  # under gevent, the OS socket behind the greenlet one
        self.chunked = chunked
        self.last_write = time.monotonic()  # the server wrote the replay: the next heartbeat counts from here

    def send(self, events: list[Event]) -> int:
        """Write the events newer than the last one sent (of this stream's job, if it has one); returns how many
        went to the socket now."""
        fresh = [e for e in events if e.key > self.last_sent and (self.job_id is None or e.job_id == self.job_id)]
        if not fresh:
            return 0
        self.last_sent = fresh[-1].key
        data = b"".join(e.frame for e in fresh)
        return self.write(chunk(data) if self.chunked else data, len(fresh))

    def write(self, data: bytes, events: int) -> int:
        """Send now if the socket takes it all; the rest waits in the backlog for the stream's greenlet."""
        assert self.raw is not None
        if not self.backlog and not self.flushing:
            try:
                sent = self.raw.send(data, socket.MSG_DONTWAIT)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                self.end(f"client gone: {exc}")
                return 0
            if sent == len(data):
                self.last_write = time.monotonic()
                return events
            data = data[sent:]
        if self.backlog_events + events > self.limit:
            self.cut_off()
            return 0
        self.backlog.append(data)
        self.backlog_events += events
        self.ready.set()
        return 0

    def flush(self, on_write: Callable[[float | None], None]) -> None:
        """Write the backlog out from the stream's greenlet (a blocking write: other greenlets run meanwhile);
        `on_write` gets when the write started (None when it ended), for the registry's stall watch."""
        while self.backlog and not self.ended:
            data, events = b"".join(self.backlog), self.backlog_events
            self.backlog.clear()
            self.backlog_events = 0
            self.flushing = True
            on_write(time.monotonic())
            try:
                self.sock.sendall(data)  # type: ignore[union-attr]  # only once direct
            except OSError as exc:  # the client left, or the registry cut the stalled write off
                self.end(f"client gone: {exc}")
                return
            finally:
                on_write(None)
                self.flushing = False
            self.last_write = time.monotonic()
            STREAM_WRITES.inc()
            EVENTS_DELIVERED.inc(events)

    def cut_off(self) -> None:
        if not self.ended:
            STREAMS_CUT_OFF.labels("queue_full").inc()
        self.end("client too slow: its queue is full")

    def end(self, reason: str) -> None:
        self.ended = self.ended or reason
        self.ready.set()

    def check(self) -> None:
        """Raise StreamEnded once the stream must end."""
        if self.ended:
            raise StreamEnded(self.ended)


def beat(sinks: Callable[[], Iterable[Sink]], heartbeat: float) -> None:
    """The direct streams' heartbeats, from one loop for ever: an idle stream costs a send per interval, no
    wake-up."""
    period = min(1.0, heartbeat / 4)
    ping = {False: PING_FRAME, True: chunk(PING_FRAME)}
    while True:
        time.sleep(period)
        now = time.monotonic()
        for sink in sinks():
            if sink.raw is not None and not sink.ended and now - sink.last_write >= heartbeat:
                sink.write(ping[sink.chunked], 0)
                sink.last_write = now  # also when it went to the backlog: the next is a heartbeat on

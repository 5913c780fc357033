"""The SSE load generator: processes that each hold many raw-socket SSE clients on one selector.

`bench.sse_fleet.ClientFleet` (in the benchmark's process) drives these processes over pipes with small
commands: connect N, report, reset, close all, exit. Each client decodes the chunked body and the SSE
frames itself, with no thread per client; for every job-update it records lag = receive time minus the
event's `timestamp`, in a 1 ms histogram, and it notes the gap before each `: ping` comment.
"""

from __future__ import annotations

import calendar
import errno
import re
import selectors
import socket
import time
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

# One job-update frame as jobs/events.py writes it: id, event, one data line ending in the timestamp.
UPDATE_RE = re.compile(rb'id: (\d+)-(\d+)\nevent: job-update\ndata: [^\n]*"timestamp":"([^"]+)"\}\n')
PING = b": ping\n"
RETRY = b"retry:"
RESET = b"\nevent: reset\n"
RECV_BYTES = 256 * 1024


class Client:
    """One SSE connection and what it has received."""

    __slots__ = (
        "sock",
        "state",
        "raw",
        "body",
        "chunked",
        "count",
        "dupes",
        "last_key",
        "ready_at",
        "last_mark",
        "max_gap",
        "pings",
        "ended_at",
    )

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.state = "connecting"  # connecting → headers → stream → closed
        self.raw = b""
        self.body = b""
        self.chunked = False
        self.count = 0
        self.dupes = 0
        self.last_key = (0, 0)
        self.ready_at: float | None = None  # when `retry:` arrived: the server has subscribed
        self.last_mark = 0.0  # when the client last heard anything (event or ping)
        self.max_gap = 0.0
        self.pings = 0
        self.ended_at: float | None = None


class LoadGenerator:
    """The body of one load-generator process: a selector loop over its clients and the control pipe."""

    def __init__(self, host: str, port: int, path: str, inflight: int, control: Connection) -> None:
        self.inflight = inflight
        self.address = (host, port)
        self.request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n".encode()
        self.control = control
        self.selector = selectors.DefaultSelector()
        self.selector.register(control, selectors.EVENT_READ, None)
        self.clients: list[Client] = []
        self.pending: set[Client] = set()
        self.to_start = 0
        self.order: dict[str, Any] | None = None
        self.closing = False
        self._reset_counters()
        self.ts_cache: dict[bytes, float] = {}

    def _reset_counters(self) -> None:
        self.hist: Counter[int] = Counter()
        self.max_lag = 0.0
        self.last_event = 0.0
        self.resets = 0
        for client in getattr(self, "clients", []):
            client.count = client.dupes = client.pings = 0
            client.max_gap = 0.0
            client.last_mark = time.time()

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> None:
        while True:
            self._start_more()
            for key, mask in self.selector.select(0.05):
                client = key.data
                if client is None:
                    if not self._command():
                        return
                elif mask & selectors.EVENT_WRITE:
                    self._on_connected(client)
                else:
                    self._on_readable(client)
            self._check_order()

    def _command(self) -> bool:
        try:
            command, *args = self.control.recv()
        except EOFError:  # the benchmark went away
            self._close_all()
            return False
        if command == "connect":
            count, timeout = args
            self.to_start = count
            self.order = {"count": count, "ready": 0, "failed": Counter(), "deadline": time.monotonic() + timeout}
        elif command == "stats":
            self.control.send(self._stats())
        elif command == "progress":
            counts = [c.count for c in self.clients if c.ready_at is not None]
            self.control.send((sum(counts), min(counts, default=0)))
        elif command == "reset":
            self._reset_counters()
            self.control.send("ok")
        elif command == "close":
            stats = self._stats()
            self._close_all()
            self.control.send(stats)
        elif command == "exit":
            self._close_all()
            self.control.send("bye")
            return False
        return True

    # -- connecting ------------------------------------------------------------------------

    def _start_more(self) -> None:
        while self.to_start > 0 and len(self.pending) < self.inflight:
            self.to_start -= 1
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            client = Client(sock)
            self.clients.append(client)
            self.pending.add(client)
            code = sock.connect_ex(self.address)
            if code not in (0, errno.EINPROGRESS):
                self._fail(client, errno.errorcode.get(code, str(code)))
                continue
            self.selector.register(sock, selectors.EVENT_WRITE, client)

    def _on_connected(self, client: Client) -> None:
        code = client.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._fail(client, errno.errorcode.get(code, str(code)))
            return
        try:
            client.sock.send(self.request)  # a few dozen bytes into an empty send buffer
        except OSError as exc:
            self._fail(client, type(exc).__name__)
            return
        client.state = "headers"
        self.selector.modify(client.sock, selectors.EVENT_READ, client)

    def _ready(self, client: Client, now: float) -> None:
        client.ready_at = client.last_mark = now
        self.pending.discard(client)
        if self.order is not None:
            self.order["ready"] += 1

    def _fail(self, client: Client, reason: str) -> None:
        self._drop(client)
        if client in self.pending:
            self.pending.discard(client)
            if self.order is not None:
                self.order["failed"][reason] += 1

    def _check_order(self) -> None:
        order = self.order
        if order is None:
            return
        if time.monotonic() > order["deadline"]:
            for client in list(self.pending):
                self._fail(client, "timeout")
            order["failed"]["timeout"] += self.to_start
            self.to_start = 0
        if order["ready"] + sum(order["failed"].values()) >= order["count"]:
            self.order = None
            self.control.send(("connected", order["ready"], dict(order["failed"])))

    # -- reading ---------------------------------------------------------------------------

    def _on_readable(self, client: Client) -> None:
        try:
            data = client.sock.recv(RECV_BYTES)
        except BlockingIOError:
            return
        except OSError as exc:
            self._ended(client, type(exc).__name__)
            return
        now = time.time()
        if not data:
            self._ended(client, "closed by the server")
            return
        client.raw += data
        if client.state == "headers":
            end = client.raw.find(b"\r\n\r\n")
            if end < 0:
                return
            head = client.raw[:end]
            client.raw = client.raw[end + 4 :]
            status = head.split(b" ", 2)[1]
            if status != b"200":
                self._fail(client, f"status {status.decode()}")
                return
            client.chunked = b"chunked" in head.lower()
            client.state = "stream"
        if client.chunked:
            client.body += self._dechunk(client)
        else:
            client.body += client.raw
            client.raw = b""
        end = client.body.rfind(b"\n\n")
        if end >= 0:
            segment = client.body[: end + 2]
            client.body = client.body[end + 2 :]
            self._frames(client, segment, now)
        if client.state == "closed":  # the terminating chunk
            self._ended(client, "stream ended by the server")

    def _dechunk(self, client: Client) -> bytes:
        raw, pos, parts = client.raw, 0, []
        while True:
            eol = raw.find(b"\r\n", pos)
            if eol < 0:
                break
            size = int(raw[pos:eol].split(b";", 1)[0], 16)
            if size == 0:
                client.state = "closed"
                pos = len(raw)
                break
            start = eol + 2
            if start + size + 2 > len(raw):
                break
            parts.append(raw[start : start + size])
            pos = start + size + 2
        client.raw = raw[pos:]
        return b"".join(parts)

    def _frames(self, client: Client, segment: bytes, now: float) -> None:
        if client.ready_at is None:
            if RETRY not in segment:
                return
            self._ready(client, now)
        heard = False
        for ms, seq, stamp in UPDATE_RE.findall(segment):
            key = (int(ms), int(seq))
            if key <= client.last_key:
                client.dupes += 1
                continue
            client.last_key = key
            client.count += 1
            sent = self.ts_cache.get(stamp)
            if sent is None:
                sent = self.ts_cache[stamp] = _epoch(stamp)
            lag = now - sent
            self.hist[int(lag * 1000)] += 1
            if lag > self.max_lag:
                self.max_lag = lag
            heard = True
        if heard:
            self.last_event = now
        pings = segment.count(PING)
        if pings:
            client.pings += pings
            heard = True
        if RESET in segment:
            self.resets += 1
        if heard:
            gap = now - client.last_mark
            if gap > client.max_gap:
                client.max_gap = gap
            client.last_mark = now

    # -- ending ----------------------------------------------------------------------------

    def _ended(self, client: Client, reason: str) -> None:
        if client.ready_at is None:
            self._fail(client, reason)
            return
        client.ended_at = time.time()
        self._drop(client)

    def _drop(self, client: Client) -> None:
        if client.state == "gone":
            return
        try:
            self.selector.unregister(client.sock)
        except (KeyError, ValueError):
            pass
        client.sock.close()
        client.state = "gone"

    def _close_all(self) -> None:
        for client in self.clients:
            self._drop(client)
        self.clients = []
        self.pending.clear()

    def _stats(self) -> dict[str, Any]:
        now = time.time()
        ready = [c for c in self.clients if c.ready_at is not None]
        live = [c for c in ready if c.ended_at is None]
        return {
            "clients": len(ready),
            "open": len(live),
            "dropped": len(ready) - len(live),
            "counts": [c.count for c in ready],
            "dupes": sum(c.dupes for c in ready),
            "pings": [c.pings for c in live],
            "max_gaps": [max(c.max_gap, now - c.last_mark) for c in live],
            "hist": dict(self.hist),
            "max_lag": self.max_lag,
            "last_event": self.last_event,
            "resets": self.resets,
        }


def _epoch(stamp: bytes) -> float:
    """Seconds since the epoch of an API timestamp, 2026-11-28T17:00:00.123Z."""
    text = stamp.decode()
    return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")) + int(text[20:23]) / 1000


def serve(host: str, port: int, path: str, inflight: int, control: Connection) -> None:
    """Entry point of one load-generator process."""
    try:
        LoadGenerator(host, port, path, inflight, control).run()
    except KeyboardInterrupt:
        pass

"""Test helpers: an SSE client, creating a job over HTTP, the events of a job's lifecycle.

The processes themselves (redis-server, gunicorn, the worker pool) come from scripts/harness.py, which the
benchmarks share.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol
from urllib.parse import urlsplit

from scripts.harness import request, wait_until
from tests.bounds import OPEN_SECONDS

STREAM_PATH = "/api/jobs/stream"
READ_SECONDS = 30  # an SSE socket's read timeout: longer than any heartbeat a test server sends (15 s at most)
# (status, progress) of every event of a 3-step demo.web_agent job, from creation to its end
THREE_STEP_LIFECYCLE = [
    ("pending", 0),
    ("active", 0),
    ("active", 33),
    ("active", 66),
    ("active", 100),
    ("completed", 100),
]


class OpenSSE(Protocol):
    """The `sse` fixture: opens an SSE client that is closed at the end of the test, whatever happens."""

    def __call__(
        self, base: str, path: str = STREAM_PATH, last_event_id: str | None = None, wait_ready: bool = True
    ) -> SSEClient: ...


def create(base: str, name: str = "job", type_: str = "demo.web_agent", **params: Any) -> dict[str, Any]:
    status, data, _ = request(base, "POST", "/api/jobs", {"name": name, "type": type_, "params": params})
    assert status == 201, data
    return data["job"]


class SSEClient:
    """A raw SSE reader on its own thread: collects (id, event, data) and comments.

    Tests open one through the `sse` fixture, which closes it whatever happens; a benchmark closes its own.
    """

    def __init__(
        self, base: str, path: str = STREAM_PATH, last_event_id: str | None = None, wait_ready: bool = True
    ) -> None:
        parts = urlsplit(base)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=READ_SECONDS)
        headers = f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: text/event-stream\r\n"
        if last_event_id:
            headers += f"Last-Event-ID: {last_event_id}\r\n"
        self.sock.sendall((headers + "\r\n").encode())
        self.events: list[dict[str, Any]] = []
        self.comments: list[tuple[float, str]] = []
        self.retry: int | None = None
        self.status: int | None = None
        self.closed = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if wait_ready:
            try:
                self.wait_ready()
            except BaseException:
                self.close()
                raise

    def wait_ready(self) -> SSEClient:
        """Wait until the server sent `retry:` (it does once subscribed) or ended the stream."""
        wait_until(lambda: self.retry is not None or self.closed.is_set(), OPEN_SECONDS, "the stream to open")
        return self

    def _read(self) -> None:
        file = self.sock.makefile("rb")
        try:
            self.status = int(file.readline().split()[1])
            while file.readline() not in (b"\r\n", b"\n", b""):
                pass
            chunked_body = _dechunk(file)
            fields: dict[str, str] = {}
            for raw in _lines(chunked_body):
                line = raw.decode()
                if line == "":
                    if "data" in fields or "id" in fields:
                        event: dict[str, Any] = {"id": fields.get("id"), "event": fields.get("event", "message")}
                        event["data"] = json.loads(fields["data"]) if "data" in fields else None
                        event["at"] = time.time()
                        with self._lock:
                            self.events.append(event)
                    fields = {}
                elif line.startswith(":"):
                    self.comments.append((time.monotonic(), line[1:].strip()))
                elif line.startswith("retry:"):
                    self.retry = int(line[6:].strip())
                else:
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    fields[name] = fields[name] + "\n" + value if name == "data" and name in fields else value
        except (OSError, ValueError, IndexError):
            pass
        finally:
            self.closed.set()

    def updates(self, job_id: str | None = None) -> list[dict[str, Any]]:
        """The job-update events received, for one job or all."""
        with self._lock:
            events = list(self.events)
        return [
            e for e in events if e["event"] == "job-update" and (job_id is None or e["data"]["job"]["id"] == job_id)
        ]

    def last_id(self) -> str | None:
        with self._lock:
            ids = [e["id"] for e in self.events if e["id"]]
        return ids[-1] if ids else None

    def wait_for(self, predicate: Callable[[SSEClient], Any], timeout: float, message: str = "events") -> Any:
        """Wait until `predicate(self)` holds (see tests/bounds.py for `timeout`); return what it returned."""
        return wait_until(lambda: predicate(self), timeout, message)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._thread.join(5)


def _dechunk(file: Any) -> Iterator[bytes]:
    """Yield the body bytes of a chunked HTTP response as they arrive."""
    while True:
        size_line = file.readline()
        if not size_line:
            return
        size = int(size_line.strip().split(b";")[0] or b"0", 16)
        if size == 0:
            return
        yield file.read(size)
        file.readline()


def _lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line.rstrip(b"\r")

"""Test helpers: real processes (redis-server, gunicorn, worker pool), an SSE client, waiting on conditions."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis

from scripts.redis_server import binary

ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.02  # how often wait_until looks at its condition
# (status, progress) of every event of a 3-step demo.web_agent job, from creation to its end
THREE_STEP_LIFECYCLE = [
    ("pending", 0),
    ("active", 0),
    ("active", 33),
    ("active", 66),
    ("active", 100),
    ("completed", 100),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, message: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(POLL_SECONDS)


class RedisServer:
    """A private redis-server on a free port (never the shared 6379)."""

    def __init__(self, workdir: Path, appendonly: bool = False) -> None:
        self.workdir = workdir
        self.appendonly = appendonly
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir)]
        args += ["--save", "", "--appendonly", "yes" if self.appendonly else "no", "--daemonize", "no"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, 10, "redis-server to start")
        return self

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.ConnectionError:
            return False

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=2)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def pattern_subscribers(self) -> int:
        """How many clients hold a PSUBSCRIBE (CLIENT LIST psub=)."""
        return sum(1 for c in self.client().client_list() if int(c.get("psub", 0)) > 0)


class Service:
    """A child process (gunicorn or the worker pool) with its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logdir: Path) -> None:
        self.name = name
        self.log = logdir / f"{name}.log"
        logdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def stop(self, timeout: float = 15) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        try:  # leave no grandchild (pool worker, gevent worker) behind
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return self.process.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_web(redis_url: str, logdir: Path, name: str = "web", **env: str) -> tuple[Service, str]:
    """gunicorn with gevent workers on a free port, as `make run` starts it; returns it and its base URL."""
    port = free_port()
    environment = {"REDIS_URL": redis_url, "JOBSTREAM_BIND": f"127.0.0.1:{port}", **env}
    service = Service(name, [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"], environment, logdir)
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: _healthy(base), 20, f"{name} to answer /healthz")
    return service, base


def start_pool(redis_url: str, logdir: Path, name: str = "worker", **env: str) -> Service:
    """worker.py, the real pool of RQ worker processes; waits until every worker registered."""
    environment = {"REDIS_URL": redis_url, "JOBSTREAM_SHUTDOWN_GRACE_SECONDS": "2", **env}
    service = Service(name, [sys.executable, "worker.py"], environment, logdir)
    count = int(environment.get("JOBSTREAM_CONCURRENCY", "5"))
    client = redis.Redis.from_url(redis_url)
    wait_until(lambda: len(client.smembers("rq:workers")) >= count, 20, f"{count} workers to register")
    return service


def _healthy(base: str) -> bool:
    try:
        return request(base, "GET", "/healthz")[0] == 200
    except OSError:
        return False


def request(base: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None):
    """One HTTP request; returns (status, parsed JSON or None, headers)."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    payload = None if body is None else json.dumps(body)
    all_headers = {"Content-Type": "application/json"} if body is not None else {}
    all_headers.update(headers or {})
    try:
        conn.request(method, path, body=payload, headers=all_headers)
        response = conn.getresponse()
        raw = response.read()
        data = (
            json.loads(raw) if raw and response.getheader("Content-Type", "").startswith("application/json") else None
        )
        return response.status, data, dict(response.getheaders())
    finally:
        conn.close()


def create(base: str, name: str = "job", type_: str = "demo.web_agent", **params: Any) -> dict[str, Any]:
    status, data, _ = request(base, "POST", "/api/jobs", {"name": name, "type": type_, "params": params})
    assert status == 201, data
    return data["job"]


class SSEClient:
    """A raw SSE reader on its own thread: collects (id, event, data) and comments."""

    def __init__(
        self, base: str, path: str = "/api/jobs/stream", last_event_id: str | None = None, wait_ready: bool = True
    ) -> None:
        parts = urlsplit(base)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
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
        if wait_ready:  # the server sends retry once it is subscribed
            wait_until(lambda: self.retry is not None or self.closed.is_set(), 15, "the stream to open")

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
                        event = {"id": fields.get("id"), "event": fields.get("event", "message")}
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

    def wait_for(self, predicate: Callable[[SSEClient], Any], timeout: float = 15, message: str = "events") -> Any:
        return wait_until(lambda: predicate(self), timeout, message)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._thread.join(5)


def _dechunk(file: Any):
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


def _lines(chunks: Any):
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line.rstrip(b"\r")

"""The real-process harness that tests and benchmarks share: a private redis-server, gunicorn, the worker pool.

Every process is started the way `make run` starts it (gunicorn.conf.py, worker.py) on a free port, never on
Redis's shared 6379, and waited for until it answers.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import redis

from jobs.connection import connect
from scripts.redis_server import binary

ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.02  # how often wait_until looks at its condition
START_SECONDS = 30.0  # how long a process (redis-server, gunicorn, the pool) gets to come up on a loaded machine
STOP_SECONDS = 15.0  # how long a process gets to exit after SIGTERM before it is killed
REQUEST_SECONDS = 10.0  # how long one HTTP request may take

T = TypeVar("T")
Response = tuple[int, Any, dict[str, str]]  # status, parsed JSON body (or None), headers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(predicate: Callable[[], T], timeout: float, message: str = "condition") -> T:
    """Poll `predicate` until it returns something truthy, and return that; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(POLL_SECONDS)


class RedisServer:
    """A private redis-server on a free port (never the shared 6379); `options` go on its command line last."""

    def __init__(self, workdir: Path, appendonly: bool = False, options: tuple[str, ...] = ()) -> None:
        self.workdir = workdir
        self.appendonly = appendonly
        self.options = options
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        """Start it (again, on the same port and directory) and wait until it answers PING."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir)]
        args += ["--save", "", "--appendonly", "yes" if self.appendonly else "no", "--daemonize", "no"]
        args += self.options
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, START_SECONDS, "redis-server to start")
        return self

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.ConnectionError:
            return False

    def client(self) -> redis.Redis:
        """A new client of this server."""
        return redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=2)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(STOP_SECONDS)
            self.process = None

    def pattern_subscribers(self) -> int:
        """How many clients hold a PSUBSCRIBE (CLIENT LIST psub=)."""
        return sum(1 for c in self.client().client_list() if int(c.get("psub", 0)) > 0)


class Service:
    """A child process (gunicorn or the worker pool) in its own session, with its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logdir: Path, cwd: Path = ROOT) -> None:
        self.name = name
        self.log = logdir / f"{name}.log"
        logdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            args,
            cwd=cwd,
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

    def stop(self, timeout: float = STOP_SECONDS) -> int | None:
        """SIGTERM, then SIGKILL to its whole process group after `timeout`; returns its exit status."""
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


def start_web(redis_url: str, logdir: Path, name: str = "web", root: Path = ROOT, **env: str) -> tuple[Service, str]:
    """gunicorn with gevent workers on a free port, as `make run` starts it (from the checkout `root`); returns it
    and its base URL."""
    port = free_port()
    environment = {"REDIS_URL": redis_url, "JOBSTREAM_BIND": f"127.0.0.1:{port}", **env}
    args = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"]
    service = Service(name, args, environment, logdir, cwd=root)
    base = f"http://127.0.0.1:{port}"
    return _ready(service, lambda: _healthy(base), f"{name} to answer /healthz"), base


def start_pool(redis_url: str, logdir: Path, name: str = "worker", **env: str) -> Service:
    """worker.py, the real pool of RQ worker processes; waits until every worker registered."""
    environment = {"REDIS_URL": redis_url, "JOBSTREAM_SHUTDOWN_GRACE_SECONDS": "2", **env}
    service = Service(name, [sys.executable, "worker.py"], environment, logdir)
    count = int(environment.get("JOBSTREAM_CONCURRENCY", "5"))
    client = connect(redis_url)  # a redis+sentinel:// URL too
    return _ready(service, lambda: len(client.smembers("rq:workers")) >= count, f"{count} workers to register")


def _ready(service: Service, ready: Callable[[], Any], what: str) -> Service:
    """Wait until `ready()`; a service that never gets there is stopped, so a failed start leaves no process."""
    try:
        wait_until(ready, START_SECONDS, what)
    except BaseException:
        service.stop()
        raise
    return service


def _healthy(base: str) -> bool:
    try:
        return request(base, "GET", "/healthz")[0] == 200
    except OSError:
        return False


def request(base: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Response:
    """One HTTP request; returns (status, parsed JSON or None, headers)."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=REQUEST_SECONDS)
    payload = None if body is None else json.dumps(body)
    all_headers = {"Content-Type": "application/json"} if body is not None else {}
    all_headers.update(headers or {})
    try:
        conn.request(method, path, body=payload, headers=all_headers)
        response = conn.getresponse()
        raw = response.read()
        is_json = response.getheader("Content-Type", "").startswith("application/json")
        data = json.loads(raw) if raw and is_json else None
        return response.status, data, dict(response.getheaders())
    finally:
        conn.close()

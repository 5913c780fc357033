"""Fixtures: real redis-server, real worker pool, real gunicorn + gevent, real headless Chromium."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from jobs.config import Settings
from jobs.store.lifecycle import JobStore
from jobs.types.registry import load
from scripts.harness import RedisServer, Service, start_pool, start_web
from tests.api_helpers import Subscriber
from tests.helpers import STREAM_PATH, OpenSSE, SSEClient


@pytest.fixture(scope="session", autouse=True)
def job_types() -> None:
    """Register the job types as every skin does, so in-process tests can create and run them."""
    load(Settings().job_type_modules)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the in-process tests; flushed before each."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server: RedisServer) -> redis.Redis:
    client = redis_server.client()
    client.flushall()
    return client


@pytest.fixture
def settings(redis_server: RedisServer) -> Settings:
    return Settings(redis_url=redis_server.url, heartbeat_seconds=1, replay_events=1000)


@pytest.fixture
def app(settings: Settings, redis_client: redis.Redis) -> Flask:
    return create_app({"TESTING": True, "SETTINGS": settings})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def store(app: Flask) -> JobStore:
    return app.extensions["jobstream"].store


@pytest.fixture
def subscriber(redis_client: redis.Redis) -> Iterator[Subscriber]:
    """A pub/sub subscriber on job:*:progress, subscribed before the test publishes anything."""
    subscribed = Subscriber(redis_client)
    yield subscribed
    subscribed.close()


class Stack:
    """A running jobstream: its own Redis, a pool of 5 workers, gunicorn in each fan-out mode."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.redis_server = RedisServer(workdir / "redis").start()
        self.redis = self.redis_server.client()
        self.services: list[Service] = []
        self.bases: dict[str, str] = {}
        try:
            self.pool = self.add(start_pool(self.redis_server.url, workdir / "logs"))
            for mode in ("request", "process"):
                web, base = start_web(
                    self.redis_server.url,
                    workdir / "logs",
                    name=f"web-{mode}",
                    JOBSTREAM_FANOUT=mode,
                    JOBSTREAM_HEARTBEAT_SECONDS="1",
                    JOBSTREAM_STREAM_WRITE_TIMEOUT="2",
                )
                self.add(web)
                self.bases[mode] = base
        except BaseException:  # what started is stopped, even when the rest fails to start
            self.stop()
            raise

    def add(self, service: Service) -> Service:
        self.services.append(service)
        return service

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.redis_server.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("stack"))
    yield running
    running.stop()


@pytest.fixture(params=["request", "process"])
def base(request: pytest.FixtureRequest, stack: Stack) -> str:
    """The base URL of the stack's web server, once per fan-out mode."""
    return stack.bases[request.param]


@pytest.fixture
def sse() -> Iterator[OpenSSE]:
    """Opens SSE clients, `sse(base, path=..., last_event_id=...)`; closes every one of them after the test,
    passed or failed, so no stream outlives its test."""
    opened: list[SSEClient] = []

    def open_stream(
        base: str, path: str = STREAM_PATH, last_event_id: str | None = None, wait_ready: bool = True
    ) -> SSEClient:
        client = SSEClient(base, path, last_event_id, wait_ready=False)
        opened.append(client)  # before waiting: a stream that never gets ready is closed too
        return client.wait_ready() if wait_ready else client

    yield open_stream
    for client in opened:
        client.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own, for tests that kill or restart things."""
    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    yield server
    server.stop()


@pytest.fixture
def pool(private_redis: RedisServer, tmp_path: Path) -> Iterator[Service]:
    """A pool of 2 workers on the test's own Redis, stopped after the test."""
    service = start_pool(private_redis.url, tmp_path / "logs", JOBSTREAM_CONCURRENCY="2")
    yield service
    service.stop()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium (apt-get install chromium)")
    return path

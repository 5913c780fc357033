"""Redis clients: one for commands, one pool sized for long-lived stream subscriptions."""

from __future__ import annotations

import logging
import time
from typing import Any

import redis

logger = logging.getLogger(__name__)

SOCKET_TIMEOUT = 5.0
CONNECT_TIMEOUT = 2.0


# Short socket timeouts turn a dead Redis into a prompt error instead of a hang.
TIMEOUTS = {"socket_timeout": SOCKET_TIMEOUT, "socket_connect_timeout": CONNECT_TIMEOUT}


def connect(url: str, max_connections: int | None = None) -> redis.Redis:
    """A client for ordinary commands; replies are bytes, as RQ expects. With `max_connections` (the web
    process), a burst of requests (every browser reconnecting after a deploy) waits its turn for a
    connection instead of failing with "Too many connections"."""
    pool: redis.ConnectionPool
    if max_connections is None:
        pool = redis.ConnectionPool.from_url(url, health_check_interval=30, **TIMEOUTS)
    else:
        pool = redis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=SOCKET_TIMEOUT, health_check_interval=30, **TIMEOUTS
        )
    return redis.Redis(connection_pool=pool)


def connect_streams(url: str, max_connections: int) -> redis.Redis:
    """A client whose pool holds one pub/sub connection per open stream (each waits with its own timeout)
    and serves the streams' replay reads and wake-ups, which must not hang on a stalled Redis."""
    pool = redis.ConnectionPool.from_url(url, max_connections=max_connections, socket_keepalive=True, **TIMEOUTS)
    return redis.Redis(connection_pool=pool)


def text(reply: Any) -> str:
    """A reply as text: our clients answer bytes (RQ needs them), while redis-py types replies loosely."""
    if isinstance(reply, bytes):
        return reply.decode()
    if isinstance(reply, str):
        return reply
    raise TypeError(f"expected a Redis string reply, got {type(reply).__name__}")


def wait_for_redis(client: redis.Redis, seconds: float = 15.0) -> None:
    """Block until Redis answers PING, so processes started together come up in any order."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError as exc:
            if time.monotonic() > deadline:
                raise redis.ConnectionError(f"Redis did not answer within {seconds:.0f} s: {exc}") from exc
            time.sleep(0.2)

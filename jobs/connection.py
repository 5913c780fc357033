"""Redis clients: one for commands, one pool sized for long-lived stream subscriptions; either on a plain
redis:// URL or on the primary that Sentinel names (redis+sentinel://host:port[,host:port...]/master/db)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import redis
from redis.sentinel import Sentinel

logger = logging.getLogger(__name__)

SENTINEL_SCHEME = "redis+sentinel://"
URL_SCHEMES = ("redis://", "rediss://", "unix://", SENTINEL_SCHEME)
REPLICATION_MARK = "jobstream:replication-mark"  # written before WAIT, so WAIT covers every earlier write
SOCKET_TIMEOUT = 5.0
# Less than the socket timeout: a WAIT that no replica answers ends in NotReplicated, not in a read timeout
# that drops the connection (tests/test_failover.py, after a failover while the other replica resyncs).
REPLICA_WAIT_MS = 4000
CONNECT_TIMEOUT = 2.0


# Short socket timeouts turn a dead Redis into a prompt error instead of a hang.
TIMEOUTS = {"socket_timeout": SOCKET_TIMEOUT, "socket_connect_timeout": CONNECT_TIMEOUT}


def connect(url: str, max_connections: int | None = None) -> redis.Redis:
    """A client for ordinary commands; replies are bytes, as RQ expects. With `max_connections` (the web
    process), a burst of requests (every browser reconnecting after a deploy) waits its turn for a
    connection instead of failing with "Too many connections"."""
    pool: redis.ConnectionPool
    if url.startswith(SENTINEL_SCHEME):  # Sentinel's pool follows a failover; it does not block when full
        return _primary(url, max_connections=max_connections, health_check_interval=30)
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
    if url.startswith(SENTINEL_SCHEME):
        return _primary(url, max_connections=max_connections, socket_keepalive=True)
    pool = redis.ConnectionPool.from_url(url, max_connections=max_connections, socket_keepalive=True, **TIMEOUTS)
    return redis.Redis(connection_pool=pool)


def masked(url: str) -> str:
    """A Redis URL with its password masked, for messages."""
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


@dataclass(frozen=True)
class SentinelURL:
    """redis+sentinel://[:password@]host:port[,host:port...]/<master name>[/<db>]"""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int
    password: str | None

    @classmethod
    def parse(cls, url: str) -> SentinelURL:
        """The parts of a Sentinel URL; ValueError names what is wrong."""
        rest = url.removeprefix(SENTINEL_SCHEME)
        hosts, _, path = rest.partition("/")
        password = None
        if "@" in hosts:
            secret, _, hosts = hosts.rpartition("@")
            password = unquote(secret.partition(":")[2] or secret) or None
        parts = [p for p in path.split("/") if p]
        if not hosts or not parts or len(parts) > 2:
            raise ValueError(f"expected {SENTINEL_SCHEME}host:port[,host:port]/<master>[/<db>], got {url!r}")
        sentinels = []
        for host in hosts.split(","):
            name, colon, port = host.rpartition(":")
            if not (colon and name and port.isdigit()):
                raise ValueError(f"a sentinel must be host:port, got {host!r}")
            sentinels.append((name.strip("[]"), int(port)))
        db = parts[1] if len(parts) == 2 else "0"
        if not db.isdigit():
            raise ValueError(f"the database must be a number, got {db!r}")
        return cls(tuple(sentinels), unquote(parts[0]), int(db), password)


def _primary(url: str, **pool: Any) -> redis.Redis:
    """A client of the primary that Sentinel names; after a failover its connections find the new one."""
    where = SentinelURL.parse(url)
    sentinel = Sentinel(list(where.sentinels), sentinel_kwargs=dict(TIMEOUTS), **TIMEOUTS)
    options = {k: v for k, v in pool.items() if v is not None}
    return sentinel.master_for(where.master, db=where.db, password=where.password, **options)


class NotReplicated(redis.RedisError):
    """A write was not acknowledged by JOBSTREAM_REDIS_MIN_REPLICAS replicas in time (a failover could lose it)."""


def replicated(client: redis.Redis, replicas: int, timeout_ms: int = REPLICA_WAIT_MS) -> None:
    """Wait until `replicas` replicas have every write Redis took so far; NotReplicated otherwise.

    WAIT counts the writes of its own connection, so it follows a write of its own: replicas apply one
    ordered stream, and the one that has this write has every earlier one, whichever connection sent it."""
    if replicas <= 0:
        return
    with client.pipeline(transaction=False) as pipe:
        pipe.incr(REPLICATION_MARK)
        pipe.execute_command("WAIT", replicas, timeout_ms)
        acknowledged = int(pipe.execute()[1])
    if acknowledged < replicas:
        raise NotReplicated(f"only {acknowledged} of {replicas} replicas acknowledged within {timeout_ms} ms")


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

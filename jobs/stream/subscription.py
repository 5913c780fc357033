"""Request mode's subscription: a stream's own PSUBSCRIBE, read with hiredis; the hub reads one the same way."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any, Protocol

import hiredis
import redis

from jobs.stream.events import PATTERN, Event, channel

logger = logging.getLogger(__name__)

WAKE_CHANNEL = channel("-")  # matches PATTERN but names no job: wakes request-mode streams to look at flags
READ_SIZE = 65536
# Every request-mode stream receives the same message: parse and frame it once per process (its id makes it unique).
PARSED: dict[tuple[bytes, bytes], Event] = {}
PARSED_LIMIT = 4096
COALESCE_SECONDS = 0.003  # after an event, wait this long for the rest of its burst (other jobs' steps): one write


class StreamEnded(Exception):
    """The stream must end now: shutdown, a slow client, or a lost subscription (the client resumes)."""


class Subscription(Protocol):
    behind: bool  # more events were waiting when `get` returned
    coalesce: float  # after a wake with events, how long to wait for the rest of a burst before writing

    def get(self, timeout: float) -> list[Event]: ...

    def wake(self) -> None: ...

    def close(self) -> None: ...


class RedisSubscription:
    """A stream's own PSUBSCRIBE, confirmed before use and released on close.

    Read straight from its socket with a hiredis reader: redis-py's `PubSub.get_message` costs about
    five times as much CPU per event, and request mode pays it once per client per event
    (bench/pubsub_receive.py)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.pool = client.connection_pool
        connection = self.pool.get_connection()
        self.connection: redis.connection.Connection | None = connection
        self.reader = hiredis.Reader()
        self.pending: list[Any] = []
        self.behind = False
        self.coalesce = COALESCE_SECONDS
        try:
            connection.send_command("PSUBSCRIBE", PATTERN)
            if connection._sock is None:
                raise redis.ConnectionError("the subscription has no socket")
            self.sock: socket.socket = connection._sock
            self._confirm()
        except BaseException:
            self.close()
            raise

    def _confirm(self) -> None:
        """Wait for Redis to confirm the PSUBSCRIBE, so a replay read after it cannot miss an event."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            self._read(max(0.0, deadline - time.monotonic()))
            while self.pending:
                if self.pending.pop(0)[0] == b"psubscribe":
                    return
        raise redis.TimeoutError("PSUBSCRIBE was not confirmed")

    def _read(self, timeout: float) -> None:
        """Add every complete message that arrives within `timeout` to `pending`."""
        self.behind = False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(READ_SIZE)
        except (TimeoutError, BlockingIOError):  # nothing within `timeout` (a zero timeout raises the latter)
            return
        except OSError as exc:
            raise redis.ConnectionError(f"the subscription's connection failed: {exc}") from exc
        if not data:
            raise redis.ConnectionError("Redis closed the subscription")
        self.behind = len(data) == READ_SIZE
        self.reader.feed(data)
        try:
            while (message := self.reader.gets()) is not False:
                if isinstance(message, hiredis.ReplyError):
                    raise redis.ResponseError(str(message))
                self.pending.append(message)
        except hiredis.ProtocolError as exc:
            raise redis.ConnectionError(f"unreadable reply on the subscription: {exc}") from exc

    def get(self, timeout: float) -> list[Event]:
        self._read(timeout)
        messages, self.pending = self.pending, []
        wake = WAKE_CHANNEL.encode()
        events = []
        for message in messages:
            if message[0] != b"pmessage" or message[2] == wake:
                continue
            key = (message[2], message[3])
            event = PARSED.get(key)
            if event is None:
                try:
                    event = Event.from_message(message[2], message[3])
                except ValueError:  # not published by jobstream's scripts (UnicodeDecodeError is a ValueError)
                    logger.warning("skipped a message on %r that is not a jobstream event", message[2])
                    continue
                if len(PARSED) >= PARSED_LIMIT:
                    PARSED.clear()
                PARSED[key] = event
            events.append(event)
        return events

    def wake(self) -> None:
        self.client.publish(WAKE_CHANNEL, b"wake")

    def close(self) -> None:
        """Give the connection back, unsubscribed; only once, as another stream may take it right after."""
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.disconnect()  # never back in the pool subscribed; the pool reconnects it when needed
            self.pool.release(connection)


class RequestFanout:
    """JOBSTREAM_FANOUT=request: one Redis subscription per stream."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def subscribe(self, job_id: str | None = None) -> Subscription:  # noqa: ARG002  # every stream sees every event
        return RedisSubscription(self.client)

"""A PSUBSCRIBE read with hiredis: request mode gives each stream one, the hub and `jobs.events()` one each."""

from __future__ import annotations

import logging
import socket
import ssl
import time
from typing import Any, Protocol

import hiredis
import redis

from jobs.stream.events import PATTERN, Event, channel

logger = logging.getLogger(__name__)

WAKE_CHANNEL = channel("-")  # matches PATTERN but names no job: wakes request-mode streams to look at flags
WAKE = WAKE_CHANNEL.encode()
READ_SIZE = 65536
# Every request-mode stream receives the same message: parse and frame it once per process (its id makes it unique).
PARSED: dict[tuple[bytes, bytes], Event] = {}
PARSED_LIMIT = 4096
COALESCE_SECONDS = 0.003  # after an event, wait this long for the rest of its burst (other jobs' steps): one write


class StreamEnded(Exception):
    """The stream must end now: shutdown, a slow client, or a lost subscription (the client resumes)."""


class Subscription(Protocol):
    @property
    def behind(self) -> bool:
        """More events were waiting when `get` returned."""

    @property
    def coalesce(self) -> float:
        """After a wake with events, how long to wait for the rest of a burst before writing."""

    def get(self, timeout: float) -> list[Event]: ...

    def wake(self) -> None: ...

    def close(self) -> None: ...


class RedisSubscription:
    """A stream's own subscription, confirmed before use and released on close: every job's events (PSUBSCRIBE),
    or with `job_id` that job's channel and the wake channel only (SUBSCRIBE), so that Redis, not this process,
    leaves out the other jobs' events.

    Read straight from its socket with a hiredis reader: redis-py's `PubSub.get_message` costs about
    five times as much CPU per event, and request mode pays it once per client per event
    (bench/pubsub_receive.py)."""

    def __init__(self, client: redis.Redis, job_id: str | None = None) -> None:
        self.client = client
        self.pool = client.connection_pool
        connection = self.pool.get_connection()
        self.connection: redis.connection.Connection | None = connection
        self.reader = hiredis.Reader()
        self.pending: list[Any] = []
        self.behind = False
        self.coalesce = COALESCE_SECONDS
        command = ("PSUBSCRIBE", PATTERN) if job_id is None else ("SUBSCRIBE", channel(job_id), WAKE_CHANNEL)
        try:
            connection.send_command(*command)
            if connection._sock is None:
                raise redis.ConnectionError("the subscription has no socket")
            self.sock: socket.socket = connection._sock
            self.raw: socket.socket = getattr(self.sock, "_sock", self.sock)  # under gevent, the OS socket
            # Over TLS the OS socket carries ciphertext, and a record already read may wait inside the TLS layer
            # where no selector sees it: such a subscription is read through its own socket object only.
            self.pollable: bool = not isinstance(self.sock, ssl.SSLSocket)
            self._confirm(command[0].lower().encode(), len(command) - 1)
        except BaseException:
            self.close()
            raise

    def _confirm(self, kind: bytes, channels: int) -> None:
        """Wait until Redis confirms every channel, so a replay read after it cannot miss an event."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            self._read(max(0.0, deadline - time.monotonic()))
            while self.pending:
                reply = self.pending.pop(0)
                if reply[0] == kind and reply[2] == channels:
                    return
        raise redis.TimeoutError(f"{kind.decode().upper()} was not confirmed")

    def _read(self, timeout: float) -> None:
        """Add every complete message that arrives within `timeout` to `pending`."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(READ_SIZE)
        except (TimeoutError, BlockingIOError, ssl.SSLWantReadError):  # nothing within `timeout` (a zero timeout
            self.behind = False  # raises the second, or over TLS the third)
            return
        except OSError as exc:
            raise redis.ConnectionError(f"the subscription's connection failed: {exc}") from exc
        self._parse(data)

    def _parse(self, data: bytes) -> None:
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
        return self._events()

    def drain(self) -> list[Event]:
        """What has arrived, read from the OS socket without waiting: for a loop that polls many subscriptions."""
        try:
            data = self.raw.recv(READ_SIZE, socket.MSG_DONTWAIT)
        except BlockingIOError:
            self.behind = False
            return self._events()
        except OSError as exc:
            raise redis.ConnectionError(f"the subscription's connection failed: {exc}") from exc
        self._parse(data)
        return self._events()

    def _events(self) -> list[Event]:
        messages, self.pending = self.pending, []
        events = []
        for message in messages:
            kind = message[0]
            if kind == b"pmessage":
                key = (message[2], message[3])
            elif kind == b"message":
                key = (message[1], message[2])
            else:
                continue
            if key[0] == WAKE:
                continue
            event = PARSED.get(key)
            if event is None:
                try:
                    event = Event.from_message(*key)
                except ValueError:  # not published by jobstream's scripts (UnicodeDecodeError is a ValueError)
                    logger.warning("skipped a message on %r that is not a jobstream event", key[0])
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

"""One webhook's deliveries: due ones taken from its sorted set in Redis under a lease, POSTed, then logged and
done or planned again with the next delay; a thread per webhook, so a slow receiver delays only its own."""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import redis

from jobs.model import isoformat, utcnow
from jobs.store.keys import WEBHOOKS_KEY, webhook_due_key, webhook_log_key
from jobs.telemetry.metrics import WEBHOOK_DELIVERIES
from jobs.webhooks.registry import LOG_KEPT, Webhook
from jobs.webhooks.signature import headers

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0  # a 2xx within this is a success; anything else, or nothing, is retried
BATCH = 10  # deliveries taken at once
LEASE_MS = int(BATCH * (TIMEOUT_SECONDS + 2) * 1000)  # taken ones are another pool's again after this (a dead pool)
IDLE_SECONDS = 1.0  # the longest a sender waits before it looks again (retries that another pool planned)
RESPONSE_BYTES = 65_536  # read of a receiver's answer, then the connection is closed
USER_AGENT = "jobstream-webhooks"
# Take the due deliveries (score <= now) and push each one's score to the lease's end, in one step: two pools never
# take the same one while its lease runs.
TAKE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], member) end
return due
"""
Outcome = tuple[int | None, str | None, float]  # status code, error, seconds taken


class Client:
    """One sender's HTTP client: a connection kept open to the webhook's origin between deliveries (keep-alive),
    made again when the origin changes or the receiver closed it. No redirects are followed."""

    def __init__(self) -> None:
        self.origin: tuple[str, str, int | None] | None = None
        self.conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = self.origin = None

    def post(self, url: str, body: bytes, extra: dict[str, str]) -> Outcome:
        """POST `body` to `url`; the status or the error, and how long it took. A kept connection that the
        receiver closed meanwhile is tried once more on a new one (a repeat, if any, has the same webhook-id)."""
        started = time.monotonic()
        try:
            parts = urlsplit(url)
            origin = (parts.scheme, parts.hostname or "", parts.port)
        except ValueError as exc:  # a port out of range, say
            return None, str(exc), time.monotonic() - started
        if origin != self.origin or self.conn is None:
            self.close()
            kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
            self.conn, self.origin = kind(origin[1], origin[2], timeout=TIMEOUT_SECONDS), origin
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **extra}
        for fresh in (self.conn.sock is None, True):
            try:
                self.conn.request("POST", target, body, headers)
                response = self.conn.getresponse()
                response.read(RESPONSE_BYTES)
                if not response.isclosed():  # more than we read: not reusable
                    self.conn.close()
                return response.status, None, time.monotonic() - started
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self.conn.close()
                if fresh:
                    return None, str(exc) or type(exc).__name__, time.monotonic() - started
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self.conn.close()
                return None, str(exc) or type(exc).__name__, time.monotonic() - started
        raise AssertionError("unreachable: the second try is on a fresh connection")


def succeeded(outcome: Outcome) -> bool:
    status, _, seconds = outcome
    return status is not None and 200 <= status < 300 and seconds <= TIMEOUT_SECONDS


class Sender(threading.Thread):
    """Delivers one webhook's due deliveries, one at a time, until stopped or the webhook is deleted."""

    def __init__(
        self, client: redis.Redis, webhook: Webhook, delays: tuple[float, ...], stopping: threading.Event
    ) -> None:
        super().__init__(name=f"jobstream-webhook-{webhook.id}", daemon=True)
        self.redis = client
        self.webhook = webhook  # the dispatcher puts the newest version here when the webhook is replaced
        self.delays = delays
        self.stopping = stopping
        self.gone = threading.Event()  # the webhook was deleted
        self.wake = threading.Event()  # the dispatcher added deliveries
        self.due_key = webhook_due_key(webhook.id)
        self.client = Client()

    @property
    def ending(self) -> bool:
        return self.stopping.is_set() or self.gone.is_set()

    def run(self) -> None:
        take = self.redis.register_script(TAKE)
        while not self.ending:
            self.wake.clear()
            try:
                now = int(time.time() * 1000)
                taken = take(keys=[self.due_key], args=[now, now + LEASE_MS, BATCH])
                for index, member in enumerate(taken):
                    if self.ending:  # give back what was taken and not tried, for the next pool at once
                        self.redis.zadd(self.due_key, {m: now for m in taken[index:]}, xx=True)
                        break
                    self.deliver(member)
                if not taken:
                    self.wake.wait(self._until_due())
            except redis.RedisError as exc:  # Redis away: try again shortly, never die
                logger.warning("webhook %s: %s", self.webhook.id, exc)
                self.stopping.wait(IDLE_SECONDS)
        self.client.close()
        if self.gone.is_set() and not self.redis.hexists(WEBHOOKS_KEY, self.webhook.id):
            self.redis.delete(self.due_key, webhook_log_key(self.webhook.id))  # what a last delivery wrote back

    def _until_due(self) -> float:
        head = self.redis.zrange(self.due_key, 0, 0, withscores=True)
        if not head:
            return IDLE_SECONDS
        return max(0.01, min(IDLE_SECONDS, float(head[0][1]) / 1000 - time.time()))

    def deliver(self, member: bytes) -> None:
        """Send one delivery, log the attempt, and plan the next one unless it succeeded or attempts ran out."""
        item: dict[str, Any] = json.loads(member)
        webhook = self.webhook
        body = item["body"]
        signed = headers(webhook.secret, item["event_id"], int(time.time()), body)
        at = utcnow()
        outcome = self.client.post(webhook.url, body.encode(), signed)
        status, error, seconds = outcome
        if error is None and not succeeded(outcome):
            error = f"HTTP {status}" if seconds <= TIMEOUT_SECONDS else f"answered after {seconds:.1f} s"
        attempt = item["attempt"]
        retry_at = None
        pipe = self.redis.pipeline(transaction=False)  # one write: nothing comes between its commands that matters
        pipe.zrem(self.due_key, member)
        if succeeded(outcome):
            result = "delivered"
        elif attempt <= len(self.delays):
            result, retry_at = "retrying", time.time() + self.delays[attempt - 1]
            pipe.zadd(self.due_key, {json.dumps({**item, "attempt": attempt + 1}): int(retry_at * 1000)})
        else:
            result = "given_up"
        entry = {
            "event_id": item["event_id"],
            "type": item["type"],
            "job_id": item["job_id"],
            "attempt": attempt,
            "status_code": status,
            "error": error,
            "duration_ms": round(seconds * 1000, 1),
            "at": at,
            "next_attempt_at": isoformat(datetime.fromtimestamp(retry_at, UTC)) if retry_at else None,
        }
        pipe.lpush(webhook_log_key(webhook.id), json.dumps(entry))
        pipe.ltrim(webhook_log_key(webhook.id), 0, LOG_KEPT - 1)
        pipe.execute()
        WEBHOOK_DELIVERIES.labels(result).inc()
        if result != "delivered":
            logger.info("webhook %s: %s %s: %s (%s)", webhook.id, item["type"], item["event_id"], error, result)

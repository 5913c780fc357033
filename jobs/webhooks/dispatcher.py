"""The dispatcher: reads the replay stream through the webhooks' consumer group, turns each job event into the
deliveries it owes (one per webhook that wants it), and runs a sender thread per webhook.

An entry is acknowledged in the same transaction that adds its deliveries, so a dispatcher that dies between
reading and acknowledging leaves it pending, and another (or the next) one claims it; any number of pools may run
a dispatcher: the group gives each entry to one of them. Events that arrive while none runs wait in the stream
(as many as JOBSTREAM_REPLAY_EVENTS keeps).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis

from jobs.model import CANCELED, COMPLETED, FAILED, PENDING
from jobs.store.keys import EVENTS_KEY, WEBHOOK_GROUP, webhook_due_key
from jobs.stream.events import JOB_UPDATE, SCHEDULE_UPDATE
from jobs.webhooks.delivery import Sender
from jobs.webhooks.registry import (
    JOB_CANCELED,
    JOB_COMPLETED,
    JOB_FAILED,
    JOB_RETRYING,
    SCHEDULE_SKIPPED,
    Webhook,
    Webhooks,
)

logger = logging.getLogger(__name__)

READ_COUNT = 200  # entries read at once
BLOCK_MS = 1000  # the longest a read waits for new entries (and so the stop, or a new webhook, waits)
CLAIM_SECONDS = 5.0  # how often entries left pending by a dead dispatcher are looked for
STALE_MS = 15_000  # an entry pending this long belongs to a dead dispatcher (a live one acks in milliseconds)
FORGET_MS = 3_600_000  # a consumer idle this long with nothing pending is removed from the group
JOIN_SECONDS = 1.0  # how long a stop waits for the senders to give back what they took (a hanging one cannot)
ENDED_TYPES = {COMPLETED: JOB_COMPLETED, FAILED: JOB_FAILED, CANCELED: JOB_CANCELED}
RETRY_LINE = "attempt "  # the first log line of a failed attempt that has another coming (store.handoff.failed)


@dataclass(frozen=True)
class Notice:
    """What a stream entry tells the webhooks: its type, the job (or schedule) type it is about, and the body."""

    type: str
    job_type: str | None
    job_id: str | None
    body: str


def notice_of(name: str, data: dict[str, Any]) -> Notice | None:
    """The webhook event of a stream event, if it is one: a job's end, an automatic retry, a skipped schedule."""
    timestamp = data.get("timestamp")
    if name == SCHEDULE_UPDATE and data.get("skipped"):
        schedule = data.get("schedule") or {}
        body = {"type": SCHEDULE_SKIPPED, "timestamp": timestamp, "data": {"schedule": schedule}}
        return Notice(SCHEDULE_SKIPPED, schedule.get("type"), None, json.dumps(body))
    if name != JOB_UPDATE or "counts" not in data:  # not a status change
        return None
    job = data["job"]
    kind = ENDED_TYPES.get(job["status"])
    if kind is None and _retrying(job, data.get("log") or ""):
        kind = JOB_RETRYING
    if kind is None:
        return None
    body = {"type": kind, "timestamp": timestamp, "data": {"job": job}}
    return Notice(kind, job.get("type"), job["id"], json.dumps(body))


def _retrying(job: dict[str, Any], log: str) -> bool:
    """An active job's failed attempt put back to wait for the next (not a retry by hand, which clears the error)."""
    first = log.partition("\n")[0]
    return job["status"] == PENDING and bool(job.get("error")) and first.startswith(RETRY_LINE) and "failed" in first


class Dispatcher(threading.Thread):
    """A thread of the worker pool's process, with one sender thread per webhook; it ends with the process."""

    def __init__(self, client: redis.Redis, delays: tuple[float, ...]) -> None:
        super().__init__(name="jobstream-webhooks", daemon=True)
        self.redis = client
        self.delays = delays
        self.consumer = f"{socket.gethostname()}.{os.getpid()}"
        self.stopping = threading.Event()
        self.senders: dict[str, Sender] = {}

    def stop(self) -> None:
        """Stop reading and sending; each sender gives back the deliveries it took and did not try."""
        self.stopping.set()
        senders = list(self.senders.values())
        for sender in senders:
            sender.wake.set()
        deadline = time.monotonic() + JOIN_SECONDS
        for sender in senders:
            sender.join(max(0.0, deadline - time.monotonic()))

    def run(self) -> None:
        webhooks = Webhooks(self.redis)
        next_claim = 0.0
        while not self.stopping.is_set():
            try:
                hooks = webhooks.all()
                self._follow(hooks)
                if time.monotonic() >= next_claim:
                    next_claim = time.monotonic() + CLAIM_SECONDS
                    self._fan_out(self._claim_stale(), hooks)
                read: Any = self.redis.xreadgroup(WEBHOOK_GROUP, self.consumer, {EVENTS_KEY: ">"}, READ_COUNT, BLOCK_MS)
                for _, entries in read or []:
                    self._fan_out(entries, hooks)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    logger.warning("webhooks: %s", exc)
                elif hooks:  # the stream or its group is gone (a flushed Redis): start over from now
                    webhooks.start_group()
                self.stopping.wait(BLOCK_MS / 1000)
            except redis.RedisError as exc:  # Redis away: try again shortly, never die
                logger.warning("webhooks: %s", exc)
                self.stopping.wait(BLOCK_MS / 1000)

    def _follow(self, hooks: list[Webhook]) -> None:
        """A sender per webhook, each with the webhook's newest version; a deleted one's sender ends."""
        current = {hook.id: hook for hook in hooks}
        for webhook_id, sender in list(self.senders.items()):
            if webhook_id not in current:
                sender.gone.set()
                sender.wake.set()
                del self.senders[webhook_id]
        for hook in hooks:
            running = self.senders.get(hook.id)
            if running is None or not running.is_alive():
                running = self.senders[hook.id] = Sender(self.redis, hook, self.delays, self.stopping)
                running.start()
            running.webhook = hook

    def _fan_out(self, entries: list[Any], hooks: list[Webhook]) -> None:
        """Each entry's deliveries added (due now) and the entry acknowledged, in one transaction."""
        if not entries:
            return
        now = int(time.time() * 1000)
        pipe = self.redis.pipeline()
        woken = set()
        for entry_id, fields in entries:
            notice = None
            if fields and hooks:
                data = fields[b"data"]
                if b'"counts"' in data or b'"skipped"' in data:
                    notice = notice_of(fields[b"event"].decode(), json.loads(data))
            for hook in hooks:
                if notice is not None and hook.wants(notice.type, notice.job_type):
                    item = {"event_id": entry_id.decode(), "type": notice.type, "job_id": notice.job_id}
                    member = json.dumps({**item, "attempt": 1, "body": notice.body})
                    pipe.zadd(webhook_due_key(hook.id), {member: now}, nx=True)  # added again (a claim): kept once
                    woken.add(hook.id)
        pipe.xack(EVENTS_KEY, WEBHOOK_GROUP, *(entry_id for entry_id, _ in entries))
        pipe.execute()
        for webhook_id in woken:
            if webhook_id in self.senders:
                self.senders[webhook_id].wake.set()

    def _claim_stale(self) -> list[Any]:
        """The entries that a dead dispatcher read and never acknowledged, now this one's; and the group forgets
        consumers long gone."""
        claimed: list[Any] = []
        start = "0-0"
        while True:
            reply = self.redis.xautoclaim(EVENTS_KEY, WEBHOOK_GROUP, self.consumer, STALE_MS, start, READ_COUNT)
            start = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
            claimed.extend(entry for entry in reply[1] if entry[1])  # entries trimmed away meanwhile: dropped
            if start == "0-0" or not reply[1]:
                break
        for consumer in self.redis.xinfo_consumers(EVENTS_KEY, WEBHOOK_GROUP):
            name = consumer["name"]
            name = name.decode() if isinstance(name, bytes) else name
            if name != self.consumer and consumer["pending"] == 0 and consumer["idle"] > FORGET_MS:
                self.redis.xgroup_delconsumer(EVENTS_KEY, WEBHOOK_GROUP, name)
        return claimed

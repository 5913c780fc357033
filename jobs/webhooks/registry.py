"""The webhooks kept in Redis (one hash: id -> JSON), and the log of each one's last delivery attempts."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import redis

from jobs.errors import JobsError
from jobs.model import utcnow
from jobs.store.keys import EVENTS_KEY, WEBHOOK_GROUP, WEBHOOKS_KEY, webhook_due_key, webhook_log_key
from jobs.webhooks.signature import new_secret

JOB_COMPLETED, JOB_FAILED, JOB_CANCELED = "job.completed", "job.failed", "job.canceled"
JOB_RETRYING, SCHEDULE_SKIPPED = "job.retrying", "schedule.skipped"
EVENT_TYPES = (JOB_COMPLETED, JOB_FAILED, JOB_CANCELED, JOB_RETRYING, SCHEDULE_SKIPPED)
# SPEC's id rule for schedules (1..100 of A-Z a-z 0-9 . _ : -), but not "." or "..", which no URL path keeps as a
# segment: written without a lookahead, so the OpenAPI document's fuzzers read it as Python does
WEBHOOK_ID_PATTERN = (
    r"^(?:[A-Za-z0-9_:-][A-Za-z0-9._:-]{0,99}|\.[A-Za-z0-9_:-][A-Za-z0-9._:-]{0,98}|\.\.[A-Za-z0-9._:-]{1,98})$"
)
LOG_KEPT = 100  # delivery attempts kept per webhook


class WebhookNotFound(JobsError):
    code = "not_found"


@dataclass(frozen=True)
class Webhook:
    """One webhook: where it sends, which events of which job types (None: all), and its signing secret."""

    id: str
    url: str
    events: list[str]
    types: list[str] | None
    secret: str
    created_at: str
    updated_at: str

    def wants(self, event_type: str, job_type: str | None) -> bool:
        """Whether an event of `event_type` about a job (or schedule) of `job_type` goes to this webhook."""
        return event_type in self.events and (self.types is None or job_type in self.types)


class Webhooks:
    """Webhooks and their delivery logs, on one Redis client."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def put(
        self, webhook_id: str, url: str, events: list[str], types: list[str] | None, secret: str | None
    ) -> tuple[Webhook, bool]:
        """Create or replace a webhook (its created_at kept); returns it and whether it is new. The dispatchers'
        consumer group starts at the stream's end when the first webhook is made: events from then on are sent."""
        self.start_group()
        now = utcnow()
        old = self.redis.hget(WEBHOOKS_KEY, webhook_id)
        created_at = json.loads(old)["created_at"] if old else now
        webhook = Webhook(webhook_id, url, list(dict.fromkeys(events)), types, secret or new_secret(), created_at, now)
        self.redis.hset(WEBHOOKS_KEY, webhook_id, json.dumps(asdict(webhook)))
        return webhook, old is None

    def start_group(self) -> None:
        """The consumer group, made once, at the end of the replay stream (made too, when it is not yet)."""
        try:
            self.redis.xgroup_create(EVENTS_KEY, WEBHOOK_GROUP, id="$", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def all(self) -> list[Webhook]:
        """Every webhook, by id."""
        stored = self.redis.hgetall(WEBHOOKS_KEY)
        return sorted((Webhook(**json.loads(value)) for value in stored.values()), key=lambda w: w.id)

    def get(self, webhook_id: str) -> Webhook:
        stored = self.redis.hget(WEBHOOKS_KEY, webhook_id)
        if stored is None:
            raise WebhookNotFound(f"no webhook {webhook_id!r}", {"id": webhook_id})
        return Webhook(**json.loads(stored))

    def delete(self, webhook_id: str) -> None:
        """Delete a webhook with its log and its deliveries still due."""
        pipe = self.redis.pipeline()
        pipe.hdel(WEBHOOKS_KEY, webhook_id)
        pipe.delete(webhook_due_key(webhook_id), webhook_log_key(webhook_id))
        if not pipe.execute()[0]:
            raise WebhookNotFound(f"no webhook {webhook_id!r}", {"id": webhook_id})

    def log(self, webhook_id: str) -> list[dict[str, Any]]:
        """The webhook's last LOG_KEPT delivery attempts, newest first."""
        self.get(webhook_id)
        return [json.loads(entry) for entry in self.redis.lrange(webhook_log_key(webhook_id), 0, LOG_KEPT - 1)]

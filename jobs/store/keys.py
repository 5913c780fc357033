"""Every Redis key jobstream keeps beside RQ's, named once (the Lua scripts get them from here)."""

from __future__ import annotations

import hashlib

JOB_PREFIX = "jobstream:job:"  # + id: the job's hash, one JSON value per ApiJob field
INDEX_KEY = "jobstream:jobs"  # every job id, scores 0: ids sort by creation time, so BYLEX pages
STATUS_PREFIX = "jobstream:status:"  # + status: the ids with that status, as INDEX_KEY
EVENTS_KEY = "jobstream:events"  # the capped replay stream
ENDED_PREFIX = "jobstream:ended:"  # + status + ":" + minute (YYYY-MM-DDTHH:MM): how many ended so in it
ENDED_AT_PREFIX = "jobstream:ended-at:"  # + ended status: ids scored by end time (ms), for retention
SCHEDULED_KEY = "jobstream:scheduled"  # pending ids scored by the time (ms) they may start
HELD_PREFIX = "jobstream:held:"  # + type: ids its concurrency limit holds back, oldest first
RUNNING_PREFIX = "jobstream:running:"  # + type: the ids of that type that are active
STARTS_PREFIX = "jobstream:starts:"  # + type: recent starts (ms), for its rate limit
SLOT_PREFIX = "jobstream:slot:"  # + type: the next start time (ms) free for a job its rate limit holds back
IDEMPOTENCY_PREFIX = "jobstream:idempotency:"  # + sha256 of a key: the job it created, for 24 h
SWEEP_LOCK = "jobstream:sweep-lock"  # held by the one process that runs retention at a time
COUNTS_KEY = "jobstream:counts"  # status -> how many jobs have it, kept beside the status sets by every script
TYPE_PENDING_KEY = "jobstream:type-pending"  # type -> how many of its jobs are pending
TYPE_STATS_PREFIX = "jobstream:type-stats:"  # + type + ":" + minute: a histogram of its ends (jobs/store/typestats.py)
FAILURE_GROUPS_KEY = "jobstream:failure-groups"  # group key -> how many failed jobs it holds
FAILURE_META_KEY = "jobstream:failure-meta"  # group key -> JSON {type, error, example}
FAILURE_PREFIX = "jobstream:failure:"  # + group key: its failed jobs' ids, scored by when they failed (ms)
SCHEDULE_PREFIX = "jobstream:schedule:"  # + id: a schedule's hash (jobs/store/lua/schedules.lua says its fields)
SCHEDULES_KEY = "jobstream:schedules"  # every schedule id, scores 0: sorted by id
SCHEDULE_DUE_KEY = "jobstream:schedule-due"  # the ids of schedules not paused, scored by their next tick (ms)
LOGS_SUFFIX = ":logs"  # JOB_PREFIX + id + this: the job's log lines
DEPENDENTS_SUFFIX = ":dependents"  # JOB_PREFIX + id + this: the ids of the jobs that depend on it (a set)
ALIVE_PREFIX = "jobstream:alive:"  # + id: set, with a TTL, by the worker running that job; gone when it leaves active
WEBHOOKS_KEY = "jobstream:webhooks"  # webhook id -> its JSON (url, events, types, secret, times)
WEBHOOK_GROUP = "jobstream-webhooks"  # the consumer group of EVENTS_KEY that the webhook dispatchers share
WEBHOOK_DUE_PREFIX = "jobstream:webhook-due:"  # + webhook id: its deliveries, scored by when (ms) each is due
WEBHOOK_LOG_PREFIX = "jobstream:webhook-log:"  # + webhook id: its last delivery attempts, newest first


def job_key(job_id: str) -> str:
    return JOB_PREFIX + job_id


def alive_key(job_id: str) -> str:
    return ALIVE_PREFIX + job_id


def logs_key(job_id: str) -> str:
    return f"{JOB_PREFIX}{job_id}{LOGS_SUFFIX}"


def dependents_key(job_id: str) -> str:
    return f"{JOB_PREFIX}{job_id}{DEPENDENTS_SUFFIX}"


def ended_key(status: str, minute: str) -> str:
    """The counter of jobs that ended with `status` in `minute` (an API timestamp's first 16 characters)."""
    return f"{ENDED_PREFIX}{status}:{minute}"


def idempotency_key(key: str) -> str:
    """Where an idempotency key names the job it created (hashed: any text makes a short key)."""
    return IDEMPOTENCY_PREFIX + hashlib.sha256(key.encode()).hexdigest()


def webhook_due_key(webhook_id: str) -> str:
    return WEBHOOK_DUE_PREFIX + webhook_id


def webhook_log_key(webhook_id: str) -> str:
    return WEBHOOK_LOG_PREFIX + webhook_id

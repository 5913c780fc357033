"""Settings read once from the environment at start-up."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

FANOUT_MODES = ("request", "process")
BUILTIN_JOB_MODULES = ("jobs.demo",)
DAY = 24 * 3600
MAX_KEEP = 3650 * DAY
MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


class ConfigError(ValueError):
    """An environment variable holds a value jobstream cannot use."""


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """Every knob of jobstream; see the README's configuration table."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    queue: str = "jobstream"
    concurrency: int = 5
    heartbeat_seconds: int = 15
    replay_events: int = 10_000
    fanout: str = "request"
    auth: str | None = None
    stream_queue_events: int = 2_000
    stream_write_timeout: int = 10
    stream_connections: int = 10_000
    shutdown_grace_seconds: int = 25
    max_jobs_per_worker: int = 1000
    job_modules: tuple[str, ...] = ()
    keep_completed_seconds: int = 7 * DAY
    keep_failed_seconds: int = 30 * DAY
    keep_canceled_seconds: int = 7 * DAY
    keep_ended_max: int = 100_000

    def keep_seconds(self, status: str) -> int:
        """How long an ended job of `status` is kept (JOBSTREAM_KEEP_<STATUS>_SECONDS)."""
        return {
            "completed": self.keep_completed_seconds,
            "failed": self.keep_failed_seconds,
            "canceled": self.keep_canceled_seconds,
        }[status]

    @property
    def job_type_modules(self) -> tuple[str, ...]:
        """The modules whose import registers every job type: the built-in ones, then the user's."""
        return (*BUILTIN_JOB_MODULES, *self.job_modules)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `env` (default: the process environment), rejecting bad values."""
        env = os.environ if env is None else env
        fanout = env.get("JOBSTREAM_FANOUT", "request").strip() or "request"
        if fanout not in FANOUT_MODES:
            raise ConfigError(f"JOBSTREAM_FANOUT must be one of {', '.join(FANOUT_MODES)}, got {fanout!r}")
        auth = env.get("JOBSTREAM_AUTH", "").strip() or None
        if auth is not None and ":" not in auth:
            raise ConfigError("JOBSTREAM_AUTH must look like user:password")
        job_modules = tuple(name.strip() for name in env.get("JOBSTREAM_JOB_MODULES", "").split(",") if name.strip())
        for name in job_modules:
            if not MODULE_NAME.fullmatch(name):
                raise ConfigError(f"JOBSTREAM_JOB_MODULES must list dotted module names, got {name!r}")
        return cls(
            redis_url=env.get("REDIS_URL", "").strip() or cls.redis_url,
            queue=env.get("JOBSTREAM_QUEUE", "").strip() or cls.queue,
            concurrency=_int(env, "JOBSTREAM_CONCURRENCY", cls.concurrency, 1, 256),
            heartbeat_seconds=_int(env, "JOBSTREAM_HEARTBEAT_SECONDS", cls.heartbeat_seconds, 1, 3600),
            replay_events=_int(env, "JOBSTREAM_REPLAY_EVENTS", cls.replay_events, 100, 10_000_000),
            fanout=fanout,
            auth=auth,
            stream_queue_events=_int(env, "JOBSTREAM_STREAM_QUEUE_EVENTS", cls.stream_queue_events, 10, 1_000_000),
            stream_write_timeout=_int(env, "JOBSTREAM_STREAM_WRITE_TIMEOUT", cls.stream_write_timeout, 1, 600),
            stream_connections=_int(env, "JOBSTREAM_STREAM_CONNECTIONS", cls.stream_connections, 10, 1_000_000),
            shutdown_grace_seconds=_int(env, "JOBSTREAM_SHUTDOWN_GRACE_SECONDS", cls.shutdown_grace_seconds, 0, 3600),
            max_jobs_per_worker=_int(env, "JOBSTREAM_MAX_JOBS_PER_WORKER", cls.max_jobs_per_worker, 0, 10_000_000),
            job_modules=job_modules,
            keep_completed_seconds=_int(
                env, "JOBSTREAM_KEEP_COMPLETED_SECONDS", cls.keep_completed_seconds, 0, 3650 * DAY
            ),
            keep_failed_seconds=_int(env, "JOBSTREAM_KEEP_FAILED_SECONDS", cls.keep_failed_seconds, 0, 3650 * DAY),
            keep_canceled_seconds=_int(
                env, "JOBSTREAM_KEEP_CANCELED_SECONDS", cls.keep_canceled_seconds, 0, 3650 * DAY
            ),
            keep_ended_max=_int(env, "JOBSTREAM_KEEP_ENDED_MAX", cls.keep_ended_max, 0, 100_000_000),
        )

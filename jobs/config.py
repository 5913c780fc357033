"""Settings read once from the environment at start-up."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import redis

from jobs.connection import SENTINEL_SCHEME, URL_SCHEMES, SentinelURL, connect, masked
from jobs.model import DAY

FANOUT_MODES = ("request", "process")
BUILTIN_JOB_MODULES = ("jobs.types.demo",)
MAX_KEEP = 3650 * DAY  # the longest that ended jobs may be kept
MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:\d{1,5})?")
LOG_FORMATS = ("text", "json")
CHECKOUT = Path(__file__).resolve().parent.parent  # the checkout that this `jobs` package is imported from
RUN_URL_FILE = Path("var", "redis.url")  # in a checkout: the Redis URL of its running `make run`
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_SOURCE = "default"
WEBHOOK_RETRY_SECONDS = (5.0, 30.0, 120.0, 600.0, 3600.0, 21600.0)  # SPEC: the waits before each retry, then none
MAX_WEBHOOK_RETRIES = 20


class ConfigError(ValueError):
    """An environment variable holds a value jobstream cannot use."""


def _credentials(env: Mapping[str, str], name: str) -> str | None:
    """A comma-separated list of user:password, each with a user and a password."""
    value = env.get(name, "").strip() or None
    if value is None:
        return None
    for entry in value.split(","):
        user, colon, password = entry.strip().partition(":")
        if not (user and colon and password):
            raise ConfigError(f"{name} must look like user:password[,user:password...]")
    return value


def _checked_url(url: str, name: str) -> str:
    """A Redis URL that `connect` takes; ConfigError names where it came from otherwise."""
    if not url.startswith(URL_SCHEMES):
        raise ConfigError(f"{name} must start with one of {', '.join(URL_SCHEMES)}, got {url!r}")
    if url.startswith(SENTINEL_SCHEME):
        try:
            SentinelURL.parse(url)
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc}") from None
    return url


def _redis_url(env: Mapping[str, str], checkout: Path | None) -> tuple[str, str]:
    """The Redis URL and where it came from: REDIS_URL; else, given a checkout, that of its running `make run`;
    else the default."""
    url = env.get("REDIS_URL", "").strip()
    if url:
        return _checked_url(url, "REDIS_URL"), "REDIS_URL"
    if checkout is not None and (url := _run_url(checkout / RUN_URL_FILE)):
        return url, str(checkout / RUN_URL_FILE)
    return DEFAULT_REDIS_URL, DEFAULT_SOURCE


def _run_url(path: Path) -> str:
    """The URL that a running `make run` wrote to `path` ("" when none runs), once its Redis answers: a file
    left behind is an error, never a quiet switch to another Redis."""
    try:
        url = _checked_url(path.read_text().strip(), str(path))
    except FileNotFoundError:
        return ""
    client = connect(url)
    try:
        client.ping()
    except (redis.RedisError, ValueError) as exc:
        raise ConfigError(
            f"{path} names {masked(url)}, which does not answer ({exc}). Is `make run` still running there? "
            "Start it, or remove the file, or set REDIS_URL."
        ) from None
    finally:
        client.connection_pool.disconnect()
    return url


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


def _delays(env: Mapping[str, str], name: str, default: tuple[float, ...]) -> tuple[float, ...]:
    """A comma-separated list of waits in seconds (each > 0 and at most a week); empty: `default`."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        delays = tuple(float(part) for part in raw.split(","))
    except ValueError:
        raise ConfigError(f"{name} must list seconds separated by commas, got {raw!r}") from None
    if len(delays) > MAX_WEBHOOK_RETRIES or not all(0 < delay <= 7 * DAY for delay in delays):
        raise ConfigError(f"{name} must list at most {MAX_WEBHOOK_RETRIES} waits, each over 0 and at most {7 * DAY} s")
    return delays


@dataclass(frozen=True)
class Settings:
    """Every knob of jobstream; see the README's configuration table."""

    redis_url: str = DEFAULT_REDIS_URL
    redis_url_source: str = DEFAULT_SOURCE  # REDIS_URL, the path of a `make run`'s var/redis.url, or default
    queue: str = "jobstream"
    concurrency: int = 5
    heartbeat_seconds: int = 15
    replay_events: int = 10_000
    fanout: str = "request"
    auth: str | None = None  # user:password[,user:password...]: may do everything
    viewer_auth: str | None = None  # the same, for users who may read everything and change nothing
    allowed_origins: tuple[str, ...] = ()  # other origins whose pages may change state (a dashboard elsewhere)
    log_format: str = "text"
    redis_min_replicas: int = 0  # creates wait until this many replicas have them (WAIT)
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
    webhook_retry_seconds: tuple[float, ...] = WEBHOOK_RETRY_SECONDS  # the wait before each retry of a delivery

    def keep_seconds(self, status: str) -> int:
        """How long an ended job of `status` is kept (JOBSTREAM_KEEP_<STATUS>_SECONDS)."""
        return {
            "completed": self.keep_completed_seconds,
            "failed": self.keep_failed_seconds,
            "canceled": self.keep_canceled_seconds,
        }[status]

    def credentials(self) -> list[tuple[str, str, str]]:
        """Every (user, password, role) that JOBSTREAM_AUTH ("admin") and JOBSTREAM_VIEWER_AUTH ("viewer") give."""
        given = [(self.auth, "admin"), (self.viewer_auth, "viewer")]
        return [
            (user, password, role)
            for value, role in given
            if value
            for user, _, password in (entry.strip().partition(":") for entry in value.split(",") if entry.strip())
        ]

    @property
    def job_type_modules(self) -> tuple[str, ...]:
        """The modules whose import registers every job type: the built-in ones, then the user's."""
        return (*BUILTIN_JOB_MODULES, *self.job_modules)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, checkout: Path | None = None) -> Settings:
        """Build settings from `env` (default: the process environment), rejecting bad values. With a
        `checkout` and no REDIS_URL, the Redis is that of the checkout's running `make run` (a terminal's
        client); the web and the workers get REDIS_URL, and never look for a file or wait on a PING."""
        env = os.environ if env is None else env
        fanout = env.get("JOBSTREAM_FANOUT", "request").strip() or "request"
        if fanout not in FANOUT_MODES:
            raise ConfigError(f"JOBSTREAM_FANOUT must be one of {', '.join(FANOUT_MODES)}, got {fanout!r}")
        auth = _credentials(env, "JOBSTREAM_AUTH")
        viewer_auth = _credentials(env, "JOBSTREAM_VIEWER_AUTH")
        origins = tuple(o.strip().rstrip("/") for o in env.get("JOBSTREAM_ALLOWED_ORIGINS", "").split(",") if o.strip())
        for origin in origins:
            if not ORIGIN.fullmatch(origin):
                raise ConfigError(
                    f"JOBSTREAM_ALLOWED_ORIGINS must list origins like https://host[:port], got {origin!r}"
                )
        log_format = env.get("JOBSTREAM_LOG_FORMAT", "").strip() or "text"
        if log_format not in LOG_FORMATS:
            raise ConfigError(f"JOBSTREAM_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
        job_modules = tuple(name.strip() for name in env.get("JOBSTREAM_JOB_MODULES", "").split(",") if name.strip())
        for name in job_modules:
            if not MODULE_NAME.fullmatch(name):
                raise ConfigError(f"JOBSTREAM_JOB_MODULES must list dotted module names, got {name!r}")
        redis_url, redis_url_source = _redis_url(env, checkout)
        return cls(
            redis_url=redis_url,
            redis_url_source=redis_url_source,
            queue=env.get("JOBSTREAM_QUEUE", "").strip() or cls.queue,
            concurrency=_int(env, "JOBSTREAM_CONCURRENCY", cls.concurrency, 1, 256),
            heartbeat_seconds=_int(env, "JOBSTREAM_HEARTBEAT_SECONDS", cls.heartbeat_seconds, 1, 3600),
            replay_events=_int(env, "JOBSTREAM_REPLAY_EVENTS", cls.replay_events, 100, 10_000_000),
            fanout=fanout,
            auth=auth,
            viewer_auth=viewer_auth,
            allowed_origins=origins,
            log_format=log_format,
            redis_min_replicas=_int(env, "JOBSTREAM_REDIS_MIN_REPLICAS", cls.redis_min_replicas, 0, 16),
            stream_queue_events=_int(env, "JOBSTREAM_STREAM_QUEUE_EVENTS", cls.stream_queue_events, 10, 1_000_000),
            stream_write_timeout=_int(env, "JOBSTREAM_STREAM_WRITE_TIMEOUT", cls.stream_write_timeout, 1, 600),
            stream_connections=_int(env, "JOBSTREAM_STREAM_CONNECTIONS", cls.stream_connections, 10, 1_000_000),
            shutdown_grace_seconds=_int(env, "JOBSTREAM_SHUTDOWN_GRACE_SECONDS", cls.shutdown_grace_seconds, 0, 3600),
            max_jobs_per_worker=_int(env, "JOBSTREAM_MAX_JOBS_PER_WORKER", cls.max_jobs_per_worker, 0, 10_000_000),
            job_modules=job_modules,
            keep_completed_seconds=_int(
                env, "JOBSTREAM_KEEP_COMPLETED_SECONDS", cls.keep_completed_seconds, 0, MAX_KEEP
            ),
            keep_failed_seconds=_int(env, "JOBSTREAM_KEEP_FAILED_SECONDS", cls.keep_failed_seconds, 0, MAX_KEEP),
            keep_canceled_seconds=_int(env, "JOBSTREAM_KEEP_CANCELED_SECONDS", cls.keep_canceled_seconds, 0, MAX_KEEP),
            keep_ended_max=_int(env, "JOBSTREAM_KEEP_ENDED_MAX", cls.keep_ended_max, 0, 100_000_000),
            webhook_retry_seconds=_delays(env, "JOBSTREAM_WEBHOOK_RETRY_SECONDS", cls.webhook_retry_seconds),
        )

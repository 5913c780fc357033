"""Settings from the environment: defaults, every knob, and clear errors for values jobstream cannot use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import jobs
from jobs.config import CHECKOUT, DEFAULT_REDIS_URL, RUN_URL_FILE, ConfigError, Settings
from jobs.types.registry import load
from scripts.harness import RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_when_nothing_is_set() -> None:
    assert Settings.from_env({}) == Settings()


def test_every_variable_is_read() -> None:
    env = {
        "REDIS_URL": "redis://example:6380/2",
        "JOBSTREAM_QUEUE": "q",
        "JOBSTREAM_CONCURRENCY": "3",
        "JOBSTREAM_HEARTBEAT_SECONDS": "7",
        "JOBSTREAM_REPLAY_EVENTS": "500",
        "JOBSTREAM_FANOUT": "process",
        "JOBSTREAM_AUTH": "me:secret,you:other",
        "JOBSTREAM_VIEWER_AUTH": "eye:only",
        "JOBSTREAM_ALLOWED_ORIGINS": " https://dash.example.com/ , http://127.0.0.1:9000",
        "JOBSTREAM_LOG_FORMAT": "json",
        "JOBSTREAM_STREAM_QUEUE_EVENTS": "100",
        "JOBSTREAM_STREAM_WRITE_TIMEOUT": "4",
        "JOBSTREAM_STREAM_CONNECTIONS": "50",
        "JOBSTREAM_SHUTDOWN_GRACE_SECONDS": "0",
        "JOBSTREAM_MAX_JOBS_PER_WORKER": "0",
        "JOBSTREAM_JOB_MODULES": " mypkg.jobs , other ",
        "JOBSTREAM_KEEP_COMPLETED_SECONDS": "60",
        "JOBSTREAM_KEEP_FAILED_SECONDS": "0",
        "JOBSTREAM_KEEP_CANCELED_SECONDS": "3600",
        "JOBSTREAM_KEEP_ENDED_MAX": "500",
        "JOBSTREAM_WEBHOOK_RETRY_SECONDS": "0.5, 2,60",
    }
    assert Settings.from_env(env) == Settings(
        redis_url="redis://example:6380/2",
        redis_url_source="REDIS_URL",
        queue="q",
        concurrency=3,
        heartbeat_seconds=7,
        replay_events=500,
        fanout="process",
        auth="me:secret,you:other",
        viewer_auth="eye:only",
        allowed_origins=("https://dash.example.com", "http://127.0.0.1:9000"),
        log_format="json",
        stream_queue_events=100,
        stream_write_timeout=4,
        stream_connections=50,
        shutdown_grace_seconds=0,
        max_jobs_per_worker=0,
        job_modules=("mypkg.jobs", "other"),
        keep_completed_seconds=60,
        keep_failed_seconds=0,
        keep_canceled_seconds=3600,
        keep_ended_max=500,
        webhook_retry_seconds=(0.5, 2.0, 60.0),
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("JOBSTREAM_CONCURRENCY", "0", "between 1 and 256"),
        ("JOBSTREAM_CONCURRENCY", "five", "must be an integer"),
        ("JOBSTREAM_HEARTBEAT_SECONDS", "0", "between 1 and 3600"),
        ("JOBSTREAM_FANOUT", "thread", "must be one of request, process"),
        ("JOBSTREAM_AUTH", "nopassword", "user:password"),
        ("JOBSTREAM_AUTH", "me:secret,:nouser", "user:password"),
        ("JOBSTREAM_AUTH", "me:secret,,you:x", "user:password"),
        ("JOBSTREAM_VIEWER_AUTH", "viewer", "user:password"),
        ("JOBSTREAM_VIEWER_AUTH", "eye:", "user:password"),
        ("JOBSTREAM_ALLOWED_ORIGINS", "dash.example.com", "origins like https://host[:port]"),
        ("JOBSTREAM_ALLOWED_ORIGINS", "https://dash.example.com/app", "origins like https://host[:port]"),
        ("JOBSTREAM_ALLOWED_ORIGINS", "ftp://dash.example.com", "origins like https://host[:port]"),
        ("JOBSTREAM_ALLOWED_ORIGINS", "*", "origins like https://host[:port]"),
        ("JOBSTREAM_LOG_FORMAT", "xml", "must be one of text, json"),
        ("JOBSTREAM_KEEP_COMPLETED_SECONDS", "-1", "between 0 and 315360000"),
        ("JOBSTREAM_KEEP_FAILED_SECONDS", "a month", "must be an integer"),
        ("JOBSTREAM_KEEP_CANCELED_SECONDS", "315360001", "between 0 and 315360000"),
        ("JOBSTREAM_KEEP_ENDED_MAX", "-5", "between 0 and 100000000"),
        ("JOBSTREAM_MAX_JOBS_PER_WORKER", "-1", "between 0 and 10000000"),
        ("JOBSTREAM_WEBHOOK_RETRY_SECONDS", "5,soon", "seconds separated by commas"),
        ("JOBSTREAM_WEBHOOK_RETRY_SECONDS", "5,0", "each over 0 and at most 604800 s"),
        ("JOBSTREAM_WEBHOOK_RETRY_SECONDS", "nan", "each over 0"),
        ("JOBSTREAM_WEBHOOK_RETRY_SECONDS", ",".join(["1"] * 21), "at most 20 waits"),
        ("JOBSTREAM_JOB_MODULES", "my-jobs", "dotted module names"),
        ("JOBSTREAM_JOB_MODULES", "pkg..jobs", "dotted module names"),
    ],
)
def test_unusable_values_are_refused_by_name(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=name) as refused:
        Settings.from_env({name: value})
    assert message in str(refused.value)


# -- which Redis a terminal's client finds (Jobs.from_env, the jobstream command) --------------------------


def run_url(checkout: Path, url: str) -> Path:
    """A checkout whose `make run` wrote `url`, as scripts/run.py writes it."""
    path = checkout / RUN_URL_FILE
    path.parent.mkdir(parents=True)
    path.write_text(f"{url}\n")
    return path


def test_redis_url_wins_over_a_make_runs_file(tmp_path: Path) -> None:
    run_url(tmp_path, f"redis://127.0.0.1:{free_port()}/0")  # nobody answers there, and nobody asks
    settings = Settings.from_env({"REDIS_URL": "redis://example:6380/2"}, checkout=tmp_path)

    assert (settings.redis_url, settings.redis_url_source) == ("redis://example:6380/2", "REDIS_URL")


def test_without_redis_url_the_make_runs_redis_is_used(tmp_path: Path, private_redis: RedisServer) -> None:
    path = run_url(tmp_path, private_redis.url)
    settings = Settings.from_env({}, checkout=tmp_path)

    assert (settings.redis_url, settings.redis_url_source) == (private_redis.url, str(path))


def test_a_file_whose_redis_does_not_answer_is_an_error_naming_it(tmp_path: Path) -> None:
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    path = run_url(tmp_path, url)
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({}, checkout=tmp_path)

    message = str(refused.value)
    assert message.startswith(f"{path} names redis://:***@127.0.0.1:") and "does not answer" in message
    assert "s3cret" not in message and "REDIS_URL" in message  # and what to do


def test_a_file_with_no_redis_url_in_it_is_an_error_naming_it(tmp_path: Path) -> None:
    path = run_url(tmp_path, "http://127.0.0.1:8000")
    with pytest.raises(ConfigError, match=f"{path} must start with one of redis://"):
        Settings.from_env({}, checkout=tmp_path)


def test_without_redis_url_or_file_the_default(tmp_path: Path) -> None:
    settings = Settings.from_env({}, checkout=tmp_path)

    assert (settings.redis_url, settings.redis_url_source) == (DEFAULT_REDIS_URL, "default")


def test_the_checkout_is_the_one_of_the_imported_package() -> None:
    assert Path(jobs.__file__).resolve().parent.parent == CHECKOUT == ROOT


def test_credentials_give_each_user_a_role() -> None:
    settings = Settings.from_env({"JOBSTREAM_AUTH": "alice:a1, bob:b:2", "JOBSTREAM_VIEWER_AUTH": "eve:e"})

    assert settings.credentials() == [("alice", "a1", "admin"), ("bob", "b:2", "admin"), ("eve", "e", "viewer")]


def test_retention_defaults_per_status() -> None:
    settings = Settings.from_env({})

    assert [settings.keep_seconds(s) for s in ("completed", "failed", "canceled")] == [7 * 86400, 30 * 86400, 7 * 86400]
    assert settings.keep_ended_max == 100_000


def test_job_modules_that_cannot_be_imported_are_refused() -> None:
    with pytest.raises(ConfigError, match="cannot import 'no_such_jobs_module'"):
        load(("no_such_jobs_module",))


def test_the_registry_knows_only_the_types_the_skin_loads() -> None:
    """In a fresh interpreter: importing the registry registers nothing; load() of the modules does."""
    script = (
        "from jobs.config import Settings\n"
        "from jobs.types.registry import get_type, job_types, load\n"
        "assert job_types() == [], job_types()\n"
        "load(Settings(job_modules=('tests.stubborn_jobs',)).job_type_modules)\n"
        "print(' '.join(t.name for t in job_types()))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    names = done.stdout.split()
    assert {"demo.web_agent", "demo.sleep", "demo.primes"} <= set(names)
    assert any(name.startswith("test.") for name in names)  # the user's module registered its own

"""The `jobstream` group: global options, the session every subcommand shares, and one place for exit codes."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click
import redis
from rich.console import Console

from jobs import Jobs, JobsError
from jobs.config import DEFAULT_REDIS_URL, ConfigError
from jobs.connection import masked

OK = 0
JOB_FAILED = 1  # the job failed, was canceled, or had not ended by --timeout
USAGE = 2  # click's usage errors, and every request jobstream refused (JobsError)
REDIS_DOWN = 3

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Session:
    """What a subcommand gets: the output mode, a console for job text, and the Jobs, built on first use."""

    json: bool = False
    console: Console = field(default_factory=lambda: Console(markup=False, highlight=False, emoji=False))
    _jobs: Jobs | None = None

    @property
    def jobs(self) -> Jobs:
        if self._jobs is None:
            # REDIS_URL (set from --url), else the checkout's running `make run`; the JOBSTREAM_* variables
            self._jobs = Jobs.from_env()
        return self._jobs

    def redis_url(self) -> str:
        """The Redis this run talks to, with any password masked, for messages."""
        url = self._jobs.settings.redis_url if self._jobs else os.environ.get("REDIS_URL", "").strip()
        return masked(url or DEFAULT_REDIS_URL)


pass_session = click.make_pass_decorator(Session)


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(Session).json = True


def json_option(command: F) -> F:
    """`--json` after the subcommand too (`jobstream list --json`), the same as before it."""
    return click.option(
        "--json", is_flag=True, expose_value=False, callback=_set_json, help="Print machine-readable JSON."
    )(command)


def describe(error: JobsError) -> str:
    """One line: the error's code, message, and every field its details name."""
    details = "; ".join(f"{path}: {message}" for path, message in _flatten(error.details))
    return f"{error.code}: {error.message}" + (f" ({details})" if details else "")


def _flatten(details: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(details, dict):
        return [pair for key, value in details.items() for pair in _flatten(value, f"{path}.{key}" if path else key)]
    if isinstance(details, list) and all(isinstance(item, str) for item in details):
        return [(path or "request", " ".join(details))]
    return [(path or "request", str(details))]


class JobstreamGroup(click.Group):
    """Turns what the API raises into one clear line on stderr and the documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except JobsError as exc:
            click.echo(f"jobstream: {describe(exc)}", err=True)
            ctx.exit(USAGE)
        except ConfigError as exc:
            click.echo(f"jobstream: {exc}", err=True)
            ctx.exit(USAGE)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            url = ctx.ensure_object(Session).redis_url()
            click.echo(f"jobstream: Redis at {url} does not answer ({exc}).", err=True)
            click.echo("Start that Redis, or point --url / REDIS_URL at one that runs.", err=True)
            ctx.exit(REDIS_DOWN)


@click.group(cls=JobstreamGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--url",
    envvar="REDIS_URL",
    metavar="URL",
    help="The Redis to use (redis://host:port/db). Default: $REDIS_URL, else the Redis of this checkout's "
    f"running `make run` (var/redis.url), else {DEFAULT_REDIS_URL}.",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON: the job(s) as JSON objects.")
@click.pass_context
def jobstream(ctx: click.Context, url: str | None, as_json: bool) -> None:
    """Run, follow and control jobstream's background jobs from a terminal.

    Exit codes: 0 ok, 1 a job failed (enqueue --wait, watch --job), 2 bad usage or a refused request, 3 Redis
    down.

    \b
    Examples:
      jobstream info
      jobstream enqueue demo.web_agent --name "Nightly export" --param steps=5 --wait
      jobstream --json list --status failed
      jobstream watch
    """
    if url:
        os.environ["REDIS_URL"] = url  # the API, `web` and `worker` all read it from there
    session = ctx.ensure_object(Session)
    session.json = session.json or as_json

"""The read and write subcommands: each is a call or two of the Python API, printed as a table, a line or JSON.

Over 300 lines because every subcommand is its options and a few lines, side by side as `jobstream --help` lists them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import click
from rich.console import RenderableType
from rich.live import Live
from rich.text import Text

from cli.app import JOB_FAILED, USAGE, Session, json_option, pass_session
from cli.render import counts_line, job_detail, job_line, jobs_table, stats_view, to_json, to_json_line
from jobs import CreateOptions, Job, JobNotFound
from jobs.connection import masked
from jobs.model import COMPLETED, ENDED, PRIORITIES, STATUSES

INFO_REFRESH_SECONDS = 1.0


@click.command()
@click.option("--watch", is_flag=True, help="Refresh every second until Ctrl-C.")
@json_option
@pass_session
def info(session: Session, watch: bool) -> None:
    """Show counts by status, queue depth by priority, workers and what they run, paused? Which Redis?

    \b
    Examples:
      jobstream info
      jobstream info --watch
      jobstream --json info | jq .queues
    """
    if not watch:
        _print_info(session, to_json)
        return
    try:
        if session.json or not session.console.is_terminal:
            while True:  # a pipe gets each refresh in turn: JSON as one line each, text after a blank line
                _print_info(session, to_json_line)
                if not session.json:
                    session.console.print()
                time.sleep(INFO_REFRESH_SECONDS)
        with Live(_info_view(session), console=session.console, auto_refresh=False) as live:
            while True:
                time.sleep(INFO_REFRESH_SECONDS)
                live.update(_info_view(session), refresh=True)
    except KeyboardInterrupt:
        return


def _print_info(session: Session, dump: Callable[[Any], str]) -> None:
    if session.json:
        click.echo(dump(_stats(session)))
    else:
        session.console.print(_info_view(session))


def _stats(session: Session) -> dict[str, Any]:
    """The stats, and which Redis they come from: the URL (password masked) and where the command found it."""
    settings = session.jobs.settings
    return {**session.jobs.stats(), "redis": {"url": masked(settings.redis_url), "source": settings.redis_url_source}}


def _info_view(session: Session) -> RenderableType:
    """The stats, with the name of each job a worker runs."""
    stats = _stats(session)
    running = {}
    for worker in stats["workers"]:
        if worker.get("current_job"):
            try:
                running[worker["current_job"]] = session.jobs.get(worker["current_job"]).name
            except JobNotFound:  # deleted since the worker took it
                pass
    return stats_view(stats, running)


def parse_params(_ctx: click.Context, _param: click.Parameter, pairs: tuple[str, ...]) -> dict[str, Any]:
    """KEY=VALUE pairs; a value that parses as JSON is that (3, true, null, [1]), any other is a string."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


def parse_object(_ctx: click.Context, _param: click.Parameter, raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object, like '{\"steps\": 3}'")
    return value


# A flag for each of the create options (jobs.options.CreateOptions), named for its field; a test holds them to it.
CREATE_OPTIONS = (
    click.option("--priority", type=click.Choice(PRIORITIES), help="Default: the type's, else normal."),
    click.option(
        "--timeout-seconds",
        type=click.IntRange(min=1),
        metavar="SECONDS",
        help="The longest one attempt may run. Default: the type's.",
    ),
    click.option(
        "--delay",
        "delay_seconds",
        type=float,
        metavar="SECONDS",
        help="Start no sooner than this many seconds from now.",
    ),
    click.option(
        "--run-at", metavar="TIME", help="Start no sooner than this ISO 8601 time, e.g. 2026-12-24T18:00:00Z."
    ),
    click.option("--max-attempts", type=int, metavar="N", help="Attempts in all, automatic retries included."),
    click.option(
        "--backoff",
        metavar="JSON",
        callback=parse_object,
        help='The wait before each retry, e.g. \'{"type": "fixed", "delay_seconds": 5}\'.',
    ),
    click.option(
        "--depends-on",
        multiple=True,
        metavar="ID",
        help="A job that must end first (it waits until then). Repeatable.",
    ),
    click.option(
        "--allow-failure",
        is_flag=True,
        default=None,
        help="With --depends-on: run even when a dependency failed or was canceled.",
    ),
    click.option("--idempotency-key", metavar="KEY", help="The same key within 24 h returns the first job."),
)


def create_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`command` with a flag for each create option, in CreateOptions' order."""
    for option in reversed(CREATE_OPTIONS):
        command = option(command)
    return command


@click.command()
@click.argument("job_type", metavar="TYPE")
@click.option("--name", required=True, help="What the job is called (1..200 characters, shown as text).")
@click.option(
    "--param",
    "pairs",
    multiple=True,
    metavar="KEY=VALUE",
    callback=parse_params,
    help='A param; the value as JSON when it parses (3, true, "3"), else as a string. Repeatable.',
)
@click.option("--params-json", metavar="JSON", callback=parse_object, help="All params as one JSON object.")
@create_options
@click.option("--wait", is_flag=True, help="Wait until the job ends; exit 1 unless it completed.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="With --wait: give up after this long (exit 1). Default: no limit.",
)
@json_option
@pass_session
def enqueue(
    session: Session,
    job_type: str,
    name: str,
    pairs: dict[str, Any],
    params_json: dict[str, Any] | None,
    wait: bool,
    timeout: float | None,
    **options: Any,
) -> None:
    """Create a job of a registered TYPE and print it (its id first).

    \b
    Examples:
      jobstream enqueue demo.sleep --name Nap --param seconds=2 --delay 60
      jobstream enqueue demo.flaky --name Flaky --param fail_times=2 --max-attempts 3 --wait
      jobstream enqueue demo.web_agent --name "Nightly export" --param steps=5 --priority high --wait
      jobstream enqueue demo.web_agent --name Export --params-json '{"steps": 3}' --idempotency-key export-12-02
      jobstream enqueue demo.noop --name Load --depends-on 19ad3c0e1f20000a1b2c3
    """
    if timeout is not None and not wait:
        raise click.UsageError("--timeout needs --wait")
    params = {**(params_json or {}), **pairs} if params_json is not None or pairs else None
    job = session.jobs.submit(job_type, name, params, CreateOptions(**options))
    if not wait:
        print_job(session, job)
        return
    if not session.json:
        session.console.print(job_line(job))
    try:
        job = session.jobs.wait(job.id, timeout=float("inf") if timeout is None else timeout)
    except TimeoutError as exc:
        click.echo(f"jobstream: {exc}", err=True)
        raise SystemExit(JOB_FAILED) from None
    print_job(session, job)
    if job.status != COMPLETED:
        raise SystemExit(JOB_FAILED)


@click.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only jobs with this status.")
@click.option("--q", metavar="TEXT", help="An exact id, or part of a name (case-insensitive).")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True, help="Jobs per page.")
@click.option("--cursor", metavar="CURSOR", help="The next page: the cursor the previous page printed.")
@json_option
@pass_session
def list_jobs(session: Session, status: str | None, q: str | None, limit: int, cursor: str | None) -> None:
    """List jobs, newest first, with the counts by status.

    \b
    Examples:
      jobstream list
      jobstream list --status failed --q export
      jobstream --json list --limit 200 | jq -r '.jobs[].id'
    """
    page = session.jobs.list(status=status, q=q, limit=limit, cursor=cursor)
    if session.json:
        click.echo(to_json(page))
        return
    session.console.print(jobs_table(page.jobs))
    session.console.print(counts_line(page.counts))
    if page.next_cursor:
        session.console.print(Text(f"more: --cursor {page.next_cursor}", style="dim"))


@click.command()
@click.argument("job_id", metavar="ID")
@json_option
@pass_session
def show(session: Session, job_id: str) -> None:
    """Show one job: every field, and its last 1000 log lines.

    \b
    Examples:
      jobstream show 0193a5c4f2b0000a1b2c3
      jobstream --json show 0193a5c4f2b0000a1b2c3 | jq .result
    """
    job = session.jobs.get(job_id)
    if session.json:
        click.echo(to_json(job))
    else:
        session.console.print(job_detail(job))


@click.command()
@click.argument("job_ids", metavar="ID...", nargs=-1, required=True)
@json_option
@pass_session
def cancel(session: Session, job_ids: tuple[str, ...]) -> None:
    """Cancel jobs: a pending one at once, an active one is stopped by its worker. Exit 2 if any could not be.

    \b
    Examples:
      jobstream cancel 0193a5c4f2b0000a1b2c3
      jobstream --json list --status pending | jq -r '.jobs[].id' | xargs jobstream cancel
    """
    results = session.jobs.cancel_many(job_ids)
    if session.json:
        click.echo(to_json(results))
    for result in results:
        if not session.json:
            why = f" ({result.status})" if result.outcome == "conflict" and result.status else ""
            session.console.print(Text.assemble(result.id, "  ", result.outcome.replace("_", " "), why))
    if any(result.outcome in ("not_found", "conflict") for result in results):
        raise SystemExit(USAGE)


@click.command()
@click.argument("job_id", metavar="ID")
@json_option
@pass_session
def retry(session: Session, job_id: str) -> None:
    """Run a failed or canceled job again now: same id, attempts + 1, logs kept.

    \b
    Example:
      jobstream retry 0193a5c4f2b0000a1b2c3
    """
    print_job(session, session.jobs.retry(job_id))


@click.command()
@click.argument("job_id", metavar="ID")
@json_option
@pass_session
def delete(session: Session, job_id: str) -> None:
    """Delete a job that is not active, with its logs.

    \b
    Example:
      jobstream delete 0193a5c4f2b0000a1b2c3
    """
    session.jobs.delete(job_id)
    _print_done(session, {"id": job_id, "deleted": True}, f"deleted {job_id}")


@click.command()
@json_option
@pass_session
def pause(session: Session) -> None:
    """Stop handing out pending jobs; running ones finish.

    \b
    Example:
      jobstream pause && jobstream info
    """
    session.jobs.pause()
    _print_done(session, {"paused": True}, "paused: workers take no new job until `jobstream resume`")


@click.command()
@json_option
@pass_session
def resume(session: Session) -> None:
    """Hand out pending jobs again after `pause`.

    \b
    Example:
      jobstream resume
    """
    session.jobs.resume()
    _print_done(session, {"paused": False}, "resumed")


@click.command()
@click.option("--status", type=click.Choice(ENDED), help="Only ended jobs with this status. Default: every ended one.")
@click.option(
    "--older-than",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar="SECONDS",
    help="Only jobs that ended at least this long ago.",
)
@json_option
@pass_session
def clean(session: Session, status: str | None, older_than: int) -> None:
    """Delete ended jobs (completed, failed, canceled) and print how many went.

    \b
    Examples:
      jobstream clean --older-than 3600
      jobstream clean --status failed
    """
    ids = session.jobs.clean(status=status, older_than_seconds=older_than)
    _print_done(session, {"deleted": len(ids), "ids": ids}, f"deleted {len(ids)} ended jobs")


def print_job(session: Session, job: Job) -> None:
    if session.json:
        click.echo(to_json(job))
        return
    session.console.print(job_line(job))
    if job.status == COMPLETED and job.result is not None:
        session.console.print(Text(f"result: {json.dumps(job.result, ensure_ascii=False)}", style="dim"))


def _print_done(session: Session, data: dict[str, Any], message: str) -> None:
    if session.json:
        click.echo(to_json(data))
    else:
        session.console.print(Text(message))

"""`jobstream schedule`: recurring jobs declared (upserted), listed, paused, resumed, run now and deleted."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from cli.app import Session, json_option, pass_session
from cli.commands import parse_params, print_job
from cli.render import to_json
from jobs import Schedule


@click.group()
def schedule() -> None:
    """Recurring jobs: a job of one type on a cron or every N seconds, each tick once however many pools run.

    \b
    Examples:
      jobstream schedule set nightly-export demo.sleep --cron "0 3 * * *" --tz Europe/Berlin
      jobstream schedule list
      jobstream schedule run nightly-export
    """


@schedule.command("set")
@click.argument("schedule_id", metavar="ID")
@click.argument("job_type", metavar="TYPE")
@click.option("--cron", metavar="EXPR", help='Five cron fields ("0 3 * * *") or @hourly/@daily/@weekly/@monthly.')
@click.option("--every", "every_seconds", type=int, metavar="SECONDS", help="Or: every this many seconds.")
@click.option("--tz", "timezone", metavar="NAME", help="The cron's IANA time zone (Europe/Berlin). Default: UTC.")
@click.option("--name", help="The jobs' name. Default: the schedule's id.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    callback=parse_params,
    help='A param; the value as JSON when it parses (3, true, "3"), else as a string. Repeatable.',
)
@click.option(
    "--overlap",
    type=click.Choice(("skip", "allow")),
    help="skip (default): no new job while the last one is pending or active.",
)
@json_option
@pass_session
def set_schedule(session: Session, schedule_id: str, job_type: str, **given: Any) -> None:
    """Create or replace schedule ID: a job of TYPE on --cron or --every.

    \b
    Examples:
      jobstream schedule set nightly-export demo.sleep --cron "0 3 * * *" --tz Europe/Berlin --param seconds=5
      jobstream schedule set heartbeat demo.noop --every 60
    """
    options = {key: value for key, value in given.items() if value is not None and value != {}}
    _print(session, session.jobs.schedule(schedule_id, job_type, **options))


@schedule.command("list")
@json_option
@pass_session
def list_schedules(session: Session) -> None:
    """Every schedule, by id: its cadence, next run and last job."""
    found = session.jobs.schedules()
    if session.json:
        click.echo(to_json({"schedules": found}))
        return
    if not found:
        session.console.print("no schedules")
        return
    table = Table("id", "type", "cadence", "next run", "last job", box=None)
    for each in found:
        next_run = "paused" if each.paused else each.next_run_at or ""
        table.add_row(each.id, each.type, cadence(each), next_run, each.last_job_id or "")
    session.console.print(table)


@schedule.command("rm")
@click.argument("schedule_id", metavar="ID")
@pass_session
def remove_schedule(session: Session, schedule_id: str) -> None:
    """Delete schedule ID (the jobs it made stay)."""
    session.jobs.unschedule(schedule_id)
    if not session.json:
        session.console.print(f"schedule {schedule_id} deleted")


@schedule.command("pause")
@click.argument("schedule_id", metavar="ID")
@json_option
@pass_session
def pause_schedule(session: Session, schedule_id: str) -> None:
    """No more ticks of schedule ID until resumed."""
    _print(session, session.jobs.pause_schedule(schedule_id))


@schedule.command("resume")
@click.argument("schedule_id", metavar="ID")
@json_option
@pass_session
def resume_schedule(session: Session, schedule_id: str) -> None:
    """Tick again, from the next tick after now."""
    _print(session, session.jobs.resume_schedule(schedule_id))


@schedule.command("run")
@click.argument("schedule_id", metavar="ID")
@json_option
@pass_session
def run_schedule(session: Session, schedule_id: str) -> None:
    """Create schedule ID's job now (its next run stays)."""
    print_job(session, session.jobs.run_schedule(schedule_id))


def cadence(each: Schedule) -> str:
    """The schedule's cadence as one short phrase."""
    if each.every_seconds is not None:
        return f"every {each.every_seconds} s"
    return f"{each.cron} ({each.timezone})"


def _print(session: Session, each: Schedule) -> None:
    if session.json:
        click.echo(to_json(each))
        return
    state = "paused" if each.paused else f"next run {each.next_run_at}"
    session.console.print(f"{each.id}  {each.type}  {cadence(each)}  {state}")

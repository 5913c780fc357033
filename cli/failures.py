"""`jobstream failures`: failed jobs grouped by type and error, and a whole group retried or deleted at once."""

from __future__ import annotations

import click
from rich.table import Table

from cli.app import Session, json_option, pass_session
from cli.render import to_json


@click.command()
@click.option("--retry", "retry_key", metavar="KEY", help="Retry every job of this group.")
@click.option("--delete", "delete_key", metavar="KEY", help="Delete every job of this group.")
@json_option
@pass_session
def failures(session: Session, retry_key: str | None, delete_key: str | None) -> None:
    """List the failure groups, largest first, or retry or delete one group's jobs.

    \b
    Examples:
      jobstream failures
      jobstream failures --retry 3f2a9c0d1e4b5a6f
      jobstream failures --delete 3f2a9c0d1e4b5a6f
    """
    if retry_key and delete_key:
        raise click.UsageError("give --retry or --delete, not both")
    key = retry_key or delete_key
    if key is not None:
        act = session.jobs.retry_failures if retry_key else session.jobs.delete_failures
        ids = act(key)
        verb = "retried" if retry_key else "deleted"
        if session.json:
            click.echo(to_json({"count": len(ids), "ids": ids}))
        else:
            session.console.print(f"{verb} {len(ids)} jobs of group {key}")
        return
    groups = session.jobs.failures()
    if session.json:
        click.echo(to_json({"groups": groups}))
        return
    if not groups:
        session.console.print("no failed jobs")
        return
    table = Table("key", "count", "type", "error", "last failed", box=None)
    for group in groups:
        table.add_row(group["key"], str(group["count"]), group["type"], group["error"], group["last_failed_at"])
    session.console.print(table)

"""The `jobstream` command: the terminal skin. It calls the Python API (`jobs.Jobs`) and nothing else.

.venv/bin/jobstream info
.venv/bin/jobstream enqueue demo.web_agent --name "Nightly export" --param steps=5 --wait
.venv/bin/jobstream watch
"""

from __future__ import annotations

from cli import commands, processes
from cli.app import jobstream
from cli.failures import failures
from cli.schedules import schedule
from cli.watch import watch

for command in (
    commands.info,
    commands.enqueue,
    commands.list_jobs,
    commands.show,
    commands.cancel,
    commands.retry,
    commands.delete,
    commands.pause,
    commands.resume,
    commands.clean,
    failures,
    schedule,
    watch,
    processes.web,
    processes.worker,
):
    jobstream.add_command(command)


def main() -> None:
    """The entry point of `.venv/bin/jobstream`."""
    jobstream(prog_name="jobstream")


__all__ = ["jobstream", "main"]

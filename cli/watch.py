"""`jobstream watch`: a live progress bar per running job, fed by the event stream (`Jobs.events()`)."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TaskProgressColumn, TextColumn
from rich.text import Text

from cli.app import JOB_FAILED, OK, Session, json_option, pass_session
from cli.render import job_line, to_json_line
from jobs import Job, JobEvent, Jobs
from jobs.model import ACTIVE, COMPLETED, parse_time
from jobs.stream.events import JOB_REMOVED, RESET

NAME_WIDTH = 40


class Elapsed(ProgressColumn):
    """How long the job has run (since its `started_at`, not since the bar appeared)."""

    def render(self, task: Task) -> Text:
        seconds = int((datetime.now(UTC) - task.fields["started"]).total_seconds())
        return Text(f"{seconds // 60}:{seconds % 60:02d}", style="yellow")


class Bars:
    """The running jobs as rich progress bars: one appears when a job starts, fills with its progress and
    action, and leaves with a line that tells how the job ended."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[action]}", markup=False, style="dim"),
            Elapsed(),
            console=console,
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> Bars:
        self.progress.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.progress.stop()

    def show(self, job: Job) -> None:
        """A job's new state: its bar while it is active; a line when it ends, or waits for another attempt."""
        if job.status != ACTIVE:
            if self.tasks.get(job.id) is not None or job.ended:
                self.remove(job.id)
                self.progress.console.print(job_line(job))
            return
        action = "cancel requested" if job.cancel_requested else job.action or ""
        task = self.tasks.get(job.id)
        if task is None:
            started = parse_time(job.started_at) or datetime.now(UTC)
            self.tasks[job.id] = self.progress.add_task(
                _label(job), total=100, completed=job.progress, action=action, started=started
            )
        else:
            self.progress.update(task, completed=job.progress, action=action)

    def note(self, message: str) -> None:
        self.progress.console.print(Text(message))

    def remove(self, job_id: str) -> None:
        task = self.tasks.pop(job_id, None)
        if task is not None:
            self.progress.remove_task(task)

    def reset(self, active: list[Job]) -> None:
        """Start again from the jobs that run now (after a `reset`: the events missed are gone)."""
        for job_id in list(self.tasks):
            self.remove(job_id)
        for job in active:
            self.show(job)


class Lines:
    """Where the output is no terminal (a pipe, a log file): a line per change of a job's status, progress or
    action."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.seen: dict[str, tuple[str, int, str | None]] = {}

    def __enter__(self) -> Lines:
        return self

    def __exit__(self, *_exc: object) -> None:
        pass

    def show(self, job: Job) -> None:
        state = (job.status, job.progress, job.action)
        if self.seen.get(job.id) != state and (job.status == ACTIVE or job.ended or job.id in self.seen):
            self.console.print(job_line(job))
        if job.status == ACTIVE:
            self.seen[job.id] = state
        else:
            self.seen.pop(job.id, None)

    def note(self, message: str) -> None:
        self.console.print(Text(message))

    def remove(self, job_id: str) -> None:
        self.seen.pop(job_id, None)

    def reset(self, active: list[Job]) -> None:
        self.seen.clear()
        for job in active:
            self.show(job)


class Quiet(Lines):
    """--json: the events are the output, nothing else is drawn."""

    def show(self, job: Job) -> None:
        pass

    def note(self, message: str) -> None:
        pass


View = Bars | Lines


def _label(job: Job) -> str:
    name = job.name if len(job.name) <= NAME_WIDTH else job.name[: NAME_WIDTH - 1] + "…"
    return f"{name:<{NAME_WIDTH}}"


def active_jobs(jobs: Jobs) -> tuple[list[Job], str | None]:
    """Every active job, and the event id to follow the stream after."""
    page = jobs.list(status=ACTIVE, limit=200)
    found, after = list(page.jobs), page.last_event_id
    while page.next_cursor:
        page = jobs.list(status=ACTIVE, limit=200, cursor=page.next_cursor)
        found += page.jobs
    return found, after


@click.command()
@click.option("--job", "job_id", metavar="ID", help="Follow this job only; exit when it ends (0 completed, else 1).")
@json_option
@pass_session
def watch(session: Session, job_id: str | None) -> None:
    """Show live progress bars of the running jobs until Ctrl-C.

    Fed by the event stream: a bar appears when a job starts and leaves, with the job's end status, when it
    ends; a Redis restart is waited out and nothing is missed. Where the output is not a terminal, each
    change is a line; with --json, each event is one JSON object per line (and a job that had already ended
    before is printed as the job).

    \b
    Examples:
      jobstream watch
      jobstream watch --job 0193a5c4f2b0000a1b2c3 && echo done
      jobstream --json watch | jq -c 'select(.type == "job-update") | .job.progress'
    """
    jobs = session.jobs
    if job_id is not None:
        job = jobs.get(job_id)  # JobNotFound: exit 2; Redis down: exit 3, before the stream waits it out
        if job.ended:
            _print(session, job)
            raise SystemExit(_exit_code(job))
        active, after = ([job] if job.status == ACTIVE else []), job.last_event_id
        if job.status != ACTIVE and not session.json:
            session.console.print(job_line(job))  # pending: say so until it starts
    else:
        active, after = active_jobs(jobs)
    view: View
    if session.json:
        view = Quiet(session.console)
    elif session.console.is_terminal:
        view = Bars(session.console)
    else:
        view = Lines(session.console)
    events = jobs.events(after=after, job=job_id)
    try:
        with view:
            view.reset(active)
            for event in events:
                if session.json:
                    click.echo(to_json_line(event))
                code = _apply(event, view, jobs, job_id)
                if code is not None:
                    raise SystemExit(code)
    except KeyboardInterrupt:
        raise SystemExit(OK) from None
    finally:
        getattr(events, "close", lambda: None)()  # a generator: closing it gives its subscription back now


def _apply(event: JobEvent, view: View, jobs: Jobs, job_id: str | None) -> int | None:
    """Show one event; with --job, the exit code once that job has ended."""
    if event.type == RESET:  # the events missed are gone: start again from what runs now
        current = [jobs.get(job_id)] if job_id else active_jobs(jobs)[0]
        view.reset([job for job in current if job.status == ACTIVE])
        if job_id and current[0].ended:
            view.show(current[0])
            return _exit_code(current[0])
    elif event.type == JOB_REMOVED:
        view.remove(event.job_id or "")
        if job_id:
            view.note(f"{job_id} was deleted")
            return JOB_FAILED
    elif event.job is not None:
        view.show(event.job)
        if job_id and event.job.ended:
            return _exit_code(event.job)
    return None


def _print(session: Session, job: Job) -> None:
    if session.json:
        click.echo(to_json_line(job))
    else:
        session.console.print(job_line(job))


def _exit_code(job: Job) -> int:
    return OK if job.status == COMPLETED else JOB_FAILED

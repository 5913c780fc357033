"""`jobstream web` and `jobstream worker`: the two processes, started as `make run` starts them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from jobs.config import CHECKOUT, Settings

ROOT = Path(__file__).resolve().parent.parent  # gunicorn.conf.py, app.py and worker.py live here


def find_redis() -> None:
    """REDIS_URL for the process, as every command finds it: a web or a pool started beside `make run`
    joins its Redis (the process itself reads REDIS_URL alone)."""
    os.environ["REDIS_URL"] = Settings.from_env(checkout=CHECKOUT).redis_url


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--bind", metavar="HOST:PORT", help="Where to listen (JOBSTREAM_BIND). Default: 127.0.0.1:8000.")
@click.argument("gunicorn_args", nargs=-1, type=click.UNPROCESSED)
def web(bind: str | None, gunicorn_args: tuple[str, ...]) -> None:
    """Serve the REST API, the page and the stream: gunicorn with gevent workers and gunicorn.conf.py.

    Other arguments go to gunicorn. It needs a Redis that runs (--url / REDIS_URL, else that of a running
    `make run`): unlike `make run`, it starts none.

    \b
    Examples:
      jobstream web
      jobstream --url redis://10.0.0.5:6379/0 web --bind 0.0.0.0:8000 --workers 4
    """
    if bind:
        os.environ["JOBSTREAM_BIND"] = bind
    find_redis()
    os.chdir(ROOT)
    args = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", *gunicorn_args]
    os.execv(sys.executable, args)  # gunicorn is the process: signals and exit status are its own


@click.command()
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    metavar="N",
    help="Worker processes (JOBSTREAM_CONCURRENCY). Default: 5.",
)
def worker(concurrency: int | None) -> None:
    """Run the pool of RQ worker processes in the foreground until Ctrl-C (or SIGTERM).

    \b
    Examples:
      jobstream worker
      jobstream --url redis://10.0.0.5:6379/0 worker --concurrency 8
    """
    if concurrency is not None:
        os.environ["JOBSTREAM_CONCURRENCY"] = str(concurrency)
    find_redis()
    sys.path.insert(0, str(ROOT))
    import worker as pool  # the worker skin; imported here only, it is no part of the other subcommands

    pool.main()

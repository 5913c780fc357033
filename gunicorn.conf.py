"""gunicorn settings for jobstream: gevent workers sized for thousands of open streams."""

from __future__ import annotations

import importlib.util
import os
import signal
from pathlib import Path

bind = os.environ.get("JOBSTREAM_BIND", "127.0.0.1:8000")
wsgi_app = "app:create_app()"
worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
# Each open stream is one connection held by one greenlet.
worker_connections = 10_000
# A stream is long-lived; the worker heartbeat is separate from request time with gevent.
timeout = 30
graceful_timeout = 10
keepalive = 5
# Never preload with gevent: the worker must patch before the app (and redis-py) load.
preload_app = False
accesslog = "-" if os.environ.get("JOBSTREAM_ACCESS_LOG") else None
# gunicorn 27's control socket is one path per user; several jobstream servers would fight over it.
control_socket_disable = True


def _logs():
    """jobs/telemetry/logs.py, loaded by its path: importing it as a module would load the core, and with it redis-py
    and ssl, into the master before gevent patches the workers. It needs the standard library only."""
    spec = importlib.util.spec_from_file_location(
        "jobstream_logs", Path(__file__).with_name("jobs") / "telemetry" / "logs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# gunicorn's own lines and the app's in one format, JSON with JOBSTREAM_LOG_FORMAT=json (the app checks the value).
logconfig_dict = _logs().config_dict(
    os.environ.get("JOBSTREAM_LOG_FORMAT", "").strip() or "text",
    access_log=bool(os.environ.get("JOBSTREAM_ACCESS_LOG")),
)


def when_ready(server):
    server.log.info("jobstream is up: open http://%s", bind)


def child_exit(server, worker):
    """A worker process is gone: its open-streams gauge leaves the sum (PROMETHEUS_MULTIPROC_DIR)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess  # here: the master needs it only once a worker has died

        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    """End open streams at once on shutdown, so gunicorn never waits out graceful_timeout for them; the first
    worker also warns when Redis would lose jobs by itself (jobs/health.py)."""
    from web.context import EXTENSION  # here, not at the top: gevent patches the worker before the app loads

    streams = worker.wsgi.extensions[EXTENSION].streams

    def chain(handler):
        def handle(sig, frame):
            # Off the signal handler: closing streams talks to Redis, which may block.
            import gevent

            gevent.spawn(streams.close_all)
            handler(sig, frame)

        return handle

    worker.handle_exit = chain(worker.handle_exit)
    worker.handle_quit = chain(worker.handle_quit)
    signal.signal(signal.SIGTERM, worker.handle_exit)
    signal.signal(signal.SIGQUIT, worker.handle_quit)
    signal.signal(signal.SIGINT, worker.handle_quit)
    if worker.age == 1:  # the server's first worker process: one warning per server, not one per process
        from jobs.telemetry.health import warn_about

        warn_about(worker.wsgi.extensions[EXTENSION].jobs.redis)

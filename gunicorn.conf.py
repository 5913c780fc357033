"""gunicorn settings for jobstream: gevent workers sized for thousands of open streams."""

from __future__ import annotations

import os
import signal

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


def when_ready(server):
    server.log.info("jobstream is up: open http://%s", bind)


def post_worker_init(worker):
    """End open streams at once on shutdown, so gunicorn never waits out graceful_timeout for them."""
    from web.api import EXTENSION  # here, not at the top: gevent patches the worker before the app loads

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

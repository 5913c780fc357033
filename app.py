"""The web skin: create_app() builds the clients and the stream fan-out once, then serves web/api.py's routes."""

from __future__ import annotations

from typing import Any

import redis
from flask import Flask
from gevent.monkey import get_original
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from jobs.client import Jobs
from jobs.config import Settings
from jobs.connection import connect, connect_streams
from jobs.errors import JobsError
from jobs.stream.fanout import StreamRegistry
from jobs.stream.feeds import RequestFanout
from jobs.stream.hub import ProcessFanout
from web import request_log, security
from web.api import register_routes
from web.context import EXTENSION, Services
from web.errors import handle_http_error, handle_jobs_error, handle_redis_error, handle_validation_error

WEB_CONNECTIONS = 200  # the command pool's size; a burst of requests waits its turn for one


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then the environment, then the test config."""
    app = Flask(__name__)
    app.config.from_mapping(MAX_CONTENT_LENGTH=1024 * 1024)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep ApiJob's field order
    app.jinja_env.policies["json.dumps_kwargs"] = {"sort_keys": False}  # also in the page's `tojson` data
    if test_config:
        app.config.update(test_config)
    settings = app.config.get("SETTINGS") or Settings.from_env()
    client = connect(settings.redis_url, max_connections=WEB_CONNECTIONS)
    stream_client = connect_streams(settings.redis_url, settings.stream_connections)
    fanout: RequestFanout | ProcessFanout
    if settings.fanout == "process":
        fanout = ProcessFanout(stream_client, settings.stream_queue_events, settings.heartbeat_seconds)
    else:
        selector = get_original("selectors", "DefaultSelector")()  # epoll, even where gevent replaced it
        fanout = RequestFanout(stream_client, settings.stream_queue_events, settings.heartbeat_seconds, selector)
    streams = StreamRegistry(settings.stream_write_timeout)
    app.extensions[EXTENSION] = Services(settings, Jobs(client, settings), fanout, stream_client, streams)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(ValidationError, handle_validation_error)
    app.register_error_handler(JobsError, handle_jobs_error)
    app.register_error_handler(redis.RedisError, handle_redis_error)
    request_log.install(app)  # first: a request that a later check refuses still has its id
    security.install(app, settings)
    register_routes(app)
    return app

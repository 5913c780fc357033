"""The web skin: create_app() builds the clients and the stream fan-out once, then serves web/api.py's routes."""

from __future__ import annotations

import base64
import hmac
from typing import Any

import redis
from flask import Flask, Response, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from jobs.client import Jobs
from jobs.config import Settings
from jobs.connection import connect, connect_streams
from jobs.errors import JobsError
from jobs.stream import ProcessFanout, RequestFanout, StreamRegistry
from web.api import EXTENSION, Services, register_routes, services
from web.errors import error, handle_http_error, handle_jobs_error, handle_redis_error, handle_validation_error

WEB_CONNECTIONS = 200  # the command pool's size; a burst of requests waits its turn for one


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then the environment, then the test config."""
    app = Flask(__name__)
    app.config.from_mapping(MAX_CONTENT_LENGTH=1024 * 1024)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep ApiJob's field order
    if test_config:
        app.config.update(test_config)
    settings = app.config.get("SETTINGS") or Settings.from_env()
    client = connect(settings.redis_url, max_connections=WEB_CONNECTIONS)
    stream_client = connect_streams(settings.redis_url, settings.stream_connections)
    fanout: RequestFanout | ProcessFanout
    if settings.fanout == "process":
        fanout = ProcessFanout(stream_client, settings.stream_queue_events)
    else:
        fanout = RequestFanout(stream_client)
    streams = StreamRegistry(settings.stream_write_timeout)
    app.extensions[EXTENSION] = Services(settings, Jobs(client, settings), fanout, stream_client, streams)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(ValidationError, handle_validation_error)
    app.register_error_handler(JobsError, handle_jobs_error)
    app.register_error_handler(redis.RedisError, handle_redis_error)
    if settings.auth:
        app.before_request(require_auth)
    register_routes(app)
    return app


def require_auth() -> Response | None:
    """HTTP basic auth on every route but /healthz, when JOBSTREAM_AUTH is set."""
    if request.path == "/healthz":
        return None
    expected = base64.b64encode((services().settings.auth or "").encode()).decode()
    given = request.headers.get("Authorization", "")
    if given.startswith("Basic ") and hmac.compare_digest(given[6:].strip(), expected):
        return None
    response = error(401, "authentication required")
    response.headers["WWW-Authenticate"] = 'Basic realm="jobstream"'
    return response

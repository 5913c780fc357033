"""The web skin: create_app(), the routes, one JSON error shape. Turns HTTP into calls on jobs/."""

from __future__ import annotations

import base64
import hmac
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from flask import Flask, Response, abort, current_app, jsonify, render_template, request, url_for
from marshmallow import Schema, ValidationError
from werkzeug.exceptions import HTTPException

from jobs import control, schemas
from jobs.config import Settings
from jobs.connection import connect_streams, connect_web
from jobs.model import ACTIVE
from jobs.openapi import describe_types, openapi
from jobs.registry import get_type, load
from jobs.store import JobStore, Outcome
from jobs.stream import ProcessFanout, RequestFanout, StreamHandle, StreamRegistry, stream

logger = logging.getLogger(__name__)

ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    503: "unavailable",
}


@dataclass
class Services:
    """What the routes use, built once per process in the factory."""

    settings: Settings
    redis: redis.Redis
    store: JobStore
    fanout: RequestFanout | ProcessFanout
    stream_redis: redis.Redis
    streams: StreamRegistry


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then the environment, then the test config."""
    app = Flask(__name__)
    app.config.from_mapping(MAX_CONTENT_LENGTH=1024 * 1024)
    app.json.sort_keys = False  # keep ApiJob's field order
    if test_config:
        app.config.update(test_config)
    settings = app.config.get("SETTINGS") or Settings.from_env()
    load(settings.job_type_modules)
    client = connect_web(settings.redis_url)
    stream_client = connect_streams(settings.redis_url, settings.stream_connections)
    fanout: RequestFanout | ProcessFanout
    if settings.fanout == "process":
        fanout = ProcessFanout(stream_client, settings.stream_queue_events)
    else:
        fanout = RequestFanout(stream_client)
    app.extensions["jobstream"] = Services(
        settings,
        client,
        JobStore(client, settings),
        fanout,
        stream_client,
        StreamRegistry(settings.stream_write_timeout),
    )
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(ValidationError, handle_validation_error)
    app.register_error_handler(redis.RedisError, handle_redis_error)
    if settings.auth:
        app.before_request(require_auth)
    register_routes(app)
    return app


def services() -> Services:
    return current_app.extensions["jobstream"]


# -- errors ----------------------------------------------------------------------------------


def error(status: int, message: str, details: dict[str, Any] | None = None, code: str | None = None) -> Response:
    """SPEC's one error shape: {"error": {"code", "message", "details"}}."""
    body = {"code": code or ERROR_CODES.get(status, "error"), "message": message, "details": details or {}}
    response = jsonify(error=body)
    response.status_code = status
    return response


def handle_http_error(exc: HTTPException) -> Response:
    response = error(exc.code or 500, exc.description or exc.name)
    if exc.code == 405 and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def handle_validation_error(exc: ValidationError) -> Response:
    details = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
    return error(422, "the request is not valid", details)


def handle_redis_error(exc: redis.RedisError) -> Response:
    logger.warning("Redis error: %s", exc)
    response = error(503, "Redis is unavailable; try again shortly", code="redis_unavailable")
    response.headers["Retry-After"] = "3"
    return response


def require_auth() -> Response | None:
    """HTTP basic auth on every route but /healthz, when JOBSTREAM_AUTH is set."""
    if request.path == "/healthz":
        return None
    expected = base64.b64encode(services().settings.auth.encode()).decode()  # type: ignore[union-attr]
    given = request.headers.get("Authorization", "")
    if given.startswith("Basic ") and hmac.compare_digest(given[6:].strip(), expected):
        return None
    response = error(401, "authentication required")
    response.headers["WWW-Authenticate"] = 'Basic realm="jobstream"'
    return response


def json_body(schema: Schema) -> dict[str, Any]:
    """The request's JSON object, loaded by `schema` (415 / 400 / 422 otherwise)."""
    if not request.is_json:
        abort(415, "send a JSON body with Content-Type: application/json")
    body = request.get_json(silent=True)
    if body is None:
        abort(400, "the body is not valid JSON")
    if not isinstance(body, dict):
        abort(400, "the body must be a JSON object")
    return schema.load(body)


def outcome_error(job_id: str, outcome: Outcome, action: str) -> Response:
    if outcome.result == "missing":
        return error(404, f"no job {job_id}")
    return error(409, f"cannot {action} a job that is {outcome.status}", {"status": outcome.status})


# -- routes ----------------------------------------------------------------------------------


def register_routes(app: Flask) -> None:
    routes: list[tuple[str, Callable[..., Any], list[str]]] = [
        ("/", index, ["GET"]),
        ("/healthz", healthz, ["GET"]),
        ("/api/jobs", create_job, ["POST"]),
        ("/api/jobs", list_jobs, ["GET"]),
        ("/api/jobs/stream", job_stream, ["GET"]),
        ("/api/jobs/cancel", cancel_jobs, ["POST"]),
        ("/api/jobs/clean", clean_jobs, ["POST"]),
        ("/api/jobs/<job_id>", get_job, ["GET"]),
        ("/api/jobs/<job_id>", delete_job, ["DELETE"]),
        ("/api/jobs/<job_id>/cancel", cancel_job, ["POST"]),
        ("/api/jobs/<job_id>/retry", retry_job, ["POST"]),
        ("/api/job-types", list_job_types, ["GET"]),
        ("/api/stats", get_stats, ["GET"]),
        ("/api/queue/pause", pause_queue, ["POST"]),
        ("/api/queue/resume", resume_queue, ["POST"]),
        ("/api/openapi.json", openapi_document, ["GET"]),
    ]
    for rule, view, methods in routes:
        app.add_url_rule(rule, view.__name__, view, methods=methods)


def index() -> str:
    settings = services().settings
    return render_template("index.html", heartbeat=settings.heartbeat_seconds)


def healthz() -> Response:
    try:
        services().redis.ping()
    except redis.RedisError as exc:
        return error(503, f"Redis does not answer: {exc}", code="redis_unavailable")
    return jsonify(status="ok")


def create_job() -> tuple[Response, int, dict[str, str]]:
    data = json_body(schemas.job_create)
    job_type = get_type(data["type"])
    if job_type is None:
        raise ValidationError({"type": [f"unknown job type {data['type']!r}"]})
    try:
        params = job_type.schema.load(data["params"])
    except ValidationError as exc:
        raise ValidationError({"params": exc.messages}) from None
    timeout = data["timeout_seconds"] or job_type.timeout
    job = services().store.create(job_type, data["name"], params, timeout)
    location = url_for("get_job", job_id=job["id"])
    return jsonify(job=schemas.job_out.dump(job)), 201, {"Location": location}


def list_jobs() -> Response:
    query = schemas.job_query.load(request.args.to_dict())
    store = services().store
    last_event_id = store.last_event_id()  # read first: every later event is newer than the page
    jobs, next_cursor = store.list(query["status"], query["q"], query["limit"], query["cursor"])
    page = {"jobs": jobs, "next_cursor": next_cursor, "counts": store.counts(), "last_event_id": last_event_id}
    return jsonify(schemas.job_page.dump(page))


def get_job(job_id: str) -> Response:
    job = services().store.get(job_id, with_logs=True)
    if job is None:
        return error(404, f"no job {job_id}")
    return jsonify(job=schemas.job_detail.dump(job))


def delete_job(job_id: str) -> Response:
    outcome = services().store.delete(job_id)
    if not outcome.ok:
        return outcome_error(job_id, outcome, "delete")
    return Response(status=204)


def cancel_job(job_id: str) -> tuple[Response, int] | Response:
    outcome = services().store.cancel(job_id)
    if not outcome.ok:
        return outcome_error(job_id, outcome, "cancel")
    return jsonify(job=schemas.job_out.dump(outcome.job)), 202 if outcome.status == ACTIVE else 200


def cancel_jobs() -> Response:
    ids = json_body(schemas.cancel_many)["ids"]
    store = services().store
    results = []
    for job_id in dict.fromkeys(ids):
        outcome = store.cancel(job_id)
        if outcome.ok:
            kind = "cancel_requested" if outcome.status == ACTIVE else "canceled"
        else:
            kind = "not_found" if outcome.result == "missing" else "conflict"
        results.append({"id": job_id, "outcome": kind, "status": outcome.status or None, "job": outcome.job})
    return jsonify(results=schemas.cancel_outcomes.dump(results))


def retry_job(job_id: str) -> tuple[Response, int] | Response:
    outcome = services().store.retry(job_id)
    if not outcome.ok:
        return outcome_error(job_id, outcome, "retry")
    return jsonify(job=schemas.job_out.dump(outcome.job)), 202


def list_job_types() -> Response:
    return jsonify(job_types=schemas.job_types_out.dump(describe_types()))


def get_stats() -> Response:
    svc = services()
    data = control.stats(svc.store)
    data["streams"] = {"open": len(svc.streams.handles), "fanout": svc.settings.fanout, "pid": os.getpid()}
    return jsonify(data)


def pause_queue() -> Response:
    control.pause(services().store)
    return jsonify(paused=True)


def resume_queue() -> Response:
    control.unpause(services().store)
    return jsonify(paused=False)


def clean_jobs() -> Response:
    query = json_body(schemas.clean)
    deleted = control.clean(services().store, query["status"], query["older_than_seconds"])
    return jsonify(deleted=len(deleted), ids=deleted)


def openapi_document() -> Response:
    return jsonify(openapi())


def job_stream() -> Response:
    query = schemas.stream_query.load(request.args.to_dict())
    svc = services()
    subscription = svc.fanout.subscribe()  # Redis down: a 503 now, not a stream that ends at once
    try:
        last_event_id = request.headers.get("Last-Event-ID") or query["last_event_id"]
        handle = StreamHandle(_socket_closer(request.environ.get("gunicorn.socket")))
        body = stream(
            subscription,
            svc.stream_redis,
            svc.streams,
            handle,
            svc.settings.heartbeat_seconds,
            last_event_id=last_event_id,
            job_id=query["job"],
        )
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        response = Response(body, mimetype="text/event-stream", headers=headers)
    except BaseException:
        subscription.close()  # its connection would otherwise stay taken from the pool for good
        raise
    response.call_on_close(subscription.close)  # also when the client leaves before the body starts
    return response


def _socket_closer(sock: socket.socket | None) -> Callable[[int], None]:
    def close(how: int) -> None:
        if sock is not None:
            try:
                sock.shutdown(how)
            except OSError:
                pass

    return close

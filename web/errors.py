"""SPEC's one error shape, {"error": {"code", "message", "details", "request_id"}}, for every failure under /api/."""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Response, jsonify
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from jobs import schemas
from jobs.errors import JobsError
from web.request_log import request_id

logger = logging.getLogger(__name__)

ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    500: "internal_error",
    503: "unavailable",
}
STATUS_OF = {"validation_error": 422, "not_found": 404, "conflict": 409, "idempotency_conflict": 409}


def error(status: int, message: str, details: dict[str, Any] | None = None, code: str | None = None) -> Response:
    """The error response: `code` defaults to the status's name in ERROR_CODES; `request_id` names the request in
    the logs."""
    body = {"code": code or ERROR_CODES.get(status, "error"), "message": message, "details": details or {}}
    body["request_id"] = request_id()
    response = jsonify(schemas.error_out.dump({"error": body}))
    response.status_code = status
    return response


def handle_jobs_error(exc: JobsError) -> Response:
    """The Python API's refusal as the REST API's: the same code and details, with its HTTP status."""
    return error(STATUS_OF[exc.code], exc.message, exc.details, code=exc.code)


def handle_http_error(exc: HTTPException) -> Response:
    response = error(exc.code or 500, exc.description or exc.name)
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
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

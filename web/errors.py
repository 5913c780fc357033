"""SPEC's one error shape, {"error": {"code", "message", "details"}}, for every failure under /api/."""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Response, jsonify
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from jobs import schemas
from jobs.store import Outcome

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


def error(status: int, message: str, details: dict[str, Any] | None = None, code: str | None = None) -> Response:
    """The error response: `code` defaults to the status's name in ERROR_CODES."""
    body = {"code": code or ERROR_CODES.get(status, "error"), "message": message, "details": details or {}}
    response = jsonify(schemas.error_out.dump({"error": body}))
    response.status_code = status
    return response


def outcome_error(job_id: str, outcome: Outcome, action: str) -> Response:
    """Why a guarded change did not happen: the job is missing (404) or in the wrong status (409)."""
    if outcome.result == "missing":
        return error(404, f"no job {job_id}")
    return error(409, f"cannot {action} a job that is {outcome.status}", {"status": outcome.status})


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

"""What the Python API raises: each error has the `code` and `details` of the REST API's error body."""

from __future__ import annotations

from typing import Any


class JobsError(Exception):
    """A request jobstream refused; nothing was changed."""

    code = "error"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidRequest(JobsError):
    """A field is missing, of the wrong type or out of range; `details` names each field."""

    code = "validation_error"


class JobNotFound(JobsError):
    code = "not_found"


class JobConflict(JobsError):
    """The job's status does not allow the change (`details["status"]`)."""

    code = "conflict"


class IdempotencyConflict(JobsError):
    """The idempotency key was used in the last 24 h for a different request."""

    code = "idempotency_conflict"

"""JSON schemas of job params, derived from their marshmallow schemas by apispec."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from jobs.registry import JobType, job_types


@lru_cache(maxsize=1)
def _plugin() -> MarshmallowPlugin:
    plugin = MarshmallowPlugin()
    APISpec("jobstream", "1", "3.0.3", plugins=[plugin])
    return plugin


def describe_types() -> list[dict[str, Any]]:
    """Every registered type with its params' JSON schema, for the API and the page's form."""
    return [_describe(t) for t in job_types()]


def _describe(job_type: JobType) -> dict[str, Any]:
    return {
        "name": job_type.name,
        "description": job_type.description,
        "timeout_seconds": job_type.timeout,
        "params_schema": _plugin().converter.schema2jsonschema(job_type.schema),
    }


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, responses: dict[int, dict[str, Any]], body: str | None = None, **extra: Any) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": {str(code): r for code, r in responses.items()}}
    if body:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    operation.update(extra)
    return operation


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"in": "query", "name": name, "schema": schema, "required": False, "description": description}


@lru_cache(maxsize=1)
def openapi() -> dict[str, Any]:
    """The OpenAPI 3 description of the whole API, schemas taken from jobs.schemas."""
    from jobs import schemas

    spec = APISpec("jobstream", "1.0.0", "3.0.3", plugins=[MarshmallowPlugin()])
    for name, schema in (
        ("JobCreate", schemas.JobCreateSchema),
        ("Job", schemas.JobSchema),
        ("JobDetail", schemas.JobDetailSchema),
        ("JobPage", schemas.JobPageSchema),
        ("CancelMany", schemas.CancelManySchema),
        ("CancelOutcome", schemas.CancelOutcomeSchema),
        ("Clean", schemas.CleanSchema),
        ("JobType", schemas.JobTypeSchema),
    ):
        spec.components.schema(name, schema=schema)
    spec.components.schema(
        "Error",
        {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {"type": "object"},
                    },
                }
            },
        },
    )
    error = _json({"$ref": "#/components/schemas/Error"}, "error")
    job = _json({"type": "object", "properties": {"job": {"$ref": "#/components/schemas/Job"}}}, "the job")
    detail = _json({"type": "object", "properties": {"job": {"$ref": "#/components/schemas/JobDetail"}}}, "the job")
    job_id = {"in": "path", "name": "job_id", "required": True, "schema": {"type": "string"}}
    anything = _json({"type": "object"}, "ok")
    paths: dict[str, dict[str, Any]] = {
        "/api/jobs": {
            "post": _op(
                "Create a job",
                {201: job, 400: error, 413: error, 415: error, 422: error, 503: error},
                body={"$ref": "#/components/schemas/JobCreate"},
            ),
            "get": _op(
                "List jobs, newest first",
                {200: _json({"$ref": "#/components/schemas/JobPage"}, "a page"), 422: error, 503: error},
                parameters=[
                    _query(
                        "status",
                        {"type": "string", "enum": ["pending", "active", "completed", "failed", "canceled"]},
                        "filter",
                    ),
                    _query("q", {"type": "string"}, "name contains (case-insensitive)"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}, "page size"),
                    _query("cursor", {"type": "string"}, "next_cursor of the previous page"),
                ],
            ),
        },
        "/api/jobs/{job_id}": {
            "get": _op("A job with its logs", {200: detail, 404: error}, parameters=[job_id]),
            "delete": _op(
                "Delete a job that is not active",
                {204: {"description": "deleted"}, 404: error, 409: error},
                parameters=[job_id],
            ),
        },
        "/api/jobs/{job_id}/cancel": {
            "post": _op(
                "Cancel (pending: at once; active: stopped by its worker)",
                {200: job, 202: job, 404: error, 409: error},
                parameters=[job_id],
            ),
        },
        "/api/jobs/cancel": {
            "post": _op(
                "Cancel several jobs",
                {
                    200: _json(
                        {
                            "type": "object",
                            "properties": {
                                "results": {"type": "array", "items": {"$ref": "#/components/schemas/CancelOutcome"}}
                            },
                        },
                        "each outcome",
                    ),
                    422: error,
                },
                body={"$ref": "#/components/schemas/CancelMany"},
            ),
        },
        "/api/jobs/{job_id}/retry": {
            "post": _op("Run a failed or canceled job again", {202: job, 404: error, 409: error}, parameters=[job_id]),
        },
        "/api/jobs/clean": {
            "post": _op("Delete ended jobs", {200: anything, 422: error}, body={"$ref": "#/components/schemas/Clean"}),
        },
        "/api/jobs/stream": {
            "get": _op(
                "The live stream (text/event-stream)",
                {
                    200: {"description": "SSE", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                    422: error,
                    503: error,
                },
                parameters=[
                    _query("job", {"type": "string"}, "only this job's events"),
                    _query(
                        "last_event_id",
                        {"type": "string"},
                        "resume after this event id (the Last-Event-ID header wins)",
                    ),
                ],
            ),
        },
        "/api/job-types": {
            "get": _op(
                "Registered job types",
                {
                    200: _json(
                        {
                            "type": "object",
                            "properties": {
                                "job_types": {"type": "array", "items": {"$ref": "#/components/schemas/JobType"}}
                            },
                        },
                        "the types",
                    )
                },
            ),
        },
        "/api/stats": {"get": _op("Counts, workers, paused?, throughput, open streams", {200: anything, 503: error})},
        "/api/queue/pause": {"post": _op("Stop handing out pending jobs", {200: anything})},
        "/api/queue/resume": {"post": _op("Hand out pending jobs again", {200: anything})},
        "/api/openapi.json": {"get": _op("This document", {200: anything})},
        "/healthz": {"get": _op("200 when Redis answers", {200: anything, 503: error})},
    }
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()

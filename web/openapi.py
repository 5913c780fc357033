"""The OpenAPI 3 document, built by apispec from the route table and the marshmallow schemas it names."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, validate

from jobs import schemas
from jobs.schemas import PATH_PATTERNS

ERROR_DESCRIPTIONS = {
    400: "the body is not valid JSON, or not an object",
    401: "authentication required (JOBSTREAM_AUTH)",
    404: "no such job, failure group, webhook or schedule",
    409: "the job's status does not allow this (conflict), or the idempotency key was used for another request",
    413: "the body is over the size limit",
    415: "the body is not sent as application/json",
    422: "the request is not valid: details name each field",
    503: "Redis is unavailable",
}
PATH_PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")
# JobCreateSchema's "delay_seconds or run_at, not both", which a field's schema cannot say
ONE_START = {
    "not": {
        "required": ["delay_seconds", "run_at"],
        "properties": {"delay_seconds": {"type": "number"}, "run_at": {"type": "string"}},
    }
}
NULL = {"type": "object", "nullable": True, "enum": [None]}  # null alone (see _null_only)
# SchedulePutSchema's "exactly one of cron and every_seconds"
ONE_CADENCE = {
    "oneOf": [
        {"required": ["cron"], "properties": {"cron": {"type": "string"}, "every_seconds": NULL}},
        {"required": ["every_seconds"], "properties": {"every_seconds": {"type": "integer"}, "cron": NULL}},
    ]
}
Kind = type[Schema] | str | tuple[str, type[Schema]] | None  # a schema, a media type (with its schema), no body


@dataclass(frozen=True)
class Route:
    """One route: what Flask serves and what the document says of it, side by side."""

    rule: str
    method: str
    view: Callable[..., Any]
    summary: str
    responses: dict[int, Kind]
    query: type[Schema] | None = None
    body: type[Schema] | None = None
    typed_body: bool = False  # the body names a job type, whose own schema loads its `params`
    headers: type[Schema] | None = None
    errors: tuple[int, ...] = field(default=())
    links: tuple[str, ...] = ()  # operationIds that take the answered job's id as their job_id (stateful tests)

    @property
    def path(self) -> str:
        """The rule in OpenAPI's notation: /api/jobs/{job_id}."""
        return PATH_PARAMETER.sub(r"{\1}", self.rule)

    def operation(self, job_types: list[dict[str, Any]]) -> dict[str, Any]:
        """The OpenAPI operation; apispec expands the schemas into parameters and components."""
        errors = set(self.errors) | {503}
        if self.body is not None:
            errors |= {400, 413, 415, 422}
        if self.query is not None:
            errors.add(422)
        responses: dict[str, Any] = {str(code): _response(kind) for code, kind in self.responses.items()}
        for code in self.responses:
            if self.links and 200 <= code < 300:
                responses[str(code)]["links"] = {
                    operation_id: {"operationId": operation_id, "parameters": {"job_id": "$response.body#/job/id"}}
                    for operation_id in self.links
                }
        for code in sorted(errors):
            responses[str(code)] = {"description": ERROR_DESCRIPTIONS[code], **_content(schemas.ErrorSchema)}
        operation: dict[str, Any] = {"summary": self.summary, "operationId": self.view.__name__, "responses": responses}
        parameters: list[dict[str, Any]] = [
            {"in": "path", "name": name, "required": True, "schema": {"type": "string", "pattern": PATH_PATTERNS[name]}}
            for name in PATH_PARAMETER.findall(self.rule)
        ]
        if self.query is not None:
            parameters.append({"in": "query", "schema": self.query})
        if self.headers is not None:
            parameters.append({"in": "header", "schema": self.headers})
        if parameters:
            operation["parameters"] = parameters
        if self.body is not None:
            body = _typed(self.body, job_types) if self.typed_body else self.body
            operation["requestBody"] = {"required": True, **_content(body)}
        return operation


def document(routes: Iterable[Route], auth: bool, job_types: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole document; with `auth`, every operation may answer 401 and names basic auth. `job_types`
    (registry.describe_types()) are the types a create may name, each with its params' schema."""
    spec = APISpec("jobstream", "1.0.0", "3.0.3", plugins=[MarshmallowPlugin()])
    if auth:
        spec.components.security_scheme("basic", {"type": "http", "scheme": "basic"})
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation = route.operation(job_types)
        if auth and route.rule != "/healthz":
            operation["security"] = [{"basic": []}]
            operation["responses"]["401"] = {"description": ERROR_DESCRIPTIONS[401], **_content(schemas.ErrorSchema)}
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return _null_only(spec.to_dict())


def _null_only(node: Any) -> Any:
    """apispec writes a nullable nested schema as anyOf [its $ref, {"type": "object", "nullable": true}], and
    that second branch allows any object at all; make it allow null alone."""
    if isinstance(node, list):
        return [_null_only(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node == {"type": "object", "nullable": True}:
        return {**node, "enum": [None]}
    return {key: _null_only(value) for key, value in node.items()}


def _typed(body: type[Schema], job_types: list[dict[str, Any]]) -> type[Schema] | dict[str, Any]:
    """A body that names job types: a create, or a batch of them (each item a create by its type, with `key`)."""
    if body is not schemas.BatchSchema:
        return _by_type(body, job_types)
    jobs = body().fields["jobs"]
    length = next(v for v in jobs.validators if isinstance(v, validate.Length))
    items: dict[str, Any] = {"type": "array", "items": _by_type(schemas.BatchItemSchema, job_types)}
    items.update(minItems=length.min, maxItems=length.max)
    return {"type": "object", "required": ["jobs"], "properties": {"jobs": items}, "additionalProperties": False}


def _by_type(body: type[Schema], job_types: list[dict[str, Any]]) -> dict[str, Any]:
    """`body` once per registered type: its `type` that type's name (optional for the default type), its
    `params` that type's params schema; so the document allows exactly the params that the server loads."""
    given = body().fields
    default = given["type"].load_default
    rules = {**(ONE_START if "run_at" in given else {}), **(ONE_CADENCE if "cron" in given else {})}
    variants = []
    for job_type in job_types:
        narrowed: dict[str, Any] = {
            "properties": {"type": {"enum": [job_type["name"]]}, "params": job_type["params_schema"]}
        }
        if job_type["name"] != default:
            narrowed["required"] = ["type"]
        variants.append({"allOf": [body, {**narrowed, **rules}]})
    return {"oneOf": variants}


def _response(kind: Kind) -> dict[str, Any]:
    if kind is None:
        return {"description": "no content"}
    if isinstance(kind, tuple):  # a media type with a schema: for an event stream, each event's
        media_type, schema = kind
        return {"description": schema.__doc__ or media_type, "content": {media_type: {"schema": schema}}}
    if isinstance(kind, str):  # a media type: JSON of no fixed shape, or text
        shape = "object" if kind == "application/json" else "string"
        return {"description": kind, "content": {kind: {"schema": {"type": shape}}}}
    return {"description": kind.__doc__ or kind.__name__.removesuffix("Schema"), **_content(kind)}


def _content(schema: type[Schema] | dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}

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

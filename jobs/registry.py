"""The registry of job types: the only way a job can be enqueued."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema

from jobs.config import ConfigError

MAX_TIMEOUT_SECONDS = 24 * 3600


@dataclass(frozen=True)
class JobType:
    """A runnable kind of job: a plain function, the schema of its params, a default timeout."""

    name: str
    func: Callable[..., Any]
    schema: Schema
    timeout: int
    description: str

    @property
    def path(self) -> str:
        """The dotted path RQ imports in the worker."""
        return f"{self.func.__module__}.{self.func.__qualname__}"


_TYPES: dict[str, JobType] = {}


def register(name: str, schema: Schema, timeout: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as job type `name`; its docstring describes it."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        if name in _TYPES:
            raise ValueError(f"job type {name!r} is already registered")
        description = (func.__doc__ or "").strip().splitlines()[0] if func.__doc__ else ""
        _TYPES[name] = JobType(name, func, schema, timeout, description)
        return func

    return decorate


def job_types() -> list[JobType]:
    """Every registered type, sorted by name."""
    return sorted(_TYPES.values(), key=lambda t: t.name)


def get_type(name: str) -> JobType | None:
    """The registered type called `name`, or None."""
    return _TYPES.get(name)


def load(modules: tuple[str, ...]) -> None:
    """Import `modules`, each of which registers its job types; the skins name them (Settings.job_type_modules)."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"JOBSTREAM_JOB_MODULES: cannot import {name!r}: {exc}") from exc


def describe_types() -> list[dict[str, Any]]:
    """Every registered type with its params' JSON schema, for the API and the page's form."""
    converter = _json_schema_plugin().converter
    assert converter is not None
    return [
        {
            "name": t.name,
            "description": t.description,
            "timeout_seconds": t.timeout,
            "params_schema": converter.schema2jsonschema(t.schema),
        }
        for t in job_types()
    ]


@cache
def _json_schema_plugin() -> MarshmallowPlugin:
    """apispec's marshmallow-to-JSON-Schema converter (it needs a spec to be set up)."""
    plugin = MarshmallowPlugin()
    APISpec("jobstream", "1", "3.0.3", plugins=[plugin])
    return plugin

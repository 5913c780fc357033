"""The registry of job types: the only way a job can be enqueued."""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, Generic, ParamSpec, Protocol, TypeVar

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema

from jobs.config import ConfigError
from jobs.model import NORMAL, PRIORITIES, Job
from jobs.options import CreateOptions
from jobs.types.attempts import MAX_ATTEMPTS, Backoff
from jobs.types.hints import schema_from_hints

MAX_TIMEOUT_SECONDS = 24 * 3600
DEFAULT_TIMEOUT_SECONDS = 180  # as RQ's
P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class JobType:
    """A runnable kind of job: a plain function, the schema of its params, its defaults."""

    name: str
    func: Callable[..., Any]
    schema: Schema
    timeout: int
    description: str
    priority: str = NORMAL
    max_attempts: int = 1
    backoff: Backoff = field(default_factory=Backoff)
    concurrency: int | None = None  # at most this many active at once, across every worker
    rate: tuple[int, float] | None = None  # at most N starts per S seconds

    @property
    def path(self) -> str:
        """The dotted path RQ imports in the worker."""
        return f"{self.func.__module__}.{self.func.__qualname__}"


class Enqueuer(Protocol):
    """What a registered function enqueues itself through: a `Jobs`."""

    def submit(self, type: str, name: str, params: Mapping[str, Any] | None, options: CreateOptions) -> Job: ...


class JobFunction(Generic[P, R]):
    """A registered job function: called, it runs; `.enqueue(name, **params)` creates a job of its type,
    with its params checked by mypy against the function and by the type's schema at run time."""

    def __init__(self, func: Callable[P, R], job_type: str) -> None:
        functools.update_wrapper(self, func)
        self.func = func
        self.job_type = job_type

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    def enqueue(self, name: str, /, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Enqueue a job of this type named `name`, on the process's default Jobs (Jobs.from_env())."""
        return self.using().enqueue(name, *args, **kwargs)

    def using(
        self,
        jobs: Enqueuer | None = None,
        *,
        priority: str | None = None,
        timeout_seconds: int | None = None,
        delay_seconds: float | None = None,
        run_at: datetime | str | None = None,
        max_attempts: int | None = None,
        backoff: Backoff | Mapping[str, Any] | None = None,
        depends_on: Sequence[str] | None = None,
        allow_failure: bool | None = None,
        idempotency_key: str | None = None,
    ) -> BoundJobFunction[P]:
        """This function enqueued through `jobs` (default: the process's) with these CreateOptions."""
        if jobs is None:
            if _default_jobs is None:
                raise RuntimeError("import jobs (the package) before enqueueing: it provides the default Jobs")
            jobs = _default_jobs()
        options = CreateOptions(
            priority=priority,
            timeout_seconds=timeout_seconds,
            delay_seconds=delay_seconds,
            run_at=run_at,
            max_attempts=max_attempts,
            backoff=backoff,
            depends_on=depends_on,
            allow_failure=allow_failure,
            idempotency_key=idempotency_key,
        )
        return BoundJobFunction(self, jobs, options)


@dataclass(frozen=True)
class BoundJobFunction(Generic[P]):
    """A job function with the Jobs and the options it enqueues with."""

    function: JobFunction[P, Any]
    jobs: Enqueuer
    options: CreateOptions

    def enqueue(self, name: str, /, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Enqueue a job named `name` with these params (positional ones bound to their names)."""
        params = inspect.signature(self.function.func).bind_partial(*args, **kwargs).arguments
        return self.jobs.submit(self.function.job_type, name, dict(params), self.options)


_TYPES: dict[str, JobType] = {}
_default_jobs: Callable[[], Enqueuer] | None = None


def provide_default(factory: Callable[[], Enqueuer]) -> None:
    """Set where `JobFunction.enqueue` finds the process's Jobs (the Python API sets it; the registry knows
    nothing of it)."""
    global _default_jobs
    _default_jobs = factory


def register(
    name: str,
    schema: Schema | type[Schema] | None = None,
    timeout: int = DEFAULT_TIMEOUT_SECONDS,
    priority: str = NORMAL,
    max_attempts: int = 1,
    backoff: Backoff | None = None,
    concurrency: int | None = None,
    rate: tuple[int, float] | None = None,
) -> Callable[[Callable[P, R]], JobFunction[P, R]]:
    """Register the decorated function (`def` or `async def`) as job type `name`: its params' schema from its
    type hints (or `schema` for what hints cannot say), its docstring's first line describing it."""
    if not 1 <= timeout <= MAX_TIMEOUT_SECONDS:
        raise ValueError(f"timeout must be between 1 and {MAX_TIMEOUT_SECONDS} seconds, got {timeout}")
    if priority not in PRIORITIES:
        raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}, got {priority!r}")
    if not 1 <= max_attempts <= MAX_ATTEMPTS:
        raise ValueError(f"max_attempts must be between 1 and {MAX_ATTEMPTS}, got {max_attempts}")
    if concurrency is not None and concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    if rate is not None and not (rate[0] >= 1 and rate[1] > 0):
        raise ValueError(f"rate must be (starts >= 1, seconds > 0), got {rate}")

    def decorate(func: Callable[P, R]) -> JobFunction[P, R]:
        if name in _TYPES:
            raise ValueError(f"job type {name!r} is already registered")
        params = schema_from_hints(func) if schema is None else schema() if isinstance(schema, type) else schema
        description = (inspect.getdoc(func) or "").partition("\n")[0]
        _TYPES[name] = JobType(
            name, func, params, timeout, description, priority, max_attempts, backoff or Backoff(), concurrency, rate
        )
        return JobFunction(func, name)

    return decorate


def type_count() -> int:
    """How many types are registered (they are only ever added): a cheap check that the set changed."""
    return len(_TYPES)


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
    return [
        {
            "name": t.name,
            "description": t.description,
            "timeout_seconds": t.timeout,
            "priority": t.priority,
            "max_attempts": t.max_attempts,
            "backoff": t.backoff.as_dict(),
            "concurrency": t.concurrency,
            "rate": {"limit": t.rate[0], "per_seconds": t.rate[1]} if t.rate else None,
            "params_schema": params_json_schema(t.schema),
        }
        for t in job_types()
    ]


def params_json_schema(schema: Schema) -> dict[str, Any]:
    """A params schema as JSON Schema, by apispec's converter: what the API shows and the page's form draws."""
    converter = _json_schema_plugin().converter
    assert converter is not None
    return converter.schema2jsonschema(schema)


@cache
def _json_schema_plugin() -> MarshmallowPlugin:
    """apispec's marshmallow-to-JSON-Schema converter (it needs a spec to be set up)."""
    plugin = MarshmallowPlugin()
    APISpec("jobstream", "1", "3.0.3", plugins=[plugin])
    return plugin

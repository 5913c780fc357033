"""Job types registered by the decorator alone: each type hint's JSON Schema and validation, errors at their
fields through the Python API and REST alike, the same from hints as from a schema, what registration refuses,
and hinted types, SPEC's example among them (as the README shows it), run by real workers."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import pytest
import redis
from flask.testing import FlaskClient
from marshmallow import Schema, ValidationError, fields, validate

from jobs import InvalidRequest, Jobs, Length, OneOf, Range, register
from jobs.config import Settings
from jobs.types.attempts import Backoff
from jobs.types.demo import web_agent
from jobs.types.hints import JsonNumber, param_field, schema_from_hints
from jobs.types.registry import describe_types, get_type, load, params_json_schema
from scripts.harness import ROOT, RedisServer, Service, start_pool
from tests.bounds import JOB_SECONDS
from tests.conftest import Stack

HINTED = "tests.hinted_jobs"
README = ROOT / "README.md"


@pytest.fixture(scope="module", autouse=True)
def hinted_types() -> None:
    """The test types, registered in this process (a module is imported once, so once)."""
    load((HINTED,))


@pytest.fixture
def jobs(redis_client: redis.Redis, settings: Settings) -> Jobs:
    """The API on the in-process tests' Redis (flushed): no worker takes its jobs."""
    return Jobs(redis_client, settings)


def one_param(hint: Any, default: Any = Any) -> Schema:
    """A schema of one param `p` with this hint (and this default, unless Any)."""
    field = param_field(hint) if default is Any else param_field(hint, default)
    return Schema.from_dict({"p": field})()


# -- each hint kind's JSON Schema ---------------------------------------------------------------------------

NO_DEFAULT = Any


@pytest.mark.parametrize(
    ("hint", "default", "expected", "required"),
    [
        pytest.param(str, NO_DEFAULT, {"type": "string"}, True, id="str"),
        pytest.param(int, NO_DEFAULT, {"type": "integer"}, True, id="int"),
        pytest.param(float, 0.5, {"type": "number", "default": 0.5}, False, id="float"),
        pytest.param(bool, False, {"type": "boolean", "default": False}, False, id="bool"),
        pytest.param(
            Literal["csv", "xlsx"],
            "csv",
            {"type": "string", "enum": ["csv", "xlsx"], "default": "csv"},
            False,
            id="literal",
        ),
        pytest.param(Literal[1, 2, 3], NO_DEFAULT, {"type": "integer", "enum": [1, 2, 3]}, True, id="literal-int"),
        pytest.param(int | None, None, {"type": "integer", "nullable": True, "default": None}, False, id="optional"),
        pytest.param(Optional[str], NO_DEFAULT, {"type": "string", "nullable": True}, True, id="Optional-no-default"),  # noqa: UP045
        pytest.param(
            Annotated[int, Range(min=1, max=100)],
            10,
            {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
            False,
            id="range",
        ),
        pytest.param(
            Annotated[str, Length(1, 20), "What it is called"],
            NO_DEFAULT,
            {"type": "string", "minLength": 1, "maxLength": 20, "description": "What it is called"},
            True,
            id="length-and-description",
        ),
        pytest.param(
            Annotated[str, OneOf(["a", "b"])],
            "a",
            {"type": "string", "enum": ["a", "b"], "default": "a"},
            False,
            id="oneof",
        ),
        pytest.param(list[int], NO_DEFAULT, {"type": "array", "items": {"type": "integer"}}, True, id="list"),
        pytest.param(
            list[str], ["x"], {"type": "array", "items": {"type": "string"}, "default": ["x"]}, False, id="list-default"
        ),
        pytest.param(
            list[Annotated[int, Range(min=0)]],
            NO_DEFAULT,
            {"type": "array", "items": {"type": "integer", "minimum": 0}},
            True,
            id="list-range",
        ),
        pytest.param(
            dict[str, float],
            NO_DEFAULT,
            {"type": "object", "additionalProperties": {"type": "number"}},
            True,
            id="dict",
        ),
        pytest.param(
            Annotated[float, Range(0, 1)] | None,
            None,
            {"type": "number", "minimum": 0.0, "maximum": 1.0, "nullable": True, "default": None},
            False,
            id="optional-range",
        ),
    ],
)
def test_each_hint_becomes_its_json_schema(hint: Any, default: Any, expected: dict[str, Any], required: bool) -> None:
    described = params_json_schema(one_param(hint, default))

    assert described["properties"]["p"] == expected
    assert ("p" in described.get("required", [])) is required
    assert described["additionalProperties"] is False


# -- each hint kind's validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "value", "loaded"),
    [
        pytest.param(int, 3, 3, id="int"),
        pytest.param(float, 1, 1.0, id="float-takes-an-int"),
        pytest.param(float, 2.5, 2.5, id="float"),
        pytest.param(bool, True, True, id="bool"),
        pytest.param(str, "x", "x", id="str"),
        pytest.param(Literal["csv", "xlsx"], "xlsx", "xlsx", id="literal"),
        pytest.param(Literal[1, 2], 2, 2, id="literal-int"),
        pytest.param(int | None, None, None, id="optional-null"),
        pytest.param(int | None, 4, 4, id="optional-value"),
        pytest.param(Annotated[int, Range(1, 100)], 100, 100, id="range-edge"),
        pytest.param(list[int], [1, 2], [1, 2], id="list"),
        pytest.param(list, [1, "a", None], [1, "a", None], id="bare-list"),
        pytest.param(dict[str, int], {"a": 1}, {"a": 1}, id="dict"),
        pytest.param(dict, {"a": [1]}, {"a": [1]}, id="bare-dict"),
        pytest.param(Any, {"x": None}, {"x": None}, id="any"),
    ],
)
def test_good_values_are_taken_and_typed(hint: Any, value: Any, loaded: Any) -> None:
    result = one_param(hint).load({"p": value})["p"]

    assert result == loaded
    assert type(result) is type(loaded)


@pytest.mark.parametrize(
    ("hint", "value"),
    [
        pytest.param(int, "3", id="int-numeric-string"),
        pytest.param(int, 2.5, id="int-fraction"),
        pytest.param(int, 3.0, id="int-float"),
        pytest.param(int, True, id="int-bool"),
        pytest.param(float, "1.5", id="float-string"),
        pytest.param(float, math.nan, id="float-nan"),
        pytest.param(float, math.inf, id="float-infinity"),
        pytest.param(float, True, id="float-bool"),
        pytest.param(bool, "true", id="bool-string"),
        pytest.param(bool, 1, id="bool-one"),
        pytest.param(str, 5, id="str-number"),
        pytest.param(int, None, id="null-not-allowed"),
        pytest.param(Literal["csv", "xlsx"], "pdf", id="literal-other"),
        pytest.param(Literal[1, 2], True, id="literal-int-bool"),
        pytest.param(Annotated[int, Range(1, 100)], 101, id="range-over"),
        pytest.param(Annotated[int, Range(1, 100)], 0, id="range-under"),
        pytest.param(Annotated[str, Length(1, 3)], "", id="length-empty"),
        pytest.param(Annotated[str, OneOf(["a", "b"])], "c", id="oneof-other"),
        pytest.param(list[int], [1, "2"], id="list-bad-item"),
        pytest.param(list[int], "12", id="list-string"),
        pytest.param(dict[str, int], {"a": "1"}, id="dict-bad-value"),
        pytest.param(dict[str, int], [1], id="dict-list"),
    ],
)
def test_bad_values_are_refused_at_the_param(hint: Any, value: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        one_param(hint).load({"p": value})

    assert set(refused.value.messages) == {"p"}


def test_a_param_without_a_default_is_required_and_one_with_a_default_is_not() -> None:
    def job(month: str, rows: int = 1000) -> None: ...

    schema = schema_from_hints(job)

    assert schema.load({"month": "2026-11"}) == {"month": "2026-11", "rows": 1000}
    with pytest.raises(ValidationError) as refused:
        schema.load({"rows": 5})
    assert refused.value.messages == {"month": ["Missing data for required field."]}


def test_unknown_params_are_refused() -> None:
    def job(rows: int = 1) -> None: ...

    with pytest.raises(ValidationError) as refused:
        schema_from_hints(job).load({"rowz": 5})

    assert refused.value.messages == {"rowz": ["Unknown field."]}


def test_a_mutable_default_is_a_fresh_copy_for_each_job() -> None:
    def job(tags: list[str] = ["a"]) -> None: ...  # noqa: B006  (the point of the test)

    schema = schema_from_hints(job)
    first, second = schema.load({})["tags"], schema.load({})["tags"]

    assert first == second == ["a"]
    first.append("b")
    assert schema.load({})["tags"] == ["a"]


def test_a_param_named_like_a_schema_attribute_is_a_param_like_any() -> None:
    def job(load: int, fields: str = "x") -> None: ...

    schema = schema_from_hints(job)

    assert schema.load({"load": 1}) == {"load": 1, "fields": "x"}
    assert set(params_json_schema(schema)["properties"]) == {"load", "fields"}
    with pytest.raises(ValidationError) as refused:
        schema.load({"load": "1"})
    assert set(refused.value.messages) == {"load"}


# -- what registration refuses, naming the param ------------------------------------------------------------


class Point:
    """Not a JSON type."""


def custom(at: Point) -> None: ...
def union(value: int | str) -> None: ...
def no_hint(value) -> None: ...
def var_args(*values: int) -> None: ...
def var_kwargs(**values: int) -> None: ...
def positional(value: int, /) -> None: ...
def int_keys(counts: dict[int, str]) -> None: ...
def mixed_literal(mode: Literal["a", 1]) -> None: ...
def bad_default(rows: int = "many") -> None: ...
def default_out_of_range(rows: Annotated[int, Range(1, 10)] = 0) -> None: ...
def unresolvable(value: NoSuchName) -> None: ...  # noqa: F821  (the point of the test)


@pytest.mark.parametrize(
    ("func", "param", "says"),
    [
        pytest.param(custom, "at", "cannot map", id="custom-class"),
        pytest.param(union, "value", "only X | None", id="union"),
        pytest.param(no_hint, "value", "no type hint", id="no-hint"),
        pytest.param(var_args, "values", "by name", id="var-args"),
        pytest.param(var_kwargs, "values", "by name", id="var-kwargs"),
        pytest.param(positional, "value", "by name", id="positional-only"),
        pytest.param(int_keys, "counts", "keys must be str", id="dict-int-keys"),
        pytest.param(mixed_literal, "mode", "all str, all int or all bool", id="mixed-literal"),
        pytest.param(bad_default, "rows", "does not fit", id="default-of-another-type"),
        pytest.param(default_out_of_range, "rows", "does not fit", id="default-out-of-range"),
    ],
)
def test_an_unsupported_signature_is_a_type_error_naming_the_param(func: Any, param: str, says: str) -> None:
    with pytest.raises(TypeError, match=rf"{func.__name__}: param {param!r}.*{re.escape(says)}"):
        schema_from_hints(func)


def test_unresolvable_hints_are_a_type_error_that_says_schema() -> None:
    with pytest.raises(TypeError, match=r"unresolvable: cannot read its type hints .*NoSuchName.*schema="):
        schema_from_hints(unresolvable)


def test_registering_an_unsupported_signature_registers_nothing() -> None:
    with pytest.raises(TypeError, match="at"):
        register("test.never_registered")(custom)

    assert get_type("test.never_registered") is None


# -- registration: the defaults, schema=, async def ---------------------------------------------------------


def test_the_decorator_alone_gives_every_default() -> None:
    described = {t["name"]: t for t in describe_types()}["test.hinted"]

    assert described["timeout_seconds"] == 180  # as RQ's
    assert described["priority"] == "normal"
    assert described["max_attempts"] == 1
    assert Backoff(**described["backoff"]) == Backoff("exponential", 1.0, 3600.0, False)
    assert (described["concurrency"], described["rate"]) == (None, None)
    assert described["description"] == "Echo its params: a param of every hint kind."
    assert described["params_schema"]["required"] == ["label"]


class CountParams(Schema):
    count = fields.Integer(strict=True, load_default=1, validate=validate.Range(1, 5))


@pytest.mark.parametrize("schema", [CountParams, CountParams()], ids=["class", "instance"])
def test_schema_is_still_taken_as_a_class_or_an_instance(schema: Any, request: pytest.FixtureRequest) -> None:
    name = f"test.schema_{request.node.callspec.id}"

    @register(name, schema)
    def counted(count: int = 1) -> int:
        """Count."""
        return count

    job_type = get_type(name)
    assert job_type is not None
    assert isinstance(job_type.schema, CountParams)
    assert job_type.schema.load({}) == {"count": 1}


def test_a_name_registered_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register("test.hinted")(lambda: None)


def test_an_async_function_registers_from_its_hints() -> None:
    job_type = get_type("test.hinted_async")

    assert job_type is not None
    assert job_type.path == "tests.hinted_jobs.hinted_async"
    assert job_type.description == "An async job: its schema from its hints, as for a plain one."
    assert job_type.schema.load({"seconds": 2}) == {"seconds": 2.0}


# -- the same from hints as from a schema -------------------------------------------------------------------


class WebAgentParams(Schema):
    """demo.web_agent's params as a schema, as they were written before hints."""

    steps = fields.Integer(strict=True, load_default=10, validate=validate.Range(1, 1000))
    step_seconds = JsonNumber(load_default=1.0, validate=validate.Range(0, 60), allow_nan=False)
    fail_rate = JsonNumber(load_default=0.0, validate=validate.Range(0, 1), allow_nan=False)


BAD_WEB_AGENT_PARAMS = [
    {"steps": 0},
    {"steps": "10"},
    {"steps": 2.5},
    {"steps": True},
    {"step_seconds": -1},
    {"step_seconds": "1"},
    {"fail_rate": 1.5},
    {"stepz": 3},
    {"steps": None},
]


def test_hints_describe_the_params_as_the_schema_did() -> None:
    assert params_json_schema(schema_from_hints(web_agent)) == params_json_schema(WebAgentParams())


@pytest.mark.parametrize("params", BAD_WEB_AGENT_PARAMS, ids=json.dumps)
def test_hints_refuse_what_the_schema_refused_with_the_same_messages(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as from_schema:
        WebAgentParams().load(params)
    with pytest.raises(ValidationError) as from_hints:
        schema_from_hints(web_agent).load(params)

    assert from_hints.value.messages == from_schema.value.messages


# -- errors at their fields: the Python API and REST ---------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({}, "label", id="missing-required"),
        pytest.param({"label": "x", "count": 101}, "count", id="range"),
        pytest.param({"label": "x", "count": "3"}, "count", id="int-string"),
        pytest.param({"label": "x", "ratio": "0.5"}, "ratio", id="float-string"),
        pytest.param({"label": "x", "loud": "yes"}, "loud", id="bool-string"),
        pytest.param({"label": "x", "fmt": "pdf"}, "fmt", id="literal"),
        pytest.param({"label": "x", "size": "xl"}, "size", id="oneof"),
        pytest.param({"label": "x", "note": "n" * 21}, "note", id="length"),
        pytest.param({"label": "x", "tags": [1]}, "tags", id="list-item"),
        pytest.param({"label": "x", "weights": {"a": "heavy"}}, "weights", id="dict-value"),
        pytest.param({"label": "x", "colour": "red"}, "colour", id="unknown"),
    ],
)
def test_bad_params_are_errors_at_their_field_in_python_and_rest(
    jobs: Jobs, client: FlaskClient, params: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        jobs.enqueue("test.hinted", name="Hinted", params=params)
    response = client.post("/api/jobs", json={"type": "test.hinted", "name": "Hinted", "params": params})

    assert set(refused.value.details) == {"params"}
    assert set(refused.value.details["params"]) == {field}
    assert response.status_code == 422
    assert response.get_json()["error"]["details"] == json.loads(json.dumps(refused.value.details))


def test_good_params_are_stored_typed_with_the_defaults_filled(client: FlaskClient) -> None:
    params = {"label": "x", "count": 3, "ratio": 1, "tags": ["a"], "note": None}

    response = client.post("/api/jobs", json={"type": "test.hinted", "name": "Hinted", "params": params})

    assert response.status_code == 201
    assert response.get_json()["job"]["params"] == {
        "label": "x",
        "count": 3,
        "ratio": 1.0,
        "loud": False,
        "fmt": "csv",
        "size": "m",
        "note": None,
        "tags": ["a"],
        "weights": None,
    }


# -- run by real workers ------------------------------------------------------------------------------------


def test_demo_noop_completes_at_once(stack: Stack) -> None:
    jobs = Jobs.from_url(stack.redis_server.url)

    job = jobs.wait(jobs.enqueue("demo.noop", name="Noop").id, timeout=JOB_SECONDS)

    assert (job.status, job.result, job.error) == ("completed", None, None)


@pytest.mark.parametrize(
    ("params", "error"),
    [({}, "RuntimeError: failed on purpose"), ({"message": "out of paper"}, "RuntimeError: out of paper")],
    ids=["default", "message"],
)
def test_demo_fail_fails_with_its_message(stack: Stack, params: dict[str, Any], error: str) -> None:
    jobs = Jobs.from_url(stack.redis_server.url)

    job = jobs.wait(jobs.enqueue("demo.fail", name="Fail", params=params).id, timeout=JOB_SECONDS)

    assert (job.status, job.error, job.attempts) == ("failed", error, 1)


def readme_job_type() -> str:
    """The first Python block of the README's "Write your own job type" section: SPEC's example."""
    section = README.read_text().split("\n### Write your own job type\n", 1)[1].split("\n#", 1)[0]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found, "the README's 'Write your own job type' section has no python block"
    return found.group(1)


def progress_of(jobs: Jobs, job_id: str) -> list[tuple[int, str | None]]:
    """(progress, action) of each update of an ended job, replayed from the stream up to its end."""
    seen = []
    for event in jobs.events(after="0-0", job=job_id):
        if event.job is not None:
            seen.append((event.job.progress, event.job.action))
            if event.job.status == "completed":
                break
    return seen


@pytest.fixture
def readme_pool(tmp_path: Path, private_redis: RedisServer) -> Iterator[Service]:
    """One worker that imports the README's job type from a module of its own, as a user's would be."""
    (tmp_path / "readme_jobs.py").write_text(readme_job_type())
    pool = start_pool(
        private_redis.url,
        tmp_path / "logs",
        JOBSTREAM_CONCURRENCY="1",
        JOBSTREAM_JOB_MODULES=f"readme_jobs,{HINTED}",
        PYTHONPATH=str(tmp_path),
    )
    yield pool
    pool.stop()


def test_the_readme_job_type_runs_as_spec_writes_it(
    tmp_path: Path, private_redis: RedisServer, readme_pool: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    jobs = Jobs.from_url(private_redis.url, job_modules=("readme_jobs",))

    with pytest.raises(InvalidRequest) as refused:
        jobs.enqueue("reports.export", name="November", params={"month": "2026-11", "fmt": "pdf"})
    job = jobs.wait(jobs.enqueue("reports.export", name="November", params={"month": "2026-11"}).id, JOB_SECONDS)
    hinted = jobs.wait(jobs.enqueue("test.hinted", name="Hinted", params={"label": "x"}).id, JOB_SECONDS)

    assert set(refused.value.details["params"]) == {"fmt"}
    assert (job.status, job.result, job.progress, job.max_attempts) == ("completed", {"rows": 1000}, 100, 3)
    assert (50, "Writing rows") in progress_of(jobs, job.id)
    assert (hinted.status, hinted.result["count"]) == ("completed", 10)
    described = {t["name"]: t for t in jobs.job_types()}["reports.export"]
    assert described["description"] == "Export a month of orders."
    assert described["params_schema"]["properties"]["fmt"] == {
        "type": "string",
        "enum": ["csv", "xlsx"],
        "default": "csv",
    }

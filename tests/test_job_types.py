"""GET /api/job-types: each registered type with its params' JSON schema."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient


@pytest.mark.parametrize(
    ("type_name", "param", "expected"),
    [
        ("demo.web_agent", "steps", {"type": "integer", "default": 10, "minimum": 1, "maximum": 1000}),
        ("demo.web_agent", "step_seconds", {"type": "number", "default": 1.0, "minimum": 0, "maximum": 60}),
        ("demo.web_agent", "fail_rate", {"type": "number", "default": 0.0, "minimum": 0, "maximum": 1}),
        ("demo.sleep", "seconds", {"type": "number", "default": 1.0, "minimum": 0, "maximum": 3600}),
        ("demo.primes", "limit", {"type": "integer", "default": 2_000_000, "minimum": 2, "maximum": 200_000_000}),
        ("demo.fail", "message", {"type": "string", "default": "failed on purpose", "minLength": 1, "maxLength": 1000}),
    ],
)
def test_job_types_describe_params_as_json_schema(
    client: FlaskClient, type_name: str, param: str, expected: dict[str, Any]
) -> None:
    response = client.get("/api/job-types")

    assert response.status_code == 200
    types = {t["name"]: t for t in response.get_json()["job_types"]}
    assert {"demo.web_agent", "demo.sleep", "demo.primes"} <= set(types)
    schema = types[type_name]["params_schema"]
    assert schema["type"] == "object"
    assert schema["properties"][param] == expected
    assert types[type_name]["description"]
    assert types[type_name]["timeout_seconds"] > 0


def test_demo_noop_takes_no_params(client: FlaskClient) -> None:
    types = {t["name"]: t for t in client.get("/api/job-types").get_json()["job_types"]}

    assert types["demo.noop"]["params_schema"] == {"type": "object", "properties": {}, "additionalProperties": False}
    bad = client.post("/api/jobs", json={"type": "demo.noop", "name": "Noop", "params": {"seconds": 1}})
    assert bad.status_code == 422
    assert bad.get_json()["error"]["details"] == {"params": {"seconds": ["Unknown field."]}}

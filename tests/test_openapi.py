"""The OpenAPI document describes every route the app serves."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient


def test_openapi_lists_every_route_and_method(app: Flask, client: FlaskClient) -> None:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    described = {(path, method.upper()) for path, ops in document["paths"].items() for method in ops}
    served = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(("/api/", "/healthz"))
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert served == described


def test_openapi_schemas_come_from_the_marshmallow_schemas(client: FlaskClient) -> None:
    schemas = client.get("/api/openapi.json").get_json()["components"]["schemas"]
    assert set(schemas["Job"]["properties"]) >= {"id", "name", "status", "progress", "cancel_requested"}
    assert schemas["JobCreate"]["required"] == ["name"]
    assert schemas["JobCreate"]["properties"]["name"]["maxLength"] == 200

"""HTTP around the API: 405 with Allow, JSON 404s, /healthz, basic auth, a Redis that is down, and what the page is
told of the server's rules."""

from __future__ import annotations

import dataclasses
import json
import time
from html.parser import HTMLParser
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from jobs import schemas
from jobs.config import Settings
from jobs.model import PRIORITIES, STATUSES
from jobs.store.scripts import MAX_LOGS
from jobs.types.attempts import BACKOFF_TYPES, MAX_ATTEMPTS, MAX_DELAY_SECONDS
from scripts.harness import free_port
from tests.api_helpers import (
    UNKNOWN_ID,
    basic_auth,
    error_details,
)
from web import page as page_facts

# -- errors and health ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/jobs", {"GET", "POST"}),
        ("PATCH", f"/api/jobs/{UNKNOWN_ID}", {"GET", "DELETE"}),
        ("GET", f"/api/jobs/{UNKNOWN_ID}/retry", {"POST"}),
        ("DELETE", "/api/job-types", {"GET"}),
    ],
)
def test_wrong_method_is_405_with_allow(client: FlaskClient, method: str, path: str, allowed: set[str]) -> None:
    response = client.open(path, method=method)

    error_details(response, 405, "method_not_allowed")
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


@pytest.mark.parametrize("path", ["/api/nope", f"/api/jobs/{UNKNOWN_ID}/nope", "/api/"])
def test_unknown_api_path_is_json_404(client: FlaskClient, path: str) -> None:
    error_details(client.get(path), 404, "not_found")


def test_healthz_answers_ok(client: FlaskClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


# -- auth ----------------------------------------------------------------------------------------


@pytest.fixture
def auth_client(settings: Settings, redis_client: redis.Redis) -> FlaskClient:
    app = create_app({"TESTING": True, "SETTINGS": dataclasses.replace(settings, auth="u:p")})
    return app.test_client()


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="none"),
        pytest.param(basic_auth("u:wrong"), id="wrong-password"),
        pytest.param(basic_auth("x:p"), id="wrong-user"),
        pytest.param({"Authorization": "Bearer u:p"}, id="not-basic"),
    ],
)
def test_auth_rejects_missing_or_wrong_credentials(auth_client: FlaskClient, headers: dict[str, str]) -> None:
    response = auth_client.get("/api/jobs", headers=headers)

    error_details(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_auth_accepts_right_credentials(auth_client: FlaskClient) -> None:
    assert auth_client.get("/api/jobs", headers=basic_auth("u:p")).status_code == 200
    assert auth_client.post("/api/jobs", json={"name": "x"}, headers=basic_auth("u:p")).status_code == 201


def test_auth_leaves_healthz_open(auth_client: FlaskClient) -> None:
    assert auth_client.get("/healthz").status_code == 200


# -- Redis down ----------------------------------------------------------------------------------


@pytest.fixture
def dead_redis_app() -> Flask:
    """An app whose Redis URL points at a free port with nothing listening."""
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    return create_app({"TESTING": True, "SETTINGS": settings})


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/jobs", None),
        ("GET", f"/api/jobs/{UNKNOWN_ID}", None),
        ("POST", "/api/jobs", {"name": "x"}),
    ],
)
def test_redis_down_is_503_promptly(dead_redis_app: Flask, method: str, path: str, body: Any) -> None:
    started = time.monotonic()
    response = dead_redis_app.test_client().open(path, method=method, json=body)

    assert time.monotonic() - started < 5
    error_details(response, 503, "redis_unavailable")
    assert response.headers["Retry-After"]


def test_healthz_is_503_when_redis_is_down(dead_redis_app: Flask) -> None:
    error_details(dead_redis_app.test_client().get("/healthz"), 503, "redis_unavailable")


# -- the page -------------------------------------------------------------------------------------


class Elements(HTMLParser):
    """Every start tag of a page, with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def find(self, **wanted: str) -> dict[str, str | None]:
        (found,) = [attrs for _, attrs in self.tags if all(attrs.get(k) == v for k, v in wanted.items())]
        return found


def test_the_page_is_told_the_servers_limits_choices_and_allowed_actions(client: FlaskClient) -> None:
    """Rendered from the Python constants, so the form and the scripts cannot drift from the schemas."""
    page = Elements()
    page.feed(client.get("/").get_data(as_text=True))
    (body,) = [attrs for tag, attrs in page.tags if tag == "body"]
    limits = json.loads(body["data-limits"] or "")
    assert limits == page_facts.LIMITS and limits["page"] == schemas.PAGE_MAX and limits["log_lines"] == MAX_LOGS
    assert limits["cancel_ids"] == schemas.CANCEL_MAX
    assert json.loads(body["data-actions"] or "") == {
        "cancel": ["pending", "active"],
        "retry": ["failed", "canceled"],
        "delete": ["pending", "completed", "failed", "canceled"],
    }
    assert page.find(id="job-name")["maxlength"] == page.find(id="search")["maxlength"] == str(schemas.NAME_MAX)
    assert page.find(id="job-max-attempts")["max"] == str(MAX_ATTEMPTS)
    assert page.find(id="job-backoff-max")["max"] == str(MAX_DELAY_SECONDS)
    options = [attrs["value"] for tag, attrs in page.tags if tag == "option"]
    assert [o for o in options if o in PRIORITIES] == list(PRIORITIES)
    assert [o for o in options if o in BACKOFF_TYPES] == list(BACKOFF_TYPES)
    assert [attrs["data-status"] for _, attrs in page.tags if attrs.get("data-status")] == list(STATUSES)

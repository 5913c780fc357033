"""HTTP around the API: 405 with Allow, JSON 404s, /healthz, basic auth, a Redis that is down, what the page is
told of the server's rules, and the list's first page drawn into it."""

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
    HOSTILE_NAME,
    UNKNOWN_ID,
    basic_auth,
    create,
    error_details,
    listed_ids,
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


def test_the_page_comes_without_rows_when_redis_is_down(dead_redis_app: Flask) -> None:
    """Its scripts then ask for the list themselves, and say what went wrong."""
    response = dead_redis_app.test_client().get("/")

    assert response.status_code == 200
    drawn = Rows.of(response.get_data(as_text=True))
    assert drawn.rows == [] and drawn.first_page is None


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


class Rows(HTMLParser):
    """The rows the server drew into the list (each one's attributes and its name's text), the first page's data
    block, and the list's chrome."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []
        self.first_page: dict[str, Any] | None = None
        self.counts: dict[str, str] = {}
        self.pressed: list[str | None] = []
        self.empty_hidden = False
        self._in: str | None = None  # what the text being read belongs to

    @classmethod
    def of(cls, html: str) -> Rows:
        parser = cls()
        parser.feed(html)
        return parser

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "tr" and found.get("data-id"):
            self.rows.append({**found, "name": ""})
        elif tag == "a" and found.get("class") == "name" and self.rows and "href" in found:
            self.rows[-1]["href"] = found["href"]
            self._in = "name"
        elif tag == "script" and found.get("id") == "first-page":
            self._in = "first-page"
        elif tag == "b" and found.get("data-count"):
            self._in = f"count {found['data-count']}"
        elif tag == "button" and found.get("aria-pressed") == "true":
            self.pressed.append(found.get("data-status"))
        elif tag == "p" and found.get("id") == "empty":
            self.empty_hidden = "hidden" in found

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "name":
            self.rows[-1]["name"] += data
        elif self._in == "first-page":
            self.first_page = json.loads(data)
        elif self._in and self._in.startswith("count "):
            self.counts[self._in.removeprefix("count ")] = data


def test_the_page_holds_the_first_page_and_its_rows_newest_first_their_names_as_text(client: FlaskClient) -> None:
    names = [HOSTILE_NAME, "<img src=x onerror=alert(1)>", "plain"]
    for name in names:
        create(client, name)
    html = client.get("/").get_data(as_text=True)
    drawn = Rows.of(html)

    assert drawn.first_page == client.get(f"/api/jobs?limit={page_facts.FIRST_PAGE}").get_json()  # the same body
    assert [row["data-id"] for row in drawn.rows] == listed_ids(client)
    assert [row["name"] for row in drawn.rows] == names[::-1]
    assert [row["href"] for row in drawn.rows] == [f"/jobs/{row['data-id']}" for row in drawn.rows]
    assert "<img src=x" not in html and "<script>alert" not in html  # escaped, the data block too
    assert drawn.counts == {"all": "3", **{status: str(n) for status, n in drawn.first_page["counts"].items()}}
    assert drawn.pressed == [""] and drawn.empty_hidden
    assert 'rel="preload"' not in html  # nothing left to preload: the page needs no request for its rows


def test_the_pages_rows_follow_the_status_in_its_url(client: FlaskClient) -> None:
    ids = [create(client, f"job {i}")["id"] for i in range(4)]
    for job_id in ids[1::2]:
        assert client.post(f"/api/jobs/{job_id}/cancel").status_code == 200

    drawn = Rows.of(client.get("/?status=canceled").get_data(as_text=True))

    assert [row["data-id"] for row in drawn.rows] == listed_ids(client, "?status=canceled") == ids[1::2][::-1]
    assert {row["data-status"] for row in drawn.rows} == {"canceled"}
    assert all(row["href"].endswith("?status=canceled") for row in drawn.rows)  # a row's link keeps the view
    assert drawn.pressed == ["canceled"]


@pytest.mark.parametrize("query", ["?q=job", "?status=nonsense"])
def test_a_search_or_a_bad_status_leaves_the_list_to_the_pages_scripts(client: FlaskClient, query: str) -> None:
    """A search may scan long, and a bad status is the list's own 422 to show: both asked by the page, as before."""
    create(client, "job")

    drawn = Rows.of(client.get(f"/{query}").get_data(as_text=True))

    assert drawn.rows == [] and drawn.first_page is None and not drawn.empty_hidden

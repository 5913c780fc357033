"""GET /api/jobs: order, pagination, counts, filters by status and name, refused queries."""

from __future__ import annotations

import time

import pytest
import redis
from flask.testing import FlaskClient

import jobs.model
from jobs.store.lifecycle import JobStore
from tests.api_helpers import (
    API_JOB_FIELDS,
    HOSTILE_NAME,
    STATUSES,
    create,
    error_details,
    job_in,
    listed_ids,
    stored_events,
)


def test_list_is_newest_first_with_counts_and_last_event_id(client: FlaskClient, redis_client: redis.Redis) -> None:
    empty = client.get("/api/jobs").get_json()
    assert empty == {"jobs": [], "next_cursor": None, "counts": dict.fromkeys(STATUSES, 0), "last_event_id": None}

    ids = [create(client, f"job {i}")["id"] for i in range(5)]
    page = client.get("/api/jobs").get_json()

    assert [job["id"] for job in page["jobs"]] == ids[::-1]
    assert all(set(job) == API_JOB_FIELDS for job in page["jobs"])  # no logs in the list
    assert page["next_cursor"] is None
    assert page["counts"] == {**dict.fromkeys(STATUSES, 0), "pending": 5}
    assert page["last_event_id"] == stored_events(redis_client)[-1].id


def test_list_is_newest_first_within_one_millisecond(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    frozen = time.time_ns()
    monkeypatch.setattr(jobs.model.time, "time_ns", lambda: frozen)  # every create lands in the same millisecond

    ids = [create(client, f"job {i}")["id"] for i in range(12)]

    assert listed_ids(client) == ids[::-1]


def test_list_paginates_with_cursor(client: FlaskClient) -> None:
    ids = [create(client, f"job {i}")["id"] for i in range(7)]
    pages: list[list[str]] = []
    query = "?limit=3"

    while True:
        page = client.get(f"/api/jobs{query}").get_json()
        pages.append([job["id"] for job in page["jobs"]])
        if page["next_cursor"] is None:
            break
        query = f"?limit=3&cursor={page['next_cursor']}"

    assert [len(p) for p in pages] == [3, 3, 1]
    assert [job_id for p in pages for job_id in p] == ids[::-1]  # no overlap, nothing skipped


def test_list_filters_by_status(client: FlaskClient, store: JobStore, redis_client: redis.Redis) -> None:
    by_status = {status: job_in(status, client, store, redis_client) for status in STATUSES}
    extra_pending = create(client, "another")["id"]

    for status, job_id in by_status.items():
        expected = [extra_pending, job_id] if status == "pending" else [job_id]
        assert listed_ids(client, f"?status={status}") == expected
    counts = client.get("/api/jobs").get_json()["counts"]
    assert counts == {**dict.fromkeys(STATUSES, 1), "pending": 2}


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        pytest.param("alpha", ["alphabet soup", "ALPHA two", "Alpha one"], id="lower"),
        pytest.param("ALPHA", ["alphabet soup", "ALPHA two", "Alpha one"], id="upper"),
        pytest.param("pha t", ["ALPHA two"], id="inner-substring"),
        pytest.param("ÜBER", ["über alles"], id="unicode"),
        pytest.param("<script>", [HOSTILE_NAME], id="html"),
        pytest.param("zzz", [], id="no-match"),
    ],
)
def test_list_filters_by_name_substring(client: FlaskClient, q: str, expected: list[str]) -> None:
    for name in ("Alpha one", "beta", "ALPHA two", "über alles", HOSTILE_NAME, "alphabet soup"):
        create(client, name)

    page = client.get("/api/jobs", query_string={"q": q}).get_json()

    assert [job["name"] for job in page["jobs"]] == expected


def test_list_paginates_a_name_search(client: FlaskClient) -> None:
    ids = [create(client, f"{'match' if i % 2 else 'other'} {i}")["id"] for i in range(10)]
    matching = ids[1::2][::-1]

    first = client.get("/api/jobs?q=MATCH&limit=3").get_json()
    second = client.get(f"/api/jobs?q=MATCH&limit=3&cursor={first['next_cursor']}").get_json()

    assert [job["id"] for job in first["jobs"]] == matching[:3]
    assert [job["id"] for job in second["jobs"]] == matching[3:]


def test_list_search_has_no_next_cursor_on_its_last_page(client: FlaskClient) -> None:
    for name in ("match 1", "other", "match 2"):
        create(client, name)

    page = client.get("/api/jobs?q=match&limit=2").get_json()

    assert len(page["jobs"]) == 2
    assert page["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        pytest.param("limit=0", "limit", id="limit-0"),
        pytest.param("limit=201", "limit", id="limit-201"),
        pytest.param("limit=abc", "limit", id="limit-abc"),
        pytest.param("status=running", "status", id="unknown-status"),
        pytest.param("cursor=not-a-cursor", "cursor", id="bad-cursor"),
        pytest.param("sort=name", "sort", id="unknown-parameter"),
    ],
)
def test_list_rejects_invalid_query(client: FlaskClient, query: str, field: str) -> None:
    details = error_details(client.get(f"/api/jobs?{query}"), 422, "validation_error")

    assert field in details

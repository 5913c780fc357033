"""Failure groups and per-type statistics (issue 22): kept as jobs end, counted once, read without a scan."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from jobs import Jobs
from jobs.errors import JobNotFound
from jobs.store import control
from jobs.store.failures import normalized
from jobs.store.lifecycle import JobStore
from jobs.store.typestats import bucket, percentiles, upper_bound
from scripts.harness import RedisServer, Service, wait_until
from tests.api_helpers import create
from tests.bounds import JOB_SECONDS

SHORT = 0.2  # seconds a measured job sleeps


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("RuntimeError: db-17 timed out after 2.5s", "RuntimeError: db-<n> timed out after <n>s"),
        ("KeyError: 'user_42'", "KeyError: <str>"),
        ('ValueError: bad "x" and "y"', "ValueError: bad <str> and <str>"),
        ("LookupError: no order 3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b", "LookupError: no order <uuid>"),
        ("LookupError: no blob 9f86d081884c7d65", "LookupError: no blob <hex>"),
        ("OSError: [Errno 111] refused\n  more lines", "OSError: [Errno <n>] refused"),
        ("RuntimeError: failed on purpose", "RuntimeError: failed on purpose"),
    ],
)
def test_errors_are_grouped_by_their_first_line_without_what_varies(error: str, expected: str) -> None:
    assert normalized(error) == expected


def failed_job(client: FlaskClient, store: JobStore, error: str, name: str = "job") -> str:
    """A job that failed with `error`, as a worker's end records it."""
    job_id = create(client, name, type="demo.noop")["id"]
    assert store.begin(job_id, "w1").ok and store.fail(job_id, error).ok
    return job_id


def groups(client: FlaskClient) -> list[dict[str, Any]]:
    response = client.get("/api/failures")
    assert response.status_code == 200
    found: list[dict[str, Any]] = response.get_json()["groups"]
    return found


def test_a_groups_count_follows_its_jobs_through_fail_retry_fail_delete_and_expiry(
    client: FlaskClient, store: JobStore
) -> None:
    ids = [failed_job(client, store, f"RuntimeError: db-{n} is down") for n in range(4)]
    other = failed_job(client, store, "KeyError: 'x'")
    first, second = groups(client)
    assert (first["count"], first["type"], first["error"]) == (4, "demo.noop", "RuntimeError: db-<n> is down")
    assert first["example"] == "RuntimeError: db-3 is down" and first["sample_ids"] == ids[::-1]
    assert first["first_failed_at"] <= first["last_failed_at"]
    assert (second["count"], second["sample_ids"]) == (1, [other])

    assert client.post(f"/api/jobs/{ids[0]}/retry").status_code == 202  # pending: out of the group
    assert groups(client)[0]["count"] == 3
    assert store.begin(ids[0], "w1").ok and store.fail(ids[0], "RuntimeError: db-9 is down").ok
    assert groups(client)[0]["count"] == 4  # failed again: counted once
    assert client.delete(f"/api/jobs/{ids[1]}").status_code == 204
    assert groups(client)[0]["count"] == 3
    assert sorted(control.clean(store, "failed", 0)) == sorted({*ids, other} - {ids[1]})  # retention's deletion
    assert groups(client) == []  # the groups went with their jobs


def test_a_group_is_retried_or_deleted_whole(client: FlaskClient, store: JobStore, jobs_api: Jobs) -> None:
    ids = [failed_job(client, store, f"TimeoutError: after {n} s") for n in range(3)]
    kept = failed_job(client, store, "ValueError: other")
    key = next(g["key"] for g in groups(client) if g["count"] == 3)
    retried = client.post(f"/api/failures/{key}/retry")
    assert retried.status_code == 200 and retried.get_json() == {"count": 3, "ids": ids}
    assert {store.read.get(i)["status"] for i in ids} == {"pending"}
    assert [g["sample_ids"] for g in groups(client)] == [[kept]]
    for job_id in ids:
        assert store.begin(job_id, "w1").ok and store.fail(job_id, "TimeoutError: after 1 s").ok
    assert jobs_api.delete_failures(key) == ids  # the Python API, as the REST one
    assert all(store.read.get(i) is None for i in ids)
    assert client.post(f"/api/failures/{key}/retry").status_code == 404
    assert client.delete("/api/failures/not-a-key").status_code == 404
    with pytest.raises(JobNotFound):
        jobs_api.retry_failures(key)


@pytest.fixture
def jobs_api(app: Any) -> Jobs:
    jobs: Jobs = app.extensions["jobstream"].jobs
    return jobs


def test_buckets_and_percentiles() -> None:
    assert bucket(None) == "-" and bucket(0) == "0" and bucket(0.001) == "0"
    assert upper_bound(int(bucket(2.0))) >= 2.0 > upper_bound(int(bucket(2.0)) - 1)
    found = percentiles(Counter({int(bucket(0.1)): 90, int(bucket(5.0)): 8, int(bucket(60.0)): 2}))
    assert found is not None
    assert 0.1 <= found["p50"] < 0.13 and 5.0 <= found["p95"] < 6.3 and 60.0 <= found["p99"] < 76
    assert percentiles(Counter()) is None


def test_per_type_statistics_follow_the_jobs_that_end(pool: Service, private_redis: RedisServer) -> None:
    jobs = Jobs.from_url(private_redis.url)
    done = [jobs.enqueue("demo.sleep", name=f"nap {i}", params={"seconds": SHORT}) for i in range(4)]
    broken = [jobs.enqueue("demo.fail", name=f"broken {i}") for i in range(2)]
    for job in done + broken:
        jobs.wait(job.id, timeout=JOB_SECONDS)
    jobs.pause()
    waiting = jobs.enqueue("demo.sleep", name="waits", params={"seconds": 0})
    types = jobs.stats()["types"]
    sleep, fail = types["demo.sleep"], types["demo.fail"]
    assert (sleep["completed"], sleep["failed"], sleep["pending"], sleep["active"]) == (4, 0, 1, 0)
    assert (fail["completed"], fail["failed"]) == (0, 2)
    assert SHORT <= sleep["duration_seconds"]["p50"] <= SHORT * 1.25 * 2  # its bucket's bound, on a busy machine
    assert sleep["wait_seconds"] is not None and sleep["wait_seconds"]["p99"] < JOB_SECONDS
    assert len(sleep["per_minute"]) == 60 and sleep["per_minute"][0]["minute"] >= sleep["per_minute"][1]["minute"]
    assert sum(m["completed"] for m in sleep["per_minute"]) == 4
    assert types["demo.primes"]["duration_seconds"] is None  # nothing ended: no percentiles
    group = next(g for g in jobs.failures() if g["type"] == "demo.fail")
    assert group["count"] == 2 and group["error"] == "RuntimeError: failed on purpose"
    jobs.resume()
    assert jobs.wait(waiting.id, timeout=JOB_SECONDS).status == "completed"
    wait_until(lambda: jobs.stats()["types"]["demo.sleep"]["pending"] == 0, JOB_SECONDS, "the pending count to drop")


def test_a_missing_pending_count_by_type_is_rebuilt(
    client: FlaskClient, store: JobStore, redis_client: redis.Redis
) -> None:
    """A store from before the counters (an upgrade): a new store's first change rebuilds them from the sets."""
    for name, job_type in (("one", "demo.noop"), ("two", "demo.noop"), ("three", "demo.sleep")):
        create(client, name, type=job_type)
    redis_client.delete("jobstream:counts", "jobstream:type-pending")
    rebuilt = JobStore(redis_client, store.settings)
    rebuilt.scripts.common()  # what its first change does first
    types = control.stats(rebuilt)["types"]
    assert (types["demo.noop"]["pending"], types["demo.sleep"]["pending"]) == (2, 1)
    assert rebuilt.read.counts()["pending"] == 3


def test_a_groups_retry_while_its_jobs_keep_failing_counts_each_job_once(
    pool: Service, private_redis: RedisServer
) -> None:
    jobs = Jobs.from_url(private_redis.url)
    first = [jobs.enqueue("demo.fail", name=f"race {i}", params={"message": "race"}) for i in range(10)]
    for job in first:
        assert jobs.wait(job.id, timeout=JOB_SECONDS).status == "failed"
    key = next(g["key"] for g in jobs.failures() if g["example"] == "RuntimeError: race")
    more = [jobs.enqueue("demo.fail", name=f"race more {i}", params={"message": "race"}) for i in range(10)]
    retried = set(jobs.retry_failures(key))  # while the others fail: some of them may be in the group already
    assert {job.id for job in first} <= retried <= {job.id for job in first + more}
    for job in first + more:
        assert jobs.wait(job.id, timeout=JOB_SECONDS).status == "failed"
    group = next(g for g in jobs.failures() if g["key"] == key)
    failed_now = jobs.list(status="failed", limit=200).jobs
    assert group["count"] == 20 == sum(job.error == "RuntimeError: race" for job in failed_now)

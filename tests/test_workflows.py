"""Workflows in the store (issue 20): a job waits for its dependencies out of every queue, is released or canceled
in the script that ends the last of them, and a batch is a graph created all or none."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from jobs import InvalidRequest, JobConflict, Jobs
from jobs.config import Settings
from jobs.store import retention
from jobs.store.keys import SCHEDULED_KEY, TYPE_PENDING_KEY, dependents_key
from jobs.store.lifecycle import JobStore
from tests.api_helpers import error_details, queued_ids, redis_state, stored_events
from tests.test_engine import recount

TRIM_BUDGET_SECONDS = 20  # far beyond a trim that stops: one that spins uses all of it

NOOP = {"type": "demo.noop"}


@pytest.fixture
def jobs(redis_client: redis.Redis, settings: Settings) -> Jobs:
    return Jobs(redis_client, settings)


def run(jobs: Jobs, job_id: str, result: Any = None, error: str | None = None) -> None:
    """Take `job_id` off its queue and end it as a worker would: completed with `result`, or failed."""
    store: JobStore = jobs.store
    assert job_id in queued_ids(jobs.redis), f"{job_id} is not queued"
    jobs.redis.lrem(store.queues["normal"].key, 0, job_id)
    assert store.begin(job_id, "w1").ok
    assert (store.fail(job_id, error) if error else store.complete(job_id, result)).ok


def status(jobs: Jobs, job_id: str) -> tuple[str, list[str]]:
    job = jobs.get(job_id)
    return job.status, job.waiting_for


def test_a_chain_runs_in_order_each_released_by_the_end_of_the_one_before(jobs: Jobs) -> None:
    a = jobs.enqueue("demo.noop", name="extract")
    b = jobs.enqueue("demo.noop", name="load", depends_on=[a.id])
    c = jobs.enqueue("demo.noop", name="report", depends_on=[b.id])

    assert (b.status, b.depends_on, b.waiting_for) == ("pending", [a.id], [a.id])
    assert queued_ids(jobs.redis) == [a.id]  # the waiting ones are in no queue
    assert jobs.get(a.id).dependents == [b.id]

    run(jobs, a.id, {"rows": 3})
    assert status(jobs, b.id) == ("pending", []) and status(jobs, c.id) == ("pending", [b.id])
    assert queued_ids(jobs.redis) == [b.id]
    assert "released: its dependencies ended" in jobs.get(b.id).logs
    run(jobs, b.id)
    run(jobs, c.id)
    assert jobs.get(c.id).status == "completed"
    assert jobs.store.read.counts() == recount(jobs.redis)


def test_a_fan_in_waits_for_every_parent_and_reads_their_results(jobs: Jobs) -> None:
    created = jobs.enqueue_many(
        [
            *({**NOOP, "name": f"part {n}", "key": f"p{n}"} for n in range(3)),
            {**NOOP, "name": "sum", "key": "sum", "depends_on": ["p0", "p1", "p2"]},
        ]
    )
    parts, total = created[:3], created[3]
    assert total.waiting_for == [p.id for p in parts]
    for n, part in enumerate(parts[:2]):
        run(jobs, part.id, n)
    assert status(jobs, total.id) == ("pending", [parts[2].id])
    run(jobs, parts[2].id, 2)

    assert status(jobs, total.id) == ("pending", [])
    assert jobs.store.read.results(total.depends_on) == {part.id: n for n, part in enumerate(parts)}


def test_a_failed_dependency_cancels_its_dependents_transitively_each_with_its_event(jobs: Jobs) -> None:
    a, b, c, d = jobs.enqueue_many(
        [
            {**NOOP, "name": "a", "key": "a"},
            {**NOOP, "name": "b", "key": "b", "depends_on": ["a"]},
            {**NOOP, "name": "c", "key": "c", "depends_on": ["b"]},
            {**NOOP, "name": "d", "key": "d", "depends_on": ["a"], "allow_failure": True},
        ]
    )
    seen = len(stored_events(jobs.redis))

    run(jobs, a.id, error="boom")

    assert (jobs.get(b.id).status, jobs.get(b.id).error) == ("canceled", f"dependency {a.id} failed")
    assert (jobs.get(c.id).status, jobs.get(c.id).error) == ("canceled", f"dependency {b.id} canceled")
    assert status(jobs, d.id) == ("pending", []) and d.id in queued_ids(jobs.redis)  # allow_failure: runs anyway
    events = stored_events(jobs.redis)[seen:]
    # its start, its end, then what followed from the end, in the same script
    assert [e.job_id for e in events] == [a.id, a.id, b.id, d.id, c.id]
    assert all(e.data["job"]["waiting_for"] == [] for e in events[2:])
    assert events[-1].data["counts"] == jobs.store.read.counts() == recount(jobs.redis)
    assert jobs.redis.hget(TYPE_PENDING_KEY, "demo.noop") == b"1"  # d alone


def test_an_attempt_that_will_be_retried_is_not_an_end(jobs: Jobs) -> None:
    a = jobs.enqueue("demo.noop", name="flaky", max_attempts=2)
    b = jobs.enqueue("demo.noop", name="after", depends_on=[a.id])
    run(jobs, a.id, error="first try")

    assert status(jobs, a.id) == ("pending", []) and status(jobs, b.id) == ("pending", [a.id])
    jobs.redis.zadd(SCHEDULED_KEY, {a.id: 0})
    jobs.store.promote()
    run(jobs, a.id, "fine")
    assert status(jobs, b.id) == ("pending", [])


def test_cancel_cascades_to_waiting_dependents_and_spares_allow_failure(jobs: Jobs) -> None:
    a = jobs.enqueue("demo.noop", name="a")
    b = jobs.enqueue("demo.noop", name="b", depends_on=[a.id])
    c = jobs.enqueue("demo.noop", name="c", depends_on=[a.id], allow_failure=True)

    canceled = jobs.store.cancel(a.id)

    # what followed from the end comes back with it, for the metrics and the log of the process that ended it
    assert [(job["id"], job["status"]) for job in canceled.followed] == [(b.id, "canceled"), (c.id, "pending")]
    assert (jobs.get(b.id).status, jobs.get(b.id).error) == ("canceled", f"dependency {a.id} canceled")
    assert status(jobs, c.id) == ("pending", []) and queued_ids(jobs.redis) == [c.id]


def test_a_canceled_waiting_job_leaves_nothing_queued_when_its_parent_ends(jobs: Jobs) -> None:
    a = jobs.enqueue("demo.noop", name="a")
    b = jobs.enqueue("demo.noop", name="b", depends_on=[a.id])
    assert jobs.cancel(b.id).waiting_for == []
    run(jobs, a.id)
    assert jobs.get(b.id).status == "canceled" and queued_ids(jobs.redis) == []
    assert jobs.store.read.counts() == recount(jobs.redis)


def test_dependencies_that_ended_count_at_once(jobs: Jobs) -> None:
    done = jobs.enqueue("demo.noop", name="done")
    run(jobs, done.id)
    failed = jobs.enqueue("demo.noop", name="failed")
    run(jobs, failed.id, error="boom")

    ready = jobs.enqueue("demo.noop", name="ready", depends_on=[done.id])
    doomed, child = jobs.enqueue_many(
        [
            {**NOOP, "name": "doomed", "key": "x", "depends_on": [done.id, failed.id]},
            {**NOOP, "name": "child", "depends_on": ["x"]},
        ]
    )
    tolerant = jobs.enqueue("demo.noop", name="tolerant", depends_on=[failed.id], allow_failure=True)

    assert (ready.status, ready.waiting_for) == ("pending", []) and ready.id in queued_ids(jobs.redis)
    assert (doomed.status, doomed.error) == ("canceled", f"dependency {failed.id} failed")
    assert (child.status, child.error) == ("canceled", f"dependency {doomed.id} canceled")
    assert tolerant.status == "pending" and tolerant.id in queued_ids(jobs.redis)
    assert jobs.store.read.counts() == recount(jobs.redis)


def test_a_batch_item_doomed_twice_is_canceled_once(jobs: Jobs) -> None:
    """b depends on a stored failed job directly and through a: a's cancel reaches b first, the batch's own
    look at b's dependencies must not cancel it again (counts, its events)."""
    failed = jobs.enqueue("demo.noop", name="failed")
    run(jobs, failed.id, error="boom")
    a, b = jobs.enqueue_many(
        [
            {**NOOP, "name": "a", "key": "a", "depends_on": [failed.id]},
            {**NOOP, "name": "b", "depends_on": ["a", failed.id]},
        ]
    )
    assert (a.status, b.status) == ("canceled", "canceled")
    assert jobs.store.read.counts() == recount(jobs.redis)
    assert int(jobs.redis.hget(TYPE_PENDING_KEY, "demo.noop") or 0) == 0
    updates = [e for e in stored_events(jobs.redis) if e.job_id == b.id and e.job["status"] == "canceled"]
    assert len(updates) == 1


def test_a_released_job_goes_to_its_prioritys_queue_behind_those_already_there(jobs: Jobs) -> None:
    a = jobs.enqueue("demo.noop", name="a")
    urgent = jobs.enqueue("demo.noop", name="urgent", depends_on=[a.id], priority="high")
    first = jobs.enqueue("demo.noop", name="first", priority="high")
    run(jobs, a.id)
    assert [raw.decode() for raw in jobs.redis.lrange(jobs.store.queues["high"].key, 0, -1)] == [first.id, urgent.id]
    assert jobs.redis.hget(f"rq:job:{urgent.id}", "status") == b"queued"  # deferred while it waited


def test_a_delayed_dependent_keeps_its_delay_after_release(jobs: Jobs) -> None:
    a = jobs.enqueue("demo.noop", name="a")
    b = jobs.enqueue("demo.noop", name="b", depends_on=[a.id], delay_seconds=600)
    assert jobs.redis.zscore(SCHEDULED_KEY, b.id) is None
    run(jobs, a.id)
    assert jobs.redis.zscore(SCHEDULED_KEY, b.id) is not None and b.id not in queued_ids(jobs.redis)


def test_a_failed_job_retried_by_hand_releases_the_dependents_still_waiting(jobs: Jobs) -> None:
    a = jobs.enqueue("demo.noop", name="a")
    b = jobs.enqueue("demo.noop", name="b", depends_on=[a.id])
    run(jobs, a.id, error="boom")
    assert jobs.get(b.id).status == "canceled"
    c = jobs.enqueue("demo.noop", name="c", depends_on=[a.id], allow_failure=False)
    assert c.status == "canceled"  # a failed dependency: canceled at once

    jobs.retry(a.id)
    late = jobs.enqueue("demo.noop", name="late", depends_on=[a.id])  # waits for the retried job
    run(jobs, a.id)

    assert jobs.get(b.id).status == "canceled" and jobs.get(c.id).status == "canceled"
    assert status(jobs, late.id) == ("pending", []) and late.id in queued_ids(jobs.redis)


def test_a_canceled_dependent_retried_by_hand_waits_again_for_a_parent_not_ended(jobs: Jobs) -> None:
    a = jobs.enqueue("demo.noop", name="a")
    b = jobs.enqueue("demo.noop", name="b", depends_on=[a.id])
    jobs.cancel(b.id)

    assert jobs.retry(b.id).waiting_for == [a.id]
    assert queued_ids(jobs.redis) == [a.id]
    run(jobs, a.id)
    assert b.id in queued_ids(jobs.redis)


def test_deleting_a_job_that_others_need_is_a_conflict_and_retention_keeps_it(jobs: Jobs) -> None:
    a = jobs.enqueue("demo.noop", name="a")
    b = jobs.enqueue("demo.noop", name="b", depends_on=[a.id])
    with pytest.raises(JobConflict) as refused:
        jobs.delete(a.id)
    assert refused.value.details["dependents"] == [b.id]

    run(jobs, a.id)  # b released, not run yet: it still needs a's result
    with pytest.raises(JobConflict):
        jobs.delete(a.id)
    assert retention.delete(jobs.store, "completed", [a.id]) == []
    assert jobs.redis.zscore("jobstream:ended-at:completed", a.id) is not None  # kept for a later sweep

    run(jobs, b.id)
    jobs.delete(b.id)
    assert jobs.get(a.id).dependents == []  # a deleted dependent leaves its parent's set
    jobs.delete(a.id)
    assert jobs.redis.exists(dependents_key(a.id)) == 0


def test_retention_past_keep_ended_max_keeps_needed_jobs_and_stops(
    redis_client: redis.Redis, settings: Settings
) -> None:
    """The oldest ended jobs that a live dependent needs are kept, and the trim ends instead of taking them up
    again and again until its time budget runs out."""
    jobs = Jobs(redis_client, dataclasses.replace(settings, keep_ended_max=2))
    old = [jobs.enqueue("demo.noop", name=f"old {n}") for n in range(2)]
    for job in old:
        run(jobs, job.id)
    parents = [jobs.enqueue("demo.noop", name=f"parent {n}") for n in range(4)]
    child = jobs.enqueue("demo.noop", name="child", depends_on=[p.id for p in parents])
    for parent in parents:
        run(jobs, parent.id)  # child released, not run: it still needs their results

    started = time.monotonic()
    assert retention.trim(jobs.store, started + TRIM_BUDGET_SECONDS) == 2
    assert time.monotonic() - started < TRIM_BUDGET_SECONDS / 2  # it stopped; it did not spin to its deadline
    assert [jobs.get(p.id).status for p in parents] == ["completed"] * 4
    assert status(jobs, child.id) == ("pending", [])


def test_a_missing_dependency_is_refused_at_its_field_and_nothing_is_written(
    jobs: Jobs, redis_client: redis.Redis
) -> None:
    jobs.enqueue("demo.noop", name="there")
    before = redis_state(redis_client)
    gone = "0" * 21

    with pytest.raises(InvalidRequest) as single:
        jobs.enqueue("demo.noop", name="x", depends_on=[gone])
    with pytest.raises(InvalidRequest) as batch:
        jobs.enqueue_many([{**NOOP, "name": "ok", "key": "k"}, {**NOOP, "name": "x", "depends_on": ["k", gone]}])

    assert single.value.details == {"depends_on": [f"no job {gone}"]}
    assert batch.value.details == {"jobs": {"1": {"depends_on": [f"no job {gone}"]}}}
    assert redis_state(redis_client) == before


@pytest.mark.parametrize(
    ("items", "details"),
    [
        (
            [{"key": "a"}, {"key": "a"}],
            {"1": {"key": ["duplicate key 'a': item 0 has it"]}},
        ),
        (
            [{"key": "a", "depends_on": ["b"]}, {"key": "b", "depends_on": ["a"]}],
            {
                "0": {"depends_on": ["a cycle: 'a' -> 'b' -> 'a'"], "key": "a"},
                "1": {"depends_on": ["a cycle: 'b' -> 'a' -> 'b'"], "key": "b"},
            },
        ),
        (
            [{"key": "a"}, {"depends_on": ["nope"]}],
            {"1": {"depends_on": ["'nope' is neither a key of this batch nor a job id"]}},
        ),
        (
            [{"key": "a", "depends_on": [f"k{n}" for n in range(101)]}],
            {"0": {"depends_on": ["Length must be between 0 and 100."], "key": "a"}},
        ),
    ],
)
def test_a_bad_graph_is_refused_item_by_item_and_nothing_is_written(
    jobs: Jobs, redis_client: redis.Redis, items: list[dict[str, Any]], details: dict[str, Any]
) -> None:
    before = redis_state(redis_client)
    with pytest.raises(InvalidRequest) as refused:
        jobs.enqueue_many([{**NOOP, "name": f"item {n}", **item} for n, item in enumerate(items)])
    assert refused.value.details == {"jobs": details}
    assert redis_state(redis_client) == before


def test_more_than_a_thousand_items_are_refused(jobs: Jobs, redis_client: redis.Redis) -> None:
    with pytest.raises(InvalidRequest) as refused:
        jobs.enqueue_many([{**NOOP, "name": "x"}] * 1001)
    assert refused.value.details == {"jobs": ["at most 1000 jobs per batch"]}
    assert redis_client.dbsize() == 0


# -- over REST ------------------------------------------------------------------------------------------


def test_rest_batch_creates_a_graph_and_the_detail_lists_dependents(client: FlaskClient) -> None:
    body = {
        "jobs": [
            {"type": "demo.noop", "name": "extract", "key": "extract"},
            {"type": "demo.noop", "name": "load", "key": "load", "depends_on": ["extract"], "allow_failure": True},
        ]
    }
    response = client.post("/api/jobs/batch", json=body)

    assert response.status_code == 201
    extract, load = response.get_json()["jobs"]
    assert (load["depends_on"], load["waiting_for"], load["allow_failure"]) == ([extract["id"]], [extract["id"]], True)
    assert "dependents" not in load
    detail = client.get(f"/api/jobs/{extract['id']}").get_json()["job"]
    assert detail["dependents"] == [load["id"]]
    refused = client.delete(f"/api/jobs/{extract['id']}")
    assert error_details(refused, 409, "conflict") == {"status": "pending", "dependents": [load["id"]]}


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({"jobs": []}, {"jobs": ["Length must be between 1 and 1000."]}),
        ({"jobs": [{"name": "x"}], "more": 1}, {"more": ["Unknown field."]}),
        ({"jobs": [{"name": "x", "idempotency_key": "k"}]}, {"jobs": {"0": {"idempotency_key": ["Unknown field."]}}}),
        (
            {"jobs": [{"name": "ok", "key": "a"}, {"name": "", "key": "b", "depends_on": ["zz"]}]},
            {
                "jobs": {
                    "1": {
                        "name": ["Length must be between 1 and 200.", "must not be blank"],
                        "key": "b",
                    }
                }
            },
        ),
        (
            {"jobs": [{"name": "ok", "key": "a"}, {"name": "x", "key": "b", "depends_on": ["zz"]}]},
            {"jobs": {"1": {"depends_on": ["'zz' is neither a key of this batch nor a job id"], "key": "b"}}},
        ),
    ],
)
def test_rest_bad_batches_are_422_by_item_and_create_nothing(
    client: FlaskClient, redis_client: redis.Redis, body: dict[str, Any], details: dict[str, Any]
) -> None:
    before = redis_state(redis_client)
    assert error_details(client.post("/api/jobs/batch", json=body), 422, "validation_error") == details
    assert redis_state(redis_client) == before


def test_rest_create_with_a_missing_dependency_is_422_at_depends_on(client: FlaskClient) -> None:
    gone = "0" * 21
    response = client.post("/api/jobs", json={"name": "x", "type": "demo.noop", "depends_on": [gone, "nope"]})
    assert error_details(response, 422, "validation_error") == {"depends_on": {"1": ["not a job id"]}}
    response = client.post("/api/jobs", json={"name": "x", "type": "demo.noop", "depends_on": [gone]})
    assert error_details(response, 422, "validation_error") == {"depends_on": [f"no job {gone}"]}

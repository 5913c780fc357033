"""The Python API (`from jobs import Jobs`) on a real Redis: every method, errors that match the REST API's,
enqueue_many all or none, and the README's Flask example run against the stack's workers."""

from __future__ import annotations

import inspect
import re
import threading
import uuid
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from jobs import (
    CancelResult,
    CreateOptions,
    InvalidRequest,
    Job,
    JobConflict,
    JobNotFound,
    Jobs,
    JobsError,
    Page,
    attempt,
    progress,
    register,
    schemas,
)
from jobs.config import ConfigError, Settings
from jobs.store.keys import EVENTS_KEY, INDEX_KEY, SCHEDULED_KEY
from jobs.types import running
from jobs.types.attempts import Backoff
from jobs.types.registry import JobFunction
from tests.api_helpers import UNKNOWN_ID
from tests.bounds import JOB_SECONDS
from tests.conftest import Stack

README = Path(__file__).resolve().parent.parent / "README.md"
SLEEP = {"seconds": 0}


def unique(prefix: str) -> str:
    """A name no other test on the shared stack uses."""
    return f"{prefix} {uuid.uuid4().hex[:10]}"


@pytest.fixture
def jobs(redis_client: redis.Redis, settings: Settings) -> Jobs:
    """The API on the in-process tests' Redis (flushed): no worker takes its jobs."""
    return Jobs(redis_client, settings)


@pytest.fixture
def stack_jobs(stack: Stack) -> Jobs:
    """The API on the stack's Redis, whose five workers run its jobs."""
    return Jobs.from_url(stack.redis_server.url)


def active(jobs: Jobs, job: Job) -> Job:
    """`job` made active the way a worker does it (taken off its queue, begun on worker w1)."""
    jobs.redis.lrem(jobs.store.queues[job.priority].key, 0, job.id)
    assert jobs.store.begin(job.id, "w1").ok
    return jobs.get(job.id)


def rest_error(client: FlaskClient, method: str, path: str, status: int, **kwargs: Any) -> dict[str, Any]:
    """The REST API's error body for a request that must fail with `status`."""
    response = client.open(path, method=method, **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()["error"]


def redis_state(client: redis.Redis) -> dict[str, Any]:
    """What a refused request must leave as it was: every key, the events and the queue."""
    return {"keys": sorted(client.keys("*")), "events": client.xlen(EVENTS_KEY), "jobs": client.zcard(INDEX_KEY)}


# -- constructors ------------------------------------------------------------------------------------------


def test_from_url_reaches_that_redis_with_those_settings(redis_client: redis.Redis, redis_server: Any) -> None:
    jobs = Jobs.from_url(redis_server.url, queue="elsewhere", replay_events=500)

    job = jobs.enqueue("demo.sleep", name="from a URL", params=SLEEP)

    assert jobs.settings.replay_events == 500
    assert redis_client.lrange("rq:queue:elsewhere", 0, -1) == [job.id.encode()]
    assert redis_client.zrange(INDEX_KEY, 0, -1) == [job.id.encode()]


def test_a_plain_redis_client_is_enough(redis_client: redis.Redis) -> None:
    job = Jobs(redis_client).enqueue("demo.sleep", name="on a client", params=SLEEP)

    assert redis_client.lrange("rq:queue:jobstream", 0, -1) == [job.id.encode()]


def test_from_env_reads_what_the_skins_read(
    redis_client: redis.Redis, redis_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("JOBSTREAM_QUEUE", "from-env")

    job = Jobs.from_env().enqueue("demo.sleep", name="from the environment", params=SLEEP)

    assert redis_client.lrange("rq:queue:from-env", 0, -1) == [job.id.encode()]


def test_from_env_refuses_a_bad_variable_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBSTREAM_REPLAY_EVENTS", "lots")

    with pytest.raises(ConfigError, match="JOBSTREAM_REPLAY_EVENTS"):
        Jobs.from_env()


# -- enqueue -----------------------------------------------------------------------------------------------


def test_enqueue_returns_a_typed_pending_job(jobs: Jobs, client: FlaskClient) -> None:
    job = jobs.enqueue("demo.web_agent", name="Nightly export", params={"steps": 5}, priority="high")

    assert isinstance(job, Job)
    assert (job.name, job.type, job.status, job.priority) == ("Nightly export", "demo.web_agent", "pending", "high")
    assert (job.progress, job.attempts, job.started_at) == (0, 1, None)
    assert job.params == {"steps": 5, "step_seconds": 1.0, "fail_rate": 0.0}  # the schema's defaults filled in
    assert Job.from_snapshot(client.get("/api/jobs").get_json()["jobs"][0]) == job  # what REST lists


def test_enqueue_with_a_past_run_at_queues_the_job_at_once(jobs: Jobs, redis_client: redis.Redis) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    job = jobs.enqueue("demo.sleep", name=unique("past"), params=SLEEP, run_at=past)
    assert (job.status, job.scheduled_for) == ("pending", None)
    assert redis_client.lrange(jobs.store.queues[job.priority].key, 0, -1) == [job.id.encode()]
    assert redis_client.zscore(SCHEDULED_KEY, job.id) is None


def test_enqueue_is_thread_safe(jobs: Jobs, redis_client: redis.Redis) -> None:
    created: list[Job] = []
    lock = threading.Lock()

    def enqueue_some(thread: int) -> None:
        for n in range(25):
            job = jobs.enqueue("demo.sleep", name=f"thread {thread} job {n}", params=SLEEP)
            with lock:
                created.append(job)

    threads = [threading.Thread(target=enqueue_some, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({job.id for job in created}) == 200
    assert redis_client.zcard(INDEX_KEY) == 200
    assert redis_client.llen("rq:queue:jobstream") == 200


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        pytest.param({"name": "x", "type": "os.system"}, {}, id="unknown-type"),
        pytest.param({"name": "x", "type": "demo.sleep", "params": {"seconds": -1}}, {}, id="param-out-of-range"),
        pytest.param({"name": "x", "params": {"steps": "many"}}, {}, id="param-not-a-number"),
        pytest.param({"name": "x", "params": {"bogus": 1}}, {}, id="unknown-param"),
        pytest.param({"name": "x", "type": "demo.sleep", "params": {"steps": 3}}, {}, id="other-types-param"),
        pytest.param({"name": "x", "params": "steps=3"}, {}, id="params-not-an-object"),
        pytest.param({"name": "x", "params": [["steps", 3]]}, {}, id="params-a-list-of-pairs"),
        pytest.param({"name": ""}, {}, id="name-empty"),
        pytest.param({"name": "   "}, {}, id="name-blank"),
        pytest.param({"name": "n" * 201}, {}, id="name-201-chars"),
        pytest.param({"name": 7}, {}, id="name-not-a-string"),
        pytest.param({"name": "x", "priority": "urgent"}, {}, id="priority-unknown"),
        pytest.param({"name": "x", "priority": "HIGH"}, {}, id="priority-upper-case"),
        pytest.param({"name": "x", "timeout_seconds": 0}, {}, id="timeout-0"),
        pytest.param({"name": "x", "timeout_seconds": 24 * 3600 + 1}, {}, id="timeout-over-a-day"),
        pytest.param({"name": "x", "timeout_seconds": "soon"}, {}, id="timeout-not-a-number"),
        pytest.param({"name": "x", "delay_seconds": -1}, {}, id="delay-negative"),
        pytest.param({"name": "x", "run_at": "2999-01-01T00:00:00Z"}, {}, id="run-at-over-a-year"),
        pytest.param({"name": "x", "max_attempts": 0}, {}, id="max-attempts-0"),
        pytest.param({"name": "x", "backoff": {"type": "random"}}, {}, id="backoff-unknown-type"),
        pytest.param({"name": "x", "backoff": "fast"}, {}, id="backoff-not-an-object"),
        pytest.param({"name": "x"}, {"Idempotency-Key": "clé"}, id="key-not-ascii"),
        pytest.param({"name": "x"}, {"Idempotency-Key": "k" * 256}, id="key-256-chars"),
        pytest.param({"name": "x"}, {"Idempotency-Key": "two words"}, id="key-with-a-space"),
    ],
)
def test_enqueue_refuses_what_post_refuses_with_the_same_code_and_details(
    jobs: Jobs, client: FlaskClient, redis_client: redis.Redis, body: dict[str, Any], headers: dict[str, str]
) -> None:
    before = redis_state(redis_client)
    rest = rest_error(client, "POST", "/api/jobs", 422, json=body, headers=headers)
    options = {k: v for k, v in body.items() if k != "type"}

    with pytest.raises(InvalidRequest) as refused:
        jobs.enqueue(body.get("type", "demo.web_agent"), idempotency_key=headers.get("Idempotency-Key"), **options)

    assert (refused.value.code, refused.value.details) == (rest["code"], rest["details"])
    assert redis_state(redis_client) == before


# -- the create options, declared once --------------------------------------------------------------------

BODY_OPTIONS = {option.name for option in fields(CreateOptions) if "header" not in option.metadata}


def keywords(func: Any, *leave_out: str) -> set[str]:
    """The names `func` takes by keyword only, but those left out."""
    parameters = inspect.signature(func).parameters.values()
    return {p.name for p in parameters if p.kind is p.KEYWORD_ONLY} - set(leave_out)


def test_the_rest_body_has_the_create_options_and_the_job_itself() -> None:
    assert set(schemas.JobCreateSchema().fields) == BODY_OPTIONS | {"type", "name", "params"}


def test_enqueue_and_using_take_the_create_options_by_name() -> None:
    options = {option.name for option in fields(CreateOptions)}

    assert keywords(Jobs.enqueue, "name", "params") == options
    assert keywords(JobFunction.using) == options


def test_a_bound_job_function_enqueues_with_every_option(jobs: Jobs) -> None:
    @register("test.bound_options")
    def bound(count: int = 1) -> int:
        """Count."""
        return count

    run_at = datetime.now(UTC) + timedelta(hours=1)
    backoff = Backoff("fixed", 2.0, 2.0)
    using = bound.using(jobs, priority="low", timeout_seconds=5, run_at=run_at, max_attempts=2, backoff=backoff)

    job = using.enqueue("Bound", count=3)

    assert (job.params, job.priority, job.max_attempts, job.status) == ({"count": 3}, "low", 2, "pending")
    assert job.scheduled_for is not None
    assert abs(datetime.fromisoformat(job.scheduled_for) - run_at) < timedelta(seconds=1)


def test_from_jobs_import_progress_gives_the_function() -> None:
    assert progress is running.progress
    assert attempt is running.attempt


# -- enqueue_many ------------------------------------------------------------------------------------------


def test_enqueue_many_with_one_bad_item_creates_nothing(jobs: Jobs, redis_client: redis.Redis) -> None:
    jobs.enqueue("demo.sleep", name="there before", params=SLEEP)
    before = redis_state(redis_client)
    items = [{"type": "demo.sleep", "name": f"item {i}", "params": SLEEP} for i in range(10)]
    items[6] = {"type": "demo.sleep", "name": "item 6", "params": {"seconds": -1}}

    with pytest.raises(InvalidRequest) as refused:
        jobs.enqueue_many(items)

    with pytest.raises(InvalidRequest) as alone:
        jobs.enqueue(**items[6])
    assert refused.value.code == "validation_error"
    assert refused.value.details == {"jobs": {"6": alone.value.details}}
    assert redis_state(redis_client) == before


def test_enqueue_many_names_every_bad_item_by_its_index(jobs: Jobs, redis_client: redis.Redis) -> None:
    items: list[dict[str, Any]] = [{"name": f"item {i}"} for i in range(5)]
    items[1]["priority"] = "urgent"
    items[3]["type"] = "os.system"
    items[4]["idempotency_key"] = "not ascii é"

    with pytest.raises(InvalidRequest) as refused:
        jobs.enqueue_many(items)

    assert set(refused.value.details["jobs"]) == {"1", "3", "4"}
    assert "priority" in refused.value.details["jobs"]["1"]
    assert "type" in refused.value.details["jobs"]["3"]
    assert "Idempotency-Key" in refused.value.details["jobs"]["4"]
    assert redis_client.keys("*") == []


def test_enqueue_many_creates_500_jobs_in_one_transaction(jobs: Jobs, redis_client: redis.Redis) -> None:
    items = [{"type": "demo.sleep", "name": f"batch {i}", "params": SLEEP} for i in range(500)]
    redis_client.config_resetstat()

    created = jobs.enqueue_many(items)

    commands = redis_client.info("commandstats")
    assert commands["cmdstat_multi"]["calls"] == 1 and commands["cmdstat_exec"]["calls"] == 1
    assert [job.name for job in created] == [item["name"] for item in items]
    assert all(isinstance(job, Job) and job.status == "pending" for job in created)
    assert len({job.id for job in created}) == 500
    assert jobs.stats()["queues"]["normal"] == 500
    assert jobs.list(limit=1).counts["pending"] == 500


# -- reading -----------------------------------------------------------------------------------------------


def test_get_has_the_logs_and_the_last_event_id(jobs: Jobs) -> None:
    job = active(jobs, jobs.enqueue("demo.sleep", name="logged", params=SLEEP))
    jobs.store.report(job.id, 50, "halfway", log="half done")

    detail = jobs.get(job.id)

    assert (detail.status, detail.progress, detail.action) == ("active", 50, "halfway")
    assert detail.logs == ["started on w1", "half done"]
    assert detail.last_event_id == jobs.redis.xrevrange(EVENTS_KEY, count=1)[0][0].decode()


def test_get_of_an_unknown_job_is_not_found_as_in_rest(jobs: Jobs, client: FlaskClient) -> None:
    rest = rest_error(client, "GET", f"/api/jobs/{UNKNOWN_ID}", 404)

    with pytest.raises(JobNotFound) as missing:
        jobs.get(UNKNOWN_ID)

    assert missing.value.code == rest["code"] == "not_found"
    assert isinstance(missing.value, JobsError)


def test_list_pages_newest_first_through_next_cursor(jobs: Jobs, client: FlaskClient) -> None:
    created = jobs.enqueue_many([{"type": "demo.sleep", "name": f"page {i}", "params": SLEEP} for i in range(7)])
    newest_first = [job.id for job in reversed(created)]

    pages: list[Page] = [jobs.list(limit=3)]
    while pages[-1].next_cursor is not None:
        pages.append(jobs.list(limit=3, cursor=pages[-1].next_cursor))

    assert [len(page.jobs) for page in pages] == [3, 3, 1]
    assert [job.id for page in pages for job in page.jobs] == newest_first
    assert all(isinstance(job, Job) for page in pages for job in page.jobs)
    assert pages[0].counts == {"pending": 7, "active": 0, "completed": 0, "failed": 0, "canceled": 0}
    assert pages[0].last_event_id == client.get("/api/jobs").get_json()["last_event_id"]
    rest = client.get(f"/api/jobs?limit=3&cursor={pages[0].next_cursor}").get_json()
    assert [job["id"] for job in rest["jobs"]] == [job.id for job in pages[1].jobs]


def test_list_filters_by_status_and_name(jobs: Jobs) -> None:
    kept = jobs.enqueue("demo.sleep", name="Monthly Export", params=SLEEP)
    canceled = jobs.cancel(jobs.enqueue("demo.sleep", name="weekly export", params=SLEEP).id)
    jobs.enqueue("demo.sleep", name="unrelated", params=SLEEP)

    assert [job.id for job in jobs.list(status="canceled").jobs] == [canceled.id]
    assert [job.id for job in jobs.list(q="EXPORT").jobs] == [canceled.id, kept.id]
    assert [job.id for job in jobs.list(status="pending", q="export").jobs] == [kept.id]


@pytest.mark.parametrize(
    ("query", "arguments"),
    [
        pytest.param("limit=0", {"limit": 0}, id="limit-0"),
        pytest.param("limit=201", {"limit": 201}, id="limit-201"),
        pytest.param("status=done", {"status": "done"}, id="unknown-status"),
        pytest.param("cursor=nope", {"cursor": "nope"}, id="bad-cursor"),
    ],
)
def test_list_refuses_what_get_refuses(jobs: Jobs, client: FlaskClient, query: str, arguments: dict[str, Any]) -> None:
    rest = rest_error(client, "GET", f"/api/jobs?{query}", 422)

    with pytest.raises(InvalidRequest) as refused:
        jobs.list(**arguments)

    assert (refused.value.code, refused.value.details) == (rest["code"], rest["details"])


def test_stats_show_queue_depth_by_priority(jobs: Jobs, client: FlaskClient) -> None:
    for priority, count in (("high", 2), ("normal", 1), ("low", 3)):
        for n in range(count):
            jobs.enqueue("demo.sleep", name=f"{priority} {n}", params=SLEEP, priority=priority)

    stats = jobs.stats()

    assert stats["queues"] == {"high": 2, "normal": 1, "low": 3}
    assert stats["counts"]["pending"] == 6
    assert stats["paused"] is False
    assert stats["workers"] == []
    assert client.get("/api/stats").get_json()["queues"] == stats["queues"]


# -- changing ----------------------------------------------------------------------------------------------


def test_cancel_a_pending_job_ends_it_and_takes_it_off_its_queue(jobs: Jobs, redis_client: redis.Redis) -> None:
    job = jobs.enqueue("demo.sleep", name="never runs", params=SLEEP, priority="low")

    canceled = jobs.cancel(job.id)

    assert (canceled.status, canceled.ended_at is not None) == ("canceled", True)
    assert jobs.stats()["queues"]["low"] == 0


def test_cancel_an_active_job_asks_its_worker(jobs: Jobs) -> None:
    job = active(jobs, jobs.enqueue("demo.sleep", name="running", params=SLEEP))

    asked = jobs.cancel(job.id)

    assert (asked.status, asked.cancel_requested) == ("active", True)


def test_cancel_of_an_ended_job_is_the_rest_conflict(jobs: Jobs, client: FlaskClient) -> None:
    job = jobs.cancel(jobs.enqueue("demo.sleep", name="already over", params=SLEEP).id)
    rest = rest_error(client, "POST", f"/api/jobs/{job.id}/cancel", 409)

    with pytest.raises(JobConflict) as conflict:
        jobs.cancel(job.id)

    assert (conflict.value.code, conflict.value.details) == (rest["code"], rest["details"])
    assert rest["details"] == {"status": "canceled"}
    with pytest.raises(JobNotFound):
        jobs.cancel(UNKNOWN_ID)


def test_cancel_many_says_what_happened_to_each_id_once(jobs: Jobs) -> None:
    pending = jobs.enqueue("demo.sleep", name="pending", params=SLEEP)
    running = active(jobs, jobs.enqueue("demo.sleep", name="running", params=SLEEP))
    ended = jobs.cancel(jobs.enqueue("demo.sleep", name="ended", params=SLEEP).id)

    results = jobs.cancel_many([pending.id, running.id, ended.id, UNKNOWN_ID, pending.id])

    assert all(isinstance(result, CancelResult) for result in results)
    assert [(r.id, r.outcome, r.status) for r in results] == [
        (pending.id, "canceled", "canceled"),
        (running.id, "cancel_requested", "active"),
        (ended.id, "conflict", "canceled"),
        (UNKNOWN_ID, "not_found", None),
    ]
    assert results[0].job is not None and results[0].job.status == "canceled"
    assert results[3].job is None


def test_retry_runs_a_canceled_job_again_with_its_logs(jobs: Jobs, client: FlaskClient) -> None:
    job = jobs.cancel(jobs.enqueue("demo.sleep", name="again", params=SLEEP, priority="high").id)

    again = jobs.retry(job.id)

    assert (again.id, again.status, again.attempts, again.ended_at) == (job.id, "pending", 2, None)
    assert "canceled before it ran" in (jobs.get(job.id).logs or [])
    assert jobs.stats()["queues"]["high"] == 1  # back on its own priority's queue
    rest = rest_error(client, "POST", f"/api/jobs/{job.id}/retry", 409)
    with pytest.raises(JobConflict) as conflict:
        jobs.retry(job.id)
    assert (conflict.value.code, conflict.value.details) == (rest["code"], rest["details"])


def test_delete_removes_a_job_but_not_an_active_one(jobs: Jobs, client: FlaskClient) -> None:
    gone = jobs.enqueue("demo.sleep", name="to delete", params=SLEEP)
    running = active(jobs, jobs.enqueue("demo.sleep", name="running", params=SLEEP))

    assert jobs.delete(gone.id) is None

    with pytest.raises(JobNotFound):
        jobs.get(gone.id)
    rest = rest_error(client, "DELETE", f"/api/jobs/{running.id}", 409)
    with pytest.raises(JobConflict) as conflict:
        jobs.delete(running.id)
    assert (conflict.value.code, conflict.value.details) == (rest["code"], rest["details"])
    with pytest.raises(JobNotFound):
        jobs.delete(gone.id)


def test_pause_and_resume_show_in_stats_and_rest(jobs: Jobs, client: FlaskClient) -> None:
    jobs.pause()
    assert jobs.stats()["paused"] is True
    assert client.get("/api/stats").get_json()["paused"] is True

    jobs.resume()
    assert jobs.stats()["paused"] is False


def test_clean_deletes_ended_jobs_by_status_and_age(jobs: Jobs) -> None:
    done = active(jobs, jobs.enqueue("demo.sleep", name="done", params=SLEEP))
    assert jobs.store.complete(done.id, {"ok": True}).ok
    canceled = jobs.cancel(jobs.enqueue("demo.sleep", name="canceled", params=SLEEP).id)
    pending = jobs.enqueue("demo.sleep", name="pending", params=SLEEP)

    assert jobs.clean(older_than_seconds=3600) == []
    assert jobs.clean(status="completed") == [done.id]
    assert jobs.clean() == [canceled.id]
    assert [job.id for job in jobs.list().jobs] == [pending.id]
    with pytest.raises(InvalidRequest) as refused:
        jobs.clean(status="pending")
    assert "status" in refused.value.details


# -- waiting -----------------------------------------------------------------------------------------------


def test_wait_returns_the_job_once_a_worker_ended_it(stack_jobs: Jobs) -> None:
    done = stack_jobs.enqueue("demo.sleep", name=unique("waited for"), params=SLEEP)
    broken = stack_jobs.enqueue(
        "demo.web_agent", name=unique("fails"), params={"steps": 1, "step_seconds": 0, "fail_rate": 1}
    )

    finished = stack_jobs.wait(done.id, timeout=JOB_SECONDS)
    failed = stack_jobs.wait(broken.id, timeout=JOB_SECONDS)

    assert (finished.status, finished.result, finished.progress) == ("completed", {"slept": 0.0}, 100)
    assert failed.status == "failed" and failed.error and "failed" in failed.error
    assert stack_jobs.wait(done.id, timeout=0).status == "completed"  # already over: at once


def test_wait_returns_the_ended_job_with_its_logs_however_the_end_arrived(stack_jobs: Jobs) -> None:
    job = stack_jobs.enqueue("demo.sleep", name=unique("ends while waited for"), params={"seconds": 0.5})

    ended = stack_jobs.wait(job.id, timeout=JOB_SECONDS)  # subscribed long before the job's end

    assert ended.status == "completed"
    assert ended.logs is not None and "completed" in ended.logs


def test_wait_gives_up_with_timeout_error(jobs: Jobs) -> None:
    job = jobs.enqueue("demo.sleep", name="nobody runs me", params=SLEEP)

    with pytest.raises(TimeoutError, match="pending"):
        jobs.wait(job.id, timeout=0.3)


def test_wait_for_a_job_deleted_meanwhile_is_not_found(jobs: Jobs) -> None:
    job = jobs.enqueue("demo.sleep", name="deleted while waited for", params=SLEEP)
    deleter = threading.Thread(target=jobs.delete, args=(job.id,))

    deleter.start()
    try:
        with pytest.raises(JobNotFound):  # deleted before the wait looked, or while it waited: the same answer
            jobs.wait(job.id, timeout=JOB_SECONDS)
    finally:
        deleter.join()


# -- the README's example ----------------------------------------------------------------------------------


def readme_python_example() -> str:
    """The first Python block of the README's "Use it from Python" section."""
    section = README.read_text().split("\n## Use it from Python\n", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found, "the README's 'Use it from Python' section has no python block"
    return found.group(1)


def test_the_readme_flask_example_enqueues_and_the_job_completes(
    stack: Stack, stack_jobs: Jobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = readme_python_example()
    assert len(code.strip().splitlines()) <= 12, "the example should stay about ten lines"
    monkeypatch.setenv("REDIS_URL", stack.redis_server.url)
    month = uuid.uuid4().hex[:8]  # the example's idempotency key is per month: a fresh one per run
    namespace: dict[str, Any] = {"__name__": "readme_example"}

    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102  (our own README's code, as a user pastes it)
    answers = [namespace["app"].test_client().post(f"/reports/{month}") for _ in range(2)]

    assert [answer.status_code for answer in answers] == [202, 202]
    first, second = (answer.get_json() for answer in answers)
    assert first["job_id"] == second["job_id"]  # the same month twice is one job
    job = stack_jobs.wait(first["job_id"], timeout=JOB_SECONDS)
    assert (job.name, job.status) == (f"Report {month}", "completed")

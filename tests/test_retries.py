"""Automatic retries through real processes: attempts, the backoff between them, the events and logs of each
failed attempt, a killed worker's or a timed-out job retried, a canceled job never, a manual retry's budget."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from jobs.store.keys import SCHEDULED_KEY
from scripts.harness import request, wait_until
from tests.api_helpers import Event
from tests.bounds import EVENT_SECONDS, JOB_SECONDS, QUIET_SECONDS
from tests.schedule_helpers import LATE_SECONDS, Cluster, cluster_in, history, moment, starts, statuses

# How far a failed attempt's scheduled_for may be from its failure + the backoff: both are read from the clock
# within the same call (JobStore.fail), so only that call's own time is between them.
SCHEDULE_TOLERANCE = 0.1


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A Redis of this module's own, a pool of 3 workers with the test job types, and gunicorn."""
    with cluster_in(tmp_path_factory.mktemp("retries")) as running:
        running.pool(concurrency=3)
        running.base = running.web()
        yield running


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def failures(events: list[Event]) -> list[Event]:
    """The events in which an active job became pending again: its failed attempts that had a next one."""
    found, previous = [], None
    for event in events:
        if event.name != "job-update":
            continue
        status = event.job["status"]
        if previous == "active" and status == "pending":
            found.append(event)
        previous = status
    return found


def assert_backoff(events: list[Event], waits: list[float], jitter: bool = False) -> None:
    """Each failed attempt scheduled its next one `waits[i]` later (with jitter: between half of it and all
    of it), and that attempt started no earlier than its scheduled_for and at most LATE_SECONDS after."""
    failed, begun = failures(events), starts(events)
    assert len(failed) == len(waits), [e.job["status"] for e in events]
    assert len(begun) == len(waits) + 1
    for i, (failure, wait) in enumerate(zip(failed, waits, strict=True)):
        scheduled = moment(failure.job["scheduled_for"])
        waited = scheduled - moment(failure.data["timestamp"])
        if jitter:
            assert wait / 2 - SCHEDULE_TOLERANCE <= waited <= wait + SCHEDULE_TOLERANCE, (i, waited)
        else:
            assert waited == pytest.approx(wait, abs=SCHEDULE_TOLERANCE), (i, waited)
        started = moment(begun[i + 1].job["started_at"])
        assert scheduled <= started <= scheduled + LATE_SECONDS, (i, started - scheduled)


def ended(cluster: Cluster, job_id: str) -> Any:
    return cluster.jobs.wait(job_id, JOB_SECONDS)


def assert_stays(cluster: Cluster, job_id: str, status: str, starts_count: int) -> None:
    """Nothing runs the job again: for QUIET_SECONDS it keeps `status`, with no further start."""
    with pytest.raises(AssertionError):
        wait_until(
            lambda: (
                cluster.jobs.get(job_id).status != status or len(starts(history(cluster.redis, job_id))) > starts_count
            ),
            QUIET_SECONDS,
            "the job to run again",
        )


# -- attempts and backoff ---------------------------------------------------------------------------------


def test_a_flaky_job_with_the_types_defaults_completes_at_its_third_attempt_a_fixed_second_apart(
    cluster: Cluster,
) -> None:
    """demo.flaky registers max_attempts=3 and a fixed 1 s backoff: a job given neither gets them."""
    job = cluster.jobs.enqueue("demo.flaky", name=unique("flaky"), params={"fail_times": 2})
    assert (job.status, job.attempts, job.max_attempts) == ("pending", 1, 3)
    done = ended(cluster, job.id)
    assert (done.status, done.attempts, done.max_attempts, done.result) == ("completed", 3, 3, {"attempt": 3})
    events = history(cluster.redis, job.id)
    assert statuses(events) == ["pending", "active", "pending", "active", "pending", "active", "completed"]
    assert_backoff(events, [1.0, 1.0])


def test_exponential_backoff_doubles_up_to_its_cap(cluster: Cluster) -> None:
    backoff = {"type": "exponential", "delay_seconds": 0.4, "max_delay_seconds": 1.0}
    job = cluster.jobs.enqueue(
        "demo.flaky", name=unique("exp"), params={"fail_times": 3}, max_attempts=4, backoff=backoff
    )
    done = ended(cluster, job.id)
    assert (done.status, done.attempts, done.max_attempts) == ("completed", 4, 4)
    assert_backoff(history(cluster.redis, job.id), [0.4, 0.8, 1.0])


def test_jitter_takes_up_to_half_of_each_wait_off(cluster: Cluster) -> None:
    backoff = {"type": "fixed", "delay_seconds": 1.0, "max_delay_seconds": 1.0, "jitter": True}
    job = cluster.jobs.enqueue(
        "demo.flaky", name=unique("jitter"), params={"fail_times": 3}, max_attempts=4, backoff=backoff
    )
    assert ended(cluster, job.id).status == "completed"
    assert_backoff(history(cluster.redis, job.id), [1.0, 1.0, 1.0], jitter=True)


def test_each_failed_attempt_is_an_event_with_its_error_and_next_time_and_its_traceback_in_the_logs(
    cluster: Cluster,
) -> None:
    job = cluster.jobs.enqueue(
        "demo.flaky",
        name=unique("always"),
        params={"fail_times": 100},
        max_attempts=3,
        backoff={"type": "fixed", "delay_seconds": 0.2},
    )
    done = ended(cluster, job.id)
    assert (done.status, done.attempts, done.max_attempts) == ("failed", 3, 3)
    assert done.error == "RuntimeError: attempt 3 fails on purpose (the first 100 do)"
    assert done.scheduled_for is None
    events = history(cluster.redis, job.id)
    assert len(starts(events)) == 3
    for number, failure in enumerate(failures(events), start=1):
        snapshot = failure.job
        assert snapshot["status"] == "pending" and snapshot["attempts"] == number + 1
        assert snapshot["error"] == f"RuntimeError: attempt {number} fails on purpose (the first 100 do)"
        assert snapshot["scheduled_for"] is not None and snapshot["worker"] is None
        assert failure.data["counts"]["pending"] >= 1  # a status change carries the counts
        log = failure.data["log"].splitlines()
        assert log[0] == f"attempt {number}/3 failed: {snapshot['error']}"
        assert log[1] == "Traceback (most recent call last):"
        assert log[-2] == snapshot["error"]
        assert log[-1] == f"next attempt at {snapshot['scheduled_for']}"
    last = events[-1]
    assert last.job["status"] == "failed" and last.data["log"].startswith("attempt 3/3 failed: RuntimeError")
    logs = cluster.jobs.get(job.id).logs or []
    assert sum(line == "Traceback (most recent call last):" for line in logs) == 3
    assert [line for line in logs if line.startswith("attempt ")] == [
        f"attempt {n}/3 failed: RuntimeError: attempt {n} fails on purpose (the first 100 do)" for n in (1, 2, 3)
    ]
    assert_stays(cluster, job.id, "failed", 3)


def test_a_job_with_one_attempt_fails_at_once(cluster: Cluster) -> None:
    job = cluster.jobs.enqueue(
        "demo.web_agent", name=unique("once"), params={"steps": 1, "step_seconds": 0, "fail_rate": 1}
    )
    done = ended(cluster, job.id)
    assert (done.status, done.attempts, done.max_attempts) == ("failed", 1, 1)
    assert statuses(history(cluster.redis, job.id)) == ["pending", "active", "failed"]
    assert (cluster.jobs.get(job.id).logs or [])[1].startswith("failed: RuntimeError: step 1/1 failed")


# -- the other ways an attempt fails -------------------------------------------------------------------------


def running_on(cluster: Cluster, job_id: str) -> str:
    """The worker running `job_id` once the job function itself runs (it reported progress)."""
    job = cluster.jobs.get(job_id)
    return job.worker or "" if job.status == "active" and job.progress > 0 else ""


def test_the_job_of_a_killed_worker_runs_again_when_it_has_attempts_left(cluster: Cluster) -> None:
    job = cluster.jobs.enqueue("test.slow_first", name=unique("victim"), params={"seconds": 120})
    worker = wait_until(lambda: running_on(cluster, job.id), EVENT_SECONDS, "the first attempt running")
    pid = int(cluster.redis.hget(f"rq:worker:{worker}", "pid"))
    os.kill(pid, signal.SIGKILL)
    done = ended(cluster, job.id)
    assert (done.status, done.attempts, done.result) == ("completed", 2, {"attempt": 2})
    events = history(cluster.redis, job.id)
    assert statuses(events) == ["pending", "active", "pending", "active", "completed"]
    (failure,) = failures(events)
    assert failure.job["error"] == f"worker died (pid {pid}, exit code -9)"
    assert_backoff(events, [0.5])


def test_a_timed_out_attempt_runs_again(cluster: Cluster) -> None:
    job = cluster.jobs.enqueue("test.slow_first", name=unique("slow"), params={"seconds": 30}, timeout_seconds=1)
    done = ended(cluster, job.id)
    assert (done.status, done.attempts) == ("completed", 2)
    (failure,) = failures(history(cluster.redis, job.id))
    assert failure.job["error"] == "timed out after 1 s"


# -- cancel and manual retry ---------------------------------------------------------------------------------


def test_a_canceled_running_job_is_not_retried(cluster: Cluster) -> None:
    job = cluster.jobs.enqueue(
        "demo.web_agent", name=unique("cancel me"), params={"steps": 600, "step_seconds": 0.1}, max_attempts=3
    )
    wait_until(lambda: running_on(cluster, job.id), EVENT_SECONDS, "the job running")
    assert cluster.jobs.cancel(job.id).cancel_requested
    done = ended(cluster, job.id)
    assert (done.status, done.attempts) == ("canceled", 1)
    assert_stays(cluster, job.id, "canceled", 1)


def test_a_job_canceled_while_it_waits_for_its_next_attempt_never_runs_again(cluster: Cluster) -> None:
    backoff = {"type": "fixed", "delay_seconds": 1.5}
    job = cluster.jobs.enqueue(
        "demo.flaky", name=unique("waiting"), params={"fail_times": 1}, max_attempts=2, backoff=backoff
    )
    waiting = wait_until(
        lambda: (j := cluster.jobs.get(job.id)).status == "pending" and j.attempts == 2 and j,
        JOB_SECONDS,
        "the first attempt failed",
    )
    assert waiting.scheduled_for is not None
    canceled = cluster.jobs.cancel(job.id)
    assert canceled.status == "canceled" and canceled.scheduled_for is None
    assert cluster.redis.zscore(SCHEDULED_KEY, job.id) is None
    assert cluster.redis.exists(f"rq:job:{job.id}") == 0
    wait_until(lambda: time.time() > moment(waiting.scheduled_for), EVENT_SECONDS, "its next attempt's time")
    assert_stays(cluster, job.id, "canceled", 1)


def test_a_manual_retry_of_a_failed_job_gets_a_fresh_attempt_budget(cluster: Cluster) -> None:
    backoff = {"type": "exponential", "delay_seconds": 0.3, "max_delay_seconds": 10}
    job = cluster.jobs.enqueue(
        "demo.flaky", name=unique("again"), params={"fail_times": 4}, max_attempts=3, backoff=backoff
    )
    failed = ended(cluster, job.id)
    assert (failed.status, failed.attempts, failed.max_attempts) == ("failed", 3, 3)
    retried = cluster.jobs.retry(job.id)
    assert (retried.status, retried.attempts, retried.max_attempts) == ("pending", 4, 6)
    assert retried.error is None and retried.scheduled_for is None
    done = ended(cluster, job.id)
    assert (done.status, done.attempts, done.max_attempts, done.result) == ("completed", 5, 6, {"attempt": 5})
    events = history(cluster.redis, job.id)
    run_two = events[next(i for i, e in enumerate(events) if (e.data.get("log") or "").startswith("retry")) :]
    assert_backoff(run_two, [0.3])  # the backoff starts over with the run: 0.3 s, not 1.2 s


# -- the REST API -------------------------------------------------------------------------------------------


def test_rest_create_takes_max_attempts_and_backoff(cluster: Cluster) -> None:
    body = {
        "name": unique("rest"),
        "type": "demo.flaky",
        "params": {"fail_times": 1},
        "max_attempts": 2,
        "backoff": {"type": "fixed", "delay_seconds": 0.2},
    }
    status, data, _ = request(cluster.base, "POST", "/api/jobs", body)
    assert status == 201, data
    assert (data["job"]["attempts"], data["job"]["max_attempts"]) == (1, 2)
    done = ended(cluster, data["job"]["id"])
    assert (done.status, done.attempts) == ("completed", 2)
    status, detail, _ = request(cluster.base, "GET", f"/api/jobs/{done.id}")
    assert status == 200 and detail["job"]["attempts"] == 2
    assert any(line.startswith("attempt 1/2 failed: RuntimeError") for line in detail["job"]["logs"])


@pytest.mark.parametrize(
    ("extra", "details"),
    [
        pytest.param({"max_attempts": 0}, {"max_attempts"}, id="max-attempts-0"),
        pytest.param({"max_attempts": 101}, {"max_attempts"}, id="max-attempts-101"),
        pytest.param(
            {"max_attempts": 2.5},
            {"max_attempts"},
            id="max-attempts-fraction",
        ),
        pytest.param({"backoff": {"type": "linear"}}, {"backoff": {"type"}}, id="backoff-type"),
        pytest.param({"backoff": {"delay_seconds": -1}}, {"backoff": {"delay_seconds"}}, id="backoff-negative"),
        pytest.param(
            {"backoff": {"delay_seconds": 10, "max_delay_seconds": 5}},
            {"backoff": {"max_delay_seconds"}},
            id="backoff-max-below-delay",
        ),
        pytest.param(
            {"backoff": {"delay_seconds": 8 * 24 * 3600, "max_delay_seconds": 8 * 24 * 3600}},
            {"backoff": {"delay_seconds", "max_delay_seconds"}},
            id="backoff-over-7-days",
        ),
        pytest.param({"backoff": {"jitter": "sometimes"}}, {"backoff": {"jitter"}}, id="backoff-jitter"),
        pytest.param({"backoff": {"type": "fixed", "factor": 2}}, {"backoff": {"factor"}}, id="backoff-unknown"),
        pytest.param({"backoff": "fast"}, {"backoff"}, id="backoff-not-an-object"),
    ],
)
def test_bad_retry_options_are_422_naming_the_field(cluster: Cluster, extra: dict, details: Any) -> None:
    body = {"name": "bad", "type": "demo.flaky", **extra}
    status, data, _ = request(cluster.base, "POST", "/api/jobs", body)
    assert status == 422, data
    assert data["error"]["code"] == "validation_error"
    got = data["error"]["details"]
    if isinstance(details, dict):
        ((field, inner),) = details.items()
        assert set(got) == {field} and set(got[field]) == inner, got
    else:
        assert set(got) == details, got

"""Schedules through the REST and Python APIs on a real Redis, their ticks fired by the ticker's own call (the
pools' tests are tests/test_schedule_ticks.py): upsert, bad input at the field, pause/resume/run/delete, a tick
claimed once, overlap skipped, missed ticks caught up by one job, and the DST tables through preview."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from jobs import InvalidRequest, Jobs, ScheduleNotFound
from jobs.cadence import Cadence, CadenceError
from jobs.store.keys import SCHEDULE_DUE_KEY, SCHEDULE_PREFIX
from jobs.store.schedules import CREATED, SKIPPED, TAKEN, ScheduleStore
from jobs.store.ticker import HOLD_SECONDS, Ticker
from scripts.harness import request, wait_until
from tests.api_helpers import TIMESTAMP, stored_events
from tests.bounds import EVENT_SECONDS, JOB_SECONDS
from tests.helpers import OpenSSE, SSEClient, create
from tests.schedule_helpers import LATE_SECONDS, moment

DAILY = {"type": "demo.noop", "cron": "0 3 * * *", "timezone": "Europe/Berlin"}
EVERY = {"type": "demo.noop", "every_seconds": 60}


def put(client: FlaskClient, schedule_id: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = client.put(f"/api/schedules/{schedule_id}", json=body)
    assert response.status_code == status, response.get_json()
    return response.get_json()["schedule"]


def schedule_events(client: redis.Redis) -> list[Any]:
    return [e for e in stored_events(client) if e.name.startswith("schedule-")]


def in_the_past(client: redis.Redis, schedule_id: str, ticks: int) -> int:
    """Move the schedule's next tick `ticks` of its cadence back (into the past), as if every pool had been down
    meanwhile; the tick now due (ms)."""
    period = json.loads(client.hget(SCHEDULE_PREFIX + schedule_id, "def") or "{}")["every_seconds"] * 1000
    due_ms = int(client.hget(SCHEDULE_PREFIX + schedule_id, "next_ms") or 0) - ticks * period
    client.hset(SCHEDULE_PREFIX + schedule_id, "next_ms", due_ms)
    client.zadd(SCHEDULE_DUE_KEY, {schedule_id: due_ms})
    return due_ms


@pytest.fixture
def jobs_api(app: Flask) -> Jobs:
    """The app's own Jobs: the Python API on the same Redis."""
    found: Jobs = app.extensions["jobstream"].jobs
    return found


@pytest.fixture
def schedules(jobs_api: Jobs) -> ScheduleStore:
    return jobs_api.schedule_store


def test_put_creates_then_replaces_keeping_next_run_and_created_at(client: FlaskClient) -> None:
    first = put(client, "nightly", {**DAILY, "params": {}})
    assert first["name"] == "nightly" and first["overlap"] == "skip" and first["paused"] is False
    assert TIMESTAMP.match(first["next_run_at"]) and first["next_run_at"].endswith(("01:00:00.000Z", "02:00:00.000Z"))
    assert first["last_job_id"] is None and first["last_run_at"] is None

    again = put(client, "nightly", {**DAILY, "name": "Nightly export"}, status=200)
    assert again["name"] == "Nightly export"
    assert (again["next_run_at"], again["created_at"]) == (first["next_run_at"], first["created_at"])

    # Half past each hour: never the daily's 03:00 Berlin, whatever the hour the test runs at.
    hourly = put(client, "nightly", {**DAILY, "cron": "30 * * * *"}, status=200)
    assert hourly["next_run_at"] != first["next_run_at"] and hourly["next_run_at"].endswith(":30:00.000Z")

    put(client, "a-first", EVERY)
    listed = client.get("/api/schedules").get_json()["schedules"]
    assert [s["id"] for s in listed] == ["a-first", "nightly"]
    assert client.get("/api/schedules/nightly").get_json()["schedule"] == hourly


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**DAILY, "cron": "61 * * * *"}, "cron"),
        ({**DAILY, "cron": "* * * *"}, "cron"),
        ({**DAILY, "cron": "@yearly"}, "cron"),
        ({**DAILY, "timezone": "Mars/Olympus_Mons"}, "timezone"),
        # files of the zone database that ZoneInfo loads but that name no IANA zone
        ({**DAILY, "timezone": "localtime"}, "timezone"),
        ({**DAILY, "timezone": "posix/Europe/Berlin"}, "timezone"),
        ({**DAILY, "timezone": "right/Europe/Berlin"}, "timezone"),
        ({**DAILY, "timezone": "Factory"}, "timezone"),
        ({**DAILY, "every_seconds": 10}, "cron"),  # both
        ({"type": "demo.noop"}, "cron"),  # neither
        ({**EVERY, "every_seconds": 0}, "every_seconds"),
        ({**EVERY, "type": "no.such_type"}, "type"),
        ({**EVERY, "type": "demo.sleep", "params": {"seconds": "long"}}, "params"),
        ({**EVERY, "overlap": "sometimes"}, "overlap"),
        ({**EVERY, "colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_a_422_at_the_field_and_stores_nothing(
    client: FlaskClient, redis_client: redis.Redis, jobs_api: Jobs, body: dict[str, Any], field: str
) -> None:
    response = client.put("/api/schedules/bad", json=body)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "validation_error" and field in error["details"], error
    assert client.get("/api/schedules").get_json()["schedules"] == []
    assert schedule_events(redis_client) == []

    with pytest.raises(InvalidRequest) as raised:
        jobs_api.put_schedule("bad", body)
    assert raised.value.details == error["details"]


def test_every_bad_field_is_named_at_once(client: FlaskClient, jobs_api: Jobs) -> None:
    body = {"type": "no.such_type", "cron": "61 * * * *", "timezone": "Nowhere/Land", "colour": "red"}
    response = client.put("/api/schedules/has%20space", json=body)
    assert response.status_code == 422, response.get_json()
    details = response.get_json()["error"]["details"]
    assert set(details) == {"id", "type", "cron", "timezone", "colour"}, details
    with pytest.raises(InvalidRequest) as raised:
        jobs_api.put_schedule("has space", body)
    assert raised.value.details == details
    preview = client.get("/api/schedules/preview", query_string={"cron": "61 * * * *", "timezone": "Nowhere/Land"})
    assert preview.status_code == 422
    assert set(preview.get_json()["error"]["details"]) == {"cron", "timezone"}


@pytest.mark.parametrize("schedule_id", ["has space", "x" * 101, "preview", "é"])
def test_a_bad_id_is_a_422_at_id(client: FlaskClient, jobs_api: Jobs, schedule_id: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        jobs_api.schedule(schedule_id, "demo.noop", every_seconds=5)
    assert "id" in raised.value.details
    response = client.put(f"/api/schedules/{schedule_id}", json=EVERY)
    assert response.status_code in (405, 422)  # /api/schedules/preview is the preview's route
    if response.status_code == 422:
        assert "id" in response.get_json()["error"]["details"]


def test_pause_resume_run_and_delete(client: FlaskClient, redis_client: redis.Redis) -> None:
    put(client, "hb", {**EVERY, "params": {}})
    paused = client.post("/api/schedules/hb/pause").get_json()["schedule"]
    assert paused["paused"] is True and paused["next_run_at"] is None
    assert redis_client.zscore(SCHEDULE_DUE_KEY, "hb") is None

    ran = client.post("/api/schedules/hb/run")
    assert ran.status_code == 201
    job = ran.get_json()["job"]
    assert (job["schedule_id"], job["schedule_tick"], job["status"], job["name"]) == ("hb", None, "pending", "hb")
    after_run = client.get("/api/schedules/hb").get_json()["schedule"]
    assert after_run["paused"] is True and after_run["next_run_at"] is None and after_run["last_job_id"] == job["id"]

    before = time.time()
    resumed = client.post("/api/schedules/hb/resume").get_json()["schedule"]
    next_run = datetime.fromisoformat(resumed["next_run_at"]).timestamp()
    assert resumed["paused"] is False and before < next_run <= before + 60.01
    assert redis_client.zscore(SCHEDULE_DUE_KEY, "hb") == pytest.approx(next_run * 1000, abs=1)

    assert client.delete("/api/schedules/hb").status_code == 204
    assert client.get("/api/schedules/hb").status_code == 404
    assert client.delete("/api/schedules/hb").status_code == 404
    assert client.post("/api/schedules/hb/run").status_code == 404
    assert client.get(f"/api/jobs/{job['id']}").status_code == 200  # its jobs stay
    names = [e.name for e in schedule_events(redis_client)]
    assert names == ["schedule-update"] * 4 + ["schedule-removed"]


def test_a_tick_is_claimed_once_and_its_job_carries_schedule_and_tick(
    client: FlaskClient, redis_client: redis.Redis, schedules: ScheduleStore
) -> None:
    put(client, "often", {**EVERY, "overlap": "allow"})
    due_ms = in_the_past(redis_client, "often", 1)
    assert schedules.tick("often", due_ms) == CREATED
    assert schedules.tick("often", due_ms) == TAKEN  # the second pool to get there
    now = client.get("/api/schedules/often").get_json()["schedule"]
    job = client.get(f"/api/jobs/{now['last_job_id']}").get_json()["job"]
    assert job["schedule_id"] == "often"
    assert datetime.fromisoformat(job["schedule_tick"]).timestamp() * 1000 == pytest.approx(due_ms, abs=1)
    assert now["last_run_at"] == job["created_at"]
    assert datetime.fromisoformat(now["next_run_at"]).timestamp() > time.time()
    counts = client.get("/api/jobs").get_json()["counts"]
    assert counts["pending"] == 1
    tick_events = [e for e in stored_events(redis_client) if e.job_id in (job["id"], "schedule:often")]
    assert [e.name for e in tick_events][-2:] == ["job-update", "schedule-update"]  # the job first, then the tick


def test_an_upsert_read_before_a_tick_cannot_write_that_tick_back(
    client: FlaskClient, redis_client: redis.Redis, schedules: ScheduleStore
) -> None:
    put(client, "race", EVERY)
    due_ms = in_the_past(redis_client, "race", 1)
    schedule, version, next_ms = schedules._stored("race")  # an upsert's read ...
    assert schedules.tick("race", due_ms) == CREATED  # ... then a pool claims the tick ...
    now = datetime.now(UTC)
    assert schedules._set(schedule, {}, version, next_ms, now) is None  # ... and the upsert's write is refused
    assert schedules.tick("race", due_ms) == TAKEN  # so the tick is never due again


def test_overlap_skip_makes_no_second_job_while_the_last_is_pending(
    client: FlaskClient, redis_client: redis.Redis, schedules: ScheduleStore
) -> None:
    put(client, "single", EVERY)
    assert schedules.tick("single", in_the_past(redis_client, "single", 1)) == CREATED
    assert schedules.tick("single", in_the_past(redis_client, "single", 1)) == SKIPPED
    assert client.get("/api/jobs").get_json()["counts"]["pending"] == 1
    last = schedule_events(redis_client)[-1]
    data = last.data
    assert data["skipped"] == "overlap" and data["schedule"]["id"] == "single"
    assert datetime.fromisoformat(data["schedule"]["next_run_at"]).timestamp() > time.time()


def test_missed_ticks_make_one_catch_up_job_for_the_latest_then_the_cadence_resumes(
    client: FlaskClient, redis_client: redis.Redis, schedules: ScheduleStore
) -> None:
    put(client, "every2", {**EVERY, "every_seconds": 2})
    due_ms = in_the_past(redis_client, "every2", 4)  # 4 ticks missed, the latest at its created_at
    ticker = Ticker(schedules)
    ticker.fire_due()
    ticker.fire_due()
    jobs = client.get("/api/jobs").get_json()["jobs"]
    assert len(jobs) == 1
    tick = datetime.fromisoformat(jobs[0]["schedule_tick"]).timestamp() * 1000
    assert tick == pytest.approx(due_ms + 6000, abs=1)
    next_run = datetime.fromisoformat(client.get("/api/schedules/every2").get_json()["schedule"]["next_run_at"])
    assert next_run.timestamp() * 1000 == pytest.approx(due_ms + 8000, abs=1)


def test_a_schedule_whose_tick_raises_is_held_while_the_others_keep_their_ticks(
    client: FlaskClient, redis_client: redis.Redis, schedules: ScheduleStore, caplog: pytest.LogCaptureFixture
) -> None:
    put(client, "broken", {**DAILY, "cron": "* * * * *"})
    # stored by a process whose zone database knows a zone this one does not: every tick of it raises here
    definition = json.loads(redis_client.hget(SCHEDULE_PREFIX + "broken", "def") or "{}")
    redis_client.hset(SCHEDULE_PREFIX + "broken", "def", json.dumps({**definition, "timezone": "Mars/Olympus_Mons"}))
    due_ms = int(time.time() * 1000) - 1000
    redis_client.hset(SCHEDULE_PREFIX + "broken", "next_ms", due_ms)
    redis_client.zadd(SCHEDULE_DUE_KEY, {"broken": due_ms})
    put(client, "good", {**EVERY, "every_seconds": 1, "overlap": "allow"})

    def three_good_jobs() -> list[dict[str, Any]]:
        found = [job for job in client.get("/api/jobs").get_json()["jobs"] if job["schedule_id"] == "good"]
        return found if len(found) >= 3 else []

    ticker = Ticker(schedules)
    started = time.monotonic()
    ticker.start()
    try:
        jobs = wait_until(three_good_jobs, JOB_SECONDS, "three ticks of the good one")
    finally:
        ticker.stop()
        ticker.join(JOB_SECONDS)
    elapsed = time.monotonic() - started
    ticks = sorted(moment(job["schedule_tick"]) for job in jobs)
    assert all(later - earlier == pytest.approx(1, abs=0.002) for earlier, later in itertools.pairwise(ticks))
    for job in jobs:
        late = moment(job["created_at"]) - moment(job["schedule_tick"])
        assert 0 <= late < LATE_SECONDS, f"job {job['id']} created {late:.3f} s after its tick"
    failures = [r for r in caplog.records if r.getMessage().startswith("schedule broken: tick failed")]
    assert 1 <= len(failures) <= 1 + elapsed // HOLD_SECONDS  # held between tries, not retried on every wake
    assert redis_client.zscore(SCHEDULE_DUE_KEY, "broken") == due_ms  # still due, for a pool that can fire it


def test_upsert_of_a_running_schedule_with_a_new_cadence_moves_its_next_tick(
    client: FlaskClient, schedules: ScheduleStore
) -> None:
    slow = put(client, "c", {**EVERY, "every_seconds": 3600})
    fast = put(client, "c", {**EVERY, "every_seconds": 2}, status=200)
    assert datetime.fromisoformat(fast["next_run_at"]) < datetime.fromisoformat(slow["next_run_at"])
    assert schedules.get("c").every_seconds == 2


def test_the_python_api_is_the_same_core(jobs_api: Jobs) -> None:
    made = jobs_api.schedule("py", "demo.sleep", every_seconds=30, params={"seconds": 1}, priority="high")
    assert made.params == {"seconds": 1} and made.priority == "high" and made.every_seconds == 30
    assert [s.id for s in jobs_api.schedules()] == ["py"]
    job = jobs_api.run_schedule("py")
    assert (job.schedule_id, job.priority, job.params) == ("py", "high", {"seconds": 1})
    assert jobs_api.pause_schedule("py").paused
    assert jobs_api.resume_schedule("py").next_run_at is not None
    jobs_api.unschedule("py")
    with pytest.raises(ScheduleNotFound):
        jobs_api.get_schedule("py")


def test_events_carry_schedules_to_the_python_api(jobs_api: Jobs) -> None:
    events = jobs_api.events(after="0-0")
    jobs_api.schedule("ev", "demo.noop", every_seconds=30)
    jobs_api.unschedule("ev")
    update, removed = next(events), next(events)
    assert (update.type, update.schedule_id, update.job_id) == ("schedule-update", "ev", None)
    assert update.schedule is not None and update.schedule["every_seconds"] == 30 and update.skipped is None
    assert (removed.type, removed.schedule_id) == ("schedule-removed", "ev")


# -- cadences: preview, and the DST tables -----------------------------------------------------------------


def preview(client: FlaskClient, **query: Any) -> list[str]:
    response = client.get("/api/schedules/preview", query_string=query)
    assert response.status_code == 200, response.get_json()
    runs: list[str] = response.get_json()["runs"]
    return runs


@pytest.mark.parametrize(
    ("cron", "after", "runs"),
    [
        # Europe/Berlin springs forward on 2026-03-29 at 02:00 CET (01:00Z) to 03:00 CEST: 02:30 does not exist
        # that day, and runs once, right after the change; the days around it as usual.
        ("30 2 * * *", "2026-03-27T12:00:00Z", ["2026-03-28T01:30", "2026-03-29T01:00", "2026-03-30T00:30"]),
        # ... every half hour: 02:00 and 02:30 both fall in the gap, so one run at the change
        ("*/30 * * * *", "2026-03-29T00:00:00Z", ["2026-03-29T00:30", "2026-03-29T01:00", "2026-03-29T01:30"]),
        # It falls back on 2026-10-25 at 03:00 CEST (01:00Z) to 02:00 CET: 02:30 occurs twice and runs once
        ("30 2 * * *", "2026-10-23T12:00:00Z", ["2026-10-24T00:30", "2026-10-25T00:30", "2026-10-26T01:30"]),
        # ... every half hour: the repeated 02:00 and 02:30 CET do not run again
        (
            "*/30 * * * *",
            "2026-10-24T23:45:00Z",
            ["2026-10-25T00:00", "2026-10-25T00:30", "2026-10-25T02:00", "2026-10-25T02:30"],
        ),
        # a time that is not near a change is its wall-clock time: 09:00 on weekdays
        ("0 9 * * mon-fri", "2026-12-04T12:00:00Z", ["2026-12-07T08:00", "2026-12-08T08:00", "2026-12-09T08:00"]),
    ],
)
def test_dst_tables_through_preview(client: FlaskClient, cron: str, after: str, runs: list[str]) -> None:
    found = preview(client, cron=cron, timezone="Europe/Berlin", after=after, count=len(runs))
    assert found == [f"{run}:00.000Z" for run in runs]


def test_new_york_changes_too(client: FlaskClient) -> None:
    # America/New_York: 2026-03-08 02:30 does not exist (runs at 07:00Z, the change); 2026-11-01 01:30 occurs twice
    spring = preview(client, cron="30 2 * * *", timezone="America/New_York", after="2026-03-07T12:00:00Z", count=2)
    assert spring == ["2026-03-08T07:00:00.000Z", "2026-03-09T06:30:00.000Z"]
    autumn = preview(client, cron="30 1 * * *", timezone="America/New_York", after="2026-10-31T12:00:00Z", count=2)
    assert autumn == ["2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"]


def test_every_seconds_preview_counts_from_after_and_ignores_the_clock(client: FlaskClient) -> None:
    runs = preview(client, every_seconds=3600, after="2026-10-25T00:30:00Z", count=3, timezone="Europe/Berlin")
    assert runs == ["2026-10-25T01:30:00.000Z", "2026-10-25T02:30:00.000Z", "2026-10-25T03:30:00.000Z"]
    now = time.time()
    default = preview(client, every_seconds=10)
    assert len(default) == 5
    assert now + 9 < datetime.fromisoformat(default[0]).timestamp() < time.time() + 10.01


def test_a_preview_from_early_years_gives_four_digit_years(client: FlaskClient) -> None:
    runs = preview(client, every_seconds=5, after="0001-01-01T00:00:00Z", count=2)
    assert runs == ["0001-01-01T00:00:05.000Z", "0001-01-01T00:00:10.000Z"]
    assert all(TIMESTAMP.match(run) for run in runs)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"cron": "not cron"}, "cron"),
        ({"cron": "0 3 * * *", "timezone": "Nowhere/Land"}, "timezone"),
        ({"cron": "0 3 * * *", "count": 51}, "count"),
        ({"cron": "0 3 * * *", "count": 0}, "count"),
        ({}, "cron"),
    ],
)
def test_a_bad_preview_is_a_422_at_the_field(client: FlaskClient, query: dict[str, Any], field: str) -> None:
    response = client.get("/api/schedules/preview", query_string=query)
    assert response.status_code == 422
    assert field in response.get_json()["error"]["details"]


def test_a_cadence_in_an_unknown_zone_raises_its_fault_not_the_end_of_its_ticks() -> None:
    cadence = Cadence("0 3 * * *", None, "Mars/Olympus_Mons")
    with pytest.raises(CadenceError) as raised:
        cadence.next_after(datetime.now(UTC))
    assert raised.value.field == "timezone"


def test_schedule_times_are_utc(jobs_api: Jobs) -> None:
    made = jobs_api.schedule("tz", "demo.noop", cron="0 12 * * *", timezone="Asia/Tokyo")
    assert made.next_run_at is not None and made.next_run_at.endswith("T03:00:00.000Z")
    assert datetime.fromisoformat(made.next_run_at) > datetime.now(UTC)


def test_the_stream_carries_schedule_events_to_all_jobs_streams_not_to_one_jobs(base: str, sse: OpenSSE) -> None:
    job = create(base, "watched", steps=1, step_seconds=0)
    wait_until(lambda: request(base, "GET", f"/api/jobs/{job['id']}")[1]["job"]["status"] == "completed", JOB_SECONDS)
    everything = sse(base)
    one_job = sse(base, path=f"/api/jobs/stream?job={job['id']}")
    schedule_id = f"stream-{uuid.uuid4().hex[:8]}"
    status, data, _ = request(base, "PUT", f"/api/schedules/{schedule_id}", EVERY)
    assert status == 201, data
    assert request(base, "DELETE", f"/api/schedules/{schedule_id}")[0] == 204

    def mine(client: SSEClient) -> list[str]:
        found = []
        for event in client.events:
            about = event["data"].get("id") or event["data"].get("schedule", {}).get("id")
            if event["event"].startswith("schedule-") and about == schedule_id:
                found.append(event["event"])
        return found

    everything.wait_for(lambda c: mine(c) == ["schedule-update", "schedule-removed"], EVENT_SECONDS, "both events")
    assert request(base, "DELETE", f"/api/jobs/{job['id']}")[0] == 204  # its own event comes after them ...
    one_job.wait_for(lambda c: any(e["event"] == "job-removed" for e in c.events), EVENT_SECONDS, "job-removed")
    assert mine(one_job) == []  # ... and none of the schedule's came before it

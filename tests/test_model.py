"""The one mapping from RQ's job states to jobstream's five statuses (status_for), and the job's and the schedule's
fields from one declaration each (Job, Schedule) that the events and the API's schemas follow."""

from __future__ import annotations

import dataclasses
import typing

import pytest
from rq.job import JobStatus

from jobs import schemas
from jobs.model import DETAIL_ONLY, Job, Schedule, status_for
from jobs.stream.events import SNAPSHOT_FIELDS

RQ_TO_STATUS = {
    JobStatus.CREATED: "pending",
    JobStatus.QUEUED: "pending",
    JobStatus.DEFERRED: "pending",
    JobStatus.SCHEDULED: "pending",
    JobStatus.RATE_LIMITED: "pending",
    JobStatus.READY_TO_ENQUEUE: "pending",
    JobStatus.STARTED: "active",
    JobStatus.FINISHED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELED: "canceled",
    JobStatus.STOPPED: "canceled",
}


def test_status_table_covers_every_rq_state() -> None:
    assert set(RQ_TO_STATUS) == set(JobStatus)


@pytest.mark.parametrize(("rq_status", "expected"), RQ_TO_STATUS.items(), ids=lambda v: getattr(v, "value", v))
def test_status_for_maps_each_rq_state(rq_status: JobStatus, expected: str) -> None:
    assert status_for(rq_status) == expected
    assert status_for(rq_status.value) == expected


@pytest.mark.parametrize("rq_status", [None, "", "junk", "STARTED"])
def test_status_for_treats_unknown_states_as_failed(rq_status: str | None) -> None:
    assert status_for(rq_status) == "failed"


def test_the_events_and_the_schemas_carry_jobs_fields_in_its_order() -> None:
    declared = [f.name for f in dataclasses.fields(Job)]
    assert list(SNAPSHOT_FIELDS) + list(DETAIL_ONLY) == declared
    assert list(schemas.JobSchema().fields) == list(SNAPSHOT_FIELDS)
    assert list(schemas.JobDetailSchema().fields) == declared


def test_a_job_dumps_each_field_as_its_hint_says() -> None:
    job = Job(
        **{name: None for name in SNAPSHOT_FIELDS}
        | {"id": "j", "params": {"a": 1}, "progress": 5, "cancel_requested": True, "result": [1, "x"]},
    )
    dumped = schemas.job_out.dump({"job": job})["job"]
    assert list(dumped) == list(SNAPSHOT_FIELDS)
    assert (dumped["params"], dumped["progress"], dumped["cancel_requested"]) == ({"a": 1}, 5, True)
    assert (dumped["result"], dumped["worker"], dumped["scheduled_for"]) == ([1, "x"], None, None)
    detail = schemas.job_detail.dump({"job": dataclasses.replace(job, logs=["started"], last_event_id="1-0")})
    assert (detail["job"]["logs"], detail["job"]["last_event_id"]) == (["started"], "1-0")


def test_the_schedule_schema_carries_schedules_fields_in_its_order_nullable_as_declared() -> None:
    hints = typing.get_type_hints(Schedule)
    declared = [f.name for f in dataclasses.fields(Schedule)]
    found = schemas.ScheduleSchema().fields
    assert list(found) == declared
    assert {name: found[name].allow_none for name in declared} == {
        name: type(None) in typing.get_args(hints[name]) for name in declared
    }

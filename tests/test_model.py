"""The one mapping from RQ's job states to jobstream's five statuses (status_for)."""

from __future__ import annotations

import pytest
from rq.job import JobStatus

from jobs.model import status_for

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

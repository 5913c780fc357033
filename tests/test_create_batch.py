"""A batch created by one create.lua: one event per job with its counts, RQ's copy as RQ writes it, the counters."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue
from rq.job import Job as RQJob
from rq.job import JobStatus
from rq.serializers import JSONSerializer

from jobs import InvalidRequest, Job, Jobs
from jobs.config import Settings
from jobs.model import DETAIL_ONLY
from jobs.store.queues import save_rq_job
from jobs.types.registry import get_type
from scripts.harness import RedisServer
from tests.api_helpers import stored_events
from tests.test_engine import recount

SLEEP = {"type": "demo.sleep", "params": {"seconds": 0}}
RQ_INFO_SECONDS = 30  # one `rq info` run, its imports included


@pytest.fixture
def jobs(redis_client: redis.Redis, settings: Settings) -> Jobs:
    return Jobs(redis_client, settings)


def snapshot(job: Job) -> dict[str, Any]:
    """A job as its events carry it."""
    return {k: v for k, v in asdict(job).items() if k not in DETAIL_ONLY}


def mixed(count: int) -> list[dict[str, Any]]:
    """`count` jobs of three priorities, every third one delayed."""
    priorities = ("normal", "high", "low")
    return [
        {**SLEEP, "name": f"job {n}", "priority": priorities[n % 3], **({"delay_seconds": 60} if n % 3 == 2 else {})}
        for n in range(count)
    ]


def test_a_batch_publishes_one_event_per_job_in_order_with_the_counts_after_it(
    jobs: Jobs, redis_client: redis.Redis
) -> None:
    jobs.enqueue_many(mixed(2))
    seen = len(stored_events(redis_client))

    created = jobs.enqueue_many(mixed(7))

    events = stored_events(redis_client)[seen:]
    assert [event.job_id for event in events] == [job.id for job in created]
    assert [event.data["counts"]["pending"] for event in events] == list(range(3, 10))
    assert all(event.data["counts"]["completed"] == 0 for event in events)
    assert events[-1].data["counts"] == jobs.store.read.counts() == recount(redis_client)
    for event, job in zip(events, created, strict=True):
        assert (event.name, event.data["type"]) == ("job-update", "job-update")
        assert event.data["job"] == snapshot(jobs.get(job.id)) == snapshot(job)


def test_rq_reads_each_created_job_as_it_reads_its_own(jobs: Jobs, redis_client: redis.Redis) -> None:
    now, later = jobs.enqueue_many(
        [
            {**SLEEP, "name": "now", "priority": "high", "timeout_seconds": 30},
            {**SLEEP, "name": "later", "delay_seconds": 60},
        ]
    )

    for job, status in ((now, JobStatus.QUEUED), (later, JobStatus.SCHEDULED)):
        fetched = RQJob.fetch(job.id, connection=redis_client, serializer=JSONSerializer)
        assert (fetched.func_name, fetched.args, fetched.kwargs) == (
            "jobs.types.demo.sleep",
            [],
            {"seconds": 0.0},
        )  # JSON: a list
        assert fetched.get_status(refresh=False) == status
        assert (fetched.description, fetched.result_ttl, fetched.failure_ttl) == ("demo.sleep", 0, 7 * 86400)
        assert fetched.created_at is not None
        assert (fetched.enqueued_at is not None) == (status == JobStatus.QUEUED)
    assert RQJob.fetch(now.id, connection=redis_client, serializer=JSONSerializer).origin == "jobstream:high"
    assert RQJob.fetch(now.id, connection=redis_client, serializer=JSONSerializer).timeout == 30
    high = Queue("jobstream:high", connection=redis_client, serializer=JSONSerializer)
    assert high.job_ids == [now.id]
    assert {q.name for q in Queue.all(connection=redis_client)} == {"jobstream", "jobstream:high"}


def test_rqs_copy_has_the_fields_rq_itself_writes(jobs: Jobs, redis_client: redis.Redis) -> None:
    """The fields create.lua writes are those of RQ's own Job.save for the same job (what rq_fields mirrors)."""
    job = jobs.enqueue("demo.sleep", name="ours", params={"seconds": 0})
    job_type = get_type("demo.sleep")
    assert job_type is not None
    with redis_client.pipeline(transaction=True) as pipe:
        save_rq_job(
            jobs.store.queues["normal"], job_type, "rq-own", {"seconds": 0.0}, job_type.timeout, pipe, queued=True
        )
        pipe.execute()

    ours, own = (redis_client.hgetall(f"rq:job:{i}") for i in (job.id, "rq-own"))
    assert set(ours) == set(own)
    varying = {b"created_at", b"enqueued_at", b"data"}  # the moments, and the data's JSON spacing
    assert {k: v for k, v in ours.items() if k not in varying} == {k: v for k, v in own.items() if k not in varying}
    assert json.loads(zlib.decompress(ours[b"data"])) == json.loads(zlib.decompress(own[b"data"]))


def test_rq_info_counts_the_created_jobs(jobs: Jobs, redis_server: RedisServer) -> None:
    jobs.enqueue_many(mixed(6))  # 2 normal, 2 high queued; 2 low delayed

    rq = Path(sys.executable).with_name("rq")
    done = subprocess.run(
        [str(rq), "info", "--raw", "-u", redis_server.url], capture_output=True, text=True, timeout=RQ_INFO_SECONDS
    )
    assert done.returncode == 0, done.stderr
    assert "queue jobstream 2," in done.stdout
    assert "queue jobstream:high 2," in done.stdout


def test_the_counters_equal_a_recount_after_batches(jobs: Jobs, redis_client: redis.Redis) -> None:
    jobs.enqueue_many(mixed(10))
    jobs.enqueue_many(mixed(1))
    jobs.enqueue("demo.sleep", name="one")

    assert jobs.store.read.counts() == recount(redis_client) == {**recount(redis_client), "pending": 12}


def test_a_create_after_redis_lost_its_scripts_creates_once(jobs: Jobs, redis_client: redis.Redis) -> None:
    jobs.enqueue("demo.sleep", name="before")
    redis_client.script_flush()  # as a restarted Redis, or a replica promoted

    job = jobs.enqueue("demo.sleep", name="after", idempotency_key="after-flush")

    assert jobs.enqueue("demo.sleep", name="after", idempotency_key="after-flush").id == job.id
    assert jobs.get(job.id).name == "after"
    assert recount(redis_client)["pending"] == 2


def test_an_item_refused_among_checked_ones_gets_the_details_it_gets_alone(
    jobs: Jobs, redis_client: redis.Redis
) -> None:
    """Items of one type and options are checked once; a bad one is still named as the schema names it."""
    bad: list[dict[str, Any]] = [
        {**SLEEP, "name": " "},
        {**SLEEP, "name": "x", "params": {"seconds": -1}},
        {**SLEEP, "name": "x", "params": 3},
    ]
    alone = []
    for item in bad:
        with pytest.raises(InvalidRequest) as refused:
            jobs.enqueue_many([item])
        alone.append(refused.value.details["jobs"]["0"])

    with pytest.raises(InvalidRequest) as refused:
        jobs.enqueue_many([{**SLEEP, "name": "good"}, *bad, {**SLEEP, "name": "good too"}])

    assert refused.value.details == {"jobs": {str(n + 1): details for n, details in enumerate(alone)}}
    assert "params" in alone[1] and "name" in alone[0] and "params" in alone[2]
    assert redis_client.zcard("jobstream:jobs") == 0

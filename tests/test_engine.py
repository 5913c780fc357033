"""The worker's one round trip per job (issue 18): counters that stay true, the take that begins a job, a job
given back, nothing held behind a long job, and RQ's own tools still seeing jobstream's queues and workers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import redis
from flask.testing import FlaskClient
from rq.job import Job as RQJob
from rq.serializers import JSONSerializer

from jobs import Jobs
from jobs.connection import text
from jobs.model import STATUSES
from jobs.store.handoff import Taken, completed
from jobs.store.keys import COUNTS_KEY, STATUS_PREFIX, job_key
from jobs.store.lifecycle import JobStore
from runner.stopping import JobStopped
from runner.worker import make_worker
from scripts.harness import RedisServer, Service, wait_until
from tests.api_helpers import create
from tests.bounds import JOB_SECONDS, START_SECONDS

LONG_SECONDS = 8.0  # the long job: the short ones behind it must all end well before it does
SHORT_JOBS = 3


def recount(client: redis.Redis) -> dict[str, int]:
    """The counts by status, recounted from the job hashes themselves (what the counters must equal)."""
    counts = dict.fromkeys(STATUSES, 0)
    for key in client.scan_iter(match=job_key("*")):
        if not key.endswith((b":logs", b":dependents")):
            status = client.hget(key, "status")
            assert status is not None
            counts[status.decode().strip('"')] += 1
    for status in STATUSES:  # the status sets agree too
        assert client.zcard(STATUS_PREFIX + status) == counts[status]
    return counts


def test_the_counters_equal_a_recount_after_every_kind_of_change(
    client: FlaskClient, store: JobStore, redis_client: redis.Redis
) -> None:
    def check() -> None:
        assert store.read.counts() == recount(redis_client)

    ids = [create(client, f"job {i}", type="demo.flaky", max_attempts=2)["id"] for i in range(8)]
    check()
    assert store.begin(ids[0], "w1").ok and store.complete(ids[0], {"ok": True}).ok  # pending → active → completed
    check()
    assert store.begin(ids[1], "w1").ok and store.fail(ids[1], "boom").ok  # a failed attempt: pending again
    check()
    assert store.read.get(ids[1])["status"] == "pending"
    redis_client.zadd("jobstream:scheduled", {ids[1]: 0})  # due now
    assert store.promote() >= 1
    assert store.begin(ids[1], "w1").ok and store.fail(ids[1], "boom again").ok  # the last attempt: failed
    check()
    assert store.read.get(ids[1])["status"] == "failed"
    assert store.retry(ids[1]).ok  # by hand
    check()
    assert store.cancel(ids[2]).ok  # pending → canceled
    check()
    assert store.begin(ids[3], "w1").ok and store.cancel(ids[3]).ok  # cancel requested: still active
    check()
    assert store.stopped(ids[3]).ok  # the worker stopped it
    check()
    assert store.delete(ids[0]).ok and store.delete(ids[4]).ok  # a completed and a pending job
    check()
    assert store.begin(ids[5], "w1").ok and store.give_back(ids[5], "w1", 1).ok  # taken, never run
    check()
    assert store.delete_many([ids[2], ids[3]], keep=()) == [ids[2], ids[3]]
    check()


def test_missing_counters_are_rebuilt_from_the_status_sets(
    client: FlaskClient, store: JobStore, redis_client: redis.Redis
) -> None:
    """A store from before the counters (an upgrade) or a restore without them: the next store rebuilds them."""
    for i in range(3):
        create(client, f"job {i}")
    redis_client.delete(COUNTS_KEY)
    rebuilt = JobStore(redis_client, store.settings)
    assert rebuilt.read.counts() == recount(redis_client) == {**dict.fromkeys(STATUSES, 0), "pending": 3}


def test_a_new_job_is_a_small_hash(client: FlaskClient, redis_client: redis.Redis) -> None:
    """Every value of a new job's hash fits Redis's listpack (64 bytes), so it is stored compactly."""
    job = create(client, "small", type="demo.flaky", params={"fail_times": 1}, backoff={"type": "fixed"})
    assert redis_client.object("encoding", job_key(job["id"])) == b"listpack"


def test_a_take_begins_the_next_job_and_hands_over_rqs_copy(client: FlaskClient, store: JobStore) -> None:
    first, second = (create(client, name, type="demo.noop")["id"] for name in ("first", "second"))
    ended, taken = store.next("w1", take=True)
    assert ended is None and isinstance(taken, Taken)
    assert taken.job["id"] == first and taken.job["status"] == "active" and taken.job["worker"] == "w1"
    assert RQJob(first, connection=store.redis).restore(taken.rq_hash) is None  # RQ can build its job from it
    assert b"data" in taken.rq_hash and taken.ready_since == taken.job["created_at"]
    ended, following = store.next("w1", completed(first, None), take=True)  # one round trip: end, then take
    assert ended is not None and ended.ok and ended.job is not None and ended.job["status"] == "completed"
    assert isinstance(following, Taken) and following.job["id"] == second
    assert store.next("w1", completed(second, None), take=True)[1] == ("empty", "")


def test_a_paused_queue_hands_out_nothing(client: FlaskClient, store: JobStore) -> None:
    job = create(client, "waits", type="demo.noop")
    assert client.post("/api/queue/pause").status_code == 200
    assert store.next("w1", take=True)[1] == ("paused", "")
    assert store.read.get(job["id"])["status"] == "pending"


def test_a_job_given_back_is_handed_out_again(client: FlaskClient, store: JobStore) -> None:
    job_id = create(client, "given back", type="demo.noop")["id"]
    taken = store.next("w1", take=True)[1]
    assert isinstance(taken, Taken) and taken.job["id"] == job_id
    assert store.give_back(job_id, "w1", 1).ok
    assert store.read.get(job_id)["status"] == "pending"
    assert store.promote() == 1  # due at once
    again = store.next("w2", take=True)[1]
    assert isinstance(again, Taken) and again.job["id"] == job_id and again.job["worker"] == "w2"


def test_a_job_stopped_between_its_take_and_its_start_never_runs(
    client: FlaskClient, store: JobStore, redis_client: redis.Redis
) -> None:
    """The next job is begun in the round trip that ends the previous one: a cancel that lands before the
    worker starts it stops it before its function runs."""
    job_id = create(client, "stopped early", type="demo.web_agent", params={"steps": 1, "step_seconds": 0})["id"]
    worker = make_worker(store)
    taken = store.next(worker.name, take=True)[1]
    assert isinstance(taken, Taken)
    worker._next = taken  # as the end of its previous job left it
    redis_client.delete(worker.key)  # the take marked it busy; here it registers only as it starts to work
    assert store.cancel(job_id).ok  # active: cancel requested, and RQ's stop-job command goes to the worker
    worker.stop_job(job_id, JobStopped)  # what that command does in the worker's listener thread
    worker.work(burst=True)
    job = store.read.get(job_id, with_logs=True)
    assert job["status"] == "canceled"
    assert not any(line.startswith("step 1/1") for line in job["logs"])  # its function never ran


def test_a_short_job_never_waits_behind_a_long_one(pool: Service, private_redis: RedisServer) -> None:
    """No job is fetched ahead for a busy worker: the short jobs behind a long one all run on the free worker."""
    jobs = Jobs.from_url(private_redis.url)
    long = jobs.enqueue("demo.sleep", name="long", params={"seconds": LONG_SECONDS})
    wait_until(lambda: jobs.get(long.id).status == "active", START_SECONDS, "the long job to start")
    short = [jobs.enqueue("demo.sleep", name=f"short {i}", params={"seconds": 0.2}) for i in range(SHORT_JOBS)]
    for job in short:
        assert jobs.wait(job.id, timeout=JOB_SECONDS).status == "completed"
    assert jobs.get(long.id).status == "active"  # all of them ended while it ran
    assert jobs.wait(long.id, timeout=JOB_SECONDS).status == "completed"


def test_rqs_own_tools_see_the_queues_and_the_workers(pool: Service, private_redis: RedisServer) -> None:
    """Jobs stay RQ jobs: `rq info` lists jobstream's queues and workers, and Job.fetch reads a pending job."""
    jobs = Jobs.from_url(private_redis.url)
    jobs.pause()  # so the job stays queued for rq info to count
    job = jobs.enqueue("demo.noop", name="seen by rq")
    fetched = RQJob.fetch(job.id, connection=private_redis.client(), serializer=JSONSerializer)
    assert fetched.func_name == "jobs.types.demo.noop" and fetched.kwargs == {}
    rq = Path(sys.executable).with_name("rq")
    info = wait_until(lambda: _rq_info(rq, private_redis.url), START_SECONDS, "rq info to list the 2 workers")
    assert "queue jobstream 1," in info  # the pending job, in the normal priority's queue
    assert {line.split()[1] for line in info.splitlines() if line.startswith("worker ")} == {
        text(key).removeprefix("rq:worker:") for key in private_redis.client().smembers("rq:workers")
    }
    jobs.resume()
    assert jobs.wait(job.id, timeout=JOB_SECONDS).status == "completed"


def _rq_info(rq: Path, url: str) -> str | None:
    """`rq info --raw`'s output once it lists 2 workers, else None."""
    done = subprocess.run([str(rq), "info", "--raw", "-u", url], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    workers = [line for line in done.stdout.splitlines() if line.startswith("worker ")]
    return done.stdout if len(workers) == 2 else None

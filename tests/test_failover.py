"""Redis behind Sentinel (REDIS_URL=redis+sentinel://...): the primary is killed among creates, running jobs
and an open stream. Web and workers go on with the new primary by themselves, the stream resumes, and the
accepted jobs lost are counted; with JOBSTREAM_REDIS_MIN_REPLICAS=1 none is, even when the replicas had
fallen behind. The drill itself is tests/failover_drill.py; `pytest -s` prints its figures, and
`python -m bench.failover` measures them over several runs (docs/BENCHMARKS.md)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import redis

from app import create_app
from jobs import Jobs
from jobs.config import ConfigError, Settings
from jobs.connection import REPLICATION_MARK, NotReplicated, SentinelURL, replicated
from jobs.store.keys import EVENTS_KEY
from jobs.stream.events import missed
from scripts.harness import RedisServer
from tests.failover_drill import Figures, Scenario, describe, run_drill

# Promises, counted from the moment every sentinel names the new primary: a web process asks Sentinel again
# on its next connection, and the page's stream reconnects 3 s (its `retry:`) after it ended.
WEB_AFTER_FAILOVER_SECONDS = 2.0
STREAM_AFTER_FAILOVER_SECONDS = 3.0 + 2.0


def check_recovered(figures: Figures) -> None:
    print(describe(figures))  # shown with -s
    assert figures.web_again <= figures.failover + WEB_AFTER_FAILOVER_SECONDS
    assert figures.stream_again <= figures.failover + STREAM_AFTER_FAILOVER_SECONDS
    assert figures.after_completed == figures.after_created  # the pool took jobs from the new primary
    assert figures.counts["pending"] + figures.counts["active"] == 0  # none stranded (the drill waited for it)
    # Whatever the client already had stays, and nothing comes twice; it missed nothing the new primary has.
    assert (figures.gaps, figures.duplicates) == (0, 0)
    if figures.phantoms:  # it saw events of jobs that the failover took along: it must refetch the list
        assert figures.resets or figures.restarts
    assert figures.active_at_kill >= 1
    for job in figures.running:  # a job running through the kill: its worker died with Redis, then a retry
        assert job["status"] == "completed", job
        assert job["attempts"] == 1 or job["error"].startswith("worker died"), job


def test_web_workers_and_stream_go_on_with_the_new_primary_after_a_kill(tmp_path: Path) -> None:
    figures = run_drill(Scenario(), tmp_path)
    check_recovered(figures)
    assert figures.accepted_before > 0  # how many of them were lost is measured, not promised (see -s)


def test_with_min_replicas_no_accepted_create_is_lost_though_the_replicas_fell_behind(tmp_path: Path) -> None:
    figures = run_drill(Scenario(min_replicas=1, replicas=2, partition=True, fanout="process"), tmp_path)
    check_recovered(figures)
    assert figures.accepted_before > 0
    assert figures.lost == []


def test_a_stream_resumed_from_an_event_that_redis_no_longer_has_starts_over(redis_client: redis.Redis) -> None:
    """A client that saw events on the old primary which never reached the new one (their jobs were lost):
    replaying what follows its id would keep those jobs on its page, so it gets a reset instead."""
    jobs = Jobs(redis_client)

    def create() -> str:  # each create is an event; its id
        jobs.enqueue("demo.sleep", name="seen", params={"seconds": 0})
        event_id = jobs.store.read.last_event_id()
        assert event_id is not None
        return event_id

    first, *seen = [create() for _ in range(4)]
    replay = missed(redis_client, first)
    assert replay is not None and [e.id for e in replay] == seen  # the ordinary resumption
    redis_client.xdel(EVENTS_KEY, seen[1], seen[2])  # the failover lost the last two, the client has them
    assert missed(redis_client, seen[2]) is None  # newer than anything this Redis has
    create()  # and once the new primary has newer events than the client's
    assert missed(redis_client, seen[1]) is None
    replay = missed(redis_client, seen[0])  # an id it has is still resumed from
    assert replay is not None and len(replay) == 1


# -- the Sentinel URL and JOBSTREAM_REDIS_MIN_REPLICAS, in process ----------------------------------------


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("redis+sentinel://s1:26379/jobstream", ((("s1", 26379),), "jobstream", 0, None)),
        ("redis+sentinel://s1:26379,s2:26380/jobstream/3", ((("s1", 26379), ("s2", 26380)), "jobstream", 3, None)),
        ("redis+sentinel://:p%40ss@s1:26379/my%20master/0", ((("s1", 26379),), "my master", 0, "p@ss")),
        ("redis+sentinel://[::1]:26379/jobstream/1", ((("::1", 26379),), "jobstream", 1, None)),
    ],
)
def test_a_sentinel_url_names_its_sentinels_master_db_and_password(url: str, parsed: tuple) -> None:
    where = SentinelURL.parse(url)
    assert (where.sentinels, where.master, where.db, where.password) == parsed
    assert Settings.from_env({"REDIS_URL": url}).redis_url == url


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REDIS_URL", "redis+sentinel://s1:26379"),  # no master
        ("REDIS_URL", "redis+sentinel:///jobstream/0"),  # no sentinel
        ("REDIS_URL", "redis+sentinel://s1/jobstream/0"),  # no port
        ("REDIS_URL", "redis+sentinel://s1:26379/jobstream/zero"),
        ("REDIS_URL", "redis+sentinel://s1:26379/jobstream/0/extra"),
        ("REDIS_URL", "sentinel://s1:26379/jobstream"),
        ("JOBSTREAM_REDIS_MIN_REPLICAS", "-1"),
        ("JOBSTREAM_REDIS_MIN_REPLICAS", "one"),
        ("JOBSTREAM_REDIS_MIN_REPLICAS", "17"),
    ],
)
def test_a_bad_sentinel_url_or_replica_count_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_min_replicas_is_read() -> None:
    assert Settings.from_env({"JOBSTREAM_REDIS_MIN_REPLICAS": "2"}).redis_min_replicas == 2
    assert Settings.from_env({}).redis_min_replicas == 0


def test_without_the_replicas_asked_for_a_create_is_a_503_and_nothing_is_promised(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test Redis has no replica: WAIT answers 0, the create is refused with the API's error shape (the
    job was written on the primary, which is why a client retries with its Idempotency-Key)."""
    client = redis_server.client()
    client.flushall()
    with pytest.raises(NotReplicated):
        replicated(client, 1, timeout_ms=50)
    replicated(client, 0)  # none asked for: not even the mark is written
    assert client.get(REPLICATION_MARK) == b"1"
    monkeypatch.setattr("jobs.store.creates.replicated", partial(replicated, timeout_ms=50))
    settings = Settings(redis_url=redis_server.url, redis_min_replicas=1)
    http = create_app({"TESTING": True, "SETTINGS": settings}).test_client()
    answer = http.post("/api/jobs", json={"name": "unacknowledged"}, headers={"Idempotency-Key": "k-1"})
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "redis_unavailable"
    again = http.post("/api/jobs", json={"name": "unacknowledged"}, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 503  # the retry returns the job it wrote only once a replica has it

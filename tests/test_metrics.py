"""GET /metrics against the real stack: two gunicorn worker processes and a pool of three worker processes
writing to one PROMETHEUS_MULTIPROC_DIR, scraped through either web process; and in-process, without it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import psutil
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from jobs.client import Jobs
from jobs.config import Settings
from jobs.store.keys import EVENTS_KEY
from jobs.store.lifecycle import JobStore
from scripts.harness import RedisServer, Service, free_port, request, start_pool, start_web, wait_until
from tests.api_helpers import basic_auth
from tests.bounds import BURST_SECONDS, EVENT_SECONDS, JOB_SECONDS, START_SECONDS
from tests.helpers import OpenSSE

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
POOL_WORKERS = 3


@dataclass
class Metered:
    """Redis, a pool and gunicorn with WEB_CONCURRENCY=2, all writing their series to one directory."""

    metrics_dir: Path
    redis_server: RedisServer
    pool: Service
    web: Service
    base: str

    @cached_property
    def redis(self) -> redis.Redis:
        return self.redis_server.client()

    def web_workers(self) -> list[int]:
        """The pids of gunicorn's worker processes (its master's children)."""
        return [child.pid for child in psutil.Process(self.web.pid).children()]


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Metered]:
    workdir = tmp_path_factory.mktemp("metered")
    metrics_dir, logs = workdir / "metrics", workdir / "logs"
    metrics_dir.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    with contextlib.ExitStack() as started:  # stops what started, in reverse, even when a later start fails
        redis_server = RedisServer(workdir / "redis").start()
        started.callback(redis_server.stop)
        pool = start_pool(redis_server.url, logs, JOBSTREAM_CONCURRENCY=str(POOL_WORKERS), **env)
        started.callback(pool.stop)
        web, base = start_web(
            redis_server.url,
            logs,
            WEB_CONCURRENCY="2",
            JOBSTREAM_HEARTBEAT_SECONDS="1",
            JOBSTREAM_STREAM_WRITE_TIMEOUT="2",
            **env,
        )
        started.callback(web.stop)
        yield Metered(metrics_dir, redis_server, pool, web, base)


def scrape(base: str) -> Samples:
    """Every sample of one GET /metrics, by name and labels."""
    with urllib.request.urlopen(base + "/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        body = response.read().decode()
    return parse(body)


def parse(body: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def create(base: str, body: dict) -> str:
    status, data, _ = request(base, "POST", "/api/jobs", body)
    assert status == 201, data
    return data["job"]["id"]


def test_job_series_add_up_across_the_web_processes_and_the_pool(metered: Metered) -> None:
    base = metered.base
    before, events_before = scrape(base), metered.redis.xlen(EVENTS_KEY)
    bodies = [{"name": f"nap {n}", "type": "demo.sleep", "params": {"seconds": 0}} for n in range(10)]
    bodies += [
        {"name": f"flaky {n}", "type": "demo.flaky", "params": {"fail_times": 5}, "max_attempts": 1} for n in range(2)
    ]
    with ThreadPoolExecutor(6) as pool:  # side by side, so both web processes take creates
        ids = list(pool.map(lambda body: create(base, body), bodies))

    def ended() -> bool:
        counts = request(base, "GET", "/api/jobs?limit=1")[1]["counts"]
        return counts["completed"] >= 10 and counts["failed"] >= 2

    wait_until(ended, JOB_SECONDS, "every job to end")
    assert len(ids) == 12
    published = metered.redis.xlen(EVENTS_KEY) - events_before

    def settled() -> Samples | None:  # the last counter is written just after the job's end is visible
        after = scrape(base)
        return after if delta(after, before, "jobstream_events_published_total") == published else None

    after = wait_until(settled, EVENT_SECONDS, "the published events to be counted")
    assert delta(after, before, "jobstream_jobs_created_total", type="demo.sleep") == 10
    assert delta(after, before, "jobstream_jobs_created_total", type="demo.flaky") == 2
    assert delta(after, before, "jobstream_jobs_ended_total", type="demo.sleep", status="completed") == 10
    assert delta(after, before, "jobstream_jobs_ended_total", type="demo.flaky", status="failed") == 2
    assert delta(after, before, "jobstream_job_duration_seconds_count", type="demo.sleep") == 10
    assert delta(after, before, "jobstream_job_duration_seconds_count", type="demo.flaky") == 2
    assert delta(after, before, "jobstream_job_wait_seconds_count", type="demo.sleep") == 10
    assert delta(after, before, "jobstream_job_wait_seconds_count", type="demo.flaky") == 2
    bucket = value(after, "jobstream_job_wait_seconds_bucket", type="demo.sleep", le="+Inf")
    assert bucket == value(after, "jobstream_job_wait_seconds_count", type="demo.sleep")
    # read from Redis at scrape time
    assert value(after, "jobstream_redis_up") == 1
    assert value(after, "jobstream_jobs", status="completed") >= 10
    assert value(after, "jobstream_jobs", status="active") == 0
    assert value(after, "jobstream_queue_depth", priority="normal") == 0
    workers = value(after, "jobstream_workers", state="busy") + value(after, "jobstream_workers", state="idle")
    assert workers == POOL_WORKERS
    assert value(after, "jobstream_queue_paused") == 0
    # the creates were counted in the web processes, the ends in the pool's: separate files, one sum
    files = {path.name for path in metered.metrics_dir.glob("counter_*.db")}
    assert len(files) >= 2, files
    # whichever web process answers the scrape, the same sums
    wanted = ["jobstream_jobs_created_total", "jobstream_jobs_ended_total", "jobstream_events_published_total"]
    sums = {tuple(sorted((key, v) for key, v in scrape(base).items() if key[0] in wanted)) for _ in range(8)}
    assert len(sums) == 1


def test_open_streams_and_delivered_events_across_processes_and_dead_workers(metered: Metered, sse: OpenSSE) -> None:
    base = metered.base
    clients = [sse(base) for _ in range(4)]
    wait_until(lambda: value(scrape(base), "jobstream_open_streams") == 4, EVENT_SECONDS, "4 open streams")
    before = scrape(base)
    job_id = create(base, {"name": "watched", "type": "demo.sleep", "params": {"seconds": 0}})
    for client in clients:
        client.wait_for(
            lambda c: any(e["data"]["job"]["status"] == "completed" for e in c.updates(job_id)),
            JOB_SECONDS,
            "the job's end on every stream",
        )
    events = len(clients[0].updates(job_id))
    assert all(len(client.updates(job_id)) == events for client in clients)

    def delivered() -> float:
        return delta(scrape(base), before, "jobstream_events_delivered_total")

    wait_until(lambda: delivered() == 4 * events, EVENT_SECONDS, f"{4 * events} deliveries counted")
    created = value(scrape(base), "jobstream_jobs_created_total", type="demo.sleep")
    # Worker processes killed with streams open never run their streams' `finally`: gunicorn's child_exit
    # takes their gauge out of the sum; their counters stay in it.
    for pid in metered.web_workers():
        os.kill(pid, signal.SIGKILL)
    for client in clients:
        client.closed.wait(EVENT_SECONDS)
    wait_until(lambda: len(metered.web_workers()) == 2, START_SECONDS, "gunicorn to start new workers")

    def scraped() -> Samples | None:
        try:
            return scrape(base)
        except OSError:
            return None

    wait_until(lambda: (s := scraped()) is not None and value(s, "jobstream_open_streams") == 0, START_SECONDS, "0")
    assert value(scrape(base), "jobstream_jobs_created_total", type="demo.sleep") == created


def test_a_slow_client_cut_off_is_counted(metered: Metered, sse: OpenSSE) -> None:
    base = metered.base
    store = JobStore(metered.redis, Settings(redis_url=metered.redis_server.url, queue="unserved"))
    job = Jobs(metered.redis, store.settings).enqueue("demo.sleep", name="loud", params={"seconds": 0})
    assert store.begin(job.id, "test").ok
    before = scrape(base)
    slow = socket.socket()
    try:
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(("127.0.0.1", int(base.rsplit(":", 1)[1])))
        slow.sendall(b"GET /api/jobs/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: value(scrape(base), "jobstream_open_streams") == 1, EVENT_SECONDS, "the slow stream")
        for n in range(3000):  # about 12 MB: far more than the slow socket's kernel buffers hold
            store.report(job.id, n % 100, f"burst {n}", log="x" * 3900)

        def cut_off() -> float:
            return delta(scrape(base), before, "jobstream_streams_cut_off_total", reason="write_timeout")

        wait_until(lambda: cut_off() == 1, BURST_SECONDS, "the cut-off counted")
        wait_until(lambda: value(scrape(base), "jobstream_open_streams") == 0, EVENT_SECONDS, "no stream open")
    finally:
        slow.close()


# -- in-process: one process, no PROMETHEUS_MULTIPROC_DIR -------------------------------------------------


def test_metrics_without_a_multiprocess_directory(client: FlaskClient) -> None:
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    before = parse(client.get("/metrics").get_data(as_text=True))
    response = client.post("/api/jobs", json={"name": "counted", "type": "demo.sleep", "params": {"seconds": 0}})
    assert response.status_code == 201
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    after = parse(response.get_data(as_text=True))
    assert delta(after, before, "jobstream_jobs_created_total", type="demo.sleep") == 1
    assert value(after, "jobstream_jobs", status="pending") == 1
    assert value(after, "jobstream_redis_up") == 1
    assert value(after, "process_resident_memory_bytes") > 0  # the default registry's series come along
    assert not [key for key in after if key[0].endswith("_created")]


def test_metrics_when_redis_is_down_say_so_and_answer() -> None:
    app = create_app({"TESTING": True, "SETTINGS": Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")})
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    assert value(parse(response.get_data(as_text=True)), "jobstream_redis_up") == 0


def test_metrics_are_behind_auth_and_not_in_the_openapi_document(app: Flask, settings: Settings) -> None:
    guarded = create_app({"TESTING": True, "SETTINGS": Settings(redis_url=settings.redis_url, auth="ops:secret")})
    client = guarded.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=basic_auth("ops:secret")).status_code == 200
    assert "/metrics" not in app.test_client().get("/api/openapi.json").get_json()["paths"]

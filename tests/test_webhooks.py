"""SPEC "Webhooks": the REST resource in process; deliveries through a real pool to a real HTTP receiver started
here (signature checked with the standardwebhooks library), retries, a receiver down then up, the dispatcher
restarted mid-backlog, and a receiver that hangs while jobs and other webhooks go on."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from standardwebhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from app import create_app
from jobs.client import Jobs
from jobs.config import Settings
from jobs.connection import connect
from jobs.webhooks.dispatcher import notice_of
from jobs.webhooks.signature import headers, new_secret
from scripts.harness import RedisServer, Service, free_port, start_pool, wait_until
from tests.api_helpers import basic_auth, error_details, redis_state
from tests.bounds import EVENT_SECONDS, JOB_SECONDS, STOP_SECONDS

RETRY_SECONDS = "0.2,0.2,0.2,0.2"  # the test pool's waits between attempts
BACKLOG_SECONDS = 60.0  # patience: a backlog of deliveries through a restarted pool
HANG_SECONDS = 30.0  # the hanging receiver's longest hang (the fixture ends it sooner)
ALICE, EVE = "alice:a-pass", "eve:e-pass"


@dataclass
class Receipt:
    headers: dict[str, str]
    body: str

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server in a thread that records every POST and answers each with the next of `statuses` (then 200);
    `hang` set: it holds every request until `release` is set."""

    port: int = field(default_factory=free_port)
    statuses: list[int] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)
    hang: bool = False
    pause: float = 0.0  # seconds each answer takes (a slow receiver)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the senders' kept connections are exercised

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                if receiver.hang or receiver.pause:
                    receiver.release.wait(receiver.pause or HANG_SECONDS)
                with receiver.lock:
                    receiver.receipts.append(Receipt(dict(self.headers.items()), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def of(self, kind: str) -> list[Receipt]:
        with self.lock:
            return [r for r in self.receipts if r.payload["type"] == kind]

    def job_ids(self, kind: str) -> set[str]:
        return {r.payload["data"]["job"]["id"] for r in self.of(kind)}


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    """Starts receivers, `receivers(statuses=[500], hang=False, port=None)`; every one stopped after the test."""
    made: list[Receiver] = []

    def make(port: int | None = None, **options: Any) -> Receiver:
        receiver = Receiver(port=port or free_port(), **options)
        made.append(receiver)
        return receiver.start()

    yield make
    for receiver in made:
        receiver.stop()


@dataclass
class Hooked:
    """A private Redis with a pool, the API on it (Flask's client) and the Python API."""

    redis_server: RedisServer
    api: FlaskClient
    jobs: Jobs
    logdir: Path
    pools: list[Service] = field(default_factory=list)

    def start_pool(self) -> Service:
        pool = start_pool(
            self.redis_server.url, self.logdir, JOBSTREAM_WEBHOOK_RETRY_SECONDS=RETRY_SECONDS, JOBSTREAM_CONCURRENCY="2"
        )
        self.pools.append(pool)
        return pool

    def put(self, webhook_id: str, **body: Any) -> dict[str, Any]:
        response = self.api.put(f"/api/webhooks/{webhook_id}", json=body)
        assert response.status_code in (200, 201), response.get_json()
        return response.get_json()["webhook"]

    def deliveries(self, webhook_id: str) -> list[dict[str, Any]]:
        response = self.api.get(f"/api/webhooks/{webhook_id}/deliveries")
        assert response.status_code == 200
        return response.get_json()["deliveries"]

    def create(self, kind: str = "demo.noop", **params: Any) -> str:
        return self.jobs.create({"name": kind, "type": kind, "params": params})[0].id

    def ended(self, ids: list[str]) -> bool:
        return all(self.jobs.get(job_id).status in ("completed", "failed", "canceled") for job_id in ids)


@pytest.fixture
def hooked(tmp_path: Path) -> Iterator[Hooked]:
    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    settings = Settings(redis_url=server.url)
    app = create_app({"TESTING": True, "SETTINGS": settings})
    running = Hooked(server, app.test_client(), Jobs(connect(server.url), settings), tmp_path / "logs")
    try:
        yield running
    finally:
        for pool in running.pools:
            pool.stop()
        server.stop()


# -- the resource --------------------------------------------------------------------------------


def test_put_creates_then_replaces_and_shows_the_secret_once(client: FlaskClient) -> None:
    body = {"url": "https://example.com/hook", "events": ["job.failed"], "types": ["demo.fail"]}
    created = client.put("/api/webhooks/ops:alerts", json=body)
    assert created.status_code == 201
    webhook = created.get_json()["webhook"]
    assert webhook["secret"].startswith("whsec_") and webhook["types"] == ["demo.fail"]

    secret = new_secret()
    replaced = client.put("/api/webhooks/ops:alerts", json={**body, "types": None, "secret": secret})
    assert replaced.status_code == 200
    again = replaced.get_json()["webhook"]
    assert again["secret"] == secret and again["types"] is None and again["created_at"] == webhook["created_at"]

    listed = client.get("/api/webhooks").get_json()["webhooks"]
    assert [w["id"] for w in listed] == ["ops:alerts"] and "secret" not in listed[0]
    assert client.get("/api/webhooks/ops:alerts/deliveries").get_json() == {"deliveries": []}
    assert client.delete("/api/webhooks/ops:alerts").status_code == 204
    assert client.get("/api/webhooks").get_json() == {"webhooks": []}
    error_details(client.delete("/api/webhooks/ops:alerts"), 404, "not_found")
    error_details(client.get("/api/webhooks/ops:alerts/deliveries"), 404, "not_found")


@pytest.mark.parametrize(
    ("webhook_id", "body", "field_name"),
    [
        ("ok", {"url": "ftp://example.com/", "events": ["job.failed"]}, "url"),
        ("ok", {"url": "example.com/hook", "events": ["job.failed"]}, "url"),
        ("ok", {"url": "https://example.com/", "events": ["job.exploded"]}, "events"),
        ("ok", {"url": "https://example.com/", "events": []}, "events"),
        ("ok", {"url": "https://example.com/", "events": ["job.failed"], "secret": "not-a-secret"}, "secret"),
        ("ok", {"url": "https://example.com/", "events": ["job.failed"], "types": [""]}, "types"),
        ("bad id!", {"url": "https://example.com/", "events": ["job.failed"]}, "id"),
        ("..", {"url": "https://example.com/", "events": ["job.failed"]}, "id"),
        ("x" * 101, {"url": "https://example.com/", "events": ["job.failed"]}, "id"),
    ],
)
def test_bad_input_is_a_422_at_its_field_and_stores_nothing(
    client: FlaskClient, redis_client: redis.Redis, webhook_id: str, body: dict[str, Any], field_name: str
) -> None:
    before = redis_state(redis_client)
    details = error_details(client.put(f"/api/webhooks/{webhook_id}", json=body), 422, "validation_error")
    assert field_name in details
    assert redis_state(redis_client) == before


@pytest.fixture
def roles_client(settings: Settings, redis_client: redis.Redis) -> FlaskClient:
    app: Flask = create_app(
        {"TESTING": True, "SETTINGS": Settings(redis_url=settings.redis_url, auth=ALICE, viewer_auth=EVE)}
    )
    return app.test_client()


def test_a_viewer_reads_webhooks_but_changes_none(roles_client: FlaskClient, redis_client: redis.Redis) -> None:
    body = {"url": "https://example.com/hook", "events": ["job.completed"]}
    assert roles_client.put("/api/webhooks/w1", json=body, headers=basic_auth(ALICE)).status_code == 201
    viewer = basic_auth(EVE)
    listed = roles_client.get("/api/webhooks", headers=viewer)
    assert listed.status_code == 200 and "secret" not in listed.get_json()["webhooks"][0]
    assert roles_client.get("/api/webhooks/w1/deliveries", headers=viewer).status_code == 200
    before = redis_state(redis_client)
    error_details(roles_client.put("/api/webhooks/w2", json=body, headers=viewer), 403, "forbidden")
    error_details(roles_client.delete("/api/webhooks/w1", headers=viewer), 403, "forbidden")
    assert redis_state(redis_client) == before


def test_the_signature_is_the_conventions() -> None:
    """Signed here, verified by the convention's own library; a changed body fails it."""
    secret = new_secret()
    signed = headers(secret, "msg_1", int(time.time()), '{"a":1}')
    verifier = Verifier(secret)
    assert verifier.verify('{"a":1}', signed) == {"a": 1}
    with pytest.raises(WebhookVerificationError):
        verifier.verify('{"a":2}', signed)


def job_event(status: str, log: str | None = None, counts: bool = True, **job: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"type": "job-update", "timestamp": "2026-12-06T12:00:00.000Z"}
    data["job"] = {"id": "0123456789abcdef", "type": "demo.flaky", "status": status, "error": None} | job
    if counts:
        data["counts"] = {status: 1}
    if log is not None:
        data["log"] = log
    return data


@pytest.mark.parametrize(
    ("name", "data", "kind"),
    [
        ("job-update", job_event("completed"), "job.completed"),
        ("job-update", job_event("canceled"), "job.canceled"),
        ("job-update", job_event("failed", error="boom"), "job.failed"),
        ("job-update", job_event("completed", counts=False), None),  # no status change: a progress, say
        ("job-update", job_event("active"), None),
        ("job-update", job_event("pending"), None),  # created
        ("job-update", job_event("pending", "retried by hand", attempts=2), None),
        (
            "job-update",
            job_event("pending", "attempt 1/3 failed: boom\nnext attempt at …", error="boom", attempts=2),
            "job.retrying",
        ),
        ("job-removed", {"type": "job-removed", "id": "0123456789abcdef", "counts": {}}, None),
        ("schedule-update", {"schedule": {"id": "s", "type": "demo.noop"}, "skipped": True}, "schedule.skipped"),
        ("schedule-update", {"schedule": {"id": "s", "type": "demo.noop"}}, None),
    ],
)
def test_which_events_become_webhook_events(name: str, data: dict[str, Any], kind: str | None) -> None:
    notice = notice_of(name, data)
    assert (notice.type if notice else None) == kind
    if notice is not None:
        body = json.loads(notice.body)
        assert body["type"] == kind and set(body) == {"type", "timestamp", "data"}


# -- deliveries through a real pool ----------------------------------------------------------------


def test_job_events_are_delivered_signed_and_filtered(hooked: Hooked, receivers: Callable[..., Receiver]) -> None:
    every, failures = receivers(), receivers()
    hook = hooked.put("every", url=every.url, events=["job.completed", "job.failed", "job.canceled", "job.retrying"])
    hooked.put("fail-only", url=failures.url, events=["job.failed"], types=["demo.fail"])
    hooked.start_pool()
    ids = [hooked.create("demo.noop"), hooked.create("demo.fail"), hooked.create("demo.flaky", fail_times=1)]
    canceled = hooked.jobs.create({"name": "later", "type": "demo.noop", "delay_seconds": 3600})[0].id
    hooked.jobs.cancel(canceled)

    wait_until(lambda: len(every.receipts) >= 5, JOB_SECONDS, "five deliveries")
    assert every.job_ids("job.completed") == {ids[0], ids[2]}
    assert every.job_ids("job.failed") == {ids[1]}
    assert every.job_ids("job.retrying") == {ids[2]}
    assert every.job_ids("job.canceled") == {canceled}
    verifier = Verifier(hook["secret"])
    for receipt in every.receipts:
        assert verifier.verify(receipt.body, receipt.headers) == receipt.payload
        assert receipt.payload["data"]["job"]["type"].startswith("demo.")
    wait_until(lambda: failures.receipts, EVENT_SECONDS, "the failure")
    assert [r.payload["data"]["job"]["id"] for r in failures.receipts] == [ids[1]]
    log = hooked.deliveries("every")
    assert len(log) == 5 and {entry["status_code"] for entry in log} == {200}
    assert all(entry["attempt"] == 1 and entry["next_attempt_at"] is None for entry in log)


def test_a_500_is_retried_with_the_same_webhook_id(hooked: Hooked, receivers: Callable[..., Receiver]) -> None:
    receiver = receivers(statuses=[500, 503])
    hooked.put("flaky-receiver", url=receiver.url, events=["job.completed"])
    hooked.start_pool()
    job_id = hooked.create()

    wait_until(lambda: len(receiver.receipts) >= 3, JOB_SECONDS, "two retries")
    assert {r.headers["webhook-id"] for r in receiver.receipts} == {receiver.receipts[0].headers["webhook-id"]}
    assert {r.payload["data"]["job"]["id"] for r in receiver.receipts} == {job_id}
    log = wait_until(lambda: len(hooked.deliveries("flaky-receiver")) == 3 and hooked.deliveries("flaky-receiver"), 5)
    assert [(e["attempt"], e["status_code"]) for e in log] == [(3, 200), (2, 503), (1, 500)]
    assert log[2]["error"] == "HTTP 500" and log[2]["next_attempt_at"] is not None and log[0]["error"] is None


def test_a_delivery_is_given_up_after_the_last_retry(hooked: Hooked, receivers: Callable[..., Receiver]) -> None:
    retries = len(RETRY_SECONDS.split(","))
    receiver = receivers(statuses=[500] * (retries + 5))
    hooked.put("broken", url=receiver.url, events=["job.completed"])
    hooked.start_pool()
    hooked.create()

    log = wait_until(lambda: [e for e in hooked.deliveries("broken") if e["next_attempt_at"] is None], JOB_SECONDS)
    assert log[0]["attempt"] == retries + 1 and log[0]["error"] == "HTTP 500"
    assert [e["attempt"] for e in hooked.deliveries("broken")] == list(range(retries + 1, 0, -1))
    assert hooked.jobs.redis.zcard("jobstream:webhook-due:broken") == 0


def test_a_receiver_down_gets_its_events_when_it_is_up(hooked: Hooked, receivers: Callable[..., Receiver]) -> None:
    port = free_port()
    hooked.put("down", url=f"http://127.0.0.1:{port}/hook", events=["job.completed"])
    hooked.start_pool()
    job_id = hooked.create()
    wait_until(lambda: hooked.deliveries("down"), JOB_SECONDS, "a refused attempt")
    assert hooked.deliveries("down")[-1]["status_code"] is None

    receiver = receivers(port=port)
    wait_until(lambda: receiver.receipts, JOB_SECONDS, "the delivery once the receiver is up")
    assert receiver.job_ids("job.completed") == {job_id}


def test_a_restarted_dispatcher_loses_nothing(hooked: Hooked, receivers: Callable[..., Receiver]) -> None:
    """Mid-backlog the pool stops; jobs canceled while none runs; a new pool delivers every event, duplicates
    only with the same webhook-id."""
    receiver = receivers(pause=0.05)
    hooked.put("backlog", url=receiver.url, events=["job.completed", "job.canceled"])
    pool = hooked.start_pool()
    ids = [hooked.create() for _ in range(60)]
    wait_until(lambda: len(receiver.receipts) >= 5, JOB_SECONDS, "the first deliveries")
    pool.stop(STOP_SECONDS)
    assert len(receiver.receipts) < len(ids)  # mid-backlog
    while_down = [hooked.create() for _ in range(5)]
    for job_id in while_down:
        hooked.jobs.cancel(job_id)

    hooked.start_pool()
    wait_until(lambda: hooked.ended(ids), BACKLOG_SECONDS, "every job to end")
    completed = {i for i in ids if hooked.jobs.get(i).status == "completed"}
    wait_until(lambda: receiver.job_ids("job.completed") >= completed, BACKLOG_SECONDS, "every completion delivered")
    wait_until(lambda: receiver.job_ids("job.canceled") >= set(while_down), BACKLOG_SECONDS, "the cancels")
    by_job: dict[tuple[str, str], set[str]] = {}
    for receipt in receiver.receipts:
        key = (receipt.payload["type"], receipt.payload["data"]["job"]["id"])
        by_job.setdefault(key, set()).add(receipt.headers["webhook-id"])
    assert all(len(webhook_ids) == 1 for webhook_ids in by_job.values())


def test_two_pools_deliver_each_event_once(hooked: Hooked, receivers: Callable[..., Receiver]) -> None:
    receiver = receivers()
    hooked.put("shared", url=receiver.url, events=["job.completed"])
    for _ in range(2):
        hooked.start_pool()
    ids = [hooked.create() for _ in range(40)]

    wait_until(lambda: receiver.job_ids("job.completed") == set(ids), JOB_SECONDS, "every completion")
    assert sorted(r.payload["data"]["job"]["id"] for r in receiver.receipts) == sorted(ids)  # none twice


def test_a_hanging_receiver_delays_neither_jobs_nor_other_webhooks(
    hooked: Hooked, receivers: Callable[..., Receiver]
) -> None:
    hanging, fine = receivers(hang=True), receivers()
    hooked.put("hanging", url=hanging.url, events=["job.completed"])
    hooked.put("fine", url=fine.url, events=["job.completed"])
    hooked.start_pool()
    ids = [hooked.create() for _ in range(50)]

    wait_until(lambda: hooked.ended(ids), JOB_SECONDS, "every job to end while a receiver hangs")
    wait_until(lambda: fine.job_ids("job.completed") == set(ids), EVENT_SECONDS, "the other webhook's deliveries")
    assert len(hanging.receipts) == 0  # its one request in flight still hangs

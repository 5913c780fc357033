"""The routes: each view turns one HTTP request into a call on jobs/; the route table also describes them.

Over 300 lines because the route table holds each route's OpenAPI description beside its view, one place to read.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Callable
from typing import Any

import redis
from flask import Flask, Response, current_app, jsonify, render_template, request, url_for
from werkzeug.routing import BaseConverter

from jobs import schemas
from jobs.model import ACTIVE
from jobs.stream.fanout import StreamHandle, stream
from jobs.telemetry.metrics import CONTENT_TYPE, exposition
from jobs.types.registry import describe_types
from web import page
from web.context import jobs, json_body, json_object, services
from web.errors import error
from web.openapi import Route, document
from web.schedules import SCHEDULE_ROUTES
from web.security import acting_user, can_change
from web.webhooks import WEBHOOK_ROUTES

OPENAPI = "openapi"  # the key of the OpenAPI document, once built


def index(job_id: str | None = None) -> str:
    """The dashboard page, with the list's first page drawn in; at /jobs/<id> it opens on that job's detail (the
    page's router reads the URL)."""
    return render_template("index.html", can_change=can_change(), **page.context(), **page.first_rows())


def healthz() -> Response:
    """200 when Redis answers, 503 otherwise: for load balancers and `make run`."""
    try:
        jobs().redis.ping()
    except redis.RedisError as exc:
        return error(503, f"Redis does not answer: {exc}", code="redis_unavailable")
    return jsonify(schemas.health.dump({"status": "ok"}))


def create_job() -> tuple[Response, int, dict[str, str]]:
    """Create a job of a registered type (201); with an Idempotency-Key used before, the job it created (200)."""
    job, created = jobs().create(json_object(), request.headers.get("Idempotency-Key"))
    location = url_for("get_job", job_id=job.id)
    return jsonify(schemas.job_out.dump({"job": job})), 201 if created else 200, {"Location": location}


def create_batch() -> tuple[Response, int]:
    """Create up to 1,000 jobs, a graph of dependencies among them, all or none (201)."""
    return jsonify(schemas.jobs_out.dump({"jobs": jobs().create_batch(json_object())})), 201


def list_jobs() -> Response:
    """A page of jobs, newest first, with the counts and the event id to resume the stream from."""
    return jsonify(page.read_page(request.args.to_dict()))


def get_job(job_id: str) -> Response:
    """One job with its logs."""
    return jsonify(schemas.job_detail.dump({"job": jobs().get(job_id)}))


def delete_job(job_id: str) -> Response:
    """Delete a job that is not active."""
    jobs().delete(job_id, by=acting_user())
    return Response(status=204)


def cancel_job(job_id: str) -> tuple[Response, int]:
    """Cancel a pending job at once (200), or ask the worker to stop an active one (202)."""
    job = jobs().cancel(job_id, by=acting_user())
    return jsonify(schemas.job_out.dump({"job": job})), 202 if job.status == ACTIVE else 200


def cancel_jobs() -> Response:
    """Cancel several jobs; each id's outcome is reported."""
    ids = json_body(schemas.cancel_many)["ids"]
    return jsonify(schemas.cancel_results.dump({"results": jobs().cancel_many(ids, by=acting_user())}))


def retry_job(job_id: str) -> tuple[Response, int]:
    """Run a failed or canceled job again, same id."""
    return jsonify(schemas.job_out.dump({"job": jobs().retry(job_id, by=acting_user())})), 202


def list_job_types() -> Response:
    """The registered job types with their params' JSON schema."""
    return jsonify(schemas.job_types_out.dump({"job_types": jobs().job_types()}))


def get_stats() -> Response:
    """Counts, workers, paused?, throughput, and this process's open streams."""
    svc = services()
    streams = {"open": len(svc.streams.handles), "fanout": svc.settings.fanout, "pid": os.getpid()}
    return jsonify(schemas.stats.dump({**svc.jobs.stats(), "streams": streams}))


def pause_queue() -> Response:
    """Stop handing out pending jobs; running ones finish."""
    jobs().pause()
    return jsonify(schemas.paused.dump({"paused": True}))


def resume_queue() -> Response:
    """Hand out pending jobs again."""
    jobs().resume()
    return jsonify(schemas.paused.dump({"paused": False}))


def clean_jobs() -> Response:
    """Delete ended jobs older than a bound."""
    query = json_body(schemas.clean)
    deleted = jobs().clean(query["status"], query["older_than_seconds"])
    return jsonify(schemas.clean_result.dump({"deleted": len(deleted), "ids": deleted}))


def list_failures() -> Response:
    """The failure groups, largest first."""
    return jsonify(schemas.failures_out.dump({"groups": jobs().failures()}))


def retry_failures(key: str) -> Response:
    """Retry every job of a failure group."""
    ids = jobs().retry_failures(key, by=acting_user())
    return jsonify(schemas.group_action.dump({"count": len(ids), "ids": ids}))


def delete_failures(key: str) -> Response:
    """Delete every job of a failure group."""
    ids = jobs().delete_failures(key, by=acting_user())
    return jsonify(schemas.group_action.dump({"count": len(ids), "ids": ids}))


def metrics() -> Response:
    """Prometheus's scrape: this machine's processes' series, and the system's state read from Redis now."""
    return Response(exposition(jobs().stats), content_type=CONTENT_TYPE)


def openapi_document() -> Response:
    """This API's OpenAPI 3 description, built from ROUTES on first use (apispec takes ~0.1 s: not at start-up)."""
    described = current_app.extensions.get(OPENAPI)
    if described is None:
        auth = services().settings.auth is not None
        described = document([r for r in ROUTES if r.rule.startswith(("/api/", "/healthz"))], auth, describe_types())
        current_app.extensions[OPENAPI] = described
    return jsonify(described)


def job_stream() -> Response:
    """The live stream: replay after Last-Event-ID, then live events, until the client or the server leaves."""
    query = schemas.stream_query.load(request.args.to_dict())
    svc = services()
    subscription = svc.fanout.subscribe(query["job"])  # Redis down: a 503 now, not a stream that ends at once
    try:
        sock = request.environ.get("gunicorn.socket")
        handle = StreamHandle(_socket_closer(sock), *_direct(request.environ, sock))
        body = stream(
            subscription,
            svc.stream_redis,
            svc.streams,
            handle,
            svc.settings.heartbeat_seconds,
            last_event_id=request.headers.get("Last-Event-ID") or query["last_event_id"],
            job_id=query["job"],
        )
        headers = {"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}
        response = Response(body, mimetype="text/event-stream", headers=headers)
    except BaseException:
        subscription.close()  # its connection would otherwise stay taken from the pool for good
        raise
    response.call_on_close(subscription.close)  # also when the client leaves before the body starts
    return response


def _direct(environ: dict[str, Any], sock: socket.socket | None) -> tuple[socket.socket | None, bool]:
    """The client's socket when the body may bypass the server (plain HTTP/1.x GET from gunicorn), and whether
    the server frames the body in chunks (HTTP/1.1: it sends no length)."""
    protocol = environ.get("SERVER_PROTOCOL")
    if (
        sock is None
        or isinstance(sock, ssl.SSLSocket)
        or environ.get("REQUEST_METHOD") != "GET"
        or protocol not in ("HTTP/1.0", "HTTP/1.1")
    ):
        return None, False
    return sock, protocol == "HTTP/1.1"


def _socket_closer(sock: socket.socket | None) -> Callable[[int], None]:
    def close(how: int) -> None:
        if sock is not None:
            try:
                sock.shutdown(how)
            except OSError:
                pass

    return close


class JobIdConverter(BaseConverter):
    """<job_id:...> matches job ids only, so /api/jobs/cancel is never the job "cancel" (nor its Allow that)."""

    regex = schemas.JOB_ID_PATTERN.removeprefix("^").removesuffix("$")


class FailureKeyConverter(BaseConverter):
    """<failure_key:...> matches a failure group's key only."""

    regex = schemas.FAILURE_KEY_PATTERN.removeprefix("^").removesuffix("$")


class ScheduleIdConverter(BaseConverter):
    """<schedule_id:...> is any path segment but "preview", so /api/schedules/preview is never the schedule
    "preview" (nor its Allow that); the view checks the id itself (a 422 at `id`)."""

    regex = f"(?!{schemas.PREVIEW}$)[^/]+"


S = schemas
JOB_LINKS = ("get_job", "cancel_job", "retry_job", "delete_job")  # what may follow an answer with a job in it
ROUTES = [
    Route("/", "GET", index, "The dashboard", {200: "text/html"}),
    Route("/jobs/<job_id>", "GET", index, "The dashboard, on one job's detail", {200: "text/html"}),
    Route("/healthz", "GET", healthz, "200 when Redis answers", {200: S.HealthSchema}),
    Route("/metrics", "GET", metrics, "Prometheus metrics", {200: "text/plain"}),
    Route(
        "/api/jobs",
        "POST",
        create_job,
        "Create a job; with an Idempotency-Key used in the last 24 h, the job that key created (200)",
        {201: S.JobEnvelopeSchema, 200: S.JobEnvelopeSchema},
        body=S.JobCreateSchema,
        typed_body=True,
        headers=S.IdempotencyKeySchema,
        errors=(409,),
        links=JOB_LINKS,
    ),
    Route(
        "/api/jobs/batch",
        "POST",
        create_batch,
        "Create up to 1,000 jobs, items naming earlier items' keys in depends_on, all or none",
        {201: S.JobsSchema},
        body=S.BatchSchema,
        typed_body=True,
    ),
    Route("/api/jobs", "GET", list_jobs, "List jobs, newest first", {200: S.JobPageSchema}, query=S.JobQuerySchema),
    Route(
        "/api/jobs/stream",
        "GET",
        job_stream,
        "The live stream",
        {200: ("text/event-stream", S.StreamEventSchema)},
        query=S.StreamQuerySchema,
    ),
    Route(
        "/api/jobs/cancel",
        "POST",
        cancel_jobs,
        "Cancel several jobs",
        {200: S.CancelResultsSchema},
        body=S.CancelManySchema,
    ),
    Route("/api/jobs/clean", "POST", clean_jobs, "Delete ended jobs", {200: S.CleanResultSchema}, body=S.CleanSchema),
    Route(
        "/api/jobs/<job_id:job_id>",
        "GET",
        get_job,
        "A job with its logs",
        {200: S.JobDetailEnvelopeSchema},
        errors=(404,),
    ),
    Route(
        "/api/jobs/<job_id:job_id>",
        "DELETE",
        delete_job,
        "Delete a job that is not active",
        {204: None},
        errors=(404, 409),
    ),
    Route(
        "/api/jobs/<job_id:job_id>/cancel",
        "POST",
        cancel_job,
        "Cancel (pending: at once; active: stopped by its worker)",
        {200: S.JobEnvelopeSchema, 202: S.JobEnvelopeSchema},
        errors=(404, 409),
        links=JOB_LINKS,
    ),
    Route(
        "/api/jobs/<job_id:job_id>/retry",
        "POST",
        retry_job,
        "Run a failed or canceled job again",
        {202: S.JobEnvelopeSchema},
        errors=(404, 409),
        links=JOB_LINKS,
    ),
    Route("/api/job-types", "GET", list_job_types, "Registered job types", {200: S.JobTypesSchema}),
    Route("/api/stats", "GET", get_stats, "Counts, workers, paused?, throughput, open streams", {200: S.StatsSchema}),
    Route("/api/failures", "GET", list_failures, "Failure groups, largest first", {200: S.FailuresSchema}),
    Route(
        "/api/failures/<failure_key:key>/retry",
        "POST",
        retry_failures,
        "Retry every job of a failure group",
        {200: S.GroupActionSchema},
        errors=(404,),
    ),
    Route(
        "/api/failures/<failure_key:key>",
        "DELETE",
        delete_failures,
        "Delete every job of a failure group",
        {200: S.GroupActionSchema},
        errors=(404,),
    ),
    Route("/api/queue/pause", "POST", pause_queue, "Stop handing out pending jobs", {200: S.PausedSchema}),
    Route("/api/queue/resume", "POST", resume_queue, "Hand out pending jobs again", {200: S.PausedSchema}),
    *WEBHOOK_ROUTES,
    *SCHEDULE_ROUTES,
    Route("/api/openapi.json", "GET", openapi_document, "This document", {200: "application/json"}),
]


def register_routes(app: Flask) -> None:
    """Serve ROUTES (openapi_document() describes this very table)."""
    app.url_map.converters["job_id"] = JobIdConverter
    app.url_map.converters["failure_key"] = FailureKeyConverter
    app.url_map.converters["schedule_id"] = ScheduleIdConverter
    for route in ROUTES:
        app.add_url_rule(route.rule, route.view.__name__, route.view, methods=[route.method])

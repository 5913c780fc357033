"""The schedule routes: each a call on the Python API, described beside its view as the route table's others."""

from __future__ import annotations

from flask import Response, jsonify, request, url_for

from jobs import schemas
from web.context import jobs, json_object
from web.openapi import Kind, Route

S = schemas


def put_schedule(schedule_id: str) -> tuple[Response, int]:
    """Create (201) or replace (200) a schedule."""
    schedule, created = jobs().put_schedule(schedule_id, json_object())
    return jsonify(schemas.schedule_out.dump({"schedule": schedule})), 201 if created else 200


def list_schedules() -> Response:
    """Every schedule, by id."""
    return jsonify(schemas.schedules_out.dump({"schedules": jobs().schedules()}))


def get_schedule(schedule_id: str) -> Response:
    return jsonify(schemas.schedule_out.dump({"schedule": jobs().get_schedule(schedule_id)}))


def delete_schedule(schedule_id: str) -> Response:
    """Delete a schedule; its jobs stay."""
    jobs().unschedule(schedule_id)
    return Response(status=204)


def pause_schedule(schedule_id: str) -> Response:
    return jsonify(schemas.schedule_out.dump({"schedule": jobs().pause_schedule(schedule_id)}))


def resume_schedule(schedule_id: str) -> Response:
    return jsonify(schemas.schedule_out.dump({"schedule": jobs().resume_schedule(schedule_id)}))


def run_schedule(schedule_id: str) -> tuple[Response, int, dict[str, str]]:
    """The schedule's job, now."""
    job = jobs().run_schedule(schedule_id)
    return jsonify(schemas.job_out.dump({"job": job})), 201, {"Location": url_for("get_job", job_id=job.id)}


def preview_schedule() -> Response:
    """The next ticks of a cadence, UTC."""
    return jsonify(schemas.runs_out.dump({"runs": jobs().preview_schedule(**request.args.to_dict())}))


SCHEDULE = "/api/schedules/<schedule_id:schedule_id>"
ONE: dict[int, Kind] = {200: S.ScheduleEnvelopeSchema}
SCHEDULE_ROUTES = [
    Route(
        "/api/schedules/preview",
        "GET",
        preview_schedule,
        "The next ticks of a cron or every_seconds cadence, UTC",
        {200: S.RunsSchema},
        query=S.SchedulePreviewSchema,
    ),
    Route(
        SCHEDULE,
        "PUT",
        put_schedule,
        "Create or replace a schedule",
        {201: S.ScheduleEnvelopeSchema, 200: S.ScheduleEnvelopeSchema},
        body=S.SchedulePutSchema,
        typed_body=True,
    ),
    Route("/api/schedules", "GET", list_schedules, "Every schedule, by id", {200: S.SchedulesSchema}),
    Route(SCHEDULE, "GET", get_schedule, "One schedule", ONE, errors=(404, 422)),
    Route(SCHEDULE, "DELETE", delete_schedule, "Delete a schedule (its jobs stay)", {204: None}, errors=(404, 422)),
    Route(f"{SCHEDULE}/pause", "POST", pause_schedule, "Pause a schedule", ONE, errors=(404, 422)),
    Route(f"{SCHEDULE}/resume", "POST", resume_schedule, "Resume from the next tick", ONE, errors=(404, 422)),
    Route(
        f"{SCHEDULE}/run",
        "POST",
        run_schedule,
        "Create the schedule's job now",
        {201: S.JobEnvelopeSchema},
        errors=(404, 422),
    ),
]

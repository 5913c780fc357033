"""Every input and output shape of the API, as marshmallow schemas.

Over 300 lines because every shape of the API is here, one place for the OpenAPI document to derive from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import NoneType, UnionType
from typing import Any, get_args, get_origin, get_type_hints

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates, validates_schema

from jobs.model import DAY, DETAIL_ONLY, ENDED, PRIORITIES, SCHEDULE_FIELDS, STATUSES, Job, Schedule
from jobs.stream.events import JOB_REMOVED, JOB_UPDATE, RESET, SCHEDULE_REMOVED, SCHEDULE_UPDATE, SNAPSHOT_FIELDS
from jobs.types.attempts import BACKOFF_TYPES, MAX_ATTEMPTS, MAX_DELAY_SECONDS, Backoff
from jobs.types.hints import JsonBoolean, JsonNumber
from jobs.types.registry import MAX_TIMEOUT_SECONDS
from jobs.webhooks.registry import EVENT_TYPES, WEBHOOK_ID_PATTERN

NAME_MAX = 200  # characters of a job's name, and so of a search for one
PAGE_MAX = 200  # jobs per page of the list
CANCEL_MAX = 1000  # ids per cancel of several
BATCH_MAX = 1000  # jobs per batch
DEPENDS_MAX = 100  # dependencies per job
KEY_MAX = 100  # characters of a batch item's key
MAX_DELAY_AHEAD = 365 * DAY  # how far ahead a job may be scheduled: a year
PREVIEW_MAX = 50  # ticks per preview
PREVIEW = "preview"  # GET /api/schedules/preview: the one name no schedule may have
UTC_NAME, SKIP, OVERLAPS = "UTC", "skip", ("skip", "allow")  # a schedule's default time zone and overlap
JOB_ID_PATTERN = r"^[0-9a-f]{12,40}$"
JOB_ID = validate.Regexp(JOB_ID_PATTERN, error="not a job id")
FAILURE_KEY_PATTERN = r"^[0-9a-f]{16}$"  # jobs.store.failures.group_of's key
# every path parameter's shape
PATH_PATTERNS = {
    "job_id": JOB_ID_PATTERN,
    "key": FAILURE_KEY_PATTERN,
    "webhook_id": WEBHOOK_ID_PATTERN,
    "schedule_id": WEBHOOK_ID_PATTERN,  # SPEC's id rule is the schedules' (beside it, "preview" is a route)
}
# One character that str.strip() keeps (re's \s is str.isspace); in the OpenAPI document, a pattern too.
NOT_BLANK = validate.Regexp(r"[\s\S]*\S", error="must not be blank")
# http(s):// and a host (letters, digits, IPv6 brackets, user info), then printable ASCII: one pattern that the
# server and the OpenAPI document's fuzzers read alike (no \S, whose meaning differs between Python and JavaScript)
WEBHOOK_URL = r"^https?://[A-Za-z0-9._~%!$&'()*+,;=:@\[\]-]+(?:[/?#][!-~]*)?$"
# whsec_ + base64 of 18 or more bytes: what the Standard Webhooks libraries decode
WEBHOOK_SECRET = r"^whsec_(?:[A-Za-z0-9+/]{4}){6,64}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


class BackoffSchema(Schema):
    type = fields.String(load_default="exponential", validate=validate.OneOf(BACKOFF_TYPES))
    delay_seconds = JsonNumber(load_default=1.0, validate=validate.Range(0, MAX_DELAY_SECONDS), allow_nan=False)
    max_delay_seconds = JsonNumber(load_default=3600.0, validate=validate.Range(0, MAX_DELAY_SECONDS), allow_nan=False)
    jitter = JsonBoolean(load_default=False)

    @validates_schema
    def validate_bounds(self, data: dict[str, Any], **_: Any) -> None:
        if data["max_delay_seconds"] < data["delay_seconds"]:
            raise ValidationError("must not be less than delay_seconds", "max_delay_seconds")

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Backoff:
        return Backoff(**data)


class JobOptionsSchema(Schema):
    """What a job and a schedule's jobs are given alike: params and the options (None: the type's default)."""

    params = fields.Dict(keys=fields.String(), load_default=dict)
    timeout_seconds = fields.Integer(load_default=None, strict=True, validate=validate.Range(1, MAX_TIMEOUT_SECONDS))
    priority = fields.String(load_default=None, validate=validate.OneOf(PRIORITIES))
    max_attempts = fields.Integer(load_default=None, strict=True, validate=validate.Range(1, MAX_ATTEMPTS))
    backoff = fields.Nested(BackoffSchema, load_default=None)


class JobCreateSchema(JobOptionsSchema):
    name = fields.String(required=True, validate=[validate.Length(1, NAME_MAX), NOT_BLANK])
    type = fields.String(load_default="demo.web_agent", validate=validate.Length(1, 100))
    delay_seconds = JsonNumber(load_default=None, validate=validate.Range(0, MAX_DELAY_AHEAD), allow_nan=False)
    run_at = fields.AwareDateTime(load_default=None, format="iso")
    depends_on = fields.List(
        fields.String(validate=JOB_ID), load_default=list, validate=validate.Length(0, DEPENDS_MAX)
    )
    allow_failure = JsonBoolean(load_default=False)

    @validates("run_at")
    def validate_run_at(self, value: datetime | None, **_: Any) -> None:
        """At most a year ahead; a moment already past runs now (as RQ's enqueue_at and Sidekiq's perform_at)."""
        if value is not None and value > datetime.now(UTC) + timedelta(seconds=MAX_DELAY_AHEAD):
            raise ValidationError("must be at most a year ahead")

    @validates_schema
    def validate_one_start(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("delay_seconds") is not None and data.get("run_at") is not None:
            raise ValidationError("give delay_seconds or run_at, not both", "run_at")


class BatchItemSchema(JobCreateSchema):
    """A job of a batch: `key` names it for the batch's later items, whose `depends_on` may name it."""

    key = fields.String(load_default=None, validate=validate.Length(1, KEY_MAX))
    depends_on = fields.List(
        fields.String(validate=validate.Length(1, KEY_MAX)), load_default=list, validate=validate.Length(0, DEPENDS_MAX)
    )


class BatchSchema(Schema):
    """POST /api/jobs/batch: its jobs, created all or none; each is then loaded (by its type) as enqueue_many
    loads it, and described so in the OpenAPI document (BatchItemSchema per type)."""

    jobs = fields.List(fields.Dict(), required=True, validate=validate.Length(1, BATCH_MAX))


class IdempotencyKeySchema(Schema):
    """The Idempotency-Key header (or `idempotency_key=`): visible ASCII, as Stripe's and the IETF draft's."""

    idempotency_key = fields.String(
        data_key="Idempotency-Key",
        load_default=None,
        validate=[validate.Length(1, 255), validate.Regexp(r"^[\x21-\x7e]+$", error="not visible ASCII")],
    )


class JobQuerySchema(Schema):
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    q = fields.String(load_default=None, validate=validate.Length(0, NAME_MAX))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, PAGE_MAX))
    cursor = fields.String(load_default=None, validate=JOB_ID)


class StreamQuerySchema(Schema):
    job = fields.String(load_default=None, validate=JOB_ID)
    last_event_id = fields.String(load_default=None, validate=validate.Length(1, 64))


class StreamEventSchema(Schema):
    """One event of the live stream as an SSE client parses it (`retry:` and `: ping` are not events)."""

    id = fields.String()
    event = fields.String(
        required=True, validate=validate.OneOf((JOB_UPDATE, JOB_REMOVED, SCHEDULE_UPDATE, SCHEDULE_REMOVED, RESET))
    )
    data = fields.String(required=True)  # the event's JSON


class CancelManySchema(Schema):
    ids = fields.List(
        fields.String(validate=validate.Length(1, 64)), required=True, validate=validate.Length(1, CANCEL_MAX)
    )


class CleanSchema(Schema):
    status = fields.String(load_default=None, validate=validate.OneOf(ENDED))
    older_than_seconds = fields.Integer(load_default=0, strict=True, validate=validate.Range(0, 3650 * DAY))


class WebhookIdSchema(Schema):
    id = fields.String(required=True, validate=validate.Regexp(WEBHOOK_ID_PATTERN, error="not a webhook id"))


class WebhookPutSchema(Schema):
    url = fields.String(
        required=True,
        validate=[validate.Length(1, 2000), validate.Regexp(WEBHOOK_URL, error="must be an http:// or https:// URL")],
    )
    events = fields.List(
        fields.String(validate=validate.OneOf(EVENT_TYPES)), required=True, validate=validate.Length(1, 20)
    )
    types = fields.List(
        fields.String(validate=validate.Length(1, 100)),
        load_default=None,
        allow_none=True,
        validate=validate.Length(1, 100),
    )
    secret = fields.String(load_default=None, validate=validate.Regexp(WEBHOOK_SECRET, error="not whsec_ + base64"))


class WebhookSchema(Schema):
    """A webhook as GET shows it: without its secret."""

    id = fields.String()
    url = fields.String()
    events = fields.List(fields.String())
    types = fields.List(fields.String(), allow_none=True)
    created_at = fields.String()
    updated_at = fields.String()


class WebhookWithSecretSchema(WebhookSchema):
    """A webhook as its PUT answers it, the one time its secret is shown."""

    secret = fields.String()


class WebhookEnvelopeSchema(Schema):
    webhook = fields.Nested(WebhookWithSecretSchema)


class WebhooksSchema(Schema):
    webhooks = fields.List(fields.Nested(WebhookSchema))


class DeliverySchema(Schema):
    """One delivery attempt; `event_id` is the webhook-id header it was sent with."""

    event_id = fields.String()
    type = fields.String()
    job_id = fields.String(allow_none=True)
    attempt = fields.Integer()
    status_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    duration_ms = fields.Float()
    at = fields.String()
    next_attempt_at = fields.String(allow_none=True)


class DeliveriesSchema(Schema):
    deliveries = fields.List(fields.Nested(DeliverySchema))


class ScheduleIdSchema(Schema):
    id = fields.String(
        required=True,
        validate=[
            validate.Regexp(WEBHOOK_ID_PATTERN, error="not a schedule id: 1..100 of A-Z a-z 0-9 . _ : -"),
            validate.NoneOf((PREVIEW,), error="preview is not a schedule id"),
        ],
    )


class SchedulePutSchema(JobOptionsSchema):
    """A schedule as PUT declares it: the job's type, name (default: the id), params and options, the cadence."""

    type = fields.String(required=True, validate=validate.Length(1, 100))
    name = fields.String(load_default=None, validate=[validate.Length(1, NAME_MAX), NOT_BLANK])
    cron = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 200))
    every_seconds = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(1, MAX_DELAY_AHEAD)
    )
    timezone = fields.String(load_default=UTC_NAME, validate=validate.Length(1, 64))
    overlap = fields.String(load_default=SKIP, validate=validate.OneOf(OVERLAPS))
    paused = JsonBoolean(load_default=None, allow_none=True)  # absent: as it was (a new one runs)

    @validates_schema
    def validate_one_cadence(self, data: dict[str, Any], **_: Any) -> None:
        _one_cadence(data)


class SchedulePreviewSchema(Schema):
    cron = fields.String(load_default=None, validate=validate.Length(1, 200))
    every_seconds = fields.Integer(load_default=None, validate=validate.Range(1, MAX_DELAY_AHEAD))
    timezone = fields.String(load_default=UTC_NAME, validate=validate.Length(1, 64))
    after = fields.AwareDateTime(load_default=None, format="iso")
    count = fields.Integer(load_default=5, validate=validate.Range(1, PREVIEW_MAX))

    @validates_schema
    def validate_one_cadence(self, data: dict[str, Any], **_: Any) -> None:
        _one_cadence(data)


def _one_cadence(data: dict[str, Any]) -> None:
    """Exactly one of cron and every_seconds (a 422 at `cron`)."""
    given = [name for name in ("cron", "every_seconds") if data.get(name) is not None]
    if len(given) != 1:
        raise ValidationError("give exactly one of cron and every_seconds", "cron")


class RunsSchema(Schema):
    runs = fields.List(fields.String())  # UTC ticks


def _dumped(hint: Any) -> fields.Field:
    """The field that dumps a Job attribute of type `hint`: `X | None` may be null, `Any` is any JSON."""
    if hint is Any:
        return fields.Raw(allow_none=True)
    kinds = [kind for kind in get_args(hint) if kind is not NoneType] if isinstance(hint, UnionType) else [hint]
    (kind,) = kinds
    nullable = kind is not hint
    if get_origin(kind) is list:
        return fields.List(_dumped(get_args(kind)[0]), allow_none=nullable)
    return _DUMPED[get_origin(kind) or kind](allow_none=nullable)


_DUMPED: dict[Any, type[fields.Field]] = {
    str: fields.String,
    int: fields.Integer,
    bool: fields.Boolean,
    dict: fields.Dict,
}
_JOB_HINTS = get_type_hints(Job)

# ApiJob as jobs.model.Job declares it (a new attribute there is a new field here, typed from its hint); the
# detail view adds `dependents` and `logs` (lists there: None only outside it) and `last_event_id`, whose events
# after it carry log lines not in `logs`.
JobSchema = Schema.from_dict({name: _dumped(_JOB_HINTS[name]) for name in SNAPSHOT_FIELDS}, name="JobSchema")
_DETAIL = {name: _dumped(_JOB_HINTS[name]) for name in DETAIL_ONLY} | {
    name: fields.List(fields.String()) for name in ("dependents", "logs")
}
JobDetailSchema = JobSchema.from_dict(_DETAIL, name="JobDetailSchema")
# A schedule as jobs.model.Schedule declares it: its job's type, name, params and options (null: the type's
# default), its cadence and state.
_SCHEDULE_HINTS = get_type_hints(Schedule)
ScheduleSchema = Schema.from_dict(
    {name: _dumped(_SCHEDULE_HINTS[name]) for name in SCHEDULE_FIELDS}, name="ScheduleSchema"
)


class ScheduleEnvelopeSchema(Schema):
    schedule = fields.Nested(ScheduleSchema)


class SchedulesSchema(Schema):
    schedules = fields.List(fields.Nested(ScheduleSchema))


class JobPageSchema(Schema):
    jobs = fields.List(fields.Nested(JobSchema))
    next_cursor = fields.String(allow_none=True)
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    last_event_id = fields.String(allow_none=True)


class CancelOutcomeSchema(Schema):
    id = fields.String()
    outcome = fields.String()
    status = fields.String(allow_none=True)
    job = fields.Nested(JobSchema, allow_none=True)


class JobTypeSchema(Schema):
    name = fields.String()
    description = fields.String()
    timeout_seconds = fields.Integer()
    priority = fields.String()
    max_attempts = fields.Integer()
    backoff = fields.Dict()
    concurrency = fields.Integer(allow_none=True)
    rate = fields.Dict(allow_none=True)  # {"limit": N, "per_seconds": S}
    params_schema = fields.Dict()


class JobEnvelopeSchema(Schema):
    job = fields.Nested(JobSchema)


class JobsSchema(Schema):
    jobs = fields.List(fields.Nested(JobSchema))


class JobDetailEnvelopeSchema(Schema):
    job = fields.Nested(JobDetailSchema)


class CancelResultsSchema(Schema):
    results = fields.List(fields.Nested(CancelOutcomeSchema))


class JobTypesSchema(Schema):
    job_types = fields.List(fields.Nested(JobTypeSchema))


class CleanResultSchema(Schema):
    deleted = fields.Integer()
    ids = fields.List(fields.String())


class WorkerSchema(Schema):
    name = fields.String()
    host = fields.String(allow_none=True)
    state = fields.String()
    current_job = fields.String(allow_none=True)


class EndedMinuteSchema(Schema):
    minute = fields.String()
    completed = fields.Integer()
    failed = fields.Integer()
    canceled = fields.Integer()
    count = fields.Integer()  # every job that ended in the minute


class StreamsSchema(Schema):
    open = fields.Integer()
    fanout = fields.String()
    pid = fields.Integer()


class PercentilesSchema(Schema):
    p50 = fields.Float()
    p95 = fields.Float()
    p99 = fields.Float()


class TypeMinuteSchema(Schema):
    minute = fields.String()
    completed = fields.Integer()
    failed = fields.Integer()


class TypeStatsSchema(Schema):
    """One job type's last hour: pending and active now, ended in the hour, duration and wait percentiles."""

    pending = fields.Integer()
    active = fields.Integer()
    completed = fields.Integer()
    failed = fields.Integer()
    duration_seconds = fields.Nested(PercentilesSchema, allow_none=True)
    wait_seconds = fields.Nested(PercentilesSchema, allow_none=True)
    per_minute = fields.List(fields.Nested(TypeMinuteSchema))  # 60, newest first


class FailureGroupSchema(Schema):
    """Failed jobs of one type whose errors differ only in numbers, ids and quoted values."""

    key = fields.String()
    type = fields.String()
    error = fields.String()  # the normalized first line
    example = fields.String()  # the latest job's own first line
    count = fields.Integer()
    first_failed_at = fields.String()
    last_failed_at = fields.String()
    sample_ids = fields.List(fields.String())


class FailuresSchema(Schema):
    groups = fields.List(fields.Nested(FailureGroupSchema))


class GroupActionSchema(Schema):
    count = fields.Integer()
    ids = fields.List(fields.String())


class StatsSchema(Schema):
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    workers = fields.List(fields.Nested(WorkerSchema))
    paused = fields.Boolean()
    queues = fields.Dict(keys=fields.String(), values=fields.Integer())  # jobs waiting, by priority
    jobs_per_minute = fields.Float()
    ended_per_minute = fields.List(fields.Nested(EndedMinuteSchema))
    types = fields.Dict(keys=fields.String(), values=fields.Nested(TypeStatsSchema))
    streams = fields.Nested(StreamsSchema)


class PausedSchema(Schema):
    paused = fields.Boolean()


class HealthSchema(Schema):
    status = fields.String()


class ErrorBodySchema(Schema):
    code = fields.String()
    message = fields.String()
    details = fields.Dict()
    request_id = fields.String()  # the request's X-Request-ID, as its log line names it


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema)


job_create = JobCreateSchema()
batch_item = BatchItemSchema()
batch = BatchSchema()
jobs_out = JobsSchema()
idempotency = IdempotencyKeySchema()
job_query = JobQuerySchema()
stream_query = StreamQuerySchema()
cancel_many = CancelManySchema()
clean = CleanSchema()
job_out = JobEnvelopeSchema()
job_detail = JobDetailEnvelopeSchema()
job_page = JobPageSchema()
cancel_results = CancelResultsSchema()
job_types_out = JobTypesSchema()
clean_result = CleanResultSchema()
stats = StatsSchema()
paused = PausedSchema()
health = HealthSchema()
error_out = ErrorSchema()
failures_out = FailuresSchema()
group_action = GroupActionSchema()
webhook_id = WebhookIdSchema()
webhook_put = WebhookPutSchema()
webhook_out = WebhookEnvelopeSchema()
webhooks_out = WebhooksSchema()
deliveries_out = DeliveriesSchema()
schedule_id = ScheduleIdSchema()
schedule_put = SchedulePutSchema()
schedule_preview = SchedulePreviewSchema()
schedule_out = ScheduleEnvelopeSchema()
schedules_out = SchedulesSchema()
runs_out = RunsSchema()

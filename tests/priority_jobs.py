"""Job types for the tests only (JOBSTREAM_JOB_MODULES=tests.priority_jobs): one whose default priority is high."""

from __future__ import annotations

import time

from marshmallow import Schema, fields, validate

from jobs.types.registry import register


class UrgentParams(Schema):
    label = fields.String(load_default="", validate=validate.Length(0, 100))
    seconds = fields.Float(load_default=0.0, validate=validate.Range(0, 60), allow_nan=False)


@register("test.urgent", UrgentParams(), timeout=60, priority="high")
def urgent(label: str = "", seconds: float = 0.0) -> dict:
    """Sleep for `seconds` and return `label`: a job that jumps the queue unless told otherwise."""
    time.sleep(seconds)
    return {"label": label}

"""A job type for the tests only (JOBSTREAM_JOB_MODULES=tests.stubborn_jobs): one that ignores being stopped."""

from __future__ import annotations

import time

from marshmallow import Schema, fields, validate

from jobs.types.registry import register
from jobs.types.running import progress

TICK_SECONDS = 0.1  # the job's unit of work, not a synchronization


class StubbornParams(Schema):
    seconds = fields.Float(load_default=60.0, validate=validate.Range(0, 600))


@register("test.stubborn", StubbornParams(), timeout=600)
def stubborn(seconds: float = 60.0) -> dict:
    """Run for `seconds`, swallowing every exception raised into it, as careless job code does."""
    end = time.monotonic() + seconds
    ticks = 0
    while time.monotonic() < end:
        try:
            ticks += 1
            progress(min(99, ticks), "ignoring stops")
            time.sleep(TICK_SECONDS)
        except BaseException:  # noqa: BLE001,S110  (the point of this job)
            pass
    return {"ticks": ticks}

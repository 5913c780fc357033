"""Job types for the retry, delay and limit tests (JOBSTREAM_JOB_MODULES=tests.limited_jobs)."""

from __future__ import annotations

import time

from marshmallow import Schema, fields, validate

from jobs.types.attempts import Backoff
from jobs.types.registry import register
from jobs.types.running import attempt, progress

CONCURRENCY = 2
RATE = (5, 1.0)  # starts per seconds


class SecondsParams(Schema):
    seconds = fields.Float(load_default=0.0, validate=validate.Range(0, 600), allow_nan=False)


@register("test.limited", SecondsParams(), timeout=120, concurrency=CONCURRENCY)
def limited(seconds: float = 0.0) -> dict:
    """Sleep for `seconds`; at most CONCURRENCY of these run at once."""
    time.sleep(seconds)
    return {"slept": seconds}


@register("test.rated", SecondsParams(), timeout=120, rate=RATE)
def rated(seconds: float = 0.0) -> dict:
    """Sleep for `seconds`; at most RATE[0] of these start per RATE[1] seconds."""
    time.sleep(seconds)
    return {"slept": seconds}


@register("test.slow_first", SecondsParams(), timeout=120, max_attempts=2, backoff=Backoff("fixed", 0.5, 0.5))
def slow_first(seconds: float = 0.0) -> dict:
    """Report progress, then sleep `seconds` on the first attempt only: a job to kill or time out once."""
    number = attempt()
    progress(1, "running", log=f"attempt {number} running")
    if number == 1:
        time.sleep(seconds)
    return {"attempt": number}

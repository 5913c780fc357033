"""The built-in job types: the reference web-agent demo and two small real jobs."""

from __future__ import annotations

import math
import random
import time

from marshmallow import Schema, fields, validate

from jobs.types.attempts import Backoff
from jobs.types.registry import register
from jobs.types.running import attempt, progress

ACTIONS = (
    ("Navigating to page", "https://example.com/{}"),
    ("Clicking button", "#submit-{}"),
    ("Filling form", "input[name=field{}]"),
    ("Scrolling down", "{} px"),
    ("Reading text", "paragraph {}"),
    ("Waiting for selector", ".result-{}"),
    ("Taking screenshot", "shot-{}.png"),
    ("Extracting data", "table row {}"),
)


class WebAgentParams(Schema):
    steps = fields.Integer(strict=True, load_default=10, validate=validate.Range(1, 1000))
    step_seconds = fields.Float(load_default=1.0, validate=validate.Range(0, 60), allow_nan=False)
    fail_rate = fields.Float(load_default=0.0, validate=validate.Range(0, 1), allow_nan=False)


class SleepParams(Schema):
    seconds = fields.Float(load_default=1.0, validate=validate.Range(0, 3600), allow_nan=False)


class FlakyParams(Schema):
    fail_times = fields.Integer(strict=True, load_default=2, validate=validate.Range(0, 100))
    seconds = fields.Float(load_default=0.0, validate=validate.Range(0, 60), allow_nan=False)


class PrimesParams(Schema):
    limit = fields.Integer(strict=True, load_default=2_000_000, validate=validate.Range(2, 200_000_000))


@register("demo.web_agent", WebAgentParams(), timeout=3600)
def web_agent(steps: int = 10, step_seconds: float = 1.0, fail_rate: float = 0.0) -> dict:
    """Pretend to be a browser agent: one random action per step, failing at `fail_rate` per step."""
    rng = random.Random()
    for step in range(1, steps + 1):
        time.sleep(step_seconds)
        action, target = rng.choice(ACTIONS)
        detail = target.format(rng.randint(1, 99))
        if rng.random() < fail_rate:
            raise RuntimeError(f"step {step}/{steps} failed while {action.lower()} ({detail})")
        progress(step * 100 // steps, action, log=f"step {step}/{steps}: {action} {detail}")
    return {"steps": steps, "status": "done"}


@register("demo.sleep", SleepParams(), timeout=3700)
def sleep(seconds: float = 1.0) -> dict:
    """Sleep for `seconds`, then return; with 0 it is a no-op job."""
    time.sleep(seconds)
    return {"slept": seconds}


@register("demo.primes", PrimesParams(), timeout=600)
def primes(limit: int = 2_000_000) -> dict:
    """Count the primes below `limit` with a sieve, reporting progress per block (CPU-bound)."""
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\x00\x00"
    root = math.isqrt(limit - 1)
    reported = 0
    for n in range(2, root + 1):
        if sieve[n]:
            sieve[n * n :: n] = bytes(len(range(n * n, limit, n)))
        percent = n * 100 // (root + 1)
        if percent >= reported + 10:
            reported = percent
            progress(percent, "Sieving", log=f"crossed out multiples up to {n}")
    count = sum(sieve)
    progress(100, "Counted", log=f"{count} primes below {limit}")
    return {"limit": limit, "primes": count}


@register("demo.flaky", FlakyParams(), timeout=120, max_attempts=3, backoff=Backoff("fixed", 1.0, 1.0))
def flaky(fail_times: int = 2, seconds: float = 0.0) -> dict:
    """Fail the first `fail_times` attempts, then succeed: automatic retries at work."""
    time.sleep(seconds)
    number = attempt()
    if number <= fail_times:
        raise RuntimeError(f"attempt {number} fails on purpose (the first {fail_times} do)")
    progress(100, "Succeeded", log=f"attempt {number} succeeded")
    return {"attempt": number}

"""The built-in job types: the reference web-agent demo and small real jobs to sleep, count, fail and retry."""

from __future__ import annotations

import math
import random
import time
from typing import Annotated

from marshmallow.validate import Length, Range

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


@register("demo.web_agent", timeout=3600)
def web_agent(
    steps: Annotated[int, Range(1, 1000)] = 10,
    step_seconds: Annotated[float, Range(0, 60)] = 1.0,
    fail_rate: Annotated[float, Range(0, 1)] = 0.0,
) -> dict:
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


@register("demo.sleep", timeout=3700)
def sleep(seconds: Annotated[float, Range(0, 3600)] = 1.0) -> dict:
    """Sleep for `seconds`, then return."""
    time.sleep(seconds)
    return {"slept": seconds}


@register("demo.noop")
def noop() -> None:
    """Return at once: a job that costs only jobstream's own work, for throughput."""


@register("demo.fail")
def fail(message: Annotated[str, Length(1, 1000)] = "failed on purpose") -> None:
    """Raise RuntimeError(message): a failure to see, retry and group by its error."""
    raise RuntimeError(message)


@register("demo.primes", timeout=600)
def primes(limit: Annotated[int, Range(2, 200_000_000)] = 2_000_000) -> dict:
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


@register("demo.flaky", timeout=120, max_attempts=3, backoff=Backoff("fixed", 1.0, 1.0))
def flaky(fail_times: Annotated[int, Range(0, 100)] = 2, seconds: Annotated[float, Range(0, 60)] = 0.0) -> dict:
    """Fail the first `fail_times` attempts, then succeed: automatic retries at work."""
    time.sleep(seconds)
    number = attempt()
    if number <= fail_times:
        raise RuntimeError(f"attempt {number} fails on purpose (the first {fail_times} do)")
    progress(100, "Succeeded", log=f"attempt {number} succeeded")
    return {"attempt": number}

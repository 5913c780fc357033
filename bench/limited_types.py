"""The job types bench.limits measures (JOBSTREAM_JOB_MODULES=bench.limited_types): limited primes and sleeps."""

from __future__ import annotations

from jobs.types.demo import PrimesParams, SleepParams, primes, sleep
from jobs.types.registry import register

CONCURRENCY = 2
RATE = (5, 1.0)  # starts per seconds


@register("bench.primes", PrimesParams(), timeout=600, concurrency=CONCURRENCY)
def limited_primes(limit: int = 2_000_000) -> dict:
    """demo.primes, at most CONCURRENCY at once across every worker."""
    return primes(limit)


@register("bench.rated", SleepParams(), timeout=600, rate=RATE)
def rated_sleep(seconds: float = 0.0) -> dict:
    """demo.sleep, at most RATE[0] starts per RATE[1] seconds across every worker."""
    return sleep(seconds)

"""The job type bench.limits measures (JOBSTREAM_JOB_MODULES=bench.limited_types): demo.primes, two at a time."""

from __future__ import annotations

from jobs.demo import PrimesParams, primes
from jobs.registry import register

CONCURRENCY = 2


@register("bench.primes", PrimesParams(), timeout=600, concurrency=CONCURRENCY)
def limited_primes(limit: int = 2_000_000) -> dict:
    """demo.primes, at most CONCURRENCY at once across every worker."""
    return primes(limit)

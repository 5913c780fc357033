"""Job types for the workflow tests (JOBSTREAM_JOB_MODULES=tests.flow_jobs): a part that returns its value after a
while, and a fan-in that adds up its dependencies' results."""

from __future__ import annotations

import time

from jobs import dependency_results, register


@register("flow.part")
def part(value: int = 1, seconds: float = 0.0) -> int:
    """Return `value` after `seconds` (a step of a workflow)."""
    time.sleep(seconds)
    return value


@register("flow.total")
def total() -> dict:
    """Add up the number results of this job's completed dependencies (a fan-in); name every one."""
    results = dependency_results()
    return {"sum": sum(value for value in results.values() if isinstance(value, int)), "parents": sorted(results)}

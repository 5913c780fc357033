"""Job types for the tests only (JOBSTREAM_JOB_MODULES=tests.hinted_jobs), registered by the decorator alone:
one with a param of every hint kind, and an `async def` one."""

from __future__ import annotations

from typing import Annotated, Literal

from jobs import Length, OneOf, Range, register


@register("test.hinted")
def hinted(
    label: str,
    count: Annotated[int, Range(min=1, max=100)] = 10,
    ratio: float = 0.5,
    loud: bool = False,
    fmt: Literal["csv", "xlsx"] = "csv",
    size: Annotated[str, OneOf(["s", "m", "l"])] = "m",
    note: Annotated[str | None, Length(max=20), "A short note"] = None,
    tags: list[str] | None = None,
    weights: dict[str, float] | None = None,
) -> dict:
    """Echo its params: a param of every hint kind."""
    return {"label": label, "count": count, "ratio": ratio, "loud": loud, "fmt": fmt, "size": size}


@register("test.hinted_async")
async def hinted_async(seconds: Annotated[float, Range(0, 60)] = 0.0) -> dict:
    """An async job: its schema from its hints, as for a plain one."""
    return {"seconds": seconds}

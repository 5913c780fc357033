"""Job types for the tests only (JOBSTREAM_JOB_MODULES=tests.async_jobs): `async def` jobs that report, wait, are
stopped, and one that swallows its stop."""

from __future__ import annotations

import asyncio

from marshmallow import Schema, fields, validate

from jobs.types.registry import register
from jobs.types.running import progress

SAW_CANCEL = "saw CancelledError"
TICK_SECONDS = 0.1  # the stubborn job's unit of work, not a synchronization


class StepsParams(Schema):
    steps = fields.Integer(load_default=3, validate=validate.Range(1, 100))


class WaitParams(Schema):
    seconds = fields.Float(load_default=60.0, validate=validate.Range(0, 600), allow_nan=False)


@register("test.async_steps", StepsParams(), timeout=60)
async def async_steps(steps: int = 3) -> dict:
    """Report each step, the last one from a task it spawns, and return how many it took."""
    for step in range(1, steps):
        await asyncio.sleep(0)
        progress(100 * step // steps, f"step {step}", log=f"step {step}/{steps}")
    await asyncio.create_task(last_step(steps))
    return {"steps": steps, "async": True}


async def last_step(steps: int) -> None:
    await asyncio.sleep(0)
    progress(99, "spawned task", log=f"step {steps}/{steps} from a spawned task")


@register("test.async_wait", WaitParams(), timeout=600)
async def wait(seconds: float = 60.0) -> dict:
    """Await `seconds`; a cancel is seen, logged and passed on, as well-behaved async code does."""
    progress(1, "waiting")
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        progress(1, "canceled", log=SAW_CANCEL)
        raise
    return {"waited": seconds}


@register("test.async_stubborn", WaitParams(), timeout=600)
async def stubborn(seconds: float = 60.0) -> dict:
    """Await `seconds` in ticks, swallowing every cancel, as careless async code does."""
    loop = asyncio.get_running_loop()
    end, ticks = loop.time() + seconds, 0
    while loop.time() < end:
        try:
            ticks += 1
            progress(min(99, ticks), "ignoring cancels")
            await asyncio.sleep(TICK_SECONDS)
        except asyncio.CancelledError:
            pass  # the point of this job
    return {"ticks": ticks}

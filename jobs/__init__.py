"""jobstream's core: job types and their registry, the job store over RQ, events and the live stream.

It knows Redis and RQ, and nothing of HTTP: the web skin (app.py, web/), the worker skin (worker.py),
the `jobstream` command and your own code call it through `Jobs`. Importing a job module registers its
types; the skins say which to load.

    from jobs import Jobs
    jobs = Jobs.from_url("redis://127.0.0.1:6379/0")
    job = jobs.enqueue("demo.sleep", name="Nap", params={"seconds": 1})

A job type is a function with type hints and the decorator; marshmallow's common validators are here for its
`Annotated` hints (any other marshmallow validator works too):

    @register("reports.export", max_attempts=3)
    def export(month: str, rows: Annotated[int, Range(min=1, max=100_000)] = 1000) -> dict: ...
"""

from marshmallow.validate import Length, OneOf, Range, Regexp

from jobs.client import CancelResult, Jobs, Page
from jobs.errors import IdempotencyConflict, InvalidRequest, JobConflict, JobNotFound, JobsError
from jobs.model import Job, Schedule
from jobs.options import CreateOptions
from jobs.schedules import ScheduleNotFound
from jobs.stream.follow import JobEvent
from jobs.types.registry import register
from jobs.types.running import attempt, dependency_results, progress

__all__ = [
    "CancelResult",
    "CreateOptions",
    "IdempotencyConflict",
    "InvalidRequest",
    "Job",
    "JobConflict",
    "JobEvent",
    "JobNotFound",
    "Jobs",
    "JobsError",
    "Length",
    "OneOf",
    "Page",
    "Range",
    "Regexp",
    "Schedule",
    "ScheduleNotFound",
    "attempt",
    "dependency_results",
    "progress",
    "register",
]

"""The options a job is created with, beside its type, name and params: declared once, here.

`Jobs.enqueue`, a job function's `.using()`, `Jobs.enqueue_many` and the `jobstream enqueue` command build a
`CreateOptions`; its `body()` is the REST create request's fields, so `JobCreateSchema` checks all of them
(a test holds that schema's fields, `Jobs.enqueue`'s keywords and `.using()`'s to this class's fields).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from jobs.types.attempts import Backoff


@dataclass(frozen=True, kw_only=True)
class CreateOptions:
    """How to create a job; None leaves the job type's default (or, for a start, now)."""

    priority: str | None = None  # high, normal or low
    timeout_seconds: int | None = None  # the longest one attempt may run
    delay_seconds: float | None = None  # start no sooner than this many seconds from now
    run_at: datetime | str | None = None  # start no sooner than this time (a past one: now)
    max_attempts: int | None = None  # attempts in all, automatic retries included
    backoff: Backoff | Mapping[str, Any] | None = None  # the wait before each automatic retry
    depends_on: Sequence[str] | None = None  # jobs that must end first (in enqueue_many, also earlier items' keys)
    allow_failure: bool | None = None  # run even when a dependency failed or was canceled
    # The same key within 24 h returns the job it created; over HTTP, the Idempotency-Key header.
    idempotency_key: str | None = field(default=None, metadata={"header": "Idempotency-Key"})

    def body(self) -> dict[str, Any]:
        """The given options as a create request's JSON fields (the header's left out)."""
        body: dict[str, Any] = {}
        for option in fields(self):
            value = getattr(self, option.name)
            if value is None or "header" in option.metadata:
                continue
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, Backoff):
                value = value.as_dict()
            elif isinstance(value, Sequence) and not isinstance(value, str):
                value = list(value)
            body[option.name] = value
        return body

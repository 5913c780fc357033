"""What the dashboard page is told of the server's rules, rendered into it once: limits, choices, allowed actions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import url_for

from jobs import schemas
from jobs.model import ACTIONS, NORMAL, PRIORITIES, STATUSES
from jobs.store.scripts import MAX_LOGS
from jobs.types.attempts import BACKOFF_TYPES, MAX_ATTEMPTS, MAX_DELAY_SECONDS

FIRST_PAGE = 50  # the list's first page: a screen and more, answered fast; the pages after it are PAGE_MAX long

# The form's and the list's bounds, each the schema's own (static/api.js reads them as `limits`).
LIMITS = {
    "name": schemas.NAME_MAX,
    "first_page": FIRST_PAGE,
    "page": schemas.PAGE_MAX,
    "cancel_ids": schemas.CANCEL_MAX,
    "max_attempts": MAX_ATTEMPTS,
    "backoff_seconds": MAX_DELAY_SECONDS,
    "log_lines": MAX_LOGS,
}

# The page's ES modules but its entry: preloaded together, not found one import level after another.
MODULES = sorted(p.name for p in (Path(__file__).parent.parent / "static").glob("*.js") if p.name != "app.js")


def context() -> dict[str, Any]:
    """The template's values: the limits (as attributes and as JSON), the choices the form offers, and which
    statuses allow each action (static/actions.js's `allowed`)."""
    return {
        "limits": LIMITS,
        "actions": {action: list(statuses) for action, statuses in ACTIONS.items()},
        "statuses": STATUSES,
        "priorities": PRIORITIES,
        "default_priority": NORMAL,
        "backoff_types": BACKOFF_TYPES,
        "modules": MODULES,
        "failures_url": url_for("list_failures"),
    }

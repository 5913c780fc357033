"""What the dashboard page is told of the server's rules, rendered into it once: limits, choices, allowed actions;
and the list's first page, read for the page itself so that its rows paint with the HTML."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import redis
from flask import request, url_for
from marshmallow import ValidationError

from jobs import schemas
from jobs.model import ACTIONS, NORMAL, PRIORITIES, STATUSES
from jobs.store.scripts import MAX_LOGS
from jobs.types.attempts import BACKOFF_TYPES, MAX_ATTEMPTS, MAX_DELAY_SECONDS
from web.context import jobs
from web.rows import draw_blocks

logger = logging.getLogger(__name__)

FIRST_PAGE = 50  # the list's first page: a screen and more, answered fast; the pages after it are PAGE_MAX long
BLOCK_ROWS = 10  # the list's rows per <tbody> (static/blocks.js says why)

# The form's and the list's bounds, each the schema's own, and the list's blocks (static/api.js reads them as `limits`).
LIMITS = {
    "name": schemas.NAME_MAX,
    "first_page": FIRST_PAGE,
    "page": schemas.PAGE_MAX,
    "block_rows": BLOCK_ROWS,
    "cancel_ids": schemas.CANCEL_MAX,
    "max_attempts": MAX_ATTEMPTS,
    "backoff_seconds": MAX_DELAY_SECONDS,
    "log_lines": MAX_LOGS,
}


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
        "failures_url": url_for("list_failures"),
    }


def read_page(args: Mapping[str, str]) -> dict[str, Any]:
    """A page of the list as GET /api/jobs answers it, from its query string: that route's one implementation."""
    return schemas.job_page.dump(jobs().list(**schemas.job_query.load(args)))


def first_rows() -> dict[str, Any]:
    """The list's first page for the URL's view, as static/api.js `listUrl` asks for it, and its rows in blocks.
    None with a search (it may scan long: the page asks for it itself, as before)."""
    status = request.args.get("status") or None
    page = None if request.args.get("q") else read_first_page(status)
    if page is None:
        return {"first_page": None, "blocks": []}
    try:
        blocks = draw_blocks(page["jobs"], status, datetime.now(UTC), BLOCK_ROWS)
    except Exception:  # a row the server cannot draw must not cost the page: its scripts draw the list instead
        logger.exception("the page goes without its first rows")
        return {"first_page": None, "blocks": []}
    return {"first_page": page, "blocks": blocks}


def read_first_page(status: str | None) -> dict[str, Any] | None:
    """The first page, or None when it cannot be read: the page then asks for it and says what went wrong."""
    try:
        return read_page({"limit": str(FIRST_PAGE), **({"status": status} if status else {})})
    except ValidationError:
        return None  # a status that is none: the page's own request has the 422 to show
    except redis.RedisError as exc:
        logger.warning("the page goes without its first rows: %s", exc)
        return None

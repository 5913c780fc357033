"""Each request's id (the client's X-Request-ID when sane, else a new one) and its one log line."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, g, has_request_context, request

HEADER = "X-Request-ID"
SANE_ID = re.compile(r"[\x21-\x7e]{1,200}")  # visible ASCII, as the id goes into headers and log lines as is

logger = logging.getLogger("jobstream.http")


def request_id() -> str:
    """This request's id: its X-Request-ID when that is 1..200 visible ASCII characters, else a new one."""
    rid: str | None = g.get("request_id")
    if rid is None:
        given = request.headers.get(HEADER, "")
        rid = given if SANE_ID.fullmatch(given) else uuid.uuid4().hex
        g.request_id = rid
    return rid


def install(app: Flask) -> None:
    """Give every request its id, echo it in the response, and log one line when the response is done (for a
    stream: when it ends). Install it first: a request refused by a later check still gets its id."""
    _tag_records()

    @app.before_request
    def begin() -> None:
        g.request_started = time.perf_counter()
        request_id()

    app.after_request(_finish)


def _finish(response: Response) -> Response:
    rid = request_id()
    response.headers[HEADER] = rid
    started = g.get("request_started", time.perf_counter())
    facts: dict[str, Any] = {
        "request_id": rid,
        "method": request.method,
        "path": request.path,
        "status": response.status_code,
        "user": g.get("user"),
        "remote_addr": request.remote_addr,
    }

    def log() -> None:
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        extra = {**facts, "duration_ms": duration_ms}
        if has_request_context():  # still inside the request (a server that closes early): _tag_records adds it
            extra.pop("request_id")
        logger.info(
            "%s %s %d %.1f ms (request %s)",
            facts["method"],
            facts["path"],
            facts["status"],
            duration_ms,
            rid,
            extra=extra,
        )

    response.call_on_close(log)  # after the body is sent: a stream's line tells how long it was open
    return response


_tagged = False


def _tag_records() -> None:
    """Every log record made while a request is handled carries its request_id (a job created by it, a
    Redis error in it), unless the record has one already. Once per process."""
    global _tagged
    if _tagged:
        return
    _tagged = True
    make = logging.getLogRecordFactory()

    def tagged(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        if has_request_context() and "request_id" in g:
            record.request_id = g.request_id
        return record

    logging.setLogRecordFactory(tagged)

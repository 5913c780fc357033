"""What every view uses: the process's services, built once in the factory, and the request's JSON body."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask import abort, current_app, request
from marshmallow import Schema
from redis import Redis

from jobs.client import Jobs
from jobs.config import Settings
from jobs.store.lifecycle import JobStore
from jobs.stream.fanout import StreamRegistry
from jobs.stream.feeds import RequestFanout
from jobs.stream.hub import ProcessFanout
from jobs.webhooks.registry import Webhooks

EXTENSION = "jobstream"  # the key of Services in app.extensions


@dataclass
class Services:
    """What the routes use, built once per process in the factory."""

    settings: Settings
    jobs: Jobs
    fanout: RequestFanout | ProcessFanout
    stream_redis: Redis
    streams: StreamRegistry

    @property
    def store(self) -> JobStore:
        return self.jobs.store

    @property
    def webhooks(self) -> Webhooks:
        return Webhooks(self.jobs.redis)


def services() -> Services:
    return current_app.extensions[EXTENSION]


def jobs() -> Jobs:
    return services().jobs


def json_object() -> dict[str, Any]:
    """The request's JSON object (415 when not sent as JSON, 400 when not an object)."""
    if not request.is_json:
        abort(415, "send a JSON body with Content-Type: application/json")
    body = request.get_json(silent=True)
    if body is None:
        abort(400, "the body is not valid JSON")
    if not isinstance(body, dict):
        abort(400, "the body must be a JSON object")
    try:  # "\ud800" alone is JSON's syntax but no text: Redis (UTF-8) could not store it
        json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        abort(400, "the body holds an unpaired UTF-16 surrogate (\\ud800-\\udfff), which is not text")
    return body


def json_body(schema: Schema) -> dict[str, Any]:
    """The request's JSON object loaded by `schema` (415 / 400 / 422 otherwise)."""
    return schema.load(json_object())

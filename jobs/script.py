"""The Lua scripts of jobs/lua/, each called with its keys and one JSON header of named arguments."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import redis

LUA_DIR = Path(__file__).with_name("lua")
PRELUDE = "common"  # the header, the event and the bookkeeping every event script shares


@cache
def source(name: str) -> str:
    """The text of script `name`, read once per process."""
    return (LUA_DIR / f"{name}.lua").read_text()


class Script:
    """One registered event script behind the shared prelude: EVALSHA with the header as ARGV[1], loading
    the script when Redis lacks it. `common` holds the header's fields that never change, encoded once."""

    def __init__(self, client: redis.Redis, name: str, common: dict[str, Any] | None = None) -> None:
        self._script = client.register_script(source(PRELUDE) + "\n" + source(name))
        self._common = _ENCODER.encode(common or {})[1:-1]

    def __call__(self, keys: list[str], header: dict[str, Any], client: Any = None) -> Any:
        """Run the script; inside a pipeline (`client`), queue it and return the pipeline."""
        varying = _ENCODER.encode(header)[1:-1]
        args = ["{" + ",".join(part for part in (self._common, varying) if part) + "}"]
        return self._script(keys=keys, args=args, client=client)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

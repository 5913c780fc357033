"""py-spy on the gunicorn worker: a sampled profile during a run, a dump when it stops answering."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def binary() -> str:
    """py-spy beside this interpreter, else on PATH (requirements-dev.txt pins it)."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else (shutil.which("py-spy") or str(beside))


def dump(pid: int, path: Path) -> Path | None:
    """The stack the worker is running now (the greenlet that holds the hub), written to `path`."""
    try:
        result = subprocess.run([binary(), "dump", "-p", str(pid)], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    path.write_bytes(result.stdout + result.stderr)
    return path


def start_profiler(pid: int, seconds: float, path: Path) -> subprocess.Popen[bytes]:
    """py-spy record (raw collapsed stacks, by function) on the gunicorn worker, in the background."""
    args = [binary(), "record", "-p", str(pid), "-d", str(math.ceil(seconds)), "-r", "100"]
    args += ["--nonblocking", "--function", "-f", "raw", "-o", str(path)]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish_profiler(profiler: subprocess.Popen[bytes], path: Path) -> dict[str, Any]:
    try:
        _, err = profiler.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        profiler.kill()
        _, err = profiler.communicate()
    if not path.exists():
        return {"error": err.decode(errors="replace")[-500:]}
    top = summarize_profile(path)
    summary = path.with_suffix(".top.txt")
    summary.write_text(format_profile(top))
    return {"raw": _shown(path), "top": _shown(summary), **top}


def _shown(path: Path) -> str:
    """The path relative to the repository when it is inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def summarize_profile(path: Path, limit: int = 20) -> dict[str, Any]:
    """Self and inclusive sample shares per function, from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        samples = int(count)
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples

    def share(counter: Counter[str]) -> list[list[Any]]:
        return [[frame, round(100 * n / total, 1)] for frame, n in counter.most_common(limit)]

    return {"samples": total, "self_pct": share(own), "inclusive_pct": share(inclusive)} if total else {"samples": 0}


def format_profile(top: dict[str, Any]) -> str:
    lines = [f"py-spy samples: {top.get('samples', 0)}", "", "self %   function"]
    lines += [f"{pct:6.1f}   {frame}" for frame, pct in top.get("self_pct", [])]
    lines += ["", "incl %   function"]
    lines += [f"{pct:6.1f}   {frame}" for frame, pct in top.get("inclusive_pct", [])]
    return "\n".join(lines) + "\n"

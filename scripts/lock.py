"""Trim the dev lock after `make lock`'s pip-compile, so that no package is pinned in both lock files.

pip-compile writes into requirements-dev.txt every package the dev tools need, runtime ones included (held to
requirements.txt's versions by requirements-dev.in's `-c requirements.txt`). This keeps only the pins that
requirements.txt lacks and installs that file first with `-r`: each pin is written once, with its `# via`."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = ROOT / "requirements.txt"
DEV = ROOT / "requirements-dev.txt"

INCLUDE = f"-r {RUNTIME.name}"
NOTE = f"# {RUNTIME.name}'s pins, then only those the tests, lint and benchmarks add (scripts/lock.py)"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")


def normalized(name: str) -> str:
    """A distribution's name as PyPI compares them (PEP 503): `Flask`, `zope.event` and `zope_event` alike."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(path: Path) -> dict[str, str]:
    """The normalized name and version of every `name==version` line of a lock file."""
    pins = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match:
            pins[normalized(match[1])] = match[2]
    return pins


def trimmed(dev: str, runtime: set[str]) -> str:
    """The dev lock without the pins (and their `# via` lines) of `runtime`, installing requirements.txt first."""
    kept: list[str] = []
    included = skipping = False
    for line in dev.splitlines():
        if line in (NOTE, INCLUDE):
            continue
        match = PIN.match(line)
        if match and not included:
            kept += [NOTE, INCLUDE]
            included = True
        if match:
            skipping = normalized(match[1]) in runtime
        elif not line.startswith(" "):
            skipping = False
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n"


def main() -> None:
    """Rewrite requirements-dev.txt in place."""
    DEV.write_text(trimmed(DEV.read_text(), set(pinned(RUNTIME))))


if __name__ == "__main__":
    main()

"""The dependencies: every third-party import is declared directly, and each version is pinned once, exactly."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from scripts.lock import DEV, INCLUDE, PIN, ROOT, RUNTIME, normalized, pinned

PRODUCT = ("jobs", "runner", "web", "cli", "scripts", "app.py", "worker.py", "gunicorn.conf.py")
CHECKS = ("tests", "bench")


def sources(*parts: str) -> list[Path]:
    """The Python files of these folders and files of the checkout."""
    paths = [ROOT / part for part in parts]
    return [path for path in paths if path.is_file()] + [
        file for path in paths if path.is_dir() for file in sorted(path.rglob("*.py"))
    ]


def local_names() -> set[str]:
    """Names that are this checkout's own: its top-level modules and packages, and any module of it (tests and
    scripts put their folders on sys.path)."""
    top = {path.stem for path in ROOT.iterdir() if path.suffix == ".py" or (path / "__init__.py").exists()}
    return top | {path.stem for path in sources(*PRODUCT, *CHECKS)}


def third_party(files: list[Path]) -> dict[str, Path]:
    """Each top-level name these files import that is neither the standard library nor this checkout's, with a
    file that imports it."""
    own = local_names() | set(sys.stdlib_module_names) | {"__future__"}
    found: dict[str, Path] = {}
    for file in files:
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top not in own:
                    found.setdefault(top, file)
    return found


def declared(path: Path) -> set[str]:
    """The normalized names a `.in` file lists (its options such as `-c` and its comments left out)."""
    names = set()
    for line in path.read_text().splitlines():
        requirement = line.partition("#")[0].strip()
        if requirement and not requirement.startswith("-"):
            names.add(normalized(re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0]))
    return names


@pytest.mark.parametrize(
    ("parts", "inputs"),
    [(PRODUCT, ("requirements.in",)), (CHECKS, ("requirements.in", "requirements-dev.in"))],
    ids=["product", "tests-and-bench"],
)
def test_every_import_is_a_direct_dependency(parts: tuple[str, ...], inputs: tuple[str, ...]) -> None:
    distributions = packages_distributions()
    direct = set().union(*(declared(ROOT / name) for name in inputs))
    missing = {
        f"{name} ({file.relative_to(ROOT)})": distributions.get(name, ["no installed distribution"])
        for name, file in third_party(sources(*parts)).items()
        if not direct & {normalized(distribution) for distribution in distributions.get(name, [])}
    }
    assert not missing, f"imported but not listed in {' or '.join(inputs)}: {missing}"


def test_every_direct_dependency_is_pinned() -> None:
    assert declared(ROOT / "requirements.in") <= set(pinned(RUNTIME))
    assert declared(ROOT / "requirements-dev.in") <= set(pinned(RUNTIME)) | set(pinned(DEV))


def test_nothing_is_pinned_twice() -> None:
    both = set(pinned(RUNTIME)) & set(pinned(DEV))
    assert not both, f"pinned in both {RUNTIME.name} and {DEV.name}: {sorted(both)}"
    assert INCLUDE in DEV.read_text().splitlines(), "the dev lock installs the runtime one"


@pytest.mark.parametrize("lock", [RUNTIME, DEV], ids=lambda path: path.name)
def test_every_requirement_is_an_exact_pin(lock: Path) -> None:
    requirements = [
        line for line in lock.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    loose = [line for line in requirements if not PIN.match(line) and not (lock == DEV and line == INCLUDE)]
    assert not loose, f"{lock.name}: not `name==version`: {loose}"

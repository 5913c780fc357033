"""The core's layering, read from the source with `ast`: jobs/ knows no skin, and its modules import no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from scripts.harness import ROOT

CORE = ROOT / "jobs"
# The web skin (Flask, werkzeug, gevent, app, web/) and the worker skin (worker, runner/) sit on the core, never under;
# gevent in particular must stay out of everything the RQ worker imports.
FORBIDDEN = ("flask", "werkzeug", "gevent", "app", "web", "worker", "runner")


def module_name(path: Path) -> str:
    """jobs/store/reads.py -> jobs.store.reads; jobs/store/__init__.py -> jobs.store."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


CORE_MODULES = {module_name(path): path for path in sorted(CORE.rglob("*.py"))}


def is_type_checking(node: ast.If) -> bool:
    """`if TYPE_CHECKING:` or `if typing.TYPE_CHECKING:`: imports that never run."""
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(module: str, *, at_run_time: bool = False) -> list[tuple[int, str]]:
    """(line, imported module) of every import in `module`, at any depth (functions included).

    With `at_run_time`, the imports under `if TYPE_CHECKING:` are left out: they cannot make a cycle.
    """
    path = CORE_MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if at_run_time and isinstance(node, ast.If) and is_type_checking(node):
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from . import x, from .x import y
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from jobs import schemas` needs the module jobs.schemas; `from jobs import Jobs` needs the package jobs
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.append((node.lineno, submodule if submodule in CORE_MODULES else base))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return found


def core_edges(module: str) -> set[str]:
    """The core modules that `module` imports when it runs (`from jobs.x import y`, `import jobs.x`, ...)."""
    return {name for _, name in imports(module, at_run_time=True) if name in CORE_MODULES and name != module}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` as [a, b, ..., a], or None (depth-first search, three colours)."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(graph[node]):
            if cycle := visit(target):
                return cycle
        path.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        if cycle := visit(start):
            return cycle
    return None


def test_the_core_is_found() -> None:
    assert {"jobs", "jobs.store.lifecycle", "jobs.types.registry", "jobs.stream.events"} <= set(CORE_MODULES)


@pytest.mark.parametrize("module", sorted(CORE_MODULES))
def test_the_core_imports_no_skin(module: str) -> None:
    skins = [
        f"{CORE_MODULES[module].relative_to(ROOT)}:{line} imports {name}"
        for line, name in imports(module)
        if name.split(".")[0] in FORBIDDEN
    ]
    assert skins == []


def test_the_core_has_no_import_cycle() -> None:
    graph = {module: core_edges(module) for module in CORE_MODULES}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        pytest.param({"a": {"b"}, "b": {"c"}, "c": set()}, None, id="chain"),
        pytest.param({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}, None, id="diamond"),
        pytest.param({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"], id="three"),
        pytest.param({"a": {"a"}}, ["a", "a"], id="self"),
    ],
)
def test_find_cycle_finds_exactly_the_cycles(graph: dict[str, set[str]], expected: list[str] | None) -> None:
    """The guard itself can fail: a cycle like the one the registry once made is found."""
    assert find_cycle(graph) == expected


def test_from_the_package_import_a_module_is_an_edge_to_that_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`from jobs import schemas` depends on jobs.schemas, not on the package (whose __init__ may import us)."""
    client = tmp_path / "jobs" / "client.py"
    client.parent.mkdir()
    client.write_text("from jobs import schemas\nfrom jobs import Jobs\n")
    monkeypatch.setitem(CORE_MODULES, "jobs.client", client)
    assert core_edges("jobs.client") == {"jobs.schemas", "jobs"}


def test_imports_inside_functions_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cycle hidden in a function (the registry's old `_load_builtin`) is an edge like any other."""
    hidden = tmp_path / "jobs" / "types" / "registry.py"
    hidden.parent.mkdir(parents=True)
    hidden.write_text("def _load_builtin():\n    import jobs.types.demo\n")
    monkeypatch.setitem(CORE_MODULES, "jobs.types.registry", hidden)
    assert core_edges("jobs.types.registry") == {"jobs.types.demo"}

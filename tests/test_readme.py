"""The README's map of the product: every module, script, page and stylesheet has its one line, and every line
names a file that exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import PurePosixPath

from scripts.harness import ROOT

README = ROOT / "README.md"
SECTION = "## Architecture"
PRODUCT_SUFFIXES = (".py", ".lua", ".js", ".css", ".html")
NOT_PRODUCT = ("tests", "bench", "docs", "deploy")  # beside the product: the map names them in a sentence
ENTRY = re.compile(r"^\| `([^`]+)` \| *(.*?) *\|$", re.MULTILINE)  # | `path` | what it is for |


def map_entries(readme: str) -> list[tuple[str, str]]:
    """(path, line) of each file the map names, in the README's order."""
    section = readme.split(f"\n{SECTION}\n", 1)[1].split("\n## ", 1)[0]
    return ENTRY.findall(section)


def product_files() -> set[str]:
    """The files of the product: tracked or about to be (new and not ignored), of the kinds the map covers."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return {
        name
        for name in filter(None, listed.split("\0"))
        if name.endswith(PRODUCT_SUFFIXES)
        and PurePosixPath(name).parts[0] not in NOT_PRODUCT
        and (ROOT / name).is_file()  # not one deleted since the last commit
    }


def differences(readme: str, files: set[str]) -> tuple[set[str], set[str]]:
    """(files without a line, lines without a file)."""
    named = {path for path, _ in map_entries(readme)}
    return files - named, named - files


def test_the_map_names_every_file_of_the_product_once_with_what_it_is_for() -> None:
    entries = map_entries(README.read_text())
    without_line, without_file = differences(README.read_text(), product_files())
    assert not without_line, f"the README's map ({SECTION}) has no line for {sorted(without_line)}"
    assert not without_file, f"the README's map ({SECTION}) names files that do not exist: {sorted(without_file)}"
    paths = [path for path, _ in entries]
    assert len(paths) == len(set(paths)), f"named twice: {sorted({p for p in paths if paths.count(p) > 1})}"
    assert all(line for _, line in entries), "every file's line says what it is for"


def test_a_new_module_without_a_line_or_a_line_without_its_module_is_found() -> None:
    readme = README.read_text()
    files = product_files()
    assert differences(readme, files | {"jobs/types/new.py"}) == ({"jobs/types/new.py"}, set())
    assert differences(readme, files - {"web/api.py"}) == (set(), {"web/api.py"})

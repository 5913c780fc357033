"""A batch's dependency graph: items name each other by `key`, and stored jobs by id; checked before anything is
written (a duplicate key, an unknown key, a cycle), so a bad batch creates nothing."""

from __future__ import annotations

import re
from typing import Any

from jobs.schemas import JOB_ID_PATTERN

Refs = list[tuple[str | None, list[str]]]  # per item: its key (or None) and its depends_on as given


def check(refs: Refs, errors: dict[str, dict[str, Any]]) -> None:
    """Add to `errors` (by item position, then field) what is wrong with the graph."""
    places: dict[str, int] = {}
    for at, (key, _) in enumerate(refs):
        if key is None:
            continue
        if key in places:
            _add(errors, at, "key", f"duplicate key {key!r}: item {places[key]} has it")
        else:
            places[key] = at
    for at, (_, depends_on) in enumerate(refs):
        for ref in depends_on:
            if ref not in places and re.fullmatch(JOB_ID_PATTERN, ref) is None:
                _add(errors, at, "depends_on", f"{ref!r} is neither a key of this batch nor a job id")
    for at, cycle in _cycles(refs, places):
        path = " -> ".join(repr(refs[each][0]) for each in cycle)
        _add(errors, at, "depends_on", f"a cycle: {path}")


def resolve(refs: Refs) -> list[tuple[str | int, ...]]:
    """Each item's dependencies: another item's position for its key, else a stored job's id."""
    places = {key: place for place, (key, _) in enumerate(refs) if key is not None}
    return [tuple(places.get(ref, ref) for ref in depends_on) for _, depends_on in refs]


def _cycles(refs: Refs, places: dict[str, int]) -> list[tuple[int, list[int]]]:
    """Each item on a cycle, with the cycle from it back to it (depth first, colouring as it goes)."""
    edges = [[places[ref] for ref in depends_on if ref in places] for _, depends_on in refs]
    state = [0] * len(refs)  # 0 unseen, 1 on the current path, 2 done
    found: dict[int, list[int]] = {}
    for root in range(len(refs)):
        if state[root]:
            continue
        path, stack = [root], [iter(edges[root])]
        state[root] = 1
        while stack:
            step = next(stack[-1], None)
            if step is None:
                state[path.pop()] = 2
                stack.pop()
            elif state[step] == 1:
                cycle = path[path.index(step) :]
                for each in cycle:
                    turn = cycle.index(each)
                    found.setdefault(each, [*cycle[turn:], *cycle[:turn], each])
            elif state[step] == 0:
                state[step] = 1
                path.append(step)
                stack.append(iter(edges[step]))
    return sorted(found.items())


def _add(errors: dict[str, dict[str, Any]], at: int, field: str, message: str) -> None:
    errors.setdefault(str(at), {}).setdefault(field, []).append(message)

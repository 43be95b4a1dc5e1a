"""Graph checks on a workflow: unknown and self dependencies, cycles, topological order."""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Any, cast

from .._exceptions import CycleError, ManifestError, Problem

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._model import Step, Workflow


def suggest(name: str, choices: list[str]) -> str | None:
    """The closest of ``choices`` to a misspelt ``name``, if any is close."""
    import difflib  # only a mistake pays for it

    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def check_graph(wf: Workflow) -> tuple[str, ...]:
    """Raise ManifestError for unknown/self dependencies, CycleError for a cycle; return
    the canonical topological order (see :func:`topological_order`), found in the same
    pass: when every step is declared after its dependencies (workflows built in Python
    and most manifests), the declared order *is* the canonical one, and one look at each
    dependency both validates the graph and proves it (no cycle can run only backwards).
    """
    steps = wf._steps
    if not steps:
        raise ManifestError(
            [Problem("empty_pipeline", "pipeline", "the workflow has no steps; add at least one")],
            wf.source,
        )
    index = dict(zip(steps, range(len(steps)), strict=True))
    if _forward(steps, index):
        return tuple(steps)
    _check_edges(wf, index)
    return tuple(topological_order(wf))


def _forward(steps: Mapping[str, Step], index: dict[str, int]) -> bool:
    """Whether every dependency is a step declared before its dependant, none repeated.
    A dependency tuple shared with the step before (a fan-out) is known good already; a
    long one (a fan-in) is looked at in C."""
    checked: tuple[str, ...] = ()
    for i, step in enumerate(steps.values()):
        deps = step.depends_on
        if deps is checked or not deps:  # checked for an earlier step: all came before it
            continue
        if len(deps) < 16:
            for dep in deps:
                j = index.get(dep)
                if j is None or j >= i:
                    return False
            if len(deps) > 1 and len(set(deps)) != len(deps):
                return False
        else:
            at = list(map(index.get, deps))
            if None in at or len(set(deps)) != len(deps):
                return False
            if max(cast("list[int]", at)) >= i:
                return False
        checked = deps
    return True


def _check_edges(wf: Workflow, index: dict[str, int]) -> None:
    """Every problem of the dependency lists, and a cycle, raised for people."""
    steps = wf._steps
    ids = list(steps)
    problems: list[Problem] = []

    def problem(kind: str, sid: str, message: str, **facts: Any) -> None:
        i = index[sid]
        line, col = wf.position(("pipeline", i, "depends_on"))
        problems.append(Problem(kind, f"pipeline[{i}].depends_on", message, line, col, **facts))

    for sid, step in steps.items():
        seen: set[str] = set()
        for dep in step.depends_on:
            if dep == sid:
                problem(
                    "self_dependency",
                    sid,
                    f"step '{sid}' depends on itself; a step cannot wait for its own output",
                    found=dep,
                )
            elif dep not in steps:
                hint = suggest(dep, ids)
                problem(
                    "unknown_dependency",
                    sid,
                    f"step '{sid}' depends on '{dep}', which is not a step of this workflow"
                    + (f" (did you mean '{hint}'?)" if hint else f"; steps are: {_list(ids)}"),
                    expected="a step id",
                    found=dep,
                    suggestion=hint,
                )
            elif dep in seen:
                problem(
                    "duplicate_dependency",
                    sid,
                    f"step '{sid}' lists '{dep}' twice in depends_on",
                    found=dep,
                )
            seen.add(dep)
    if problems:
        raise ManifestError(problems, wf.source)
    cycle = find_cycle(wf)
    if cycle:
        i = index[cycle[1]]
        line, col = wf.position(("pipeline", i, "depends_on"))
        arrow = " → ".join(cycle)
        raise CycleError(
            [
                Problem(
                    "cycle",
                    f"pipeline[{i}].depends_on",
                    f"workflow '{wf.name}' has a cycle {arrow}; a DAG cannot loop "
                    "(use a Petri net for loops)",
                    line,
                    col,
                    found=arrow,
                )
            ],
            cycle=tuple(cycle),
            source=wf.source,
        )


def _list(ids: list[str]) -> str:
    shown = ", ".join(ids[:10])
    return shown + (", ..." if len(ids) > 10 else "")


def find_cycle(wf: Workflow) -> list[str] | None:
    """One cycle as a list of ids in dependency order, first id repeated; None if acyclic.

    Iterative DFS (no recursion limit on long chains), visiting in declared order so the
    cycle reported is stable.
    """
    steps = wf._steps
    # edges point from a dependency to its dependent: data flows that way
    children: dict[str, list[str]] = {sid: [] for sid in steps}
    for sid, step in steps.items():
        for dep in step.depends_on:
            if dep in children:
                children[dep].append(sid)
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(steps, WHITE)
    for root in steps:
        if colour[root] != WHITE:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = [root]
        colour[root] = GREY
        while stack:
            node, i = stack[-1]
            kids = children[node]
            if i < len(kids):
                stack[-1] = (node, i + 1)
                child = kids[i]
                if colour[child] == GREY:
                    start = path.index(child)
                    return [*path[start:], child]
                if colour[child] == WHITE:
                    colour[child] = GREY
                    stack.append((child, 0))
                    path.append(child)
            else:
                colour[node] = BLACK
                stack.pop()
                path.pop()
    return None


def topological_order(wf: Workflow) -> list[str]:
    """Kahn's algorithm; among ready steps the earliest declared goes first."""
    steps = wf.steps
    index = {sid: i for i, sid in enumerate(steps)}
    indegree = {sid: len(set(s.depends_on)) for sid, s in steps.items()}
    children: dict[str, list[str]] = {sid: [] for sid in steps}
    for sid, step in steps.items():
        for dep in set(step.depends_on):
            children[dep].append(sid)
    heap = [index[s] for s, d in indegree.items() if d == 0]
    heapq.heapify(heap)
    ids = list(steps)
    out: list[str] = []
    while heap:
        sid = ids[heapq.heappop(heap)]
        out.append(sid)
        for child in children[sid]:
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(heap, index[child])
    if len(out) != len(ids):
        _check_edges(wf, index)  # raises the CycleError with the named cycle
    return out

"""Invariants on random DAGs with random failures (hypothesis)."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import fluxnb
from fluxnb.testing import MemoryRecorder

TERMINAL = {"succeeded", "failed", "cancelled", "skipped"}


@st.composite
def dags(draw: Any) -> tuple[dict[str, list[str]], set[str], int]:
    n = draw(st.integers(1, 25))
    dag: dict[str, list[str]] = {}
    for i in range(n):
        parents = (
            draw(st.lists(st.integers(0, max(0, i - 1)), max_size=3, unique=True)) if i else []
        )
        dag[f"n{i}"] = [f"n{p}" for p in parents]
    failing = {f"n{i}" for i in draw(st.lists(st.integers(0, n - 1), max_size=3))}
    limit = draw(st.sampled_from([None, 1, 2, 4]))
    return dag, failing, limit


def build(dag: dict[str, list[str]], failing: set[str], limit: int | None) -> fluxnb.Workflow:
    wf = fluxnb.Workflow("prop", router=fluxnb.RouterSettings(worker_pool_size=limit))
    for node, parents in dag.items():

        async def step(_node: str = node, **_: Any) -> str:
            await asyncio.sleep(0)
            if _node in failing:
                raise RuntimeError(_node)
            return _node

        wf.add(node, step, depends_on=parents)
    return wf


@settings(max_examples=60, deadline=None)
@given(dags())
def test_random_dags_keep_the_invariants(case: tuple) -> None:
    dag, failing, limit = case
    wf = build(dag, failing, limit)
    traces = []
    for _ in range(2):
        rec = MemoryRecorder()
        result = wf.run(store=rec, seed=1)
        rows = rec.rows()
        traces.append(
            [
                (r["seq"], r["step"], r["attempt"], r["status"])
                for r in sorted(rows, key=lambda r: (r["seq"], r["attempt"]))
            ]
        )
        # every step ends in exactly one terminal state
        finals = [r for r in rows if r["final"]]
        assert sorted(r["step"] for r in finals) == sorted(dag)
        assert all(r["status"] in TERMINAL for r in finals)
        # no step runs before its inputs have finished
        ended = {r["step"]: r["ended_at"] for r in finals if r["status"] == "succeeded"}
        for r in rows:
            if r["started_at"] is None:
                continue
            for parent in dag[r["step"]]:
                assert parent in ended and ended[parent] <= r["started_at"]
        assert result.ok == (not failing)
        assert (result.status.value == "failed") == bool(failing)
    if not failing:  # with no failure the logical trace is identical run after run
        assert traces[0] == traces[1]

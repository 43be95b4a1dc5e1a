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


@st.composite
def flaky_dags(draw: Any) -> tuple[dict[str, list[str]], dict[str, int], int]:
    dag, _, limit = draw(dags())
    # how many times each step fails before it succeeds (>= attempts: fails for good)
    fails = {n: draw(st.integers(0, 3)) for n in dag}
    return dag, fails, limit


def build_flaky(
    dag: dict[str, list[str]], fails: dict[str, int], limit: int | None, strategy: str
) -> fluxnb.Workflow:
    wf = fluxnb.Workflow(
        "flaky",
        router=fluxnb.RouterSettings(
            worker_pool_size=limit,
            on_error=fluxnb.OnError(strategy),  # type: ignore[arg-type]
            retry=fluxnb.RetryPolicy(
                max_attempts=3, backoff="exponential_jitter", initial_delay=0.0005, max_delay=0.002
            ),
        ),
    )
    for node, parents in dag.items():

        async def step(_node: str = node, ctx: Any = None, **_: Any) -> str:
            await asyncio.sleep(0)
            if ctx.attempt <= fails[_node]:
                raise ConnectionError(f"{_node} attempt {ctx.attempt}")
            return _node

        wf.add(node, step, depends_on=parents)
    return wf


@settings(max_examples=40, deadline=None)
@given(flaky_dags(), st.sampled_from(["continue", "skip"]))
def test_failure_patterns_give_the_same_logical_trace_every_time(
    case: tuple, strategy: str
) -> None:
    dag, fails, limit = case
    wf = build_flaky(dag, fails, limit, strategy)
    logs = []
    for _ in range(3):
        rec = MemoryRecorder()
        wf.run(store=rec, seed=42)
        rows = sorted(rec.rows(), key=lambda r: (r["seq"], r["attempt"]))
        logs.append([(r["seq"], r["step"], r["attempt"], r["status"], r["delay_s"]) for r in rows])
        finals = [r for r in rows if r["final"]]
        assert sorted(r["step"] for r in finals) == sorted(dag)  # one terminal state each
        for r in finals:
            gave_up = fails[r["step"]] >= 3
            upstream_failed = r["attempt"] == 0
            if r["status"] == "succeeded":
                assert not gave_up and r["attempt"] == fails[r["step"]] + 1
            elif upstream_failed:
                assert r["status"] == "skipped" and strategy == "continue"
            else:
                assert gave_up and r["status"] == (
                    "failed" if strategy == "continue" else "skipped"
                )
    assert logs[0] == logs[1] == logs[2]  # same seed: same attempts, statuses, jittered delays


def test_a_different_seed_gives_different_jitter() -> None:
    wf = build_flaky({"a": []}, {"a": 2}, None, "continue")
    delays = []
    for seed in (1, 1, 2):
        rec = MemoryRecorder()
        wf.run(store=rec, seed=seed)
        delays.append([r["delay_s"] for r in rec.rows()])
    assert delays[0] == delays[1] != delays[2]
    assert all(0 <= d <= 0.002 for d in delays[0])

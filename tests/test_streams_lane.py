"""The per-item lane of stream nets (engine/_net_lane.py) against the general path.

Every scenario runs twice, lane on and lane off (``_net_lane.ENABLED``), and must give the
same run: results, firing order, token histories, errors per item, ``events`` rows.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import random
from array import array
from collections.abc import Callable
from typing import Any

import pytest

import fluxnb
from fluxnb import RunStatus
from fluxnb.engine import _net_lane
from fluxnb.engine._net_run import NetEngine, plan_net
from fluxnb.engine._net_tokens import Runs
from fluxnb.spec._stream_net import compile_streams

from .stream_steps import chain, rows

Steps = dict[str, Callable[..., Any]]


def run(
    make: Callable[[], fluxnb.Workflow], lane: bool, monkeypatch: pytest.MonkeyPatch, **kw: Any
) -> Any:
    monkeypatch.setattr(_net_lane, "ENABLED", lane)
    return fluxnb.run(make(), **kw)


def engine_for(wf: fluxnb.Workflow) -> NetEngine:
    fns = {sid: step.fn for sid, step in wf.steps.items()}
    return NetEngine(plan_net(compile_streams(wf, fns), None), run_id="lane-test")


def same_both_ways(
    make: Callable[[], fluxnb.Workflow], monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, list[tuple[Any, ...]]]:
    """Run ``make()`` with the lane and without, with a store; assert they agree."""
    out = []
    for lane in (True, False):
        store = fluxnb.Store(":memory:")
        r = run(make, lane, monkeypatch, store=store)
        out.append((r, rows(store, r.run_id)))
    monkeypatch.setattr(_net_lane, "ENABLED", True)
    (on, on_rows), (off, off_rows) = out
    assert on.status == off.status
    assert on.reason == off.reason
    assert on.outputs == off.outputs
    assert on.sequence == off.sequence  # the firing order, completion by completion
    assert on_rows == off_rows
    return on, on_rows


# ---------------------------------------------------------------- the common shape
async def ident(src):  # type: ignore[no-untyped-def]
    return src


async def scaled(a, k):  # type: ignore[no-untyped-def]
    return a * k


async def plus_one(double):  # type: ignore[no-untyped-def]
    return double + 1


double = functools.partial(scaled, k=2)  # not a plain function: called with a dict


def test_a_chain_of_async_steps_takes_the_lane_and_matches_the_general_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def make() -> fluxnb.Workflow:
        return chain(
            300,
            ("a", ident, {"capacity": 8}),
            ("double", double, {"capacity": 5}),
            ("c", plus_one, {}),
        )

    r, events = same_both_ways(make, monkeypatch)
    assert r.ok and r["c"] == [2 * i + 1 for i in range(300)]
    assert len(events) == 1 + 3 * 300  # the producer's row, one per firing
    engine = engine_for(make())
    asyncio.run(engine.advance())
    assert engine._lane is not None and engine._lane.fired == 3 * 300


def test_store_on_and_off_give_the_same_result_on_the_lane() -> None:
    wf = chain(50, ("a", ident, {}), ("b", double, {"keep": "last"}))
    off = fluxnb.run(wf, store=None)
    on = fluxnb.run(wf, store=fluxnb.Store(":memory:"))
    assert off.outputs == on.outputs and off.sequence == on.sequence
    assert on["b"] == 98


def test_token_histories_and_ids_are_the_general_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Items a zip of two streams never took stay in their place, with their history."""

    def make() -> fluxnb.Workflow:
        wf = fluxnb.Workflow("zip")

        async def long():  # type: ignore[no-untyped-def]
            for i in range(6):
                yield i

        async def short():  # type: ignore[no-untyped-def]
            for i in range(2):
                yield i

        async def a(long):  # type: ignore[no-untyped-def]
            return long * 10

        async def z(a, short):  # type: ignore[no-untyped-def]
            return (a, short)

        wf.add("long", long)
        wf.add("short", short)
        wf.add("a", a)
        wf.add("z", z)
        return wf

    seen = []
    for lane in (True, False):
        with pytest.warns(RuntimeWarning, match="never taken"):
            r = run(make, lane, monkeypatch, store=None)
        left = r.tokens["a->z"]
        seen.append(
            [(t.id, t.data, [(m.transition, m.firing, m.place) for m in t.history]) for t in left]
        )
        assert r["z"] == [(0, 0), (10, 1)]
    assert seen[0] == seen[1] and len(seen[0]) == 4
    assert [m[0] for m in seen[0][0][2]] == ["long", "a"]


def test_a_diamond_of_lane_steps_joins_each_item_with_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """src -> a, src -> b, c(a, b): the branches' tokens carry their item's key on the
    lane, so c meets each item with itself, however the branches were fired."""

    async def a(src):  # type: ignore[no-untyped-def]
        if src == 4:
            raise ValueError("a drops item 4")
        return src * 10

    async def b(src):  # type: ignore[no-untyped-def]
        return src + 0.5

    async def c(a, b):  # type: ignore[no-untyped-def]
        return (a, b)

    def make() -> fluxnb.Workflow:
        wf = chain(40, ("a", a, {"on_error": "skip", "capacity": 3}))
        wf.add("b", b, depends_on=["src"], capacity=5)
        wf.add("c", c, depends_on=["a", "b"])
        return wf

    with pytest.warns(RuntimeWarning, match="never taken"):  # b's half of item 4
        r, _ = same_both_ways(make, monkeypatch)
    assert sorted(r["c"]) == [(i * 10, i + 0.5) for i in range(40) if i != 4]
    engine = engine_for(make())
    with pytest.warns(RuntimeWarning, match="never taken"):
        asyncio.run(engine.advance())
        engine.conclude()
    assert engine._lane is not None and engine._lane.fired >= 2 * 39
    assert engine.streams is not None and engine.streams.key == {
        engine.places[p][0].id: engine.streams.key[engine.places[p][0].id]
        for p in range(len(engine.places))
        if engine.places[p]
    }  # only the item left over keeps its key


# ---------------------------------------------------------------- where it leaves the lane
def test_a_step_that_suspends_on_some_items_goes_on_in_a_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def sometimes(src):  # type: ignore[no-untyped-def]
        if src % 7 == 3:
            await asyncio.sleep(0)
        return src * 3

    def make() -> fluxnb.Workflow:
        return chain(60, ("a", sometimes, {"capacity": 4}), ("b", ident_a, {}))

    r, _ = same_both_ways(make, monkeypatch)
    # a's calls that went on in tasks end in their own order (the same on both paths)
    assert r.ok and sorted(r["b"]) == [i * 3 for i in range(60)]
    engine = engine_for(make())
    asyncio.run(engine.advance())
    lane = engine._lane
    assert lane is not None
    assert 0 < lane.fired < 2 * 60  # items 0..3 of a inline, then a's calls are tasks
    assert engine.streams is not None and engine.streams.result("b") == r["b"]


async def ident_a(a):  # type: ignore[no-untyped-def]
    return a


def test_a_step_that_suspends_keeps_its_context_and_current_task() -> None:
    var: contextvars.ContextVar[int] = contextvars.ContextVar("lane_var", default=-1)
    seen: list[tuple[int, int, bool]] = []

    async def a(src):  # type: ignore[no-untyped-def]
        before = var.get()  # every call starts from the run's context: never a past item's
        var.set(src)
        first = asyncio.current_task()
        if src == 5:
            await asyncio.sleep(0)  # goes on in a task, in the same context
        seen.append((before, var.get(), first is not None))
        return src

    r = fluxnb.run(chain(10, ("a", a, {})), store=None)
    assert r.ok and r["a"] == list(range(10))
    assert seen == [(-1, i, True) for i in range(10)]


def test_asyncio_timeout_in_a_lane_step_times_out_that_step_not_the_run() -> None:
    async def a(src):  # type: ignore[no-untyped-def]
        async with asyncio.timeout(0.01 if src == 2 else 5):
            if src == 2:
                await asyncio.sleep(1)
            return src

    wf = chain(4, ("a", a, {"on_error": "skip"}))
    r = fluxnb.run(wf, store=None)
    assert r.ok and r["a"] == [0, 1, 3]


@pytest.mark.parametrize("strategy", ["skip", "continue", "stop"])
def test_an_item_that_raises_follows_the_steps_error_strategy(
    monkeypatch: pytest.MonkeyPatch, strategy: str
) -> None:
    async def picky(src):  # type: ignore[no-untyped-def]
        if src in (3, 7):
            raise ValueError(f"bad item {src}")
        return src

    def make() -> fluxnb.Workflow:
        return chain(10, ("a", picky, {"on_error": strategy, "capacity": 4}), ("b", ident_a, {}))

    r, events = same_both_ways(make, monkeypatch)
    failed = [e for e in events if e[1] == "a" and e[3] != "succeeded"]
    if strategy == "stop":
        assert r.status is RunStatus.FAILED and "bad item 3" in (r.reason or "")
        assert [e[3] for e in failed] == ["failed"]
    else:
        assert r["b"] == [i for i in range(10) if i not in (3, 7)]
        assert [e[3] for e in failed] == ["skipped" if strategy == "skip" else "failed"] * 2
        assert r.ok is (strategy == "skip")
        assert [e[6] for e in failed] == ["bad item 3", "bad item 7"]


def test_retries_are_per_item_on_the_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: dict[int, int] = {}

    async def flaky(src):  # type: ignore[no-untyped-def]
        calls[src] = calls.get(src, 0) + 1
        if src == 4 and calls[src] < 3:
            raise ConnectionError("again")
        return src

    def make() -> fluxnb.Workflow:
        calls.clear()
        return chain(8, ("a", flaky, {"retry": fluxnb.RetryPolicy(max_attempts=3)}))

    r, events = same_both_ways(make, monkeypatch)
    assert r.ok and r["a"] == list(range(8))
    assert calls[4] == 3 and all(calls[i] == 1 for i in range(8) if i != 4)
    assert [(e[2], e[3]) for e in events if e[1] == "a" and e[0] == events[5][0]] == [
        (1, "failed"),
        (2, "failed"),
        (3, "succeeded"),
    ]


# ---------------------------------------------------------------- backpressure
def test_backpressure_is_observed_on_the_lane() -> None:
    """An inline consumer drains in batches: the producer still pauses on the full place
    and is woken when the lane takes an item; no place ever holds more than capacity."""
    wf = chain(2_000, ("a", ident, {"capacity": 16}), ("b", ident_a, {"capacity": 4}))
    engine = engine_for(wf)
    asyncio.run(engine.advance())
    st, lane = engine.streams, engine._lane
    assert st is not None and lane is not None
    assert lane.fired == 2 * 2_000
    assert st.pauses[0] > 0  # the producer waited for room
    peaks = {engine.net.places[p]: n for p, n in st.peak.items()}
    assert peaks["src->a"] == 16  # the generator's place filled up to its capacity, no more
    assert st.result("b") == list(range(2_000))
    assert sum(len(q) for q in engine.places) == 0


def test_a_step_that_takes_no_argument_runs_once_per_item(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def tick():  # type: ignore[no-untyped-def]
        return "tick"

    r, _ = same_both_ways(lambda: chain(5, ("a", ident, {}), ("t", tick, {})), monkeypatch)
    assert r["t"] == ["tick"] * 5


# ---------------------------------------------------------------- memory
def test_the_firing_sequence_of_a_stream_is_kept_in_runs_and_stays_small() -> None:
    """20,000 items through two steps: 40,001 firings, kept as a few hundred runs."""
    wf = chain(20_000, ("a", ident, {"keep": "last"}), ("b", ident_a, {"keep": "last"}))
    engine = engine_for(wf)
    asyncio.run(engine.advance())
    sequence = engine.sequence
    assert isinstance(sequence, Runs)
    assert len(sequence) == 40_001 == sum(sequence.counts)
    assert len(sequence.tis) < 40_001 // 50
    assert engine.outputs["b"] == 19_999


def test_runs_read_like_the_array_of_transition_indices() -> None:
    rng = random.Random(7)
    for _ in range(20):
        flat: array[int] = array("i")
        runs = Runs()
        for _ in range(rng.randrange(60)):
            ti, n = rng.randrange(3), rng.randrange(1, 4)
            flat.extend([ti] * n)
            if n == 1:
                runs.append(ti)
            else:
                runs.add(ti, n)
        assert list(runs) == list(flat) and len(runs) == len(flat)
        assert [runs[i] for i in range(-len(flat), len(flat))] == list(flat) * 2
        assert runs[1:5] == list(flat[1:5])
        with pytest.raises(IndexError):
            runs[len(flat)]

"""Attacks on the per-item lane of stream nets (engine/_net_lane.py, issue #15).

Each scenario runs lane on and lane off (``_net_lane.ENABLED``) where it can, and must give
the same run as the general path: results, firing order, errors per item, ``events`` rows.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import weakref
from collections.abc import Callable
from typing import Any

import pytest

import fluxnb
from fluxnb.engine import _net_lane

from .stream_steps import chain, rows


def both_ways(
    make: Callable[[], fluxnb.Workflow],
    monkeypatch: pytest.MonkeyPatch,
    compare: tuple[str, ...] | None = None,
) -> tuple[Any, list[tuple[Any, ...]]]:
    """Run ``make()`` with the lane and without (store on); assert they agree (on the
    outputs of the steps in ``compare`` only, when given)."""
    out = []
    for lane in (True, False):
        monkeypatch.setattr(_net_lane, "ENABLED", lane)
        store = fluxnb.Store(":memory:")
        r = fluxnb.run(make(), store=store)
        out.append((r, rows(store, r.run_id)))
    monkeypatch.setattr(_net_lane, "ENABLED", True)
    (on, on_rows), (off, off_rows) = out
    assert (on.status, on.reason) == (off.status, off.reason)
    if compare is None:
        assert on.outputs == off.outputs
    else:
        assert [on[s] for s in compare] == [off[s] for s in compare]
    assert on.sequence == off.sequence
    assert on_rows == off_rows
    return on, on_rows


async def ident_a(a):  # type: ignore[no-untyped-def]
    return a


# ---------------------------------------------------------------- exceptions of every kind
@pytest.mark.parametrize(
    "exc",
    [StopIteration, StopAsyncIteration, GeneratorExit, asyncio.CancelledError, RuntimeError],
)
def test_a_step_raising_odd_exceptions_fails_its_item_as_the_general_path(
    monkeypatch: pytest.MonkeyPatch, exc: type[BaseException]
) -> None:
    async def odd(src):  # type: ignore[no-untyped-def]
        if src == 3:
            raise exc("odd")
        return src

    def make() -> fluxnb.Workflow:
        return chain(6, ("a", odd, {"on_error": "continue"}), ("b", ident_a, {}))

    r, events = both_ways(make, monkeypatch)
    assert r["b"] == [0, 1, 2, 4, 5]
    assert [e[3] for e in events if e[1] == "a"].count("failed") == 1


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
def test_keyboard_interrupt_and_system_exit_escape_the_run_both_ways(
    monkeypatch: pytest.MonkeyPatch, exc: type[BaseException]
) -> None:
    async def fatal(src):  # type: ignore[no-untyped-def]
        if src == 2:
            raise exc()
        return src

    for lane in (True, False):
        monkeypatch.setattr(_net_lane, "ENABLED", lane)
        with pytest.raises(exc):
            fluxnb.run(chain(5, ("a", fatal, {})), store=None)


def test_a_step_that_suspends_on_one_item_then_raises_on_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def a(src):  # type: ignore[no-untyped-def]
        if src == 2:
            await asyncio.sleep(0)
        if src == 3:
            raise ValueError("after the suspension")
        return src

    def make() -> fluxnb.Workflow:
        return chain(6, ("a", a, {"on_error": "skip"}), ("b", ident_a, {}))

    r, _ = both_ways(make, monkeypatch)
    assert sorted(r["b"]) == [0, 1, 2, 4, 5]


# ---------------------------------------------------------------- odd callables
@dataclasses.dataclass
class Scaler:  # eq=True: instances are unhashable
    k: int

    async def __call__(self, src):  # type: ignore[no-untyped-def]
        return src * self.k

    async def scale(self, src):  # type: ignore[no-untyped-def]
        return src * self.k


@dataclasses.dataclass
class Traced:  # a decorator as a class, unhashable (eq=True), ``__wrapped__`` set
    fn: Any

    @property
    def __wrapped__(self) -> Any:
        return self.fn

    async def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return await self.fn(*args, **kwargs)


class Adder:
    def __init__(self, k: int) -> None:
        self.k = k

    async def add(self, src):  # type: ignore[no-untyped-def]
        return src + self.k


def logged(fn: Any) -> Any:
    """A decorator of async steps (``__wrapped__`` set, other parameter names)."""

    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        return await fn(*args, **kwargs)

    return wrapper


async def tripled(src):  # type: ignore[no-untyped-def]
    return src * 3


@pytest.mark.parametrize(
    "make_fn",
    [
        lambda: Scaler(3),
        lambda: Traced(tripled),
        lambda: Scaler(2).scale,
        lambda: Adder(5).add,
        lambda: functools.partial(functools.partial(tripled)),
        lambda: logged(tripled),
    ],
    ids=[
        "unhashable-instance",
        "unhashable-decorator",
        "method-of-unhashable",
        "bound-method",
        "partial",
        "decorated",
    ],
)
def test_odd_callables_give_the_same_run_both_ways(
    monkeypatch: pytest.MonkeyPatch, make_fn: Callable[[], Any]
) -> None:
    async def src():  # type: ignore[no-untyped-def]
        for i in [1, 2, 1, 3, 2]:
            yield i

    def make() -> fluxnb.Workflow:
        wf = fluxnb.Workflow("odd")
        wf.add("src", src)
        wf.add("a", make_fn(), depends_on=["src"])
        wf.add("b", ident_a, depends_on=["a"])
        return wf

    r, _ = both_ways(make, monkeypatch)
    assert r.ok, r.reason
    assert len(r["b"]) == 5


def test_a_step_that_returns_a_coroutine_unawaited_passes_it_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def inner(x):  # type: ignore[no-untyped-def]
        return x

    async def lazy(src):  # type: ignore[no-untyped-def]
        return inner(src)

    async def wait(a):  # type: ignore[no-untyped-def]
        return await a

    def make() -> fluxnb.Workflow:
        return chain(5, ("a", lazy, {}), ("b", wait, {}))

    r, _ = both_ways(make, monkeypatch, compare=("b",))
    assert r["b"] == list(range(5))


# ---------------------------------------------------------------- context and current task
def test_each_item_has_its_own_current_task_as_on_the_general_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counts = []
    tasks: list[Any] = []

    async def who(src):  # type: ignore[no-untyped-def]
        tasks.append(asyncio.current_task())
        return src

    for lane in (True, False):
        monkeypatch.setattr(_net_lane, "ENABLED", lane)
        tasks.clear()
        r = fluxnb.run(chain(20, ("a", who, {})), store=None)
        assert r.ok
        counts.append(len({id(t) for t in tasks}))
    assert counts[0] == counts[1] == 20


def test_task_local_state_of_one_item_never_reaches_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """State kept per task (weakly, as libraries do) is the item's own, as in a task."""
    state: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
    seen: list[int | None] = []

    async def a(src):  # type: ignore[no-untyped-def]
        t = asyncio.current_task()
        seen.append(state.get(t))
        state[t] = src
        return src

    for lane in (True, False):
        monkeypatch.setattr(_net_lane, "ENABLED", lane)
        seen.clear()
        r = fluxnb.run(chain(10, ("a", a, {}), ("b", ident_a, {})), store=None)
        assert r.ok and seen == [None] * 10, f"lane {lane}"


def test_cancelling_the_current_task_inside_a_step_does_not_cancel_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def rude(src):  # type: ignore[no-untyped-def]
        t = asyncio.current_task()
        assert t is not None
        t.cancel()
        if src % 3 == 0:
            await asyncio.sleep(0)
        return src

    def make() -> fluxnb.Workflow:
        return chain(9, ("a", rude, {"on_error": "continue"}), ("b", ident_a, {}))

    both_ways(make, monkeypatch)


def test_context_variables_set_by_one_item_never_reach_the_next() -> None:
    var: contextvars.ContextVar[int] = contextvars.ContextVar("attack_var", default=-1)
    seen: list[int] = []

    async def a(src):  # type: ignore[no-untyped-def]
        seen.append(var.get())
        var.set(src)
        if src == 4:
            await asyncio.sleep(0)
            var.set(100)
        return src

    async def b(a):  # type: ignore[no-untyped-def]
        seen.append(var.get())
        var.set(a)
        return a

    r = fluxnb.run(chain(8, ("a", a, {}), ("b", b, {})), store=None)
    assert r.ok and seen == [-1] * 16


# ---------------------------------------------------------------- capacities and producers
@pytest.mark.parametrize("cap", [1, 10**9])
def test_capacity_one_and_huge_give_the_same_run(monkeypatch: pytest.MonkeyPatch, cap: int) -> None:
    def make() -> fluxnb.Workflow:
        return chain(200, ("a", ident_a_src, {"capacity": cap}), ("b", ident_a, {"capacity": cap}))

    r, _ = both_ways(make, monkeypatch)
    assert r["b"] == list(range(200))


async def ident_a_src(src):  # type: ignore[no-untyped-def]
    return src


def test_a_producer_that_raises_while_the_lane_holds_items(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def src():  # type: ignore[no-untyped-def]
        for i in range(30):
            yield i
        raise ValueError("the source broke")

    def make() -> fluxnb.Workflow:
        wf = fluxnb.Workflow("broken")
        wf.add("src", src)
        wf.add("a", ident_a_src, depends_on=["src"], capacity=4)
        wf.add("b", ident_a, depends_on=["a"], capacity=2)
        return wf

    r, _ = both_ways(make, monkeypatch)
    assert not r.ok and "the source broke" in (r.reason or "")


def test_a_generator_of_nones_passes_none_items(monkeypatch: pytest.MonkeyPatch) -> None:
    async def src():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield None

    def make() -> fluxnb.Workflow:
        wf = fluxnb.Workflow("nones")
        wf.add("src", src)
        wf.add("a", ident_a_src, depends_on=["src"])
        wf.add("b", ident_a, depends_on=["a"])
        return wf

    r, _ = both_ways(make, monkeypatch)
    assert r["b"] == [None] * 10


# ---------------------------------------------------------------- retries and cancellation
def test_retries_with_backoff_on_the_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff timers race the producer, so the order may vary: the items and the attempts
    per item may not."""
    calls: dict[int, int] = {}

    async def flaky(src):  # type: ignore[no-untyped-def]
        calls[src] = calls.get(src, 0) + 1
        if src % 5 == 1 and calls[src] < 3:
            raise ConnectionError("again")
        return src

    seen = []
    for lane in (True, False):
        monkeypatch.setattr(_net_lane, "ENABLED", lane)
        calls.clear()
        policy = fluxnb.RetryPolicy(max_attempts=3, initial_delay=0.002)
        wf = chain(20, ("a", flaky, {"retry": policy, "capacity": 3}), ("b", ident_a, {}))
        store = fluxnb.Store(":memory:")
        r = fluxnb.run(wf, store=store)
        assert r.ok and sorted(r["b"]) == list(range(20))
        seen.append((sorted((e[1], e[2], e[3], e[6]) for e in rows(store, r.run_id)), dict(calls)))
    assert seen[0] == seen[1]
    assert sum(1 for e in seen[0][0] if e[2] == "failed") == 8


def test_cancelling_the_run_while_lane_calls_run_in_tasks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for lane in (True, False):
        monkeypatch.setattr(_net_lane, "ENABLED", lane)

        async def slow(src):  # type: ignore[no-untyped-def]
            if src >= 5:
                await asyncio.sleep(10)
            return src

        async def main() -> None:
            task = asyncio.ensure_future(fluxnb.arun(chain(50, ("a", slow, {})), store=None))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(asyncio.wait_for(main(), 5))


async def sleepy(src):  # type: ignore[no-untyped-def]
    if src % 3 == 1:
        await asyncio.sleep(0)
    return src * 3


@pytest.mark.parametrize("make_fn", [lambda: Traced(sleepy), lambda: Traced(tripled)])
def test_an_unhashable_step_that_suspends_runs_both_ways(
    monkeypatch: pytest.MonkeyPatch, make_fn: Callable[[], Any]
) -> None:
    def make() -> fluxnb.Workflow:
        return chain(12, ("a", make_fn(), {}), ("b", ident_a, {}))

    r, _ = both_ways(make, monkeypatch)
    assert r.ok, r.reason
    assert sorted(r["b"]) == [3 * i for i in range(12)]


def test_an_unhashable_async_step_runs_in_a_dag() -> None:
    wf = fluxnb.Workflow("dag")

    async def one():  # type: ignore[no-untyped-def]
        return 7

    wf.add("src", one)
    wf.add("a", Traced(sleepy), depends_on=["src"])  # 7 % 3 == 1: it suspends
    wf.add("b", Scaler(2), depends_on=["src"])
    r = fluxnb.run(wf, store=None)
    assert r.ok, r.reason
    assert (r["a"], r["b"]) == (21, 14)


# ---------------------------------------------------------------- runs side by side, runs again
def test_two_stream_runs_at_once_in_one_loop_keep_their_own_lanes() -> None:
    async def a(src):  # type: ignore[no-untyped-def]
        if src % 50 == 7:
            await asyncio.sleep(0)
        return src + 1

    async def main() -> list[Any]:
        runs = [
            fluxnb.arun(chain(400, ("a", a, {"capacity": 4}), ("b", ident_a, {})), store=None)
            for _ in range(3)
        ]
        return list(await asyncio.gather(*runs))

    for r in asyncio.run(main()):
        assert r.ok and sorted(r["b"]) == list(range(1, 401))


def test_the_same_workflow_runs_twice_and_its_step_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A step that suspended in one run starts inline again in the next (a new executor),
    and a step replaced between runs is the one called."""
    calls: list[str] = []

    async def first(src):  # type: ignore[no-untyped-def]
        calls.append("first")
        if src == 1:
            await asyncio.sleep(0)
        return src

    async def second(src):  # type: ignore[no-untyped-def]
        calls.append("second")
        return -src

    wf = chain(5, ("a", first, {}), ("b", ident_a, {}))
    assert fluxnb.run(wf, store=None)["b"] == list(range(5))
    assert fluxnb.run(wf, store=None)["b"] == list(range(5))
    wf.replace_step("a", fn=second)
    assert fluxnb.run(wf, store=None)["b"] == [-i for i in range(5)]
    assert calls == ["first"] * 10 + ["second"] * 5


def test_a_step_that_mutates_its_item_in_a_diamond(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both branches of a diamond get the same item object, on the lane as on the general
    path: what one branch does to it the other sees, in the same order."""

    async def src():  # type: ignore[no-untyped-def]
        for i in range(20):
            yield [i]

    async def left(src):  # type: ignore[no-untyped-def]
        src.append("left")
        return list(src)

    async def right(src):  # type: ignore[no-untyped-def]
        src.append("right")
        return list(src)

    async def join(left, right):  # type: ignore[no-untyped-def]
        return (left, right)

    def make() -> fluxnb.Workflow:
        wf = fluxnb.Workflow("diamond")
        wf.add("src", src)
        wf.add("left", left, depends_on=["src"], capacity=3)
        wf.add("right", right, depends_on=["src"], capacity=2)
        wf.add("join", join, depends_on=["left", "right"])
        return wf

    r, _ = both_ways(make, monkeypatch)
    assert r.ok and len(r["join"]) == 20


def test_on_error_continue_counts_each_failed_item(monkeypatch: pytest.MonkeyPatch) -> None:
    async def picky(src):  # type: ignore[no-untyped-def]
        if src % 4 == 0:
            raise ValueError(f"bad {src}")
        return src

    def make() -> fluxnb.Workflow:
        return chain(40, ("a", picky, {"on_error": "continue"}), ("b", ident_a, {}))

    r, events = both_ways(make, monkeypatch)
    assert not r.ok and r["b"] == [i for i in range(40) if i % 4]
    assert [e[6] for e in events if e[3] == "failed"] == [f"bad {i}" for i in range(0, 40, 4)]


def test_cancelling_a_run_leaves_no_task_or_coroutine_behind(
    recwarn: pytest.WarningsRecorder,
) -> None:
    async def slow(src):  # type: ignore[no-untyped-def]
        if src % 10 == 9:
            await asyncio.sleep(10)
        return src

    async def main() -> None:
        wf = chain(1000, ("a", slow, {"capacity": 16}), ("b", ident_a, {}))
        task = asyncio.ensure_future(fluxnb.arun(wf, store=None))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert left == []

    asyncio.run(main())
    import gc

    gc.collect()
    assert [str(w.message) for w in recwarn if "never awaited" in str(w.message)] == []


def test_a_lane_step_that_runs_a_stream_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """A step awaiting a nested stream run: the inner run's lane takes the current task
    from the outer call's stand-in and gives it back."""

    async def inner(src):  # type: ignore[no-untyped-def]
        r = await fluxnb.arun(chain(src % 4, ("x", ident_a_src, {})), store=None)
        assert r.ok
        return len(r["x"]) if src % 4 else 0

    def make() -> fluxnb.Workflow:
        return chain(12, ("a", inner, {}), ("b", ident_a, {}))

    r, _ = both_ways(make, monkeypatch)
    assert sorted(r["b"]) == sorted(i % 4 for i in range(12))


def test_deep_awaits_without_suspending_stay_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    async def down(k: int) -> int:
        return 0 if k == 0 else 1 + await down(k - 1)

    async def deep(src):  # type: ignore[no-untyped-def]
        return src + await down(200)

    def make() -> fluxnb.Workflow:
        return chain(20, ("a", deep, {}), ("b", ident_a, {}))

    r, _ = both_ways(make, monkeypatch)
    assert r["b"] == [i + 200 for i in range(20)]


def test_a_sync_consumer_behind_a_full_lane_place(monkeypatch: pytest.MonkeyPatch) -> None:
    def slow_sync(a):  # type: ignore[no-untyped-def]
        return a * 2

    def make() -> fluxnb.Workflow:
        return chain(60, ("a", ident_a_src, {"capacity": 2}), ("b", slow_sync, {"capacity": 1}))

    monkeypatch.setattr(_net_lane, "ENABLED", True)
    r = fluxnb.run(make(), store=None)
    assert r.ok and r["b"] == [2 * i for i in range(60)]

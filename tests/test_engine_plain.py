"""Plain steps (issue 22): a step on the local executor with no breaker, timeout or ``ctx``,
in a run with no cache, is started by the scheduler's pump and its task's end taken by the
scheduler itself. Everything observable is what the general path (``_start`` and the
runner) gives: ``PLAIN = False`` turns the plain path off, and each test compares both."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import fluxnb
from fluxnb.engine._scheduler import Scheduler
from fluxnb.spec import RetryPolicy
from fluxnb.testing import MemoryRecorder

from .engine_helpers import COMBOS, Progress, engine, quick, sleepy


@pytest.fixture(params=[True, False], ids=["plain", "general"])
def plain(request: pytest.FixtureRequest) -> Iterator[bool]:
    with engine(request.param):
        yield request.param


def layered(fn: Any = sleepy, **add: Any) -> fluxnb.Workflow:
    wf = fluxnb.Workflow()
    wf.add("a", fn)
    for i in range(4):
        wf.add(f"b{i}", fn, depends_on=["a"], **add)
    wf.add("c", fn, depends_on=[f"b{i}" for i in range(4)])
    return wf


def rows(rec: MemoryRecorder) -> list[tuple[Any, ...]]:
    """The events rows without the run id and the times (seq, step, attempt, status,
    final, ..., executor, output)."""
    return sorted((r[1], r[2], r[3], r[4], r[5], r[10], r[11], r[13], r[15]) for r in rec.events)


def plain_flags(wf: fluxnb.Workflow) -> list[bool]:
    """Which steps of ``wf`` the scheduler takes for plain, read from a run's scheduler."""
    seen: list[bool] = []
    real = Scheduler._plain_steps

    def spy(self: Scheduler) -> Any:
        flags = real(self)
        seen.extend([False] * len(self._ids) if flags is None else flags)
        return flags

    Scheduler._plain_steps = spy  # type: ignore[method-assign]
    try:
        assert fluxnb.run(wf, store=None).ok
    finally:
        Scheduler._plain_steps = real  # type: ignore[method-assign]
    return seen


def test_which_steps_are_plain() -> None:
    async def takes_ctx(ctx: Any = None, **_: Any) -> int:
        await asyncio.sleep(0)
        return 1

    wf = fluxnb.Workflow()
    wf.add("p", sleepy)
    wf.add("sync", lambda **_: 1, depends_on=["p"])
    wf.add("timed", sleepy, depends_on=["p"], timeout=5)
    wf.add("ctx", takes_ctx, depends_on=["p"])
    wf.add("guarded", sleepy, depends_on=["p"], circuit_breaker={"failure_threshold": 3})
    assert plain_flags(wf) == [True, True, False, False, False]
    assert plain_flags(layered()) == [True] * 6  # every step: decided without a loop


def test_live_progress_sees_every_attempt_on_both_paths(plain: bool) -> None:
    calls = {"n": 0}

    async def flaky(**kwargs: Any) -> int:
        calls["n"] += 1
        await asyncio.sleep(0)
        if calls["n"] == 1:
            raise ConnectionError("once")
        return 1

    wf = layered()
    wf.add("f", flaky, depends_on=["c"], retry=RetryPolicy(max_attempts=2, initial_delay=0.001))
    rec = Progress()
    result = fluxnb.run(wf, store=rec)
    assert result.ok and result["c"] == 9
    assert sorted(rec.started) == sorted(
        [("a", 1), ("b0", 1), ("b1", 1), ("b2", 1), ("b3", 1), ("c", 1), ("f", 1), ("f", 2)]
    )


@pytest.mark.parametrize("fn", [sleepy, quick], ids=["suspends", "at_once"])
def test_events_rows_and_results_are_the_general_paths(fn: Any) -> None:
    out = {}
    for flag in (True, False):
        with engine(flag):
            rec = MemoryRecorder()
            result = fluxnb.run(layered(fn), store=rec)
        steps = {
            sid: (s.status, s.attempts, s.started_us is not None, s.ended_us is not None)
            for sid, s in result.steps.items()
        }
        out[flag] = (result.status, result.outputs, steps, rows(rec))
    assert out[True] == out[False]
    assert out[True][1]["c"] == 9
    assert all(r[3] == "succeeded" and r[7] == "local" for r in out[True][3])


def test_a_failing_plain_step_goes_the_runners_way(plain: bool) -> None:
    async def boom_late(**_: Any) -> int:
        await asyncio.sleep(0)
        raise ValueError("late")

    async def boom_early(**_: Any) -> int:
        raise ValueError("early")

    for fn in (boom_late, boom_early):
        wf = fluxnb.Workflow()
        wf.add("a", sleepy)
        wf.add("x", fn, depends_on=["a"], on_error="skip", default=41)
        wf.add("y", sleepy, depends_on=["x"])
        rec = MemoryRecorder()
        result = fluxnb.run(wf, store=rec)
        assert result.ok and result["y"] == 42, fn.__name__
        statuses = {r[2]: r[4] for r in rec.events}
        assert statuses == {"a": "succeeded", "x": "skipped", "y": "succeeded"}


def test_a_plain_steps_attempt_leaves_no_cycle(plain: bool) -> None:
    """A plain step's attempt is its own report box: nothing of it may be left in a
    reference cycle, whether the step returned, failed or was retried."""
    calls = {"n": 0}

    async def sometimes(**_: Any) -> int:
        calls["n"] += 1
        await asyncio.sleep(0)
        if calls["n"] % 3 == 0:
            raise ConnectionError("every third")
        return 1

    wf = fluxnb.Workflow()
    wf.add("root", sleepy)
    for i in range(150):
        wf.add(
            f"s{i}",
            sometimes,
            depends_on=["root"],
            retry=RetryPolicy(max_attempts=3, initial_delay=0.0),
        )
    fluxnb.run(wf, store=None)  # warm: the plan, imports
    gc.collect()
    gc.disable()
    try:
        assert fluxnb.run(wf, store=None).ok
        found = gc.collect()
    finally:
        gc.enable()
    assert found < 60, f"{found} objects of cyclic garbage after 151 steps"


def test_cancelling_a_run_of_plain_steps_records_them_cancelled(plain: bool) -> None:
    started = asyncio.Event()

    async def forever(**_: Any) -> int:
        started.set()
        await asyncio.sleep(3600)
        return 1

    async def go() -> Any:
        wf = fluxnb.Workflow()
        wf.add("a", sleepy)
        for i in range(3):
            wf.add(f"f{i}", forever, depends_on=["a"])
        rec = MemoryRecorder()
        task = asyncio.ensure_future(wf.arun(store=rec))
        await asyncio.wait_for(started.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        return rec

    rec = asyncio.run(go())
    final = {r[2]: r[4] for r in rec.events if r[5]}
    assert final == {"a": "succeeded", "f0": "cancelled", "f1": "cancelled", "f2": "cancelled"}


@pytest.mark.parametrize("keep", [False, True], ids=["plain firings", "kept firings"])
@pytest.mark.parametrize("suspend", [False, True], ids=["ends inline", "suspends"])
def test_a_net_whose_recorder_refuses_a_firings_row_stops_with_its_tokens_whole(
    keep: bool, suspend: bool
) -> None:
    """The net's side of ``lost``: the run stops failed, saying why, and no token is made
    twice (a firing whose row was refused neither keeps its outputs and gets its inputs
    back, nor loses both)."""
    from fluxnb.engine._net_run import NetEngine, plan_net
    from fluxnb.spec import Arc, Net, Transition

    async def act(**_: Any) -> int:
        if suspend:
            await asyncio.sleep(0)
        return 1

    class Refuses(MemoryRecorder):
        def event(self, row: Any) -> None:
            if row[2] == "t2" and row[4] == "succeeded":
                raise UnicodeEncodeError("utf-8", "x", 0, 1, "refused")
            super().event(row)

    net = Net(
        "cyc",
        ("a", "b"),
        (2, 0),
        (
            Transition("t1", (Arc(0),), (Arc(1),), run="act"),
            Transition("t2", (Arc(1),), (Arc(0),), run="act"),
        ),
    )
    engine = NetEngine(
        plan_net(net, {"act": act}), run_id="r", recorder=Refuses(), max_firings=50,
        keep_firings=keep,
    )  # fmt: skip

    async def go() -> None:
        await asyncio.wait_for(engine.advance(), 10)
        await engine.aclose()

    asyncio.run(go())
    assert engine.ending == "failed"
    assert "could not record how transition 't2' ended" in (engine.reason or "")
    assert sum(engine.marking.values()) == 2, engine.marking


@pytest.mark.parametrize("lane", [True, False], ids=["lane", "general"])
def test_stream_items_give_their_stand_in_done_callbacks_and_cancels(
    lane: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A per-item step's first segment sees a stand-in as its task, shared by the lane's
    calls: a done-callback one item adds runs for that item only, once, and a cancel
    one item asks for reaches that item alone (at its await) — on the lane as on the
    general path."""
    from fluxnb.engine import _net_lane

    from .stream_steps import chain

    monkeypatch.setattr(_net_lane, "ENABLED", lane)
    ended: list[int] = []

    async def step(src):  # type: ignore[no-untyped-def]
        task = asyncio.current_task()
        assert task is not None
        if src % 4 == 1:
            task.add_done_callback(lambda t, src=src: ended.append(src))
        if src % 4 == 2:
            task.cancel()
            await asyncio.sleep(0)  # cancelled here
        return src

    async def after(a):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0)
        return a

    async def go() -> Any:
        result = await chain(12, ("a", step, {"on_error": "continue"}), ("b", after, {})).arun(
            store=None
        )
        await asyncio.sleep(0)  # the callbacks of items that ended inline run soon after
        return result

    result = asyncio.run(go())
    assert sorted(ended) == [1, 5, 9]
    assert sorted(result["b"]) == [0, 1, 3, 4, 5, 7, 8, 9, 11]


def test_a_first_calls_task_shows_the_steps_own_coroutine() -> None:
    """The task going on with a step's first inline segment wraps its coroutine (so a
    cancel before its first turn reaches the step): debuggers, ``Task.print_stack()`` and
    the task's repr still see the step's own frame and name."""
    import io

    seen: dict[str, Any] = {}

    async def my_step(**_: Any) -> int:
        await asyncio.sleep(0)
        task = asyncio.current_task()
        assert task is not None
        stack = io.StringIO()
        task.print_stack(file=stack)
        seen.update(
            frame=task.get_coro().cr_frame, stack=stack.getvalue(), repr=repr(task), me=None
        )
        seen["me"] = sys._getframe()
        return 1

    wf = fluxnb.Workflow()
    wf.add("a", my_step)
    assert fluxnb.run(wf, store=None).ok
    assert seen["frame"] is seen["me"]
    assert "my_step" in seen["stack"] and "my_step" in seen["repr"]


# ------------------------------------------------- a review's findings (each failed before)
def test_a_shared_executor_keeps_a_runs_context_after_the_other_run_ended() -> None:
    """Two runs share a LocalExecutor, the short one ends first: the long one's later
    steps still see what its own caller set (they saw the short run's values)."""
    import contextvars

    from fluxnb.engine import LocalExecutor

    who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="-")

    async def step(**_: Any) -> str:
        await asyncio.sleep(0.001)
        return who.get()

    def chain_of(n: int, tag: str) -> fluxnb.Workflow:
        wf = fluxnb.Workflow()
        for i in range(n):
            wf.add(f"{tag}{i}", step, depends_on=[f"{tag}{i - 1}"] if i else [])
        return wf

    async def both() -> Any:
        ex = LocalExecutor()

        async def as_(tag: str, n: int) -> Any:
            who.set(tag)
            return await chain_of(n, tag).arun(store=None, executor=ex)

        return await asyncio.gather(as_("x", 12), as_("y", 2))

    for plain, hand in COMBOS:
        with engine(plain, hand):
            rx, ry = asyncio.run(both())
        assert set(rx.outputs.values()) == {"x"}, (plain, hand, rx.outputs)
        assert set(ry.outputs.values()) == {"y"}, (plain, hand, ry.outputs)


def test_a_step_handed_over_when_an_interrupt_ends_the_report_is_recorded_cancelled() -> None:
    """``a``'s end starts ``b`` (handed to a's task) and ``c``, which raises
    KeyboardInterrupt at its first line in the same report: ``b`` never ran, so it is
    ``cancelled`` as with the hand-over off (it was ``failed`` with c's interrupt)."""

    async def sleepy(**_: Any) -> int:
        await asyncio.sleep(0.001)
        return 1

    async def interrupts(**_: Any) -> int:
        raise KeyboardInterrupt("first line")

    for plain, hand in COMBOS:
        wf = fluxnb.Workflow()
        wf.add("s0", sleepy)
        wf.add("a", sleepy, depends_on=["s0"])
        wf.add("b", sleepy, depends_on=["a"])
        wf.add("c", interrupts, depends_on=["a"])
        rec = MemoryRecorder()
        with engine(plain, hand), pytest.raises(KeyboardInterrupt):
            wf.run(store=rec)
        final = {r[2]: (r[4], r[10]) for r in rec.events if r[5]}
        assert final["b"] == ("cancelled", None), (plain, hand, final)
        assert final["c"] == ("failed", "KeyboardInterrupt"), (plain, hand, final)


def test_a_done_callback_on_a_failing_steps_task_sees_its_exception() -> None:
    """As in asyncio: a callback a step adds to its task sees the step's exception, in
    a task of its own (it saw a success) as on a first call."""
    for plain, hand in COMBOS:
        seen: list[str] = []

        async def fails(seen: list[str] = seen, **_: Any) -> int:
            await asyncio.sleep(0)
            task = asyncio.current_task()
            assert task is not None
            task.add_done_callback(lambda t: seen.append(repr(t.exception())))
            raise ValueError("boom")

        wf = fluxnb.Workflow()
        wf.add("warm", fails, on_error="continue")  # the first call: inline, then a task
        wf.add("again", fails, on_error="continue")  # known to suspend: a task of its own

        async def go(wf: fluxnb.Workflow = wf) -> Any:
            result = await wf.arun(store=None)
            await asyncio.sleep(0)
            return result

        with engine(plain, hand):
            asyncio.run(go())
        assert seen == ["ValueError('boom')"] * 2, (plain, hand, seen)


def test_ctrl_c_before_a_blocking_runs_coroutine_started_does_not_hang(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C in a notebook cell right after fluxnb.run() handed its run to fluxnb's loop
    thread, before that run's coroutine ever started: the caller gets KeyboardInterrupt
    and does not wait for ever (asyncio runs the task's first step before the cancel; the
    caller's wait is bounded besides)."""
    import threading

    from fluxnb.engine import _loop

    monkeypatch.setattr(_loop, "_CANCEL_WAIT", 0.5)
    lt = _loop._LoopThread.get()
    gate = threading.Event()
    lt.loop.call_soon_threadsafe(gate.wait, 5)  # the loop thread is busy for a moment
    real = asyncio.run_coroutine_threadsafe

    def interrupted_at_once(coro: Any, loop: Any) -> Any:
        fut = real(coro, loop)

        def result(*_: Any, **__: Any) -> Any:
            raise KeyboardInterrupt

        fut.result = result  # type: ignore[method-assign]
        return fut

    monkeypatch.setattr(_loop.asyncio, "run_coroutine_threadsafe", interrupted_at_once)
    raised: list[BaseException] = []

    async def never() -> None:
        await asyncio.sleep(3600)

    def caller() -> None:
        try:
            _loop._in_loop_thread(never)
        except BaseException as exc:
            raised.append(exc)

    t = threading.Thread(target=caller)
    t.start()
    t.join(0.2)
    gate.set()  # the loop makes the run's task only now: cancelled before it ever ran
    t.join(5)
    assert not t.is_alive(), "fluxnb.run() waited for ever after Ctrl-C"
    assert [type(e) for e in raised] == [KeyboardInterrupt]


# found by a review (session 10): the report of a step cancelled from inside ran inside
# the executor's ``except CancelledError`` block, and so did every step it started
def test_a_step_started_by_a_cancelled_steps_end_runs_outside_its_exception() -> None:
    from fluxnb.spec import Arc, Net, OnError, RouterSettings, Transition

    seen: dict[str, str] = {}

    async def quits(**_: Any) -> None:
        await asyncio.sleep(0)
        task = asyncio.current_task()
        assert task is not None
        task.cancel()  # a library cancelling "its" task
        await asyncio.sleep(0)

    async def checks(**_: Any) -> None:
        seen["exc_info"] = repr(sys.exc_info()[1])
        raise ValueError("bad input")

    wf = fluxnb.Workflow("w", router=RouterSettings(worker_pool_size=1))  # s2 waits for s1
    wf.add("s1", quits, on_error="continue")
    wf.add("s2", checks, on_error="continue")
    net = Net(
        "n",
        ("a", "b", "x", "y"),
        (1, 1, 0, 0),
        (
            Transition("t1", (Arc(0),), (Arc(2),), run="quits", on_error=OnError("continue")),
            Transition("t2", (Arc(1),), (Arc(3),), run="checks", on_error=OnError("continue")),
        ),
        router=RouterSettings(worker_pool_size=1),
    )
    for plain, hand in COMBOS:
        for what, go, second in (
            ("dag", lambda rec: wf.arun(store=rec), "s2"),
            (
                "net",
                lambda rec: fluxnb.arun(net, {"quits": quits, "checks": checks}, store=rec),
                "t2",
            ),
        ):
            seen.clear()
            rec = MemoryRecorder()
            with engine(plain, hand):
                asyncio.run(go(rec))
            tb = next(e[12] for e in rec.events if e[2] == second)
            assert seen["exc_info"] == "None", (what, plain, hand, seen)
            assert "CancelledError" not in tb, (what, plain, hand, tb)

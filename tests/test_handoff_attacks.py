"""Attacks on the task hand-over (issue #22): a step's task runs the next suspending step
its end lets start. Each scenario runs with the hand-over on and off (``HAND_OVER =
False``: the old behaviour, one task per suspending step) and compares what a user sees:
status, reason, outputs, per-step status/attempts/errors, the events rows, firing order,
exceptions. The tests under "bugs found" failed on 3d336db (fixed in 9429738) and the
last ones (at the end of the file) on 9429738 (fixed with the least-count, exact-type,
pending-cancel and ended-stand-in checks of ``_drive``)."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import gc
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import fluxnb
from fluxnb import RetryPolicy, RunStatus

from .engine_helpers import chain, counted, engine, events, sleepy, view

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("handoff_attack_var", default="unset")


def on_and_off(
    make: Callable[[], fluxnb.Workflow], tmp_path: Path | None = None, **kwargs: Any
) -> dict[bool, tuple[Any, int, list[tuple[Any, ...]]]]:
    """Run a fresh ``make()`` with the hand-over off and on: (view, tasks made, events)."""
    out: dict[bool, tuple[Any, int, list[tuple[Any, ...]]]] = {}
    for on in (False, True):
        store = None if tmp_path is None else tmp_path / f"{'on' if on else 'off'}.duckdb"
        wf = make()
        with engine(hand=on):
            result, tasks = counted(functools.partial(wf.arun, store=store, **kwargs))
        rows = [] if store is None else events(store)
        out[on] = (view(result), tasks, rows)
    return out


def same(
    runs: dict[bool, tuple[Any, int, list[tuple[Any, ...]]]], handed: bool = True
) -> tuple[Any, ...]:
    """Both runs saw the same; the hand-over really happened (fewer tasks with it on),
    unless ``handed`` is False (what the steps do may rightly keep their tasks)."""
    (v_off, t_off, e_off), (v_on, t_on, e_on) = runs[False], runs[True]
    assert v_on == v_off
    assert e_on == e_off
    if handed:
        assert t_on < t_off, f"no hand-over happened ({t_on} tasks on, {t_off} off)"
    return v_on


def cyclic_garbage(wf: fluxnb.Workflow, on: bool) -> int:
    """Objects the cyclic collector frees after a run of ``wf`` (which fails), warmed."""
    with engine(hand=on):
        assert wf.run(store=None).status is RunStatus.FAILED  # warm: the plan is cached
        gc.collect()
        gc.disable()
        try:
            assert wf.run(store=None).status is RunStatus.FAILED
            return gc.collect()
        finally:
            gc.enable()


def roles(step: Any, n: int = 3) -> fluxnb.Workflow:
    """A chain s0 -> s1 -> ... of ``step``, each called with role="0", "1", ..."""
    wf = fluxnb.Workflow()
    for i in range(n):
        wf.add(f"s{i}", step, depends_on=[f"s{i - 1}"] if i else [], with_={"role": str(i)})
    return wf


# ====================================================================== bugs found
# A step that kept its task must not get it cancelled under the next step. The hand-over
# decided "nobody kept it" by comparing sys.getrefcount(task) with the count taken when
# the task's _drive started (3d336db). A count is not an owner: the three tests below
# kept the task and the count did not show it.


def _kept_then_cancelled(keep: Callable[[], Any], first: Any = None) -> fluxnb.Workflow:
    """warm -> [first ->] keep -> cancel: ``keep`` keeps its task (``keep()``), ``cancel``
    cancels what was kept. Without a hand-over that task is done: cancel() does nothing."""
    kept: list[Any] = []

    async def step(role: str, **_: Any) -> str:
        if role == "cancel":
            task = kept[0]() if isinstance(kept[0], weakref.ref) else kept[0]
            if task is not None:
                task.cancel()
        await asyncio.sleep(0)
        if role == "keep":
            kept.append(keep())
        await asyncio.sleep(0.005)
        return role

    wf = fluxnb.Workflow()
    wf.add("warm", step, with_={"role": "warm"})  # ``step`` is now known to suspend
    prev = "warm"
    if first is not None:
        wf.add("first", first, depends_on=[prev])
        prev = "first"
    wf.add("keep", step, depends_on=[prev], with_={"role": "keep"})
    wf.add("cancel", step, depends_on=["keep"], with_={"role": "cancel"})
    return wf


def test_a_step_that_kept_a_weak_reference_to_its_task_cannot_cancel_the_next() -> None:
    runs = on_and_off(lambda: _kept_then_cancelled(lambda: weakref.ref(asyncio.current_task())))
    assert runs[False][0][0] == "succeeded"
    assert runs[True][0] == runs[False][0]


def test_a_timeout_in_a_first_inline_segment_does_not_hide_a_kept_task() -> None:
    """``first`` runs inline on its first call, under ``asyncio.timeout`` (which holds
    the stand-in, and the stand-in the task) when its task's _drive takes its count; the
    stand-in is freed when ``first`` ends, so ``keep``'s strong reference evens it out."""

    async def first(**_: Any) -> int:
        async with asyncio.timeout(10):
            await asyncio.sleep(0)
        return 1

    runs = on_and_off(lambda: _kept_then_cancelled(asyncio.current_task, first))
    assert runs[False][0][0] == "succeeded"
    assert runs[True][0] == runs[False][0]


def test_a_stand_in_kept_from_a_first_inline_segment_cannot_cancel_the_next() -> None:
    def make() -> fluxnb.Workflow:
        kept: list[Any] = []

        async def keep(**_: Any) -> int:
            kept.append(asyncio.current_task())  # first call: runs inline, a stand-in
            await asyncio.sleep(0)
            return 1

        async def step(role: str, **_: Any) -> str:
            if role == "cancel":
                kept[0].cancel()  # its task ended: nothing to cancel
            await asyncio.sleep(0)
            await asyncio.sleep(0.005)
            return role

        wf = fluxnb.Workflow()
        wf.add("warm", step, with_={"role": "warm"})
        wf.add("keep", keep, depends_on=["warm"])
        wf.add("cancel", step, depends_on=["keep"], with_={"role": "cancel"})
        return wf

    runs = on_and_off(make)
    assert runs[False][0][0] == "succeeded"
    assert runs[True][0] == runs[False][0]


def test_failed_handed_steps_leave_no_cyclic_garbage() -> None:
    """200 branches, each ``a`` then a failing ``f`` handed to a's task: the old code
    freed each failure by reference counting (``except ... as exc`` unbinds it)."""

    async def fails(**_: Any) -> int:
        await asyncio.sleep(0)
        raise ValueError("no")

    wf = fluxnb.Workflow()
    wf.add("root", sleepy)
    wf.add("warm", fails, on_error="continue")
    for i in range(200):
        wf.add(f"a{i}", sleepy, depends_on=["root"])
        wf.add(f"f{i}", fails, depends_on=[f"a{i}"], on_error="continue")
    garbage = {on: cyclic_garbage(wf, on) for on in (False, True)}
    # the run's own tables form a few cycles, whatever its size; per failed step: none
    assert garbage[True] < garbage[False] + 100, f"cyclic garbage (off/on): {garbage}"


def test_a_task_name_set_by_a_step_is_not_the_next_steps() -> None:
    """Per-task state outlives the step that set it: set_name here; a WeakKeyDictionary
    keyed by current_task() (a library's per-task cache) leaks the same way and cannot
    be seen at all."""

    def make() -> fluxnb.Workflow:
        async def step(role: str, **_: Any) -> str:
            await asyncio.sleep(0)
            task = asyncio.current_task()
            assert task is not None
            name = task.get_name()
            task.set_name(f"step {role}")
            return "renamed" if name.startswith("step ") else "fresh"

        return roles(step)

    runs = on_and_off(make)
    assert set(runs[False][0][3].values()) == {"fresh"}
    assert runs[True][0] == runs[False][0]


# ====================================================================== what held
def test_cancelling_arun_mid_chain_records_the_same_rows(tmp_path: Path) -> None:
    """arun cancelled while a handed step runs: the run raises CancelledError, the step
    running is recorded cancelled, every row before it is kept, the run's row says so."""
    out = {}
    for on in (False, True):
        store = tmp_path / f"{on}.duckdb"

        async def main(store: Path = store) -> Any:
            gate = asyncio.Event()

            async def step(i: int, **_: Any) -> int:
                await asyncio.sleep(0)
                if i == 5:
                    gate.set()
                    await asyncio.sleep(30)
                return i

            wf = fluxnb.Workflow()
            for i in range(8):
                wf.add(f"s{i}", step, depends_on=[f"s{i - 1}"] if i else [], with_={"i": i})
            run = asyncio.ensure_future(wf.arun(store=store))
            await gate.wait()
            run.cancel()
            with pytest.raises(asyncio.CancelledError):
                await run
            return None

        with engine(hand=on):
            _, tasks = counted(main)
        runs = fluxnb.store(str(store)).sql("SELECT status FROM runs")
        out[on] = (events(store), runs.status.tolist(), tasks)
    assert out[True][:2] == out[False][:2]
    rows = out[True][0]
    assert [r[3] for r in rows] == ["succeeded"] * 5 + ["cancelled"] * 3
    assert out[True][1] == ["cancelled"]
    assert out[True][2] < out[False][2]


def _escapes(exc: type[BaseException], ran: list[int]) -> fluxnb.Workflow:
    async def step(i: int, **_: Any) -> int:
        await asyncio.sleep(0)
        ran.append(i)
        if i == 3:
            raise exc("stop")
        return i

    wf = fluxnb.Workflow()
    for i in range(6):
        wf.add(f"s{i}", step, depends_on=[f"s{i - 1}"] if i else [], with_={"i": i})
    return wf


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
def test_keyboard_interrupt_or_system_exit_from_a_handed_step(exc: type[BaseException]) -> None:
    """Escapes the run as it did, from the same step, after the same steps ran."""
    seen: dict[bool, Any] = {}
    for on in (False, True):
        ran: list[int] = []
        wf = _escapes(exc, ran)
        with engine(hand=on), pytest.raises(exc):
            counted(functools.partial(wf.arun, store=None))
        seen[on] = ran
    assert seen[True] == seen[False] == [0, 1, 2, 3]


@pytest.mark.parametrize("strategy", ["skip", "continue", "stop"])
@pytest.mark.parametrize("where", ["first line", "after a suspension"])
def test_on_error_with_a_handed_step_failing(strategy: str, where: str, tmp_path: Path) -> None:
    """``bad``'s first call (``warm``) suspends and succeeds, so ``bad`` is handed to a's
    task later, and fails there (at its first line, or after it suspended)."""

    def make() -> fluxnb.Workflow:
        async def bad(role: str, **_: Any) -> int:
            if role == "fail" and where == "first line":
                raise LookupError("at once")
            await asyncio.sleep(0)
            if role == "fail":
                raise LookupError("later")
            return 0

        wf = fluxnb.Workflow()
        wf.add("warm", bad, with_={"role": "warm"})
        # a function's first call goes on in a task that runs no handed step: `a` is not one
        wf.add("warm_a", sleepy)
        wf.add("a", sleepy, depends_on=["warm", "warm_a"])
        wf.add("bad", bad, depends_on=["a"], with_={"role": "fail"}, on_error=strategy)
        wf.add("b", sleepy, depends_on=["bad"])
        wf.add("c", sleepy, depends_on=["b"])
        wf.add("side", sleepy, depends_on=["a"])
        wf.add("side2", sleepy, depends_on=["side"])
        return wf

    v = same(on_and_off(make, tmp_path))
    assert v[2]["bad"][0] == ("skipped" if strategy == "skip" else "failed")
    assert v[2]["bad"][2] == ("LookupError", "at once" if where == "first line" else "later")


def test_a_handed_step_raising_at_its_first_line_reports_the_same_traceback(
    tmp_path: Path,
) -> None:
    """``at_once`` is known to suspend (its first call did), then raises before its
    first await when handed: same error, same user traceback as in a task of its own."""

    def make() -> fluxnb.Workflow:
        calls = [0]

        async def at_once(**_: Any) -> int:
            calls[0] += 1
            if calls[0] > 1:
                raise ValueError(f"call {calls[0]}")
            await asyncio.sleep(0)
            return 0

        wf = fluxnb.Workflow()
        wf.add("warm", at_once)
        wf.add("a", sleepy, depends_on=["warm"])
        wf.add("boom", at_once, depends_on=["a"], on_error="continue")
        return wf

    tbs = {}
    for on in (False, True):
        with engine(hand=on):
            result, _ = counted(lambda: make().arun(store=None))
        err = result.errors["boom"]
        tbs[on] = (err.type, err.message, err.traceback)
    assert tbs[True] == tbs[False]
    assert "_executor.py" not in tbs[True][2] and "at_once" in tbs[True][2]


def test_timeouts_retries_and_backoff_on_handed_steps_record_the_same_rows(
    tmp_path: Path,
) -> None:
    def make() -> fluxnb.Workflow:
        calls = {"slow": 0, "flaky": 0}

        async def slow(**_: Any) -> str:
            calls["slow"] += 1
            await asyncio.sleep(5 if calls["slow"] < 3 else 0)
            return "slow"

        async def flaky(**_: Any) -> str:
            calls["flaky"] += 1
            await asyncio.sleep(0)
            if calls["flaky"] < 3:
                raise ConnectionError(f"again {calls['flaky']}")
            return "flaky"

        async def hangs(**_: Any) -> str:
            await asyncio.sleep(5)
            return "no"

        again = RetryPolicy(max_attempts=3, backoff="exponential", initial_delay=0.002)
        wf = chain(3)
        wf.add("slow", slow, depends_on=["s2"], timeout=0.03, retry=again)
        wf.add("flaky", flaky, depends_on=["slow"], retry=again)
        wf.add("after", sleepy, depends_on=["flaky"])
        wf.add("never", hangs, depends_on=["after"], timeout=0.02)  # times out for good
        wf.add("skipped", sleepy, depends_on=["never"])
        return wf

    v = same(on_and_off(make, tmp_path))
    assert v[2]["slow"][:2] == ("succeeded", 3) and v[2]["flaky"][:2] == ("succeeded", 3)
    assert v[2]["never"][0] == "failed" and v[2]["never"][2][0] == "TimeoutError"


def _probed() -> fluxnb.Workflow:
    """warm -> s0..s2 -> svc: svc (known to suspend from warm) fails once, then hangs."""
    calls = [0]

    async def svc(role: str, **_: Any) -> int:
        await asyncio.sleep(0)
        if role == "warm":
            return 0
        calls[0] += 1
        if calls[0] == 1:
            raise ConnectionError("down")
        await asyncio.sleep(10)  # the probe hangs
        return 1

    breaker = fluxnb.CircuitBreakerSettings(
        failure_threshold=1, reset_timeout=0.01, probe_timeout=0.05
    )
    wf = fluxnb.Workflow()
    wf.add("warm", svc, with_={"role": "warm"})
    for i in range(3):
        wf.add(f"s{i}", sleepy, depends_on=[f"s{i - 1}" if i else "warm"])
    wf.add("svc", svc, depends_on=["s2"], with_={"role": "svc"}, circuit_breaker=breaker)
    return wf


def test_a_breakers_probe_timeout_on_a_handed_step(tmp_path: Path) -> None:
    """A half-open probe that hangs is cut at probe_timeout and reopens the circuit."""
    reg = fluxnb.breakers()
    seen = {}
    for on in (False, True):
        reg.clear()
        store = tmp_path / f"{on}.duckdb"
        wf = _probed()
        with engine(hand=on):
            assert not wf.run(store=store).ok  # opens the circuit
            asyncio.run(asyncio.sleep(0.02))
            result, tasks = counted(functools.partial(wf.arun, store=store))
        changes = fluxnb.sql(
            "SELECT to_state FROM circuit_events ORDER BY occurred_at", store=str(store)
        )
        seen[on] = (view(result), tasks, events(store), changes.to_state.tolist())
    reg.clear()
    same({on: seen[on][:3] for on in seen})
    assert seen[True][3] == seen[False][3] == ["open", "half_open", "open"]
    assert seen[True][0][2]["svc"][2][0] == "TimeoutError"


def test_metering_through_ctx_in_handed_steps(tmp_path: Path) -> None:
    def make() -> fluxnb.Workflow:
        async def metered(ctx: Any, **_: Any) -> str:
            await asyncio.sleep(0)
            ctx.meter("calls", 1)
            await asyncio.sleep(0)
            ctx.meter("tokens", 7)
            return f"{ctx.step}:{ctx.attempt}"

        wf = fluxnb.Workflow()
        for i in range(5):
            wf.add(f"m{i}", metered, depends_on=[f"m{i - 1}"] if i else [])
        return wf

    usage = {}
    runs = {}
    for on in (False, True):
        store = tmp_path / f"{on}.duckdb"
        with engine(hand=on):
            result, tasks = counted(functools.partial(make().arun, store=store))
        frame = fluxnb.sql(
            "SELECT step, unit, quantity FROM usage WHERE unit IN ('calls', 'tokens') "
            "ORDER BY step, unit",
            store=str(store),
        )
        usage[on] = [tuple(r) for r in frame.itertuples(index=False)]
        runs[on] = (view(result), tasks, events(store))
    same(runs)
    assert usage[True] == usage[False] and len(usage[True]) == 10
    assert runs[True][0][3]["m3"] == "m3:1"


def test_asyncio_primitives_inside_handed_steps() -> None:
    """TaskGroup (a child failing cancels the step's task, then uncancels it), shield,
    wait_for timing out, sub-tasks awaited, asyncio.timeout: each handed step sees what it
    would in a task of its own, and the step after it is not cancelled by what it did."""

    def make() -> fluxnb.Workflow:
        async def grouped(**_: Any) -> str:
            await asyncio.sleep(0)

            async def child(fail: bool) -> None:
                await asyncio.sleep(0)
                if fail:
                    raise KeyError("child")
                await asyncio.sleep(5)

            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(child(False))
                    tg.create_task(child(True))
            except BaseExceptionGroup as group:
                task = asyncio.current_task()
                assert task is not None and group.subgroup(KeyError) is not None
                return f"group failed, cancelling={task.cancelling()}"
            return "no"

        async def shielded(**_: Any) -> str:
            await asyncio.sleep(0)
            inner = asyncio.ensure_future(asyncio.sleep(0.001, result="inner"))
            return str(await asyncio.shield(inner))

        async def waited(**_: Any) -> str:
            await asyncio.sleep(0)
            try:
                await asyncio.wait_for(asyncio.sleep(5), 0.005)
            except TimeoutError:
                return "wait_for timed out"
            return "no"

        async def spawning(**_: Any) -> list[int]:
            await asyncio.sleep(0)
            subs = [asyncio.create_task(sleepy(x=i)) for i in range(3)]
            return list(await asyncio.gather(*subs))

        async def timed(**_: Any) -> str:
            await asyncio.sleep(0)
            try:
                async with asyncio.timeout(0.005):
                    await asyncio.sleep(5)
            except TimeoutError:
                task = asyncio.current_task()
                assert task is not None
                return f"timeout, cancelling={task.cancelling()}"
            return "no"

        async def last(**_: Any) -> str:
            await asyncio.sleep(0.002)  # cancelled here if anything above leaked a cancel
            return "last"

        wf = fluxnb.Workflow()
        prev = "w"
        wf.add("w", sleepy)
        for name, fn in [
            ("grouped", grouped),
            ("shielded", shielded),
            ("waited", waited),
            ("spawning", spawning),
            ("timed", timed),
            ("last", last),
        ]:
            wf.add(f"warm_{name}", fn)  # each is known to suspend: handed below
            wf.add(name, fn, depends_on=[prev, f"warm_{name}"])
            prev = name
        return wf

    v = same(on_and_off(make))
    assert v[0] == "succeeded", v
    # (Python 3.11's TaskGroup leaves cancelling() at 1: that task is then not handed on)
    assert v[3]["grouped"].startswith("group failed")
    assert v[3]["timed"] == "timeout, cancelling=0" and v[3]["last"] == "last"


def test_a_step_awaiting_a_future_another_step_resolves() -> None:
    def make() -> fluxnb.Workflow:
        box: dict[str, asyncio.Future[int]] = {}

        async def waiter(**_: Any) -> int:
            await asyncio.sleep(0)
            box["f"] = asyncio.get_running_loop().create_future()
            return await box["f"] + 1

        async def resolver(**_: Any) -> int:
            while "f" not in box:
                await asyncio.sleep(0)
            box["f"].set_result(41)
            return 0

        wf = chain(3)
        wf.add("warm_w", sleepy)
        wf.add("waiter", waiter, depends_on=["s2"])
        wf.add("resolver", resolver, depends_on=["s2"])
        wf.add("after", sleepy, depends_on=["waiter", "resolver"])
        return wf

    v = same(on_and_off(make))
    assert v[3]["waiter"] == 42 and v[0] == "succeeded"


def test_context_variables_of_the_caller_reach_every_handed_step() -> None:
    """Set by the caller: seen by all; set by a step (also in its sub-task): not by the
    next; the caller's own value is untouched after the run."""

    def make() -> fluxnb.Workflow:
        async def step(**_: Any) -> str:
            seen = VAR.get()
            await asyncio.sleep(0)
            VAR.set("step")

            async def sub() -> str:
                await asyncio.sleep(0)
                return VAR.get()

            inner = await asyncio.create_task(sub())
            return f"{seen}/{inner}"

        return chain(6, step)

    token = VAR.set("caller")
    try:
        v = same(on_and_off(make))
        assert VAR.get() == "caller"
    finally:
        VAR.reset(token)
    assert set(v[3].values()) == {"caller/step"}


def test_a_deep_chain_of_10k_handed_steps() -> None:
    """10,000 chained steps on one task: no recursion, the same outputs."""
    runs = on_and_off(lambda: chain(10_000))
    assert runs[True][0] == runs[False][0]
    assert runs[True][0][3]["s9999"] == 10_000
    assert runs[True][1] <= 5 and runs[False][1] > 10_000


def test_worker_pool_size_holds_with_handed_steps() -> None:
    """One at a time: the hand-over never runs a step beyond the limit."""
    peak: dict[bool, int] = {}
    for on in (False, True):
        live = [0, 0]

        async def step(live: list[int] = live, **_: Any) -> int:
            live[0] += 1
            live[1] = max(live[1], live[0])
            await asyncio.sleep(0.001)
            live[0] -= 1
            return 1

        wf = fluxnb.Workflow(router=fluxnb.RouterSettings(worker_pool_size=2))
        wf.add("root", step)
        for i in range(8):
            wf.add(f"a{i}", step, depends_on=["root"])
            wf.add(f"b{i}", step, depends_on=[f"a{i}"])
        with engine(hand=on):
            result, _ = counted(functools.partial(wf.arun, store=None))
        assert result.ok
        peak[on] = live[1]
    assert peak[True] == peak[False] == 2


def test_two_concurrent_runs_sharing_one_local_executor() -> None:
    """Two runs on one loop, one LocalExecutor instance: each chain's steps get their
    own outputs; neither run takes the other's hand-over."""
    from fluxnb.engine import LocalExecutor

    seen = {}
    for on in (False, True):

        async def main() -> Any:
            ex = LocalExecutor()

            def make(tag: str) -> fluxnb.Workflow:
                async def step(**kw: Any) -> str:
                    await asyncio.sleep(0)
                    prev = [v for v in kw.values() if isinstance(v, str)]
                    return tag if not prev else f"{prev[0][:1]}{tag}"

                return chain(20, step, prefix=tag)

            return await asyncio.gather(
                make("x").arun(store=None, executor=ex), make("y").arun(store=None, executor=ex)
            )

        with engine(hand=on):
            (rx, ry), tasks = counted(main)
        seen[on] = (view(rx), view(ry), tasks)
    assert seen[True][:2] == seen[False][:2]
    assert seen[True][0][0] == seen[True][1][0] == "succeeded"
    assert seen[True][2] < seen[False][2]


def test_a_nested_run_inside_a_handed_step() -> None:
    def make() -> fluxnb.Workflow:
        async def nested(**_: Any) -> Any:
            await asyncio.sleep(0)
            inner = await chain(5, prefix="n").arun(store=None)
            return (inner.status.value, inner["n4"])

        wf = chain(3)
        wf.add("warm", nested)
        wf.add("nested", nested, depends_on=["s2", "warm"])
        wf.add("after", sleepy, depends_on=["nested"])
        return wf

    v = same(on_and_off(make))
    assert v[3]["nested"] == ("succeeded", 5)


class _Service:
    """Steps that are bound methods, partials, callable objects, unhashable ones."""

    def __init__(self) -> None:
        self.calls = 0

    async def method(self, **kw: Any) -> int:
        self.calls += 1
        await asyncio.sleep(0)
        return self.calls

    async def __call__(self, **kw: Any) -> int:
        await asyncio.sleep(0)
        return 7


class _Unhashable(_Service):
    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Unhashable)


def test_bound_methods_partials_and_callable_objects_as_handed_steps() -> None:
    def make() -> fluxnb.Workflow:
        svc, odd = _Service(), _Unhashable()

        async def add(x: int, **_: Any) -> int:
            await asyncio.sleep(0)
            return x

        part = functools.partial(add, x=3)
        wf = fluxnb.Workflow()
        prev: list[str] = []
        for i in range(3):  # each kind twice in a row: the second is handed
            kinds: list[tuple[str, Any]] = [("m", svc.method), ("p", part), ("c", svc), ("u", odd)]
            for name, fn in kinds:
                wf.add(f"{name}{i}", fn, depends_on=prev)
                prev = [f"{name}{i}"]
        return wf

    v = same(on_and_off(make))
    assert v[0] == "succeeded" and v[3]["u2"] == 7 and v[3]["p2"] == 3 and v[3]["m2"] == 3


def test_steps_failing_at_their_first_line_in_tasks_of_their_own_leave_no_cyclic_garbage() -> None:
    """200 steps known to suspend fail at their first line, each in a task of its own
    (the root's end hands one over): the old code freed each by reference counting."""

    async def bad(role: str, **_: Any) -> int:
        if role == "fail":
            raise ValueError("at once")
        await asyncio.sleep(0)
        return 0

    wf = fluxnb.Workflow()
    wf.add("warm", bad, with_={"role": "warm"})
    wf.add("root", sleepy, depends_on=["warm"])
    for i in range(200):
        wf.add(f"f{i}", bad, depends_on=["root"], with_={"role": "fail"}, on_error="continue")
    garbage = {on: cyclic_garbage(wf, on) for on in (False, True)}
    assert garbage[True] < garbage[False] + 100, f"cyclic garbage (off/on): {garbage}"


def test_per_task_state_keyed_weakly_by_the_current_task_is_the_steps_own() -> None:
    """The pattern of ``async_scoped_session(scopefunc=current_task)`` with a weak
    registry, or any library's per-task cache: a step finds no state it did not make."""

    def make() -> fluxnb.Workflow:
        registry: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()

        async def step(role: str, **_: Any) -> str:
            await asyncio.sleep(0)
            task = asyncio.current_task()
            found = registry.get(task, "none")
            registry[task] = role
            await asyncio.sleep(0)
            return found

        return roles(step)

    runs = on_and_off(make)
    assert set(runs[False][0][3].values()) == {"none"}
    assert runs[True][0] == runs[False][0]


def _tasks_as_seen(probe: Callable[[Any, list[Any]], Any]) -> Callable[[], fluxnb.Workflow]:
    """A chain of 3 steps, each calling ``probe(current_task(), seen)`` after it suspended."""

    def make() -> fluxnb.Workflow:
        seen: list[Any] = []

        async def step(**_: Any) -> Any:
            await asyncio.sleep(0)
            probe(asyncio.current_task(), seen)
            await asyncio.sleep(0)
            await asyncio.sleep(0.002)  # the callbacks of the step before have run
            return list(seen)

        return chain(3, step)

    return make


def test_a_done_callback_on_the_current_task_runs_when_the_step_ends() -> None:
    """``current_task().add_done_callback(cb)``: cb runs once the step ended (before the
    next step's later lines), with a done, not cancelled task whose exception() answers,
    as a step's own task did."""

    def probe(task: Any, seen: list[Any]) -> None:
        def cb(t: Any) -> None:
            try:
                seen.append((t.done(), t.cancelled(), t.exception()))
            except Exception as exc:  # what a user's callback would die of
                seen.append(repr(exc))

        task.add_done_callback(cb)

    # a task a step added a done-callback to is not handed on (9429738)
    v = same(on_and_off(_tasks_as_seen(probe)), handed=False)
    assert v[0] == "succeeded"


def test_the_current_task_of_a_handed_step_is_an_asyncio_task() -> None:
    """After a step suspended, ``current_task()`` is an asyncio.Task listed by
    ``asyncio.all_tasks()``, as it was with a task per step (libraries check both)."""

    def probe(task: Any, seen: list[Any]) -> None:
        seen.append((isinstance(task, asyncio.Task), task in asyncio.all_tasks()))

    v = same(on_and_off(_tasks_as_seen(probe)))
    assert v[3]["s2"] == [(True, True)] * 3


def test_anyio_cancel_scopes_and_task_groups_inside_handed_steps() -> None:
    """What httpx (and so the openai SDK) runs on: anyio's scopes act on current_task()."""
    anyio = pytest.importorskip("anyio")

    def make() -> fluxnb.Workflow:
        async def step(**_: Any) -> list[Any]:
            await asyncio.sleep(0)
            out: list[Any] = []
            with anyio.move_on_after(0.003) as scope:
                await anyio.sleep(5)
            out.append(scope.cancelled_caught)
            try:
                with anyio.fail_after(0.003):
                    await anyio.sleep(5)
            except TimeoutError:
                out.append("fail_after")
            async with anyio.create_task_group() as tg:
                tg.start_soon(anyio.sleep, 0.001)
            with anyio.CancelScope() as cs:
                cs.cancel()
                await anyio.sleep(1)
            out.append(cs.cancelled_caught)
            await anyio.sleep(0.001)  # not cancelled by anything above
            return out

        return chain(4, step)

    # anyio keeps a weak reference to a task it scoped: that task is not handed on
    v = same(on_and_off(make), handed=False)
    assert v[3]["s3"] == [True, "fail_after", True]


def test_live_progress_sees_the_same_starts_and_ends() -> None:
    """The designer's live progress: ``attempt_started`` and event rows, in order."""
    from fluxnb.testing import MemoryRecorder

    class Live(MemoryRecorder):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[tuple[Any, ...]] = []

        def attempt_started(self, step: str, attempt: int) -> None:
            self.seen.append(("start", step, attempt))

        def event(self, row: Any) -> None:
            super().event(row)
            self.seen.append(("end", row[2], row[3], row[4]))

    def make() -> fluxnb.Workflow:
        calls = [0]

        async def flaky(**_: Any) -> int:
            calls[0] += 1
            await asyncio.sleep(0)
            if calls[0] < 2:
                raise ConnectionError("again")
            return 1

        wf = chain(4)
        wf.add("warm", flaky, retry=RetryPolicy(max_attempts=2, backoff="none"))
        wf.add("flaky", flaky, depends_on=["s3", "warm"])
        wf.add("b", sleepy, depends_on=["flaky"])
        wf.add("c", sleepy, depends_on=["flaky"])
        return wf

    seen = {}
    for on in (False, True):
        rec = Live()
        with engine(hand=on):
            result, tasks = counted(functools.partial(make().arun, store=rec))
        seen[on] = (view(result), tasks, rec.seen)
    assert seen[True][0] == seen[False][0] and seen[True][2] == seen[False][2]
    assert seen[True][1] < seen[False][1]


def _net_chain(log: list[Any]) -> Any:
    """A net: three tokens through f -> g -> h, async actions that suspend."""
    net = fluxnb.Net.build("chain", places={"a": [1, 2, 3], "b": 0, "c": 0, "d": 0})

    async def f(a: int) -> int:
        log.append(("f", a))
        await asyncio.sleep(0)
        log.append(("f-out", a))
        return a * 10

    async def g(b: int) -> int:
        log.append(("g", b))
        await asyncio.sleep(0)
        return b + 1

    async def h(c: int) -> int:
        log.append(("h", c))
        await asyncio.sleep(0.001)
        return c

    net.transition(f, inputs=["a"], outputs=["b"])
    net.transition(g, inputs=["b"], outputs=["c"])
    net.transition(h, inputs=["c"], outputs=["d"], retry=RetryPolicy(2, backoff="none"))
    return net


def test_a_chain_inside_a_petri_net_fires_in_the_same_order() -> None:
    """A plain net run's action that ends starts the next firings from its own task, and
    the next action is handed to that task: the firing sequence and the tokens are the
    same, with fewer tasks (the actions of different tokens interleave otherwise: a handed
    action's first line runs at once, not a turn of the loop later)."""
    seen = {}
    for on in (False, True):
        log: list[Any] = []
        net = _net_chain(log)
        with engine(hand=on):
            result, tasks = counted(functools.partial(fluxnb.arun, net, store=None))
        tokens = sorted(t.data for t in result.tokens["d"])
        seen[on] = (result.status, result.sequence, tokens, sorted(log), tasks)
    assert seen[True][:4] == seen[False][:4]
    assert seen[True][2] == [11, 21, 31]
    assert seen[True][4] < seen[False][4], (seen[True][4], seen[False][4])


def test_a_stream_workflow_gives_the_same_items_and_rows(tmp_path: Path) -> None:
    from .stream_steps import chain as stream_chain
    from .stream_steps import rows

    async def inc(**kw: Any) -> int:
        await asyncio.sleep(0)
        return int(next(iter(kw.values()))) + 1

    async def odd(**kw: Any) -> int:
        value = int(next(iter(kw.values())))
        await asyncio.sleep(0)
        if value == 3:
            raise ValueError("three")
        return value

    seen = {}
    for on in (False, True):
        wf = stream_chain(
            6, ("a", inc, {}), ("b", odd, {"on_error": "skip", "default": -1}), ("c", inc, {})
        )
        store = tmp_path / f"{on}.duckdb"
        with engine(hand=on):
            result, _ = counted(functools.partial(wf.arun, store=store))
        seen[on] = (result.status, result.outputs, rows(fluxnb.store(str(store)), result.run_id))
    assert seen[True] == seen[False]


def test_resume_and_replay_of_a_run_whose_steps_were_handed(tmp_path: Path) -> None:
    """A handed chain fails midway; resuming it (hand-over on or off) calls only what did
    not succeed; replaying a run recorded with the hand-over on is identical off, and the
    other way round."""
    calls: list[str] = []
    broken = [True]

    async def step(name: str, **_: Any) -> str:
        calls.append(name)
        await asyncio.sleep(0)
        if name == "s3" and broken[0]:
            raise RuntimeError("down")
        return name

    def make() -> fluxnb.Workflow:
        wf = fluxnb.Workflow("resumable")
        for i in range(6):
            wf.add(f"s{i}", step, depends_on=[f"s{i - 1}"] if i else [], with_={"name": f"s{i}"})
        return wf

    seen = {}
    for on in (False, True):
        store = str(tmp_path / f"{on}.duckdb")
        calls.clear()
        broken[0] = True
        with engine(hand=on):
            first = make().run(store=store)
            broken[0] = False
            resumed = fluxnb.resume(first.run_id, store=store, manifest=make())
        seen[on] = (view(first)[:3], view(resumed), list(calls), events(Path(store)))
    assert seen[True] == seen[False]
    assert seen[True][2] == ["s0", "s1", "s2", "s3", "s3", "s4", "s5"]
    for recorded, replayed in ((True, False), (False, True)):
        store = str(tmp_path / f"replay-{recorded}.duckdb")
        with engine(hand=recorded):
            run = make().run(store=store)
        with engine(hand=replayed):
            report = fluxnb.replay(run.run_id, store=store, manifest=make())
        assert report.identical, str(report)


def test_cached_steps_between_handed_ones(tmp_path: Path) -> None:
    """cache=True: a second run reuses every output (a cache hit is no call at all) and
    its rows say ``cached`` with the hand-over on and off."""
    calls: list[str] = []

    async def step(name: str, **_: Any) -> str:
        calls.append(name)
        await asyncio.sleep(0)
        return name

    def make() -> fluxnb.Workflow:
        wf = fluxnb.Workflow("cached")
        for i in range(5):
            wf.add(f"s{i}", step, depends_on=[f"s{i - 1}"] if i else [], with_={"name": f"s{i}"})
        wf.add("uncached", step, depends_on=["s4"], with_={"name": "u"}, cache="off")
        wf.add("after", step, depends_on=["uncached"], with_={"name": "after"})
        return wf

    seen = {}
    for on in (False, True):
        store = str(tmp_path / f"{on}.duckdb")
        calls.clear()  # the step's closure is part of its cache key
        with engine(hand=on):
            first = make().run(store=store, cache=True)
            calls.clear()
            second = make().run(store=store, cache=True)
        rows = fluxnb.store(store).sql(
            "SELECT step, status FROM events WHERE run_id = $r ORDER BY seq",
            {"r": second.run_id},
        )
        seen[on] = (view(first), view(second), list(calls), rows.values.tolist())
    assert seen[True] == seen[False]
    assert seen[True][2] == ["u"]  # ``after`` hit the cache: its input did not change


def test_a_step_that_cancelled_and_uncancelled_its_task_does_not_cancel_the_next() -> None:
    """``a`` cancels its own task and changes its mind (uncancel) before awaiting again:
    with a task of its own nothing happens; the step after it must not be cancelled."""

    def make() -> fluxnb.Workflow:
        async def changes_its_mind(**_: Any) -> str:
            await asyncio.sleep(0)
            task = asyncio.current_task()
            assert task is not None
            task.cancel()
            task.uncancel()
            return "a"

        async def step(**_: Any) -> str:
            await asyncio.sleep(0)
            await asyncio.sleep(0.001)
            return "b"

        wf = fluxnb.Workflow()
        wf.add("warm", step)
        wf.add("warm2", changes_its_mind)
        wf.add("a", changes_its_mind, depends_on=["warm", "warm2"])
        wf.add("b", step, depends_on=["a"])
        return wf

    runs = on_and_off(make)
    assert runs[False][0][0] == "succeeded"
    assert runs[True][0] == runs[False][0]


def test_a_handed_step_after_a_failed_one_has_no_exception_context() -> None:
    """``boom`` is handed to the task whose step (``pre``) just failed: its traceback
    does not say it happened while handling pre's error."""

    def make() -> fluxnb.Workflow:
        async def fails(**_: Any) -> int:
            await asyncio.sleep(0)
            raise KeyError("first")

        async def boom(role: str, **_: Any) -> int:
            if role == "boom":
                raise ValueError("second")
            await asyncio.sleep(0)
            return 0

        wf = fluxnb.Workflow()
        wf.add("warm", boom, with_={"role": "warm"})
        # a function's first call goes on in a task that runs no handed step: `pre` is not one
        wf.add("warm_pre", fails, on_error="skip")
        wf.add("pre", fails, depends_on=["warm", "warm_pre"], on_error="skip")
        wf.add("boom", boom, depends_on=["pre"], with_={"role": "boom"}, on_error="continue")
        return wf

    seen = {}
    for on in (False, True):
        with engine(hand=on):
            result, tasks = counted(lambda: make().arun(store=None))
        seen[on] = (view(result), result.errors["boom"].traceback, tasks)
    assert seen[True][:2] == seen[False][:2] and seen[True][2] < seen[False][2]
    assert "During handling" not in seen[True][1] and "KeyError" not in seen[True][1]


def pool_of_one() -> fluxnb.Workflow:
    """warm -> a -> b: a and b each take the one connection of a pool and hand it back
    when their task ends (a done-callback); b times out after 0.3 s waiting for it."""
    pool = asyncio.Semaphore(1)

    async def uses_a_connection(**_: Any) -> str:
        await asyncio.sleep(0)
        await pool.acquire()
        task = asyncio.current_task()
        assert task is not None
        task.add_done_callback(lambda _: pool.release())
        await asyncio.sleep(0)
        return "done"

    wf = fluxnb.Workflow()
    wf.add("warm", sleepy)
    wf.add("a", uses_a_connection, depends_on=["warm"])
    wf.add("b", uses_a_connection, depends_on=["a"], timeout=0.3)
    return wf


def test_a_resource_released_when_a_steps_task_ends_reaches_the_next_step() -> None:
    """A pool of one connection, handed back when the task that took it ends (a pool
    keyed by task does this): ``b`` needs it after ``a``. With a task per step ``a``'s
    task ends and ``b`` gets it; handed to a's task, ``b`` waits until its timeout."""

    runs = on_and_off(pool_of_one)
    assert runs[False][0][0] == "succeeded"
    assert runs[True][0] == runs[False][0]


def views_with(cls: Any, make: Callable[[], fluxnb.Workflow]) -> dict[bool, Any]:
    """What a user sees of a fresh ``make()`` run off and on, on a loop whose task factory
    makes tasks of class ``cls``."""
    seen = {}
    for on in (False, True):
        wf = make()
        with engine(hand=on):
            seen[on] = view(counted(functools.partial(wf.arun, store=None), cls)[0])
    return seen


class _TaggedTask(asyncio.Task):  # type: ignore[type-arg]
    """A loop's task factory's own Task subclass (instrumentation): it has a __dict__."""


def test_attributes_a_step_sets_on_its_task_are_not_the_next_steps() -> None:
    """aiotask-context's way: per-task state as an attribute of the task."""

    def make() -> fluxnb.Workflow:
        async def step(role: str, **_: Any) -> str:
            await asyncio.sleep(0)
            task: Any = asyncio.current_task()
            found = str(getattr(task, "tag", "none"))
            task.tag = role
            await asyncio.sleep(0)
            return found

        return roles(step)

    seen = views_with(_TaggedTask, make)
    assert set(seen[False][3].values()) == {"none"}
    assert seen[True] == seen[False]


def test_a_done_callback_is_seen_on_a_pure_python_task_too() -> None:
    """A loop whose factory makes asyncio's pure-Python tasks (asyncio.tasks._PyTask):
    the pool of one from the test above deadlocks ``b`` until its timeout."""
    seen = views_with(asyncio.tasks._PyTask, pool_of_one)  # type: ignore[attr-defined]
    assert seen[False][0] == "succeeded"
    assert seen[True] == seen[False]


def test_a_reference_held_when_the_task_started_does_not_hide_a_kept_task() -> None:
    """``looks`` (handed to root's task) holds ``asyncio.all_tasks()`` across an await:
    the set holds a's new task when that task takes its count, and lets go of it before
    a ends. ``keep`` then keeps its task, and the count says nothing kept it."""

    def make() -> fluxnb.Workflow:
        kept: list[Any] = []

        async def step(role: str, **_: Any) -> str:
            if role == "cancel":
                kept[0].cancel()  # its task ended: nothing to cancel
            await asyncio.sleep(0)
            if role == "keep":
                kept.append(asyncio.current_task())
            await asyncio.sleep(0.005 if role == "a" else 0.001)
            return role

        async def looks(**_: Any) -> bool:
            running = asyncio.all_tasks()  # what runs, looked at across an await
            await asyncio.sleep(0.001)
            return bool(running)

        wf = fluxnb.Workflow()
        wf.add("warm", step, with_={"role": "warm"})
        wf.add("warm2", looks)
        wf.add("root", sleepy, depends_on=["warm", "warm2"])
        wf.add("looks", looks, depends_on=["root"])
        wf.add("a", step, depends_on=["root"], with_={"role": "a"})
        wf.add("keep", step, depends_on=["a"], with_={"role": "keep"})
        wf.add("cancel", step, depends_on=["keep"], with_={"role": "cancel"})
        return wf

    runs = on_and_off(make)
    assert runs[False][0][0] == "succeeded"
    assert runs[True][0] == runs[False][0]


def test_a_stand_in_kept_from_a_first_inline_segment_is_done_once_its_step_is() -> None:
    """``a``'s first call runs its first segment inline: its current_task() is a stand-in,
    which a watcher polls until done(). ``b`` waits for the watcher (with a timeout)."""

    def make() -> fluxnb.Workflow:
        box: dict[str, asyncio.Task[str]] = {}

        async def starts_a_watcher(**_: Any) -> int:
            parent = asyncio.current_task()
            assert parent is not None

            async def watch() -> str:
                while not parent.done():
                    await asyncio.sleep(0.001)
                return "parent done"

            box["watcher"] = asyncio.create_task(watch())
            await asyncio.sleep(0)
            return 1

        async def waits(**_: Any) -> str:
            await asyncio.sleep(0)
            return await box["watcher"]

        wf = fluxnb.Workflow()
        wf.add("warm", sleepy)
        wf.add("a", starts_a_watcher, depends_on=["warm"])
        wf.add("b", waits, depends_on=["a"], timeout=0.3)
        return wf

    runs = on_and_off(make)
    assert runs[False][0][0] == "succeeded"
    assert runs[True][0] == runs[False][0]


def test_a_step_stopped_between_hand_over_and_first_line_records_the_same_rows(
    tmp_path: Path,
) -> None:
    """The root's end hands ``b`` over, then starts ``boom``, which fails at once and
    stops the run: b's row says cancelled, as for a task cancelled before it started."""

    def make() -> fluxnb.Workflow:
        async def b(**_: Any) -> int:
            await asyncio.sleep(0)
            return 1

        async def boom(**_: Any) -> int:
            raise RuntimeError("at once")

        wf = fluxnb.Workflow()
        wf.add("warm", b)
        wf.add("root", sleepy, depends_on=["warm"])
        wf.add("b", b, depends_on=["root"])
        wf.add("boom", boom, depends_on=["root"])
        wf.add("after", sleepy, depends_on=["b"])
        return wf

    v = same(on_and_off(make, tmp_path), handed=False)
    assert v[2]["b"][0] == "cancelled" and v[2]["boom"][0] == "failed"

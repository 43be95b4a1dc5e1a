"""Attacks on the DAG engine's plain steps (issue #22): a step on the local executor with no
breaker, timeout or ``ctx``, in a run with no cache (incremental runs), is started by the
scheduler's pump and its task's end taken by ``Scheduler._ended``, not by ``_start`` and the
attempt runner. Each scenario runs with ``PLAIN`` on and off (and the task hand-over on and
off) and compares what a user sees: the RunResult (status, reason, outputs, each step's
status, attempts, error and whether it has times) and the events rows of a DuckDB store.

The tests under "bugs found" are bugs found while attacking; each held with ``PLAIN`` on
and off alike (the plain path copied the runner's behaviour), so each is a bug of the
engine around it. Those marked ``xfail(strict=True)`` are still open (the reason says what
happens); the others were fixed in the commit named above them."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import fluxnb
from fluxnb import RetryPolicy, RunStatus
from fluxnb.testing import MemoryRecorder

from .engine_helpers import (
    BOUND,
    COMBOS,
    Progress,
    bounded,
    chain,
    counted,
    engine,
    events,
    quick,
    sleepy,
    view,
)

WHO: contextvars.ContextVar[str] = contextvars.ContextVar("plain_attack_who", default="unset")


def compare(
    make: Callable[[], fluxnb.Workflow],
    tmp_path: Path | None = None,
    across: bool = True,
    **kwargs: Any,
) -> tuple[Any, ...]:
    """Run a fresh ``make()`` in every combination; all must show the same (``across``
    False: the same with the plain path on and off, the hand-over may change what else
    was running when a step stopped the run); the plain path must really have been taken
    (fewer ``_start`` calls with it on). Returns the view and the rows."""
    seen: dict[tuple[bool, bool], Any] = {}
    starts: dict[tuple[bool, bool], int] = {}
    for plain, hand in COMBOS:
        store = None if tmp_path is None else tmp_path / f"{plain}-{hand}.duckdb"
        wf = make()
        with engine(plain, hand) as started:
            result = bounded(functools.partial(wf.arun, store=store, **kwargs))
        starts[(plain, hand)] = started[0]
        seen[(plain, hand)] = (view(result), [] if store is None else events(store))
    for (plain, hand), got in seen.items():
        first = seen[(False, hand if not across else False)]
        assert got == first, f"PLAIN, HAND_OVER = {plain, hand} differs from both off"
    assert starts[(True, True)] < starts[(False, True)], f"no plain step: {starts}"
    return seen[(True, True)]  # as a run goes by default


# ====================================================================== shapes
def test_chains_fans_and_joins_of_async_sync_and_inline_steps(tmp_path: Path) -> None:
    def syncs(**kwargs: Any) -> int:
        return 10 + len(kwargs)

    def make() -> fluxnb.Workflow:
        wf = chain(4)
        wf.add("inline", quick, depends_on=["s3"])
        for i in range(6):
            wf.add(f"f{i}", sleepy if i % 3 else quick, depends_on=["inline"])
            wf.add(f"t{i}", syncs, depends_on=[f"f{i}"])
        wf.add("join", sleepy, depends_on=[f"t{i}" for i in range(6)])
        return wf

    v, rows = compare(make, tmp_path)
    assert v[0] == "succeeded" and v[3]["join"] == 1 + 6 * 11
    assert len(rows) == 18 and {r[3] for r in rows} == {"succeeded"}
    assert all(r[7] == "local" and r[8:] == (False, False, False) for r in rows)


def test_one_function_that_suspends_on_some_calls_only(tmp_path: Path) -> None:
    """The executor learns that a function suspends and sends its later calls straight
    to a task: calls that then end at once, or never suspend, in any order."""

    async def maybe(n: int, **_: Any) -> int:
        if n % 2:
            await asyncio.sleep(0)
        if n % 3 == 0:
            await asyncio.sleep(0.001)
        return n

    def make() -> fluxnb.Workflow:
        wf = fluxnb.Workflow()
        for i in range(12):
            wf.add(f"m{i}", maybe, depends_on=[f"m{i - 1}"] if i else [], with_={"n": i})
            wf.add(f"x{i}", maybe, depends_on=[f"m{i}"], with_={"n": i + 1})
        return wf

    v, _ = compare(make, tmp_path)
    assert v[3] == {**{f"m{i}": i for i in range(12)}, **{f"x{i}": i + 1 for i in range(12)}}


def test_plain_steps_mixed_with_timeouts_ctx_and_breakers(tmp_path: Path) -> None:
    """Only some steps are plain: the others go through the runner in the same run."""

    async def with_ctx(ctx: Any, **_: Any) -> int:
        await asyncio.sleep(0)
        return int(ctx.attempt)

    async def slow(**_: Any) -> int:
        await asyncio.sleep(5)
        return 0

    def make() -> fluxnb.Workflow:
        wf = chain(3)
        wf.add("timed", sleepy, depends_on=["s2"], timeout=5)
        wf.add("ctx", with_ctx, depends_on=["timed"])
        wf.add("plain", sleepy, depends_on=["ctx"])
        wf.add("late", slow, depends_on=["s0"], timeout=0.02, on_error="continue")
        wf.add("after_late", sleepy, depends_on=["late"])
        wf.add(
            "broken",
            sleepy,
            depends_on=["s1"],
            circuit_breaker=fluxnb.CircuitBreakerSettings(failure_threshold=2),
        )
        wf.add("after_broken", quick, depends_on=["broken"])
        return wf

    v, rows = compare(make, tmp_path)
    assert v[2]["late"][2][0] == "TimeoutError" and v[2]["after_late"][0] == "skipped"
    assert v[2]["plain"][0] == v[2]["after_broken"][0] == "succeeded"
    assert [r[3] for r in rows if r[1] == "late"] == ["failed"]


# ====================================================================== failures
@pytest.mark.parametrize("where", ["first line", "after a suspension", "in a thread"])
@pytest.mark.parametrize("strategy", ["skip", "continue", "stop"])
def test_plain_steps_failing_with_each_error_strategy(
    where: str, strategy: str, tmp_path: Path
) -> None:
    """``flaky`` and ``bad`` fail their first two calls (at their first line, after they
    suspended, or in a sync step's thread): ``flaky``'s two retries make its third attempt
    succeed, ``bad`` (no retry) fails for good; the attempt numbers, the rows and the
    steps after them agree."""

    def make() -> fluxnb.Workflow:
        def failing(tag: str) -> tuple[Any, Any]:
            calls = [0]

            async def fn(**_: Any) -> int:
                calls[0] += 1
                if where == "first line" and calls[0] < 3:
                    raise LookupError(f"{tag} at once {calls[0]}")
                await asyncio.sleep(0)
                if calls[0] < 3:
                    raise LookupError(f"{tag} later {calls[0]}")
                return 7

            def in_thread(**_: Any) -> int:
                calls[0] += 1
                if calls[0] < 3:
                    raise LookupError(f"{tag} thread {calls[0]}")
                return 7

            return (in_thread if where == "in a thread" else fn), calls

        flaky, _ = failing("flaky")
        bad, _ = failing("bad")
        again = RetryPolicy(max_attempts=3, backoff="none")
        wf = chain(3)
        wf.add("flaky", flaky, depends_on=["s0"], on_error=strategy, retry=again)
        wf.add("after_flaky", sleepy, depends_on=["flaky"])
        wf.add("bad", bad, depends_on=["after_flaky", "s1"], on_error=strategy)
        wf.add("after", sleepy, depends_on=["bad"])
        wf.add("side", sleepy, depends_on=["s0"])
        return wf

    v, rows = compare(make, tmp_path, across=strategy != "stop")
    assert v[2]["flaky"][:3] == ("succeeded", 3, None)
    assert [(r[2], r[3], r[4]) for r in rows if r[1] == "flaky"] == [
        (1, "failed", False),
        (2, "failed", False),
        (3, "succeeded", True),
    ]
    bad = v[2]["bad"]
    assert bad[0] == ("skipped" if strategy == "skip" else "failed") and bad[1] == 1
    assert bad[2] is not None and bad[2][1].endswith(" 1")
    assert v[2]["after"][0] == {"skip": "succeeded", "continue": "skipped"}.get(
        strategy, "cancelled"
    )


def test_retries_with_backoff_and_resume_continue_the_attempt_numbers(tmp_path: Path) -> None:
    """A chain fails midway after its retries (one step at its first line, one after a
    suspension); resuming it with the steps fixed numbers the new attempts after the
    recorded ones, in every combination."""
    calls: list[str] = []
    broken = [True]

    async def step(name: str, **_: Any) -> str:
        calls.append(name)
        if name == "s1" and broken[0]:
            raise RuntimeError("at once")
        await asyncio.sleep(0)
        if name == "s3" and broken[0]:
            raise RuntimeError("down")
        return name

    def make() -> fluxnb.Workflow:
        again = RetryPolicy(max_attempts=2, backoff="linear", initial_delay=0.001)
        wf = fluxnb.Workflow("resumable")
        for i, after in enumerate([[], ["s0"], ["s0"], ["s2"], ["s3"], ["s4"]]):
            wf.add(
                f"s{i}",
                step,
                depends_on=after,
                with_={"name": f"s{i}"},
                retry=again,
                on_error="continue" if i == 1 else "stop",
            )
        return wf

    seen = {}
    for plain, hand in COMBOS:
        store = str(tmp_path / f"{plain}-{hand}.duckdb")
        calls.clear()
        broken[0] = True
        with engine(plain, hand):
            first = make().run(store=store)
            broken[0] = False
            resumed = fluxnb.resume(first.run_id, store=store, manifest=make())
        seen[(plain, hand)] = (view(first), view(resumed), sorted(calls), events(store))
    assert all(s == seen[(False, False)] for s in seen.values()), seen
    first_v, resumed_v, _, rows = seen[(True, True)]
    assert first_v[0] == "failed" and resumed_v[0] == "succeeded"
    assert {s: a[1] for s, a in resumed_v[2].items()} == {
        "s0": 1,
        "s1": 3,
        "s2": 1,
        "s3": 3,
        "s4": 1,
        "s5": 1,
    }
    assert [(r[2], r[3]) for r in rows if r[1] == "s3"] == [
        (1, "failed"),
        (2, "failed"),
        (3, "succeeded"),
    ]


def test_live_progress_sees_the_same_attempts_start() -> None:
    """A recorder's ``attempt_started`` hook (the notebook's and designer's progress) is
    told of every attempt, retries too, from the pump or ``_start``: the same calls in
    the same order with the plain path on and off (the hand-over may change the order)."""

    def make() -> fluxnb.Workflow:
        calls = [0, 0]

        async def flaky(i: int, **_: Any) -> int:
            calls[i] += 1
            if calls[i] == 1 and i:
                raise ValueError("at once")
            await asyncio.sleep(0)
            if calls[i] < 3:
                raise ValueError("later")
            return i

        again = RetryPolicy(max_attempts=3, backoff="none")
        wf = chain(2)
        wf.add("f0", flaky, depends_on=["s1"], with_={"i": 0}, retry=again)
        wf.add("f1", flaky, depends_on=["s0"], with_={"i": 1}, retry=again)
        wf.add("q", quick, depends_on=["f0", "f1"])
        return wf

    seen = {}
    for plain, hand in COMBOS:
        rec = Progress()
        with engine(plain, hand) as starts:
            result = bounded(functools.partial(make().arun, store=rec))
        seen[(plain, hand)] = (view(result)[:3], rec.started, starts[0])
    for plain, hand in COMBOS:
        assert seen[(plain, hand)][:2] == seen[(False, hand)][:2]
        assert seen[(plain, hand)][0] == seen[(False, False)][0]
        assert sorted(seen[(plain, hand)][1]) == sorted(seen[(False, False)][1])
    assert seen[(True, True)][0][0] == "succeeded"
    assert seen[(True, True)][2] < seen[(False, True)][2]  # the plain path with progress
    assert seen[(True, True)][1].count(("f0", 3)) == seen[(True, True)][1].count(("f1", 3)) == 1


def test_replay_of_a_run_recorded_with_plain_steps_on_or_off(tmp_path: Path) -> None:
    def make() -> fluxnb.Workflow:
        wf = chain(4)
        wf.add("inline", quick, depends_on=["s3"])
        wf.add("end", sleepy, depends_on=["inline", "s1"])
        return wf

    for recorded, replayed in ((True, False), (False, True)):
        store = str(tmp_path / f"replay-{recorded}.duckdb")
        with engine(recorded):
            run = make().run(store=store)
        with engine(replayed):
            report = fluxnb.replay(run.run_id, store=store, manifest=make())
        assert report.identical, str(report)


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("where", ["first line", "after a suspension"])
def test_keyboard_interrupt_or_system_exit_from_a_plain_step(
    exc: type[BaseException], where: str, tmp_path: Path
) -> None:
    """It escapes the run, after the same steps ran, with the same rows recorded."""
    seen = {}
    for plain, hand in COMBOS:
        ran: list[int] = []

        async def step(i: int, ran: list[int] = ran, **_: Any) -> int:
            if where == "after a suspension" or i != 3:
                await asyncio.sleep(0)
            ran.append(i)
            if i == 3:
                raise exc("stop")
            return i

        async def fresh(i: int, **kwargs: Any) -> int:  # never called before: inline
            return await step(i, **kwargs)

        wf = fluxnb.Workflow()
        for i in range(6):
            fn = fresh if i == 3 else step
            wf.add(f"s{i}", fn, depends_on=[f"s{i - 1}"] if i else [], with_={"i": i})
        wf.add("side", sleepy)
        store = tmp_path / f"{plain}-{hand}.duckdb"
        with engine(plain, hand), pytest.raises(exc):
            wf.run(store=store)
        status = fluxnb.store(str(store)).sql("SELECT status FROM runs").status.tolist()
        seen[(plain, hand)] = (ran, events(store), status)
    assert all(s == seen[(False, False)] for s in seen.values()), seen
    assert seen[(True, True)][0] == [0, 1, 2, 3]


# ====================================================================== cancellation
@pytest.mark.parametrize("shape", ["chain", "fan-out"])
def test_cancelling_arun_mid_run_records_the_same_rows_and_leaves_no_task(
    shape: str, tmp_path: Path
) -> None:
    """arun cancelled while plain steps run (one waits for ever, one is a sync step in its
    thread): CancelledError, the same rows, the run recorded cancelled, no task left."""
    seen = {}
    for plain, hand in COMBOS:
        store = tmp_path / f"{plain}-{hand}.duckdb"

        async def main(store: Path = store) -> Any:
            gate = asyncio.Event()

            async def step(i: int, **_: Any) -> int:
                await asyncio.sleep(0)
                if i == 5:
                    gate.set()
                    await asyncio.sleep(30)
                return i

            async def forever(**_: Any) -> None:
                await asyncio.Event().wait()

            def in_thread(**_: Any) -> int:
                time.sleep(0.3)  # still running when the run is cancelled
                return 1

            wf = fluxnb.Workflow()
            for i in range(8):
                after = [f"s{i - 1}"] if i and shape == "chain" else []
                wf.add(f"s{i}", step, depends_on=after, with_={"i": i})
            wf.add("forever", forever)
            wf.add("thread", in_thread)
            run = asyncio.ensure_future(wf.arun(store=store))
            await gate.wait()
            run.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(run, BOUND)
            await asyncio.sleep(0)
            return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

        with engine(plain, hand):
            left = asyncio.run(main())
        runs = fluxnb.store(str(store)).sql("SELECT status FROM runs").status.tolist()
        seen[(plain, hand)] = (events(store), runs, left)
    assert all(s == seen[(False, False)] for s in seen.values()), seen
    rows, runs, left = seen[(True, True)]
    assert runs == ["cancelled"] and left == []
    by_step = {r[1]: r[3] for r in rows}
    assert by_step["s5"] == by_step["forever"] == by_step["thread"] == "cancelled"
    assert by_step["s4"] == "succeeded"


def test_a_step_cancelling_its_own_task_after_a_suspension(tmp_path: Path) -> None:
    def make() -> fluxnb.Workflow:
        async def cancels(**_: Any) -> str:
            await asyncio.sleep(0)
            task = asyncio.current_task()
            assert task is not None
            task.cancel()
            await asyncio.sleep(0)
            return "survived"

        wf = chain(2)
        wf.add("c1", cancels, depends_on=["s1"], on_error="continue")
        wf.add("c2", cancels, depends_on=["s1"], on_error="continue")
        wf.add("after", sleepy, depends_on=["c1"])
        return wf

    v, _ = compare(make, tmp_path)
    for sid in ("c1", "c2"):
        assert v[2][sid][:3] == (
            "failed",
            1,
            ("CancelledError", "the step was cancelled from inside"),
        )


def test_a_step_cancelled_from_inside_under_a_caller_that_swallowed_a_cancel() -> None:
    """The task awaiting arun once caught a CancelledError without ``uncancel()`` (its
    ``cancelling()`` stays 1; the run itself is not cancelled): a step that cancels its
    own task still fails 'cancelled from inside' under its on_error, as with a clean
    caller, not 'cancelled' as if the run had been."""

    async def cancels(**_: Any) -> str:
        await asyncio.sleep(0)
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(0)
        return "survived"

    def make() -> fluxnb.Workflow:
        wf = chain(1)
        wf.add("c", cancels, depends_on=["s0"], on_error="continue")
        wf.add("after", sleepy, depends_on=["c"])
        return wf

    async def swallowed_first() -> Any:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):  # no uncancel(), as callers do
            await asyncio.sleep(0)
        assert task.cancelling() == 1
        return await make().arun(store=None)

    for plain, hand in COMBOS:
        with engine(plain, hand):
            clean = bounded(functools.partial(make().arun, store=None))
            after_swallow = bounded(swallowed_first)
        assert view(after_swallow) == view(clean), (plain, hand)
        assert clean.steps["c"].error is not None
        assert clean.steps["c"].error.message == "the step was cancelled from inside"


def test_asyncio_timeout_inside_plain_steps() -> None:
    """``asyncio.timeout`` in a step's first (inline) segment and in a task of its own."""

    async def times_out(**_: Any) -> str:
        try:
            async with asyncio.timeout(0.01):
                await asyncio.sleep(1)
        except TimeoutError:
            return "timed out"
        return "no"

    async def in_time(**_: Any) -> str:
        async with asyncio.timeout(5):
            await asyncio.sleep(0)
        return "in time"

    def make() -> fluxnb.Workflow:
        wf = chain(2)
        for i, fn in enumerate([times_out, times_out, in_time, in_time]):
            wf.add(f"t{i}", fn, depends_on=[f"t{i - 1}" if i else "s1"])
        return wf

    v, _ = compare(make)
    assert [v[3][f"t{i}"] for i in range(4)] == ["timed out"] * 2 + ["in time"] * 2


# ====================================================================== scale and loops
def test_a_fan_out_of_10k_plain_steps() -> None:
    def make() -> fluxnb.Workflow:
        wf = fluxnb.Workflow()
        wf.add("root", sleepy)
        for i in range(10_000):
            wf.add(f"f{i}", sleepy if i % 2 else quick, depends_on=["root"])
        wf.add("join", sleepy, depends_on=[f"f{i}" for i in range(0, 10_000, 100)])
        return wf

    v, _ = compare(make)
    assert v[0] == "succeeded" and v[3]["join"] == 1 + 100 * 2


def test_worker_pool_size_holds_for_plain_steps() -> None:
    """At most ``limit`` steps at once, async and sync ones mixed."""
    peak: dict[tuple[bool, bool], int] = {}
    for plain, hand in COMBOS:
        live = [0, 0]

        async def step(live: list[int] = live, **_: Any) -> int:
            live[0] += 1
            live[1] = max(live[1], live[0])
            await asyncio.sleep(0.001)
            live[0] -= 1
            return 1

        def in_thread(live: list[int] = live, **_: Any) -> int:
            live[0] += 1
            live[1] = max(live[1], live[0])
            time.sleep(0.001)
            live[0] -= 1
            return 1

        wf = fluxnb.Workflow(router=fluxnb.RouterSettings(worker_pool_size=3))
        wf.add("root", step)
        for i in range(10):
            wf.add(f"a{i}", step if i % 2 else in_thread, depends_on=["root"])
            wf.add(f"b{i}", step, depends_on=[f"a{i}"])
        with engine(plain, hand):
            assert bounded(functools.partial(wf.arun, store=None)).ok
        peak[(plain, hand)] = live[1]
    assert set(peak.values()) == {3}, peak


def test_a_loop_with_a_task_factory_and_two_concurrent_runs() -> None:
    """Every step's task goes through the loop's factory; two runs share the loop (and one
    LocalExecutor) without taking each other's steps or outputs."""
    from fluxnb.engine import LocalExecutor

    seen = {}
    for plain, hand in COMBOS:

        def make(tag: str) -> fluxnb.Workflow:
            async def step(**kw: Any) -> str:
                await asyncio.sleep(0)
                prev = [v for v in kw.values() if isinstance(v, str)]
                return tag if not prev else f"{prev[0]}{tag}"

            wf = chain(10, step, prefix=tag)
            wf.add(f"{tag}-inline", quick, depends_on=[f"{tag}9"])
            return wf

        async def both() -> Any:
            ex = LocalExecutor()
            return await asyncio.gather(
                make("x").arun(store=None, executor=ex), make("y").arun(store=None, executor=ex)
            )

        with engine(plain, hand):
            (rx, ry), made = counted(both)
        seen[(plain, hand)] = (view(rx), view(ry), made > 0)
    assert all(s == seen[(False, False)] for s in seen.values()), seen
    vx, vy, used = seen[(True, True)]
    assert vx[3]["x9"] == "x" * 10 and vy[3]["y9"] == "y" * 10 and used


class _SubTask(asyncio.Task):  # type: ignore[type-arg]
    """A factory's own Task class (never handed on: only asyncio's C Task is)."""


def _wrapping(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
    """An instrumenting factory: every task runs its coroutine inside one of its own."""

    async def wrapper() -> Any:
        return await coro

    return asyncio.Task(wrapper(), loop=loop, **kwargs)


@pytest.mark.parametrize(
    "factory",
    [
        pytest.param(lambda loop, coro, **kw: _SubTask(coro, loop=loop, **kw), id="subclass"),
        pytest.param(
            lambda loop, coro, **kw: asyncio.tasks._PyTask(coro, loop=loop, **kw),  # type: ignore[attr-defined]
            id="pure-python",
        ),
        pytest.param(_wrapping, id="wrapping"),
        pytest.param(
            getattr(asyncio, "eager_task_factory", None),
            id="eager",
            marks=pytest.mark.skipif(
                not hasattr(asyncio, "eager_task_factory"), reason="eager tasks: 3.12+"
            ),
        ),
    ],
)
def test_task_factories_of_other_kinds(factory: Any) -> None:
    """Steps that end at once, suspend, fail at once or later (retried), in a chain and
    a fan-out: the same with the plain path on and off under each kind of factory."""

    def make() -> fluxnb.Workflow:
        calls: dict[int, int] = {}

        async def flaky(i: int, **_: Any) -> int:
            calls[i] = calls.get(i, 0) + 1
            if calls[i] == 1 and i % 2:
                raise ValueError(f"at once {i}")
            await asyncio.sleep(0)
            if calls[i] == 1:
                raise ValueError(f"later {i}")
            return i

        again = RetryPolicy(max_attempts=2, backoff="none")
        wf = chain(4)
        fns: list[Callable[..., Any]] = [sleepy, quick, flaky]
        for i in range(12):
            fn = fns[i % 3]
            extra: dict[str, Any] = {"with_": {"i": i}, "retry": again} if fn is flaky else {}
            wf.add(f"f{i}", fn, depends_on=["s3"], **extra)
            wf.add(f"g{i}", [quick, sleepy][i % 2], depends_on=[f"f{i}"])
        return wf

    seen = {}
    for plain, hand in COMBOS:
        with engine(plain, hand):
            result = bounded(functools.partial(make().arun, store=None), factory)
        seen[(plain, hand)] = view(result)
    assert all(v == seen[(False, False)] for v in seen.values()), seen
    v = seen[(True, True)]
    assert v[0] == "succeeded"
    assert [v[2][f"f{i}"][1] for i in range(2, 12, 3)] == [2] * 4


def test_a_step_that_swallows_the_cancellation_of_a_cancelled_run(tmp_path: Path) -> None:
    """arun cancelled while two plain steps wait: they catch CancelledError and return a
    value a little later; the run still ends cancelled, their successes are recorded."""
    seen = {}
    for plain, hand in COMBOS:
        store = tmp_path / f"{plain}-{hand}.duckdb"

        async def main(store: Path = store) -> Any:
            gate = asyncio.Event()

            async def swallows(**_: Any) -> str:
                gate.set()
                try:
                    await asyncio.sleep(5)
                except asyncio.CancelledError:
                    await asyncio.sleep(0.01)
                    return "swallowed"
                return "no"

            wf = fluxnb.Workflow()
            wf.add("f", sleepy)
            wf.add("sw1", swallows, depends_on=["f"])
            wf.add("sw2", swallows, depends_on=["f"])
            wf.add("after", sleepy, depends_on=["sw1"])
            run = asyncio.ensure_future(wf.arun(store=store))
            await gate.wait()
            run.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(run, BOUND)

        with engine(plain, hand):
            asyncio.run(main())
        runs = fluxnb.store(str(store)).sql("SELECT status FROM runs").status.tolist()
        seen[(plain, hand)] = (events(store), runs)
    assert all(s == seen[(False, False)] for s in seen.values()), seen
    rows, runs = seen[(True, True)]
    assert runs == ["cancelled"]
    assert [(r[1], r[3]) for r in rows] == [
        ("f", "succeeded"),
        ("sw1", "succeeded"),
        ("sw2", "succeeded"),
        ("after", "cancelled"),
    ]


def test_a_nested_run_inside_plain_steps() -> None:
    def make() -> fluxnb.Workflow:
        async def nested(**_: Any) -> Any:
            inner = await chain(4, prefix="n").arun(store=None)
            return (inner.status.value, inner["n3"])

        wf = chain(2)
        wf.add("nest", nested, depends_on=["s1"])  # first call: inline
        wf.add("nest2", nested, depends_on=["nest"])  # known to suspend: a task
        wf.add("after", sleepy, depends_on=["nest2"])
        return wf

    v, _ = compare(make)
    assert v[3]["nest"] == v[3]["nest2"] == ("succeeded", 4)


def test_the_dask_executor_beside_plain_local_steps(tmp_path: Path) -> None:
    """Agents on ``local`` are plain even when the run's default is Dask; the rows say
    where each step ran."""
    pytest.importorskip("distributed")
    text = (
        "agents:\n  - id: a\n    executor: local\n  - id: c\n    executor: local\n"
        "pipeline:\n  - step: a\n  - step: b\n    depends_on: a\n"
        "  - step: c\n    depends_on: b\n  - step: d\n    depends_on: c\n"
    )

    async def a() -> int:
        await asyncio.sleep(0)
        return 1

    def b(a: int) -> int:
        return a + 1

    async def c(b: int) -> int:
        await asyncio.sleep(0)
        return b + 1

    def d(c: int) -> int:
        return c * 10

    seen = {}
    for plain in (False, True):
        store = tmp_path / f"{plain}.duckdb"
        with engine(plain) as starts:
            r = fluxnb.run(text, {"a": a, "b": b, "c": c, "d": d}, store=store, executor="dask")
        seen[plain] = (view(r), events(store), starts[0])
    assert seen[True][:2] == seen[False][:2]
    assert seen[True][2] < seen[False][2]
    assert seen[True][0][3]["d"] == 30
    assert [r[7] for r in seen[True][1]] == ["local", "dask", "local", "dask"]


# ====================================================================== garbage, recorders
def test_plain_steps_leave_no_cyclic_garbage_per_step() -> None:
    """A warmed run of 100 vs 400 branches (each a suspending step, then one that fails at
    once, after a suspension or in a thread, or succeeds at its retry) frees the same
    cyclic garbage per extra step with the plain path on as off."""

    async def fails_later(**_: Any) -> int:
        await asyncio.sleep(0)
        raise ValueError("no")

    async def fails_at_once(**_: Any) -> int:
        raise ValueError("no")

    def fails_in_thread(**_: Any) -> int:
        raise ValueError("no")

    calls: dict[int, int] = {}

    async def flaky(i: int, **_: Any) -> int:  # every odd call fails, at once or later
        calls[i] = calls.get(i, 0) + 1
        if calls[i] % 2 and i % 2:
            raise ValueError("at once")
        await asyncio.sleep(0)
        if calls[i] % 2:
            raise ValueError("later")
        return i

    def make(n: int) -> fluxnb.Workflow:
        again = RetryPolicy(max_attempts=2, backoff="none")
        wf = fluxnb.Workflow()
        wf.add("root", sleepy)
        fns: list[Callable[..., Any]] = [
            fails_later,
            fails_at_once,
            fails_in_thread,
            sleepy,
            quick,
            flaky,
        ]
        for i in range(n):
            fn = fns[i % len(fns)]
            extra: dict[str, Any] = {"with_": {"i": i}, "retry": again} if fn is flaky else {}
            wf.add(f"a{i}", sleepy, depends_on=["root"])
            wf.add(f"f{i}", fn, depends_on=[f"a{i}"], on_error="continue", **extra)
        return wf

    def garbage(wf: fluxnb.Workflow, plain: bool) -> int:
        with engine(plain):
            wf.run(store=None)  # warm: the plan is cached
            gc.collect()
            gc.disable()
            try:
                wf.run(store=None)
                return gc.collect()
            finally:
                gc.enable()

    small, big = make(100), make(400)
    per_step = {p: (garbage(big, p) - garbage(small, p)) / 600 for p in (False, True)}
    assert per_step[True] <= per_step[False] + 0.05, per_step


def test_a_recorder_refusing_the_row_of_a_plain_step_that_suspended() -> None:
    """The ``untaken`` path from ``_ended``: the step fails with the recorder's error,
    the run ends (it does not wait for a report that was lost)."""
    seen = {}
    for plain, hand in COMBOS:

        class Refuses(MemoryRecorder):
            def event(self, row: Any) -> None:
                if row[2] == "b" and row[4] == "succeeded":
                    raise UnicodeEncodeError("utf-8", "x", 0, 1, "refused")
                super().event(row)

        rec = Refuses()
        wf = chain(3)
        wf.add("b", sleepy, depends_on=["s2"])
        wf.add("c", sleepy, depends_on=["b"])
        with engine(plain, hand):
            result = bounded(functools.partial(wf.arun, store=rec))
        seen[(plain, hand)] = (view(result), [(r[1], r[2], r[3], r[4]) for r in rec.events])
    assert all(s == seen[(False, False)] for s in seen.values()), seen
    v = seen[(True, True)][0]
    assert v[0] == "failed" and v[2]["b"][0] == "failed"
    assert "could not record how step 'b' ended" in v[2]["b"][2][1]


def ending(wf: fluxnb.Workflow, store: Any, bound: float = 0.5) -> tuple[str, Any]:
    """How a run of ``wf`` ended: ``("ended", result)``, ``("raised", "Type: message")``
    or ``("hung", None)`` after ``bound`` seconds. What its loop could not hand to anyone
    (a step's task that died) is dropped, and the garbage of a run that hung or raised is
    collected here, not while pytest formats a failure."""

    async def go() -> Any:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: None)
        return await asyncio.wait_for(wf.arun(store=store), bound)

    try:
        return "ended", asyncio.run(go())
    except TimeoutError:
        gc.collect()
        return "hung", None
    except Exception as exc:
        gc.collect()
        return "raised", f"{type(exc).__name__}: {exc}"


def interrupted(
    exc: type[BaseException], on_error: str, folder: Path, plain: bool, hand: bool, first: bool
) -> dict[str, tuple[list[Any], list[str]]]:
    """[s0 ->] b -> c where ``b`` raises ``exc`` at its first line (``at_once``, run
    inline by the run's own pump when ``first``, else from s0's end) or after an await
    (``later``): each run's events rows (step, attempt, status, error type) and its runs
    row's status."""

    async def at_once(**_: Any) -> int:
        raise exc("stop")

    async def later(**_: Any) -> int:
        await asyncio.sleep(0)
        raise exc("stop")

    seen = {}
    for fn in (at_once, later):
        wf = fluxnb.Workflow() if first else chain(1)
        wf.add("b", fn, depends_on=[] if first else ["s0"], on_error=on_error)
        wf.add("c", sleepy, depends_on=["b"])
        store = folder / f"{fn.__name__}.duckdb"
        with engine(plain, hand), pytest.raises(exc):
            wf.run(store=store)
        runs = fluxnb.store(str(store)).sql("SELECT status FROM runs").status.tolist()
        seen[fn.__name__] = ([(r[1], r[2], r[3], r[5]) for r in events(store)], runs)
    return seen


# ====================================================================== bugs found
def _refusing(statuses: set[str]) -> Any:
    class Refuses(MemoryRecorder):
        def event(self, row: Any) -> None:
            if row[2] == "b" and row[4] in statuses:
                raise UnicodeEncodeError("utf-8", "x", 0, 1, "refused")
            super().event(row)

    return Refuses()


# found here, fixed in df095d3: the error escaped the pump (arun raised it, or the run hung)
@pytest.mark.parametrize("started_by", ["the run", "a step's end"])
def test_a_recorder_refusing_the_row_of_a_step_that_ended_inline(started_by: str) -> None:
    """Expected as for a step that suspended: ``b`` fails with 'could not record how step
    'b' ended', the run ends failed."""
    for plain, hand in COMBOS:
        wf = fluxnb.Workflow()
        if started_by == "a step's end":
            wf.add("a", sleepy)
        wf.add("b", quick, depends_on=["a"] if started_by == "a step's end" else [])
        wf.add("c", sleepy, depends_on=["b"])
        with engine(plain, hand):
            how, result = ending(wf, _refusing({"succeeded"}))
        assert how == "ended", (plain, hand, how, result)
        assert result.status is RunStatus.FAILED
        assert "could not record how step 'b' ended" in result.steps["b"].error.message


# found here, fixed in df095d3: untaken wrote the refused row again and the run hung
@pytest.mark.parametrize("strategy", ["stop", "skip"])
@pytest.mark.parametrize("where", ["first line", "after a suspension"])
def test_a_recorder_refusing_a_failed_steps_row_ends_the_run(strategy: str, where: str) -> None:
    """Expected: the run ends (failed), ``b`` failed, whatever could not be recorded."""

    async def bad(**_: Any) -> int:
        if where == "first line":
            raise ValueError("bad")
        await asyncio.sleep(0)
        raise ValueError("bad")

    for plain, hand in COMBOS:
        wf = fluxnb.Workflow()
        wf.add("a", sleepy)
        wf.add("b", bad, depends_on=["a"], on_error=strategy)
        wf.add("c", sleepy, depends_on=["b"])
        with engine(plain, hand):
            how, result = ending(wf, _refusing({"failed", "skipped"}))
        assert how == "ended", (plain, hand, how, result)
        assert result.status is RunStatus.FAILED
        assert result.steps["b"].status.value == "failed"


# found here, fixed in df095d3: the step had no row and was left 'running' (first step:
# the run recorded 'failed', 'the run reached a dead marking before finishing')
@pytest.mark.parametrize("first", [True, False], ids=["first step", "after a step"])
@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
def test_an_interrupt_at_a_steps_first_line_is_recorded_like_one_after_an_await(
    exc: type[BaseException], first: bool, tmp_path: Path
) -> None:
    for plain, hand in COMBOS:
        seen = interrupted(exc, "stop", tmp_path / f"{plain}-{hand}", plain, hand, first)
        assert seen["later"][1] == ["cancelled"]
        assert seen["at_once"] == seen["later"]


# found here, fixed in 29f40f1: on a function's first call (inline, a StandIn as the
# current task) the cancel was lost and the step succeeded
def test_a_step_cancelling_its_own_task_at_its_first_line_is_cancelled_every_time() -> None:
    """Expected as in asyncio: the cancel reaches the step at its next await, so both
    calls fail 'cancelled from inside'."""

    async def cancels(**_: Any) -> str:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(0)
        return "survived"

    for plain, hand in COMBOS:
        wf = chain(2)
        wf.add("first_call", cancels, depends_on=["s1"], on_error="continue")
        wf.add("second_call", cancels, depends_on=["s1"], on_error="continue")
        with engine(plain, hand):
            steps = bounded(functools.partial(wf.arun, store=None)).steps
        assert steps["first_call"].status == steps["second_call"].status
        assert steps["first_call"].status.value == "failed", (plain, hand)


# found here, fixed in 29f40f1: a task cancelled before its first turn never threw the
# cancellation into the step (cleanup only at garbage collection; timeout(0) failed it)
@pytest.mark.parametrize("how", ["the run stopped", "a timeout already expired"])
def test_a_step_cancelled_before_its_tasks_first_turn_sees_the_cancellation(how: str) -> None:
    """Expected as in asyncio: the CancelledError is thrown in at the step's await (its
    cleanup runs before the run returns; ``asyncio.timeout`` turns it into TimeoutError)."""
    for plain, hand in COMBOS:
        seen: list[str] = []

        async def waits(seen: list[str] = seen, **_: Any) -> str:
            try:
                if how == "the run stopped":
                    await asyncio.sleep(5)
                else:
                    async with asyncio.timeout(0):
                        await asyncio.sleep(5)
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise
            except TimeoutError:
                return "timed out"
            finally:
                seen.append("finally")
            return "no"

        async def fails_at_once(**_: Any) -> int:
            raise ValueError("stop the run")

        wf = fluxnb.Workflow()
        wf.add("waits", waits)
        if how == "the run stopped":
            wf.add("fails", fails_at_once)
        gc.disable()  # what the step did must show before the run returned, not at a collection
        try:
            with engine(plain, hand):
                result = bounded(functools.partial(wf.arun, store=None))
                returned = list(seen)
        finally:
            gc.enable()
        if how == "the run stopped":
            assert result.steps["waits"].status.value == "cancelled"
            assert returned == ["cancelled", "finally"]
        else:
            assert result.outputs.get("waits") == "timed out"
            assert returned == ["finally"]


# found here, fixed in 37d61db: the hook's error escaped the pump (arun raised it, or the
# run hung); it is a RuntimeWarning now
@pytest.mark.parametrize("started_by", ["the run", "a step's end"])
def test_a_progress_hook_that_raises_does_not_hang_or_break_the_run(started_by: str) -> None:
    """Expected: the run ends with a RunResult (progress is for show: its error may fail
    the step or be dropped, but never lose the run)."""

    class Progress(MemoryRecorder):
        def attempt_started(self, step: str, attempt: int) -> None:
            if step == "b":
                raise RuntimeError("the progress widget is gone")

    for plain, hand in COMBOS:
        wf = fluxnb.Workflow()
        if started_by == "a step's end":
            wf.add("a", sleepy)
        wf.add("b", sleepy, depends_on=["a"] if started_by == "a step's end" else [])
        wf.add("c", sleepy, depends_on=["b"])
        with engine(plain, hand), pytest.warns(RuntimeWarning, match="progress widget"):
            how, result = ending(wf, Progress())
        assert how == "ended", (plain, hand, how, result)


# found here, fixed in 1492827: the stand-in had no add_done_callback or get_coro
def test_a_steps_first_line_sees_a_current_task_with_a_tasks_methods() -> None:
    """Expected: both calls succeed and both done callbacks run."""
    for plain, hand in COMBOS:
        ended: list[str] = []

        async def uses_its_task(role: str, ended: list[str] = ended, **_: Any) -> str:
            task = asyncio.current_task()
            assert task is not None
            task.add_done_callback(lambda _: ended.append(role))
            name = getattr(task.get_coro(), "__name__", "?")
            await asyncio.sleep(0)
            return name

        wf = chain(1)
        wf.add("first_call", uses_its_task, depends_on=["s0"], with_={"role": "first"})
        wf.add("later_call", uses_its_task, depends_on=["first_call"], with_={"role": "later"})
        with engine(plain, hand):
            result = bounded(functools.partial(wf.arun, store=None))
        assert result.errors == {}, (plain, hand, result.errors)
        assert sorted(ended) == ["first", "later"]


# found here, fixed in 7fa5d6b: fluxnb.run() ran the loop inside an except block, so every
# step's traceback opened with 'RuntimeError: no running event loop'
def test_run_and_arun_record_the_same_traceback_for_a_failing_step() -> None:
    async def fails(**_: Any) -> int:
        raise KeyError("broken")

    def make() -> fluxnb.Workflow:
        wf = chain(1)
        wf.add("b", fails, depends_on=["s0"], on_error="continue")
        return wf

    for plain, hand in COMBOS:
        with engine(plain, hand):
            blocking = make().run(store=None).errors["b"].traceback
            awaited = bounded(functools.partial(make().arun, store=None)).errors["b"].traceback
        assert "During handling" not in blocking, blocking
        assert blocking == awaited


# found here, fixed in 7fa5d6b: a fan-out task (_plainly) reported a failure inside its
# except block, so steps started there carried that error as their __context__
def test_a_step_started_by_a_failed_steps_end_does_not_carry_its_exception() -> None:
    """30 branches: ``a{i}`` fails after a suspension (on_error: skip), so ``b{i}`` starts
    from its end, inline, and fails at its first line; its traceback is its own."""

    async def fails_later(i: int, **_: Any) -> int:
        await asyncio.sleep(0)
        raise ValueError(f"a{i} broke")

    async def fails_at_once(**_: Any) -> int:
        raise KeyError("b broke")

    wf = fluxnb.Workflow()
    for i in range(30):
        wf.add(f"a{i}", fails_later, with_={"i": i}, on_error="skip", default=0)
        wf.add(f"b{i}", fails_at_once, depends_on=[f"a{i}"], on_error="continue")
    for plain, hand in COMBOS:
        with engine(plain, hand):
            errors = bounded(functools.partial(wf.arun, store=None)).errors
        carried = [
            s
            for s, e in errors.items()
            if s[0] == "b" and "broke" in e.traceback.split("b broke")[0]
        ]
        assert carried == [], (plain, hand, carried, errors[carried[0]].traceback)


# found here, fixed in 7fa5d6b: on_error skip/continue tolerated a first-line interrupt
@pytest.mark.parametrize("strategy", ["skip", "continue"])
def test_an_interrupt_at_a_steps_first_line_is_never_tolerated_by_on_error(
    strategy: str, tmp_path: Path
) -> None:
    for plain, hand in COMBOS:
        folder = tmp_path / f"{plain}-{hand}"
        seen = interrupted(KeyboardInterrupt, strategy, folder, plain, hand, first=False)
        assert ("b", 1, "failed", "KeyboardInterrupt") in [r[:4] for r in seen["later"][0]]
        assert seen["at_once"] == seen["later"], (plain, hand)


# found here, fixed in be4b8b2: the other running steps were recorded failed 'cancelled
# from inside' (asyncio.run cancels every task after a KeyboardInterrupt)
def test_steps_running_when_another_raises_keyboard_interrupt_are_recorded_cancelled() -> None:
    """Ten runs in each combination (which task asyncio cancels first varies: a set's
    order): the waiting step is 'cancelled' every time."""

    async def interrupts(**_: Any) -> int:
        await asyncio.sleep(0)
        raise KeyboardInterrupt("stop")

    async def waits(**_: Any) -> int:
        await asyncio.sleep(5)
        return 1

    seen = set()
    for plain, hand in COMBOS:
        for _ in range(10):
            wf = fluxnb.Workflow()
            wf.add("waits", waits)
            wf.add("interrupts", interrupts)
            rec = MemoryRecorder()
            with engine(plain, hand), pytest.raises(KeyboardInterrupt):
                wf.run(store=rec)
            seen |= {(r[2], r[4], r[10]) for r in rec.events if r[2] == "waits"}
    assert seen == {("waits", "cancelled", None)}


# found here, fixed in be4b8b2: the first run to end shut the shared thread pool down
# (cancel_futures) under the other run's queued sync steps
def test_a_run_ending_does_not_cancel_another_runs_steps_on_a_shared_executor() -> None:
    """Expected: the long run succeeds (or sharing is refused with a clear error)."""
    from fluxnb.engine import LocalExecutor

    def in_thread(i: int, **_: Any) -> int:
        time.sleep(0.01)
        return i

    for plain, hand in COMBOS:
        short = chain(1)
        long = fluxnb.Workflow()
        for i in range(64):  # more than the pool's threads (32 at most): some wait
            long.add(f"t{i}", in_thread, with_={"i": i})

        async def both(short: fluxnb.Workflow = short, long: fluxnb.Workflow = long) -> Any:
            ex = LocalExecutor()
            return await asyncio.gather(
                long.arun(store=None, executor=ex), short.arun(store=None, executor=ex)
            )

        with engine(plain, hand):
            long_result, short_result = bounded(both)
        assert short_result.ok
        assert long_result.ok, (plain, hand, long_result.errors)


# found here, fixed in be4b8b2: the refused row escaped Scheduler._finish (arun raised it)
def test_a_recorder_refusing_a_never_started_steps_row_still_ends_the_run() -> None:
    async def fails(**_: Any) -> int:
        await asyncio.sleep(0)
        raise ValueError("bad")

    for plain, hand in COMBOS:
        wf = chain(1)
        wf.add("bad", fails, depends_on=["s0"])
        wf.add("b", sleepy, depends_on=["bad"])  # never starts: its row says 'cancelled'
        with engine(plain, hand):
            how, result = ending(wf, _refusing({"cancelled"}))
        assert how == "ended", (plain, hand, how, result)
        assert result.errors["bad"].type == "ValueError"


# found here, fixed in be4b8b2: the refused row was blamed on the failed step
def test_a_refused_row_of_a_skipped_dependent_is_not_blamed_on_the_failed_step() -> None:
    async def fails(**_: Any) -> int:
        await asyncio.sleep(0)
        raise ValueError("bad")

    for plain, hand in COMBOS:
        wf = chain(1)
        wf.add("bad", fails, depends_on=["s0"], on_error="continue")
        wf.add("b", sleepy, depends_on=["bad"])  # skipped: its row is refused
        with engine(plain, hand):
            how, result = ending(wf, _refusing({"skipped"}))
        assert how == "ended", (plain, hand, how, result)
        assert (result.errors["bad"].type, result.errors["bad"].message) == ("ValueError", "bad")


# found here, fixed in 010a311: the executor kept one context, the first or last opener's
def test_concurrent_runs_on_a_shared_executor_keep_their_callers_context() -> None:
    """Expected: each run's steps see what its own caller set."""
    from fluxnb.engine import LocalExecutor

    async def step(**_: Any) -> str:
        await asyncio.sleep(0.001)
        return WHO.get()

    async def both() -> Any:
        ex = LocalExecutor()

        async def as_(who: str) -> Any:
            WHO.set(who)
            return await chain(5, step, prefix=who).arun(store=None, executor=ex)

        return await asyncio.gather(as_("x"), as_("y"))

    for plain, hand in COMBOS:
        with engine(plain, hand):
            rx, ry = bounded(both)
        assert set(rx.outputs.values()) == {"x"}, (plain, hand, rx.outputs)
        assert set(ry.outputs.values()) == {"y"}, (plain, hand, ry.outputs)


# found here, fixed in 9726763 (_loop._LoopThread._serve): the
# step's interrupt killed the 'fluxnb-loop' thread and fluxnb.run() waited for ever
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("where", ["first line", "after a suspension"])
def test_an_interrupt_in_a_step_of_a_blocking_run_inside_a_running_loop(where: str) -> None:
    """Expected as from a script: fluxnb.run() raises the interrupt (the run recorded)."""
    import threading

    from fluxnb.engine import _loop

    async def interrupts(**_: Any) -> int:
        if where == "after a suspension":
            await asyncio.sleep(0)
        raise SystemExit("stop")

    saved = _loop._LoopThread._instance
    _loop._LoopThread._instance = None  # a loop thread of this test's own: it may die
    try:
        for plain, hand in COMBOS:
            wf = chain(1)
            wf.add("b", interrupts, depends_on=["s0"])
            outcome: list[str] = []

            async def cell(wf: fluxnb.Workflow = wf, outcome: list[str] = outcome) -> None:
                try:  # a blocking call with a loop running: as in a notebook cell
                    wf.run(store=None)
                    outcome.append("returned")
                except SystemExit:
                    outcome.append("raised")

            def in_a_cell(cell: Any = cell) -> None:
                asyncio.run(cell())

            with engine(plain, hand):
                caller = threading.Thread(target=in_a_cell, daemon=True)
                caller.start()
                caller.join(1.0)
            assert outcome == ["raised"], (plain, hand, "hung" if caller.is_alive() else outcome)
    finally:
        mine = _loop._LoopThread._instance
        if mine is not None:  # what its dead loop never handed on is dropped, not logged
            mine.loop.set_exception_handler(lambda loop, context: None)
        _loop._LoopThread._instance = saved


# found here, fixed in 9726763 (_executor._drive returns the step's value): a task
# that ran a step and was handed none ended with None
def test_a_done_callback_on_a_steps_task_sees_the_steps_result() -> None:
    """Expected as in asyncio: every callback sees the step's own return value."""
    for plain, hand in COMBOS:
        results: list[Any] = []

        async def adds_callback(n: int, results: list[Any] = results, **_: Any) -> int:
            task = asyncio.current_task()
            assert task is not None
            task.add_done_callback(lambda t: results.append(t.result()))
            await asyncio.sleep(0)
            return n

        wf = fluxnb.Workflow()
        for i in range(3):
            wf.add(f"s{i}", adds_callback, depends_on=[f"s{i - 1}"] if i else [], with_={"n": i})
        with engine(plain, hand):
            assert bounded(functools.partial(wf.arun, store=None)).ok
        assert sorted(results, key=repr) == [0, 1, 2], (plain, hand, results)

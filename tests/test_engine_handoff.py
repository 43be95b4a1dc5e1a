"""A step's task runs the next step it lets start (a chain's next step, a layer's): no new
task and no turn of the loop before that step's first line. What must not change with it:
each step's own context, cancellation, timeouts, retries, a step that kept its task."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import sys
from typing import Any

import pytest

import fluxnb
from fluxnb import RunStatus, StepStatus
from fluxnb.spec import RetryPolicy

from .engine_helpers import chain, counted, sleepy

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("handoff_test_var", default="unset")


suspends = sleepy  # a step that suspends once (tests/engine_helpers.py)


def run_counting_tasks(wf: fluxnb.Workflow) -> tuple[Any, int]:
    """Run ``wf`` (bounded) on a loop whose task factory counts the tasks it makes."""
    return counted(functools.partial(wf.arun, store=None))


def test_a_chain_of_suspending_steps_runs_on_one_task() -> None:
    result, tasks = run_counting_tasks(chain(40))
    assert result.ok and result["s39"] == 40  # outputs passed along the chain
    # the run's own task, the first step's (it ran inline until it suspended, and its task
    # runs no handed step: see continue_in_task), the second step's, and no more
    assert tasks <= 4, f"{tasks} tasks for 40 chained steps"


def test_a_fan_out_still_runs_its_branches_concurrently() -> None:
    """Only one of the steps an end lets start is handed over; the others get tasks of
    their own and run at the same time."""
    order: list[str] = []

    async def branch(root: int) -> int:
        order.append("in")
        await asyncio.sleep(0.02)
        order.append("out")
        return root

    wf = fluxnb.Workflow()
    wf.add("root", suspends)
    for i in range(4):
        wf.add(f"b{i}", branch)
    result = fluxnb.run(wf, store=None)
    assert result.ok
    assert order == ["in"] * 4 + ["out"] * 4


def test_each_handed_step_has_its_own_context() -> None:
    """A context variable set by one step is not seen by the step that runs next on the
    same task; every step sees the caller's value."""
    seen: list[str] = []

    async def step(**_: Any) -> int:
        seen.append(VAR.get())
        VAR.set("leaked")
        await asyncio.sleep(0)
        seen.append(VAR.get())
        return 1

    token = VAR.set("callers")
    try:
        result, tasks = run_counting_tasks(chain(6, step))
    finally:
        VAR.reset(token)
    assert result.ok and tasks <= 4
    assert seen == ["callers", "leaked"] * 6


def test_a_step_that_kept_its_task_does_not_hand_it_on() -> None:
    """A step that kept ``asyncio.current_task()`` could cancel it after it returned: a
    finished task's cancel does nothing, and must not reach the step running next."""
    kept: list[Any] = []

    async def step(role: str, **_: Any) -> str:
        if role == "cancel":
            kept[0].cancel()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        if role == "keep":
            kept.append(asyncio.current_task())
        return role

    wf = fluxnb.Workflow()
    # ``warm`` makes ``step`` known to suspend: ``keep`` is handed to warm's task
    wf.add("warm", step, with_={"role": "warm"})
    wf.add("keep", step, depends_on=["warm"], with_={"role": "keep"})
    wf.add("cancel", step, depends_on=["keep"], with_={"role": "cancel"})
    result = fluxnb.run(wf, store=None)
    assert result.ok, result.reason
    assert result["cancel"] == "cancel"


def test_a_stop_between_hand_over_and_first_line_never_runs_the_step() -> None:
    """The root's end hands ``b`` to the root's task, then starts ``boom``, which fails at
    once and stops the run: ``b`` is cancelled before its first line, as a task cancelled
    before it started is."""
    ran: list[str] = []

    async def b(**_: Any) -> int:
        ran.append("b")
        await asyncio.sleep(0)
        return 1

    async def boom(**_: Any) -> int:
        raise RuntimeError("at once")

    wf = fluxnb.Workflow()
    wf.add("warm", b, depends_on=[])  # ``b`` is then known to suspend: it is handed over
    wf.add("root", suspends, depends_on=["warm"])
    wf.add("b", b, depends_on=["root"])
    wf.add("boom", boom, depends_on=["root"])
    ran.clear()
    result = fluxnb.run(wf, store=None)
    assert result.status is RunStatus.FAILED
    assert result.steps["boom"].status is StepStatus.FAILED
    assert result.steps["b"].status is StepStatus.CANCELLED
    assert ran == ["b"]  # the warm-up's call only


def test_timeouts_and_retries_of_handed_steps() -> None:
    """A handed step's timeout cancels that step only (its retry then runs); a failing
    handed step is retried; asyncio.timeout inside a handed step works."""
    calls: dict[str, int] = {"slow": 0, "flaky": 0}

    async def slow(**_: Any) -> str:
        calls["slow"] += 1
        await asyncio.sleep(5 if calls["slow"] == 1 else 0)
        return "slow"

    async def flaky(**_: Any) -> str:
        calls["flaky"] += 1
        await asyncio.sleep(0)
        if calls["flaky"] < 3:
            raise ConnectionError("again")
        return "flaky"

    async def inner_timeout(**_: Any) -> str:
        try:
            async with asyncio.timeout(0.02):
                await asyncio.sleep(5)
        except TimeoutError:
            return "timed out inside"
        return "no"

    again = RetryPolicy(max_attempts=3, backoff="none", initial_delay=0)
    wf = fluxnb.Workflow()
    wf.add("a", suspends)
    wf.add("slow", slow, depends_on=["a"], timeout=0.05, retry=again)
    wf.add("flaky", flaky, depends_on=["slow"], retry=again)
    wf.add("inner", inner_timeout, depends_on=["flaky"])
    wf.add("last", suspends, depends_on=["inner"])
    result = fluxnb.run(wf, store=None)
    assert result.ok, result.reason
    assert result["slow"] == "slow" and result.steps["slow"].attempts == 2
    assert result["flaky"] == "flaky" and result.steps["flaky"].attempts == 3
    assert result["inner"] == "timed out inside"


def test_a_chain_of_steps_that_stop_suspending_still_yields_to_the_loop() -> None:
    """A function once seen to suspend may return at once later: handed steps that did
    not suspend do not run on and on in one turn of the loop (other tasks get turns)."""
    first = [True]

    async def sometimes(**_: Any) -> int:
        if first[0]:
            first[0] = False
            await asyncio.sleep(0)
        return 1

    ticks = [0]
    seen: list[int] = []

    async def ticker() -> None:
        while True:
            ticks[0] += 1
            await asyncio.sleep(0)

    async def recorder(**_: Any) -> int:
        seen.append(ticks[0])
        return await sometimes()

    wf = chain(200, recorder)

    async def main() -> Any:
        tick = asyncio.create_task(ticker())
        try:
            return await wf.arun(store=None)
        finally:
            tick.cancel()

    first[0] = True
    result = asyncio.run(main())
    assert result.ok
    # the other task ran between the chain's steps, not only once at its end
    assert len(set(seen)) > 50


def test_after_a_wide_fan_out_the_branches_chains_still_run_on_their_tasks() -> None:
    """A fan-out's many tasks start plain (their ends mostly start nothing); the steps
    after them run on as before: 40 branches of 5 chained steps need far fewer tasks
    than steps."""
    wf = fluxnb.Workflow()
    wf.add("root", suspends)
    for b in range(40):
        for i in range(5):
            wf.add(f"b{b}_{i}", suspends, depends_on=[f"b{b}_{i - 1}" if i else "root"])
    result, tasks = run_counting_tasks(wf)
    assert result.ok and result["b39_4"] == 6
    assert tasks < 100, f"{tasks} tasks for 201 steps"


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.eager_task_factory: 3.12+")
def test_an_eager_task_factory_runs_every_step_once_and_in_its_own_place() -> None:
    """With an eager factory a step's task runs inside the call that makes it: a step that
    ended there, before the runner took its task, made the run wait for ever (with or
    without the hand-over); and a step may end inside another step's report, so a step
    handed to one task must be run by that task only."""
    calls: list[str] = []

    async def step(name: str, fast: bool = False, **_: Any) -> str:
        calls.append(name)
        if not fast:
            await asyncio.sleep(0)
        return name

    def make() -> fluxnb.Workflow:
        wf = fluxnb.Workflow()
        wf.add("warm", step, with_={"name": "warm"})
        for b in range(6):
            wf.add(f"a{b}", step, depends_on=["warm"], with_={"name": f"a{b}", "fast": b % 2 == 0})
            wf.add(f"c{b}", step, depends_on=[f"a{b}"], with_={"name": f"c{b}"})
        return wf

    async def main() -> Any:
        asyncio.get_running_loop().set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
        return await asyncio.wait_for(make().arun(store=None), 20)  # a hang fails

    result = asyncio.run(main())
    assert result.ok, result.reason
    assert sorted(calls) == sorted(result.outputs)  # each step called once
    assert all(result[sid] == sid for sid in result.outputs)

"""One attempt runner for both token games: every resilience behaviour, on a DAG step and on
a net transition, asserted the same way (through the trace both write)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

import fluxnb

FORMS = ["dag", "net"]
_ids = itertools.count()


def manifest(form: str, action: str, **cfg: Any) -> str:
    """A one-action workflow of either form; ``cfg`` is the action's resilience settings
    (an agent's keys for a DAG step, the transition's own for a net)."""
    if form == "dag":
        agent = {"id": action, **cfg}
        return json.dumps(
            {"name": f"one-{form}", "agents": [agent], "pipeline": [{"step": action}]}
        )
    transition = {"id": action, "inputs": ["p"], "outputs": ["q"], "run": action, **cfg}
    return json.dumps(
        {
            "name": f"one-{form}",
            "net": {"places": {"p": 1, "q": 0}, "transitions": [transition]},
        }
    )


def unique(name: str, form: str) -> str:
    """A fresh action id: breakers are shared across runs by id, tests must not share."""
    return f"{name}_{form}_{next(_ids)}"


def events(store: str, action: str) -> list[dict[str, Any]]:
    frame = fluxnb.sql(
        "SELECT attempt, status, final, error_type, error_message, executor, worker "
        "FROM events WHERE step = $s ORDER BY attempt",
        {"s": action},
        store=store,
    )
    return frame.to_dict("records")


def statuses(store: str, action: str) -> list[tuple[int, str]]:
    return [(e["attempt"], e["status"]) for e in events(store, action)]


@pytest.mark.parametrize("form", FORMS)
def test_retry_with_backoff_until_it_succeeds(form: str, store_path: str) -> None:
    act = unique("flaky", form)
    calls: list[float] = []

    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ConnectionError("try again")
        return "ok"

    retry = {"max_attempts": 3, "backoff": "linear", "initial_delay": "30ms"}
    result = fluxnb.run(manifest(form, act, retry=retry), {act: flaky}, store=store_path)
    assert result.status is fluxnb.RunStatus.SUCCEEDED
    assert statuses(store_path, act) == [(1, "failed"), (2, "failed"), (3, "succeeded")]
    assert calls[1] - calls[0] >= 0.025  # the backoff was waited, not skipped


@pytest.mark.parametrize("form", FORMS)
def test_retry_filters_decide_what_is_retried(form: str, store_path: str) -> None:
    act = unique("typed", form)

    def typed() -> None:
        raise TypeError("a bug, not a glitch")

    retry = {"max_attempts": 3, "retry_on": ["ConnectionError"]}
    result = fluxnb.run(manifest(form, act, retry=retry), {act: typed}, store=store_path)
    assert result.status is fluxnb.RunStatus.FAILED
    assert [(e["attempt"], e["status"], e["error_type"]) for e in events(store_path, act)] == [
        (1, "failed", "TypeError")
    ]


@pytest.mark.parametrize("form", FORMS)
def test_timeout_cancels_a_slow_action(form: str, store_path: str) -> None:
    act = unique("slow", form)

    async def slow() -> None:
        await asyncio.sleep(10)

    t = time.monotonic()
    result = fluxnb.run(manifest(form, act, timeout="100ms"), {act: slow}, store=store_path)
    assert time.monotonic() - t < 5
    assert result.status is fluxnb.RunStatus.FAILED
    [e] = events(store_path, act)
    assert e["error_type"] == "TimeoutError" and "exceeded its timeout of" in e["error_message"]


@pytest.mark.parametrize("form", FORMS)
def test_a_breaker_opens_and_the_action_is_not_called(form: str, store_path: str) -> None:
    act = unique("down", form)
    calls: list[int] = []

    def down() -> None:
        calls.append(1)
        raise ConnectionError("service down")

    text = manifest(form, act, circuit_breaker={"failure_threshold": 2, "reset_timeout": "1h"})
    for _ in range(3):
        assert not fluxnb.run(text, {act: down}, store=store_path).ok
    assert len(calls) == 2  # the third run was short-circuited
    last = events(store_path, act)[-1]
    assert last["error_type"] == "CircuitOpenError"
    opened = fluxnb.sql(
        "SELECT to_state FROM circuit_events WHERE agent = $a", {"a": act}, store=store_path
    )
    assert opened.to_state.tolist() == ["open"]


@pytest.mark.parametrize("form", FORMS)
def test_a_half_open_probe_that_hangs_times_out_and_reopens(form: str, store_path: str) -> None:
    act = unique("probe", form)
    state = {"n": 0}

    async def probe() -> None:
        state["n"] += 1
        if state["n"] == 1:
            raise ConnectionError("down")
        await asyncio.sleep(10)  # the probe hangs

    breaker = {"failure_threshold": 1, "reset_timeout": "50ms", "probe_timeout": "100ms"}
    text = manifest(form, act, circuit_breaker=breaker)
    assert not fluxnb.run(text, {act: probe}, store=store_path).ok
    time.sleep(0.08)
    t = time.monotonic()
    assert not fluxnb.run(text, {act: probe}, store=store_path).ok
    assert time.monotonic() - t < 5
    assert events(store_path, act)[-1]["error_type"] == "TimeoutError"
    changes = fluxnb.sql(
        "SELECT to_state, reason FROM circuit_events WHERE agent = $a ORDER BY occurred_at",
        {"a": act},
        store=store_path,
    )
    assert changes.to_state.tolist() == ["open", "half_open", "open"]
    assert "probe failed" in changes.reason.iloc[-1]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("strategy", ["stop", "continue", "skip"])
def test_error_strategies(form: str, strategy: str, store_path: str) -> None:
    act = unique("bad", form)

    def bad() -> None:
        raise ValueError("bad input")

    cfg: dict[str, Any] = {"on_error": strategy}
    if strategy == "skip":
        cfg["default"] = "fallback"
    result = fluxnb.run(manifest(form, act, **cfg), {act: bad}, store=store_path)
    [e] = events(store_path, act)
    if strategy == "skip":
        assert e["status"] == "skipped" and e["error_type"] == "ValueError"
        assert result.status is fluxnb.RunStatus.SUCCEEDED
    else:
        assert e["status"] == "failed" and e["final"]
        assert result.status is not fluxnb.RunStatus.SUCCEEDED


@pytest.mark.parametrize("form", FORMS)
def test_cancellation_records_the_running_attempt(form: str, store_path: str) -> None:
    act = unique("long", form)

    async def main() -> None:
        started = asyncio.Event()

        async def long() -> None:
            started.set()
            await asyncio.sleep(30)

        task = asyncio.ensure_future(
            fluxnb.arun(manifest(form, act), {act: long}, store=store_path)
        )
        await asyncio.wait_for(started.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert statuses(store_path, act) == [(1, "cancelled")]
    run = fluxnb.sql("SELECT status FROM runs", store=store_path)
    assert run.status.tolist() == ["cancelled"]


@pytest.mark.parametrize("form", FORMS)
def test_metering_through_ctx(form: str, store_path: str) -> None:
    act = unique("metered", form)

    def metered(ctx: Any) -> int:
        ctx.meter("rows_written", 5)
        return ctx.attempt

    fluxnb.run(manifest(form, act), {act: metered}, store=store_path, tenant="acme")
    used = fluxnb.sql(
        "SELECT unit, sum(quantity) AS q FROM usage WHERE step = $s GROUP BY unit ORDER BY unit",
        {"s": act},
        store=store_path,
    )
    q = {r.unit: r.q for r in used.itertuples()}
    assert q["invocations"] == 1 and q["rows_written"] == 5


@pytest.mark.parametrize("form", FORMS)
def test_worker_placement_on_dask(form: str, store_path: str, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    act = unique("where", form)

    def where() -> int:
        return os.getpid()

    result = fluxnb.run(manifest(form, act, executor="dask"), {act: where}, store=store_path)
    assert result.ok
    [e] = events(store_path, act)
    assert e["executor"] == "dask" and e["worker"]  # the worker's address is in the trace
    pid = result[act] if form == "dag" else result.outputs[act]
    assert pid != os.getpid()


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("kind", ["async", "thread"])
def test_a_retry_right_after_a_timeout_is_not_failed_by_the_first_attempt(
    form: str, kind: str, store_path: str
) -> None:
    """The retry reuses the attempt's bookkeeping: the first attempt's late end (its
    cancelled task, its abandoned thread) must not settle the second attempt."""
    act = unique("late", form)
    calls: list[int] = []

    async def late_async() -> int:
        calls.append(1)
        await asyncio.sleep(0.3 if len(calls) == 1 else 0.01)
        return len(calls)

    def late_thread() -> int:
        calls.append(1)
        time.sleep(0.3 if len(calls) == 1 else 0.01)
        return len(calls)

    fn = late_async if kind == "async" else late_thread
    text = manifest(form, act, timeout="100ms", retry={"max_attempts": 3, "backoff": "none"})
    result = fluxnb.run(text, {act: fn}, store=store_path)
    assert result.status is fluxnb.RunStatus.SUCCEEDED, events(store_path, act)
    assert statuses(store_path, act) == [(1, "failed"), (2, "succeeded")]


def test_each_step_starts_from_the_runs_own_context(store_path: str) -> None:
    """Steps started from inside a finished step's task do not see what it set."""
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def a() -> int:
        await asyncio.sleep(0.01)
        var.set("set-by-a")
        return 1

    async def b(a: int) -> str:
        return var.get()

    def c(a: int) -> str:
        return var.get()

    text = (
        "pipeline:\n  - step: a\n  - step: b\n    depends_on: a\n  - step: c\n    depends_on: a\n"
    )
    result = fluxnb.run(text, {"a": a, "b": b, "c": c}, store=None)
    assert (result["b"], result["c"]) == ("unset", "unset")


def test_a_stop_leaves_no_coroutine_never_awaited() -> None:
    import warnings

    async def fails() -> None:
        await asyncio.sleep(0)
        raise ValueError("stop the run")

    async def waits(**_: Any) -> None:
        await asyncio.sleep(0.5)

    ns: dict[str, Any] = {"fails": fails, **{f"x{i}": waits for i in range(50)}}
    text = "pipeline:\n  - step: fails\n" + "".join(f"  - step: x{i}\n" for i in range(50))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        asyncio.run(fluxnb.arun(text, ns, store=None))
        import gc

        gc.collect()
    assert not [w for w in seen if "never awaited" in str(w.message)]

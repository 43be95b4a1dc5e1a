"""The scheduler: outputs, order, concurrency, failures, timeouts, retries, cancellation."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from typing import Any

import pytest

import fluxnb
from fluxnb import ResolutionError, RunStatus, StepFailed, StepStatus
from fluxnb.testing import MemoryRecorder, failing, flaky, sleeping

from .conftest import SAMPLES


def diamond(ns: dict[str, Any], **router: Any) -> fluxnb.Workflow:
    text = "pipeline:\n  - step: a\n  - step: b\n    depends_on: a\n  - step: c\n    depends_on: a\n  - step: d\n    depends_on: [b, c]\n"
    wf = fluxnb.load(text)
    if router:
        wf.router = fluxnb.RouterSettings(**router)
    return wf


def test_outputs_flow_as_keyword_arguments_in_declared_order() -> None:
    ns = {
        "a": lambda: 2,
        "b": lambda a: a * 10,
        "c": lambda a: a + 1,
        "d": lambda b, c: (b, c),
    }
    result = fluxnb.run(diamond(ns), ns, store=None)
    assert result.ok and result.status is RunStatus.SUCCEEDED
    assert list(result.outputs) == ["a", "b", "c", "d"]
    assert result["d"] == (20, 3)
    assert all(s.status is StepStatus.SUCCEEDED and s.attempts == 1 for s in result.steps.values())


def test_with_values_and_ctx() -> None:
    seen: dict[str, Any] = {}

    def score(fetch: int, threshold: float, ctx: fluxnb.StepContext) -> bool:
        seen["ctx"] = ctx
        return fetch > threshold

    text = "pipeline:\n  - step: fetch\n  - step: score\n    depends_on: fetch\n    with: {threshold: 0.5}\n"
    result = fluxnb.run(text, {"fetch": lambda: 1, "score": score}, store=None)
    assert result["score"] is True
    ctx = seen["ctx"]
    assert (ctx.run_id, ctx.step, ctx.attempt) == (result.run_id, "score", 1)
    assert ctx.logger.extra["run_id"] == result.run_id


def test_dependency_not_in_signature_only_orders() -> None:
    order: list[str] = []
    ns = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    result = fluxnb.run("pipeline:\n  - step: b\n    depends_on: a\n  - step: a\n", ns, store=None)
    assert result.ok and order == ["a", "b"]


def test_sync_steps_run_in_threads_async_on_the_loop() -> None:
    threads: dict[str, str] = {}

    def sync_step() -> str:
        threads["sync"] = threading.current_thread().name
        return "s"

    async def async_step() -> str:
        threads["async"] = threading.current_thread().name
        return "a"

    fluxnb.run("pipeline:\n  - step: sync_step\n  - step: async_step\n", locals(), store=None)
    assert threads["sync"].startswith("fluxnb-step")
    assert not threads["async"].startswith("fluxnb-step")


def test_steps_start_when_their_inputs_are_ready_not_by_level() -> None:
    """A fast chain must not wait for a slow node of its 'level' (W3b's trap)."""
    stamps: dict[str, float] = {}

    def mark(name: str, delay: float):
        async def step(**_: Any) -> None:
            await asyncio.sleep(delay)
            stamps[name] = time.perf_counter()

        return step

    wf = fluxnb.Workflow()
    wf.add("slow", mark("slow", 0.3))
    wf.add("fast1", mark("fast1", 0.01))
    wf.add("fast2", mark("fast2", 0.01), depends_on=["fast1"])
    wf.add("fast3", mark("fast3", 0.01), depends_on=["fast2"])
    wf.add("join", mark("join", 0.0), depends_on=["slow", "fast3"])
    result = wf.run(store=None)
    assert result.ok
    assert stamps["fast3"] < stamps["slow"]
    assert stamps["join"] >= stamps["slow"]


def test_worker_pool_size_bounds_concurrency() -> None:
    live = 0
    peak = 0

    async def step(**_: Any) -> None:
        nonlocal live, peak
        live += 1
        peak = max(peak, live)
        await asyncio.sleep(0.01)
        live -= 1

    wf = fluxnb.Workflow(router=fluxnb.RouterSettings(worker_pool_size=3))
    for i in range(12):
        wf.add(f"s{i}", step)
    start = time.perf_counter()
    assert wf.run(store=None).ok
    assert peak == 3
    assert time.perf_counter() - start >= 0.035  # 12 steps / 3 at a time x 10 ms


def test_independent_sleeps_overlap() -> None:
    wf = fluxnb.Workflow()
    for i in range(200):
        wf.add(f"s{i}", sleeping(0.05))
    start = time.perf_counter()
    assert wf.run(store=None).ok
    # 200 x 50 ms in sequence would be 10 s; overlapped ~0.05 s (a loaded CI machine: a margin)
    assert time.perf_counter() - start < 3.0


def test_failure_stops_the_run_and_cancels_running_steps() -> None:
    cancelled = threading.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def boom() -> None:
        await asyncio.sleep(0.02)
        raise ValueError("bad row 17")

    rec = MemoryRecorder()
    text = "pipeline:\n  - step: slow\n  - step: boom\n  - step: after\n    depends_on: boom\n"
    start = time.perf_counter()
    result = fluxnb.run(text, {"slow": slow, "boom": boom, "after": lambda: 1}, store=rec)
    assert time.perf_counter() - start < 2
    assert result.status is RunStatus.FAILED
    assert cancelled.is_set()
    assert result.steps["boom"].status is StepStatus.FAILED
    assert result.steps["slow"].status is StepStatus.CANCELLED
    assert result.steps["after"].status is StepStatus.CANCELLED
    assert result.errors["boom"].type == "ValueError"
    assert "bad row 17" in result.errors["boom"].traceback
    assert "_scheduler.py" not in result.errors["boom"].traceback.splitlines()[1]
    rows = {r["step"]: r for r in rec.rows()}
    assert rows["boom"]["status"] == "failed" and rows["boom"]["final"] is True
    assert rows["slow"]["status"] == "cancelled"
    assert rows["after"]["status"] == "cancelled" and rows["after"]["attempt"] == 0
    assert rec.runs[-1].status == "failed"
    assert "ValueError" in (rec.runs[-1].error or "")
    with pytest.raises(StepFailed) as info:
        result.raise_for_status()
    assert info.value.step == "boom"


class OddError(BaseException):
    """Not an Exception: still contained."""


def test_odd_base_exceptions_are_contained() -> None:
    def odd() -> None:
        raise OddError("weird")

    async def odd_async() -> None:
        raise OddError("weird async")

    for fn in (odd, odd_async):
        result = fluxnb.run("pipeline:\n  - step: s\n", {"s": fn}, store=None)
        assert result.status is RunStatus.FAILED
        assert result.errors["s"].type == "OddError"


def test_async_timeout_cancels_the_step() -> None:
    state = {}

    async def hang() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            state["cancelled"] = True
            raise

    text = "agents:\n  - id: hang\n    timeout: 100ms\npipeline:\n  - step: hang\n"
    start = time.perf_counter()
    result = fluxnb.run(text, {"hang": hang}, store=None)
    assert 0.09 < time.perf_counter() - start < 2
    assert result.errors["hang"].type == "TimeoutError"
    assert "100ms" in result.errors["hang"].message
    assert state["cancelled"]


def test_sync_timeout_abandons_the_thread() -> None:
    release = threading.Event()

    def stuck() -> None:
        release.wait(5)

    text = "router:\n  default_timeout: 100ms\npipeline:\n  - step: stuck\n"
    start = time.perf_counter()
    result = fluxnb.run(text, {"stuck": stuck}, store=None)
    release.set()
    assert time.perf_counter() - start < 2
    assert result.errors["stuck"].type == "TimeoutError"
    assert "abandoned" in result.errors["stuck"].message


def test_retry_count_retries_then_succeeds() -> None:
    step = flaky(fails=2, then="ok")
    rec = MemoryRecorder()
    text = (
        "agents:\n  - id: s\n    retry: {max_attempts: 3, backoff: linear, initial_delay: 20ms}\n"
        "pipeline:\n  - step: s\n"
    )
    result = fluxnb.run(text, {"s": step}, store=rec)
    assert result.ok and result["s"] == "ok"
    assert result.steps["s"].attempts == 3
    rows = rec.rows()
    assert [r["attempt"] for r in rows] == [1, 2, 3]
    assert [r["status"] for r in rows] == ["failed", "failed", "succeeded"]
    assert [r["final"] for r in rows] == [False, False, True]
    assert [r["delay_s"] for r in rows] == pytest.approx([0.0, 0.02, 0.04])
    assert rows[0]["error_type"] == "ConnectionError"


def test_retries_exhausted_fail_the_step() -> None:
    wf = fluxnb.Workflow()
    wf.add("s", failing(KeyError("k")), retry=fluxnb.RetryPolicy(max_attempts=2, backoff="none"))
    result = wf.run(store=None)
    assert result.status is RunStatus.FAILED
    assert result.steps["s"].attempts == 2
    assert result.errors["s"].attempt == 2


def test_retry_on_filters_by_exception_class() -> None:
    wf = fluxnb.Workflow()
    step = flaky(fails=1, exc=KeyError)
    wf.add(
        "s", step, retry=fluxnb.RetryPolicy(max_attempts=3, backoff="none", retry_on=("OSError",))
    )
    assert wf.run(store=None).steps["s"].attempts == 1  # KeyError is not an OSError
    step2 = flaky(fails=1, exc=ConnectionError)
    wf2 = fluxnb.Workflow()
    wf2.add(
        "s", step2, retry=fluxnb.RetryPolicy(max_attempts=3, backoff="none", retry_on=("OSError",))
    )
    assert wf2.run(store=None).steps["s"].attempts == 2  # ConnectionError is an OSError


def test_missing_callable_is_a_resolution_error_before_running() -> None:
    with pytest.raises(ResolutionError) as info:
        fluxnb.run("pipeline:\n  - step: fetch_data\n", {"fetch_dta": lambda: 1}, store=None)
    assert info.value.kind == "unresolved_callable"
    assert "did you mean 'fetch_dta'" in str(info.value)


def test_signature_mismatch_is_reported() -> None:
    with pytest.raises(ResolutionError) as info:
        fluxnb.run("pipeline:\n  - step: s\n    with: {x: 1}\n", {"s": lambda y: y}, store=None)
    assert info.value.kind == "bad_signature"
    assert "'x'" in str(info.value)
    with pytest.raises(ResolutionError):
        fluxnb.run("pipeline:\n  - step: s\n", {"s": lambda needed: 1}, store=None)


def test_module_attr_references_resolve() -> None:
    text = "agents:\n  - id: j\n    run: json:dumps\npipeline:\n  - step: src\n  - step: j\n    depends_on: src\n"
    with pytest.raises(ResolutionError):  # json.dumps(src=...) has no 'src' parameter...
        fluxnb.run(text, {"src": lambda: 1}, store=None)
    text2 = "agents:\n  - id: j\n    run: os.path:join\npipeline:\n  - step: j\n    with: {a: x}\n"
    assert fluxnb.run(text2, {}, store=None)["j"] == "x"


def test_load_with_namespace_resolves_eagerly() -> None:
    with pytest.raises(ResolutionError):
        fluxnb.load("pipeline:\n  - step: nothere\n", {})
    wf = fluxnb.load("pipeline:\n  - step: here\n", {"here": lambda: 1})
    assert len(wf) == 1


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_fluxroute_samples_run(path) -> None:
    wf = fluxnb.load(path)
    calls: list[str] = []

    def agent(name: str):
        def fn(**inputs: Any) -> str:
            calls.append(name)
            return f"{name}({','.join(inputs)})"

        return fn

    ns = {sid: agent(sid) for sid in wf.steps}
    result = fluxnb.run(wf, ns, store=None)
    assert result.ok, result.summary()
    assert sorted(calls) == sorted(wf.steps)
    for sid, step in wf.steps.items():
        for dep in step.depends_on:
            assert dep in result[sid]


def test_logical_sequence_is_deterministic() -> None:
    async def jitter(**_: Any) -> None:
        await asyncio.sleep(0.001 * (hash(time.perf_counter()) % 5))

    wf = fluxnb.Workflow()
    for i in range(20):
        wf.add(f"s{i}", jitter, depends_on=[f"s{i // 2}"] if i else [])
    seqs = []
    for _ in range(5):
        rec = MemoryRecorder()
        wf.run(store=rec)
        seqs.append(sorted((r["seq"], r["step"]) for r in rec.rows()))
    assert all(s == seqs[0] for s in seqs)
    assert len(seqs[0]) == 20
    assert [step for _, step in seqs[0]] == wf.order()


def test_run_inside_a_running_loop_uses_fluxnb_thread() -> None:
    async def main() -> Any:
        # a notebook cell: a loop is running in this thread, so run() must not block it
        return fluxnb.run("pipeline:\n  - step: a\n", {"a": lambda: 5}, store=None)

    assert asyncio.run(main())["a"] == 5


def test_arun_runs_on_the_callers_loop() -> None:
    async def main() -> Any:
        loop = asyncio.get_running_loop()
        seen = {}

        async def a() -> int:
            seen["loop"] = asyncio.get_running_loop()
            await asyncio.sleep(0)
            return 1

        result = await fluxnb.arun("pipeline:\n  - step: a\n", {"a": a}, store=None)
        return result, seen["loop"] is loop

    result, same = asyncio.run(main())
    assert result.ok and same


def test_cancelling_arun_records_a_cancelled_run() -> None:
    rec = MemoryRecorder()

    async def main() -> None:
        task = asyncio.ensure_future(
            fluxnb.arun(
                "pipeline:\n  - step: quick\n  - step: slow\n    depends_on: quick\n  - step: later\n    depends_on: slow\n",
                {"quick": lambda: 1, "slow": sleeping(10), "later": lambda: 2},
                store=rec,
            )
        )
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert rec.runs[-1].status == "cancelled"
    status = {r["step"]: r["status"] for r in rec.rows()}
    assert status == {"quick": "succeeded", "slow": "cancelled", "later": "cancelled"}


def test_a_step_returning_without_awaiting_needs_no_task() -> None:
    async def instant(**_: Any) -> int:
        return 1

    created = []
    orig = asyncio.BaseEventLoop.create_task

    def spy(self, coro, **kw):  # type: ignore[no-untyped-def]
        created.append(coro)
        return orig(self, coro, **kw)

    wf = fluxnb.Workflow()
    for i in range(50):
        wf.add(f"s{i}", instant)
    asyncio.BaseEventLoop.create_task = spy  # type: ignore[method-assign]
    try:
        assert wf.run(store=None).ok
    finally:
        asyncio.BaseEventLoop.create_task = orig  # type: ignore[method-assign]
    names = [getattr(c, "__qualname__", "") for c in created]
    assert "Scheduler.run" in names  # the spy works
    assert not [
        n
        for n in names
        if n
        in ("_continue", "test_a_step_returning_without_awaiting_needs_no_task.<locals>.instant")
    ]


def test_result_summary_and_frame() -> None:
    result = fluxnb.run("pipeline:\n  - step: a\n", {"a": lambda: 1}, store=None)
    assert "a" in result.summary() and "succeeded" in result.summary()
    frame = result.to_frame()
    assert list(frame["step"]) == ["a"]
    with pytest.raises(KeyError, match="no step 'zz'"):
        result["zz"]


def test_keyboard_interrupt_in_a_notebook_like_loop_cancels_and_records(tmp_path) -> None:
    """Like a kernel: a loop runs in the main thread, SIGINT raises KeyboardInterrupt there."""
    import json
    import signal
    import subprocess
    import sys

    from .conftest import cli_env

    store = str(tmp_path / "k.duckdb")
    code = f"""
import asyncio, json, sys, fluxnb
async def slow(a):
    print("started", flush=True)
    await asyncio.sleep(30)
async def cell():
    try:
        fluxnb.run("pipeline:\\n  - step: a\\n  - step: slow\\n    depends_on: a\\n",
                   {{"a": lambda: 1, "slow": slow}}, store={store!r})
    except KeyboardInterrupt as exc:
        print(json.dumps({{"status": exc.run_result.status.value}}), flush=True)
    # the "kernel" lives on: the next cell runs
    print(json.dumps({{"next": fluxnb.run("pipeline:\\n  - step: a\\n", {{"a": lambda: 2}}, store=None)["a"]}}), flush=True)
loop = asyncio.new_event_loop()
loop.run_until_complete(cell())
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = [json.loads(x) for x in out.splitlines()]
    assert lines == [{"status": "cancelled"}, {"next": 2}]
    events = fluxnb.store(store).sql("SELECT step, status FROM events ORDER BY seq")
    assert list(events["status"]) == ["succeeded", "cancelled"]
    assert fluxnb.store(store).sql("SELECT status FROM runs")["status"][0] == "cancelled"


def test_nested_blocking_run_inside_a_step_is_refused_not_deadlocked() -> None:
    def outer() -> Any:
        return fluxnb.run("pipeline:\n  - step: a\n", {"a": lambda: 1}, store=None)["a"]

    async def cell() -> Any:
        async def step() -> Any:
            return outer()

        return fluxnb.run("pipeline:\n  - step: step\n", {"step": step}, store=None)

    result = asyncio.run(cell())
    assert result.status is RunStatus.FAILED
    assert result.errors["step"].type == "RunError"
    assert "await fluxnb.arun" in result.errors["step"].message


def test_counts_in_summaries_and_reprs_are_pluralised() -> None:
    from fluxnb._plural import plural

    assert [plural(n, "firing") for n in (0, 1, 2)] == ["0 firings", "1 firing", "2 firings"]
    assert plural(1, "mismatch") == "1 mismatch" and plural(3, "mismatch") == "3 mismatches"
    one = "pipeline:\n  - step: a\n"
    assert repr(fluxnb.load(one)).endswith(": 1 step>")
    assert "1 output;" in repr(fluxnb.run(one, {"a": lambda: 1}, store=None))
    manifest = (
        "router: {on_error: continue}\npipeline:\n  - step: a\n  - step: b\n"
        "    depends_on: a\n  - step: c\n"
    )
    r = fluxnb.run(manifest, {"a": failing(ValueError("x")), "b": lambda a: 1, "c": lambda: 1})
    assert (r.reason or "").startswith("1 step failed and 1 dependent step was skipped")
    net = "name: two\nnet:\n  places: {p: 2, q: 0}\n  transitions:\n"
    net += "    - {id: t, inputs: [p], outputs: [q]}\n"
    result = fluxnb.run(net, store=None)
    assert "2 firings;" in repr(result) and "after 2 firings in" in result.summary()
    assert "after 2 firings in" in result._repr_html_()
    three = fluxnb.run("pipeline:\n  - step: a\n  - step: b\n", {"a": int, "b": int}, store=None)
    assert "... 1 more step (" in three.summary(max_rows=1)


def test_a_result_does_not_keep_its_scheduler_alive() -> None:
    import gc
    import weakref

    from fluxnb.engine import _scheduler

    made: list[Any] = []
    real = _scheduler.Scheduler.__init__

    def spy(self: Any, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        made.append(weakref.ref(self))

    _scheduler.Scheduler.__init__ = spy  # type: ignore[method-assign]
    try:
        result = fluxnb.run(
            "pipeline:\n  - step: a\n  - step: b\n    depends_on: a\n",
            {"a": lambda: 1, "b": lambda a: a + 1},
            store=None,
        )
    finally:
        _scheduler.Scheduler.__init__ = real  # type: ignore[method-assign]
    gc.collect()
    assert made and made[0]() is None  # gone, though the result is still here
    assert result.steps["b"].status is fluxnb.StepStatus.SUCCEEDED and result["b"] == 2


def test_asyncio_timeout_in_a_step_times_out_that_step_only() -> None:
    """A step's first segment runs inline (no task yet); asyncio.timeout() there used to
    take the run's own task as "current" and cancel the whole run."""

    async def slow() -> int:
        async with asyncio.timeout(0.05):
            await asyncio.sleep(5)
        return 1

    async def caught() -> str:
        try:
            async with asyncio.timeout(0.05):
                await asyncio.sleep(5)
        except TimeoutError:
            return "timed out inside"
        return "no"

    async def other() -> int:
        await asyncio.sleep(0.2)
        return 2

    async def immediate() -> str:
        async with asyncio.timeout(0):  # expires before the step's task has even started
            await asyncio.sleep(5)
        return "no"

    async def knows_its_task() -> bool:
        return asyncio.current_task() is not None

    ns = {"slow": slow, "caught": caught, "other": other, "immediate": immediate,
          "knows_its_task": knows_its_task}  # fmt: skip
    manifest = "router: {on_error: continue}\npipeline:\n" + "".join(
        f"  - step: {name}\n" for name in ns
    )
    result = fluxnb.run(manifest, ns, store=None)
    assert result.steps["slow"].status is StepStatus.FAILED
    assert result.steps["slow"].error is not None
    assert result.steps["immediate"].status is StepStatus.FAILED  # not a hang, not the run
    assert result["caught"] == "timed out inside"
    assert result["other"] == 2 and result["knows_its_task"] is True


def test_a_run_leaves_no_cyclic_garbage_per_step() -> None:
    """A step's task, its report box and its attempt are freed by reference counting as the
    step ends: nothing per step waits for the cyclic collector (it once left 8-9 objects
    per step, and full collections walked the whole heap over and over in big runs)."""

    async def suspends(**_: Any) -> int:
        await asyncio.sleep(0)
        return 1

    wf = fluxnb.Workflow()
    prev: list[str] = []
    for i in range(300):
        wf.add(f"s{i}", suspends, depends_on=prev)
        prev = [f"s{i}"]
    assert wf.run(store=None).ok  # warm: the plan is built and cached
    gc.collect()
    gc.disable()
    try:
        assert wf.run(store=None).ok
        garbage = gc.collect()
    finally:
        gc.enable()
    # the run's own tables form a few cycles (~50 objects, whatever its size); per step: none
    assert garbage < 150, f"{garbage} objects of cyclic garbage after 300 steps"


def test_a_loops_task_factory_makes_the_steps_tasks() -> None:
    """Steps' tasks are made directly only when the loop has no task factory: a loop's own
    factory (instrumentation, a monitor) still sees every step that suspends."""
    made: list[str] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        made.append(getattr(coro, "__qualname__", type(coro).__name__))
        return asyncio.Task(coro, loop=loop, **kwargs)

    async def suspends(**_: Any) -> int:
        await asyncio.sleep(0)
        return 1

    wf = fluxnb.Workflow()
    for i in range(5):
        wf.add(f"s{i}", suspends)

    async def main() -> Any:
        asyncio.get_running_loop().set_task_factory(factory)
        return await wf.arun(store=None)

    assert asyncio.run(main()).ok
    # the first call runs inline until it suspends, then every step goes on in a task
    assert sum(1 for name in made if name in ("_drive", "_Continuing")) == 5


def test_a_recorder_that_raises_on_a_steps_end_fails_the_step_instead_of_hanging() -> None:
    """The end of a step that ran in a task reaches the game from inside that task; when the
    game cannot take it (its recorder raised on the row), the step fails with that error and
    the run ends: it used to wait for ever for a report that was lost."""

    class Refuses(MemoryRecorder):
        def event(self, row: Any) -> None:
            if row[2] == "b" and row[4] == "succeeded":
                raise UnicodeEncodeError("utf-8", "x", 0, 1, "surrogates not allowed")
            super().event(row)

    async def suspends(**_: Any) -> int:
        await asyncio.sleep(0)
        return 1

    wf = fluxnb.Workflow()
    wf.add("a", suspends)
    wf.add("b", suspends, depends_on=["a"])
    wf.add("c", suspends, depends_on=["b"])

    async def main() -> Any:
        return await asyncio.wait_for(wf.arun(store=Refuses()), timeout=20)

    result = asyncio.run(main())
    assert result.status == RunStatus.FAILED
    steps = result.steps
    assert steps["a"].status == StepStatus.SUCCEEDED
    assert steps["b"].status == StepStatus.FAILED
    assert "could not record how step 'b' ended" in steps["b"].error.message
    assert "UnicodeEncodeError" in steps["b"].error.message
    assert steps["c"].status != StepStatus.SUCCEEDED

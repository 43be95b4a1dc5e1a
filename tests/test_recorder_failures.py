"""A recorder or an executor failing at a run's edges (its first row, its last row, a timed
flush, opening and closing): the run's result is never lost, nothing stays open."""

from __future__ import annotations

import asyncio
import errno
import warnings
from typing import Any

import pytest

import fluxnb
from fluxnb import RunStatus
from fluxnb.engine._executor import LocalExecutor
from fluxnb.spec import Arc, Net, Transition
from fluxnb.store._recorder import MemoryRecorder, RunRecord

DISK_FULL = OSError(errno.ENOSPC, "No space left on device")


async def sleepy(**kwargs: Any) -> int:
    await asyncio.sleep(0)
    return 1 + sum(kwargs.values())


def _chain() -> fluxnb.Workflow:
    wf = fluxnb.Workflow("edges")
    wf.add("a", sleepy)
    wf.add("b", sleepy, depends_on=["a"])
    return wf


class _EndRefused(MemoryRecorder):
    def run_finished(self, run: RunRecord) -> None:
        raise DISK_FULL


class _StartRefused(MemoryRecorder):
    def run_started(self, run: RunRecord) -> None:
        raise DISK_FULL


@pytest.mark.parametrize("how", ["run", "arun"])
def test_a_recorder_refusing_the_runs_last_row_loses_no_result(how: str) -> None:
    """Before: the OSError escaped run()/arun() and the computed outputs were lost."""
    wf = _chain()
    with pytest.warns(RuntimeWarning, match=r"its end \(succeeded\) was not recorded"):
        if how == "run":
            result = wf.run(store=_EndRefused())
        else:
            result = asyncio.run(wf.arun(store=_EndRefused()))
    assert result.status is RunStatus.SUCCEEDED
    assert result.outputs == {"a": 1, "b": 2}
    err = result.recording_error
    assert isinstance(err, fluxnb.RecordingFailed)
    assert err.run_id == result.run_id and err.errno == errno.ENOSPC
    assert err.__cause__ is DISK_FULL
    assert "NOT RECORDED" in repr(result) or "NOT RECORDED" in str(result.summary())


def test_a_net_whose_recorder_refuses_its_last_row_keeps_its_result() -> None:
    net = Net("edges", ("p", "q"), (2, 0), (Transition("t", (Arc(0),), (Arc(1),)),))
    with pytest.warns(RuntimeWarning, match="was not recorded"):
        result = fluxnb.run(net, store=_EndRefused())
    assert result.marking == {"p": 0, "q": 2}
    assert isinstance(result.recording_error, fluxnb.RecordingFailed)


def test_a_refused_first_row_raises_and_leaves_a_shared_executor_closed() -> None:
    """Nothing ran, so the caller is told; the executor it shares is not left serving."""
    shared = LocalExecutor()

    async def go() -> None:
        with pytest.raises(OSError, match="No space left"):
            await _chain().arun(store=_StartRefused(), executor=shared)
        assert shared.serving == 0
        # and it still serves the next run
        assert (await _chain().arun(store=None, executor=shared)).ok
        assert shared.serving == 0

    asyncio.run(go())


class _Opens:
    """An executor of the user's own: fails to open, or to close."""

    def __init__(self, name: str, fail_open: bool = False, fail_close: bool = False) -> None:
        self.name, self.fail_open, self.fail_close = name, fail_open, fail_close
        self.closed = 0

    def open(self, loop: Any, max_threads: Any) -> None:
        if self.fail_open:
            raise ConnectionRefusedError("no scheduler at tcp://nowhere:8786")

    def start(self, binding: Any, kwargs: dict[str, Any]) -> tuple[bool, Any]:
        return True, binding.fn(**kwargs)

    def placement(self, fut: Any) -> str | None:
        return None

    def close(self) -> None:
        self.closed += 1
        if self.fail_close:
            raise RuntimeError("the cluster went away")


def _sync_chain() -> fluxnb.Workflow:
    wf = fluxnb.Workflow("edges")
    wf.add("a", lambda: 1)
    wf.add("b", lambda a: a + 1, depends_on=["a"])
    return wf


def test_an_executor_failing_to_open_closes_the_ones_opened_before_it() -> None:
    """Before: the run's LocalExecutor (opened first) stayed counted as serving."""
    from fluxnb.engine._runner import _prepare

    bad = _Opens("mine", fail_open=True)

    async def go() -> None:
        scheduler, record = _prepare(_sync_chain(), None, None, None, 0, bad, None)
        local = scheduler.executors["local"]  # type: ignore[union-attr]
        assert isinstance(local, LocalExecutor)
        with pytest.raises(ConnectionRefusedError, match="no scheduler"):
            await scheduler.run(record)  # type: ignore[union-attr]
        assert local.serving == 0 and bad.closed == 0  # never opened: not closed

    asyncio.run(go())


def test_an_executor_failing_to_close_costs_no_result_and_closes_the_others() -> None:
    bad = _Opens("mine", fail_close=True)
    with pytest.warns(RuntimeWarning, match="could not close the executor 'mine'.*went away"):
        result = _sync_chain().run(store=None, executor=bad)
    assert result.ok and result.outputs == {"a": 1, "b": 2}
    assert bad.closed == 1


class _FlushRefused(MemoryRecorder):
    flush_interval = 0.01

    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        raise DISK_FULL


def test_a_timed_flush_that_fails_keeps_ticking_and_is_named_in_the_reason() -> None:
    """Before: the first failing tick raised in the loop's exception handler and the
    timer stopped: no later flush, and the run said nothing."""

    async def slow(**_: Any) -> int:
        await asyncio.sleep(0.06)
        return 1

    wf = fluxnb.Workflow("edges")
    wf.add("a", slow)
    recorder = _FlushRefused()
    seen: list[Any] = []

    async def go() -> Any:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: seen.append(ctx))
        return await wf.arun(store=recorder)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = asyncio.run(go())
    assert result.ok and seen == []
    assert recorder.flushes >= 2
    assert result.reason is not None and "could not record every row" in result.reason
    assert "No space left" in result.reason


# ------------------------------------------------------------- hostile callables
class _Hostile:
    """A callable object whose ``__eq__`` and ``__hash__`` raise (a proxy, a lazy
    wrapper): fluxnb compares and hashes callables for its own reasons."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no __eq__ here")

    def __hash__(self) -> int:
        raise RuntimeError("no __hash__ here")


class _SyncHostile(_Hostile):
    def __call__(self, **kwargs: Any) -> int:
        return self.value + sum(kwargs.values())


class _AsyncHostile(_Hostile):
    async def __call__(self, **kwargs: Any) -> int:
        await asyncio.sleep(0)
        return self.value + sum(kwargs.values())


@pytest.mark.parametrize("store", [None, ":memory:"])
def test_callables_whose_eq_and_hash_raise_run_like_any_other(store: Any) -> None:
    """Before: plan time raised the callable's RuntimeError out of ``run()`` (a raw
    traceback from inspect.signature), and an async one's step failed with the
    ``__hash__`` error fluxnb itself had provoked."""
    wf = fluxnb.Workflow("hostile")
    wf.add("a", _SyncHostile(1))
    wf.add("b", _AsyncHostile(10), depends_on=["a"])
    wf.add("c", _AsyncHostile(100), depends_on=["b"])  # the second call: a task at once
    result = wf.run(store=store)
    assert result.ok, result.errors
    assert result.outputs == {"a": 1, "b": 11, "c": 111}


# found by a review (session 10): each failed on the code before its fix
def test_a_net_on_the_compiled_game_does_not_close_a_shared_executor_it_never_opened() -> None:
    """A coloured net (token data, no actions) never opens its executors; its run closed
    the LocalExecutor a DAG run was using: serving fell to 0, the pool shut down under the
    DAG's queued sync steps and the DAG run failed."""
    ex = LocalExecutor()
    net = Net("col", ("a", "b"), (1, 0), (Transition("t", (Arc(0),), (Arc(1),)),), tokens={0: [7]})

    def slow(x: int) -> int:
        import time

        time.sleep(0.05)
        return x

    wf = fluxnb.Workflow("w")
    for i in range(48):  # more than the pool's threads: some wait in its queue
        wf.add(f"s{i}", slow, with_={"x": i})

    async def go() -> tuple[Any, int, int]:
        async def the_net() -> tuple[int, int]:
            await asyncio.sleep(0.02)  # the DAG run opened ex, its steps are queued
            before = ex.serving
            await fluxnb.arun(net, store=None, executor=ex)
            return before, ex.serving

        dag, (before, after) = await asyncio.gather(
            fluxnb.arun(wf, store=None, executor=ex), the_net()
        )
        return dag, before, after

    dag, before, after = asyncio.run(go())
    assert (before, after) == (1, 1)
    assert dag.ok, dag.errors


def test_a_net_refused_by_a_shared_executor_does_not_close_it() -> None:
    """A LocalExecutor serves one loop; a net run on another loop is refused at open.
    The refused run closed it anyway (serving 1 -> 0)."""
    import threading

    ex = LocalExecutor()
    release = threading.Event()

    async def holds() -> int:
        while not release.is_set():
            await asyncio.sleep(0.005)
        return 1

    wf = fluxnb.Workflow("w")
    wf.add("a", holds)
    out: dict[str, Any] = {}
    th = threading.Thread(
        target=lambda: out.update(r=asyncio.run(wf.arun(store=None, executor=ex)))
    )
    th.start()
    try:
        for _ in range(400):
            if ex.serving:
                break
            import time

            time.sleep(0.005)
        assert ex.serving == 1

        async def act(a: Any) -> Any:
            await asyncio.sleep(0)
            return a

        net = Net("n", ("a", "b"), (1, 0), (Transition("t", (Arc(0),), (Arc(1),), run="act"),))
        with pytest.raises(RuntimeError, match="another event loop"):
            asyncio.run(fluxnb.arun(net, {"act": act}, store=None, executor=ex))
        assert ex.serving == 1
    finally:
        release.set()
        th.join(10)
    assert out["r"].ok and ex.serving == 0


@pytest.mark.parametrize("error", [ValueError, TypeError])
def test_a_callable_whose_eq_raises_valueerror_or_typeerror_keeps_its_inputs(error: Any) -> None:
    """numpy-like objects raise ValueError ("ambiguous truth value") from ``__eq__``; the
    signature read fell back to "none" and the step was called without its input."""

    class Ambiguous:
        def __eq__(self, other: object) -> bool:
            raise error("ambiguous")

        __hash__ = object.__hash__

        def __call__(self, a: int) -> int:
            return a + 41

    wf = fluxnb.Workflow("amb")
    wf.add("a", lambda: 1)
    wf.add("b", Ambiguous())  # its input inferred from the parameter name
    result = wf.run(store=None)
    assert result.ok, result.errors
    assert result.outputs["b"] == 42

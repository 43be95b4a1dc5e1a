"""Running a coroutine to the end from synchronous code, never patching the caller's loop.

With no loop running in this thread a run gets a fresh loop here (Ctrl-C cancels it
cleanly); inside a running loop (a notebook cell) it runs on fluxnb's own loop in a daemon
thread and waits. ``run``, ``resume`` and the net runner all block through this module.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .._exceptions import RunError

if TYPE_CHECKING:
    from ..store._recorder import RunRecord
    from ._scheduler import Scheduler
    from ._stream_runner import StreamRun


def _settled(call: Any) -> Any:
    """``call()``, a blocking run, then its store file made complete for other programs
    (see ``store._settle.settle``), also when Ctrl-C interrupts it."""
    from ..store._settle import settle

    try:
        result = call()
    except KeyboardInterrupt as exc:
        settle(getattr(exc, "run_result", None))
        raise
    return settle(result)


#: Seconds a Ctrl-C'd caller waits for its run to record its cancellation.
_CANCEL_WAIT = 10.0


def _no_loop() -> bool:
    """No event loop runs in this thread. (Asked outside any ``except`` block: a run made
    inside one gave every step's exception "no running event loop" as its context.)"""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return True
    return False


def _block_coro(make: Any) -> Any:
    """Await ``make()`` from synchronous code, like ``_block`` does a scheduler."""
    if _no_loop():
        with asyncio.Runner() as runner:
            return runner.run(make())
    return _in_loop_thread(make)


def _block(scheduler: Scheduler | StreamRun, record: RunRecord) -> Any:
    """Run to the end from synchronous code: here if no loop runs in this thread, else on
    fluxnb's own loop thread (a notebook cell), never patching the caller's loop."""
    if _no_loop():
        return _run_here(scheduler, record)
    return _run_in_thread(scheduler, record)


def _run_here(scheduler: Scheduler | StreamRun, record: RunRecord) -> Any:
    with asyncio.Runner() as runner:
        try:
            return runner.run(scheduler.run(record))
        except KeyboardInterrupt as exc:
            exc.run_result = getattr(scheduler, "result", None)  # type: ignore[attr-defined]
            raise


class _LoopThread:
    """fluxnb's own event loop, in one daemon thread shared by blocking runs."""

    _lock = threading.Lock()
    _instance: _LoopThread | None = None

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        #: The blocking runs on this loop (their tasks; touched on its thread only), each
        #: with a cell for the interrupt that ended it.
        self.runs: dict[asyncio.Task[Any], list[BaseException | None]] = {}
        self.thread = threading.Thread(target=self._serve, name="fluxnb-loop", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        """The loop, for good: a step raising KeyboardInterrupt or SystemExit (``sys.exit()``
        in a step) stops ``run_forever``; the thread used to die with it and the caller of
        ``fluxnb.run()`` waited for ever. Now the blocking runs are cancelled (recorded
        ``cancelled``), their callers get the interrupt, as from a script, and the loop
        goes on serving. Every blocking run on this loop ends so, as every run of a
        script would: an interrupt stops the program, not one run."""
        while True:
            try:
                self.loop.run_forever()
                return
            except (KeyboardInterrupt, SystemExit) as exc:
                for task, cell in list(self.runs.items()):
                    cell[0] = exc
                    task.cancel()

    @classmethod
    def get(cls) -> _LoopThread:
        with cls._lock:
            if cls._instance is None or not cls._instance.thread.is_alive():
                cls._instance = cls()
            return cls._instance


def _run_in_thread(scheduler: Scheduler | StreamRun, record: RunRecord) -> Any:
    return _in_loop_thread(lambda: scheduler.run(record), scheduler)


def _in_loop_thread(make: Callable[[], Awaitable[Any]], scheduler: Any = None) -> Any:
    """Await ``make()`` on fluxnb's loop thread and wait for it here; Ctrl-C here cancels
    it (the engine records the cancellation first), an interrupt a step raised there is
    raised here (with the partial result as ``.run_result``, as for Ctrl-C)."""
    lt = _LoopThread.get()
    if threading.current_thread() is lt.thread:
        raise RunError(
            "fluxnb.run() was called from a step running on fluxnb's own loop, where it "
            "would wait for itself forever; use 'await fluxnb.arun(...)' inside async steps"
        )
    done = threading.Event()
    cell: list[BaseException | None] = [None]

    async def main() -> Any:
        task = asyncio.current_task()
        assert task is not None
        lt.runs[task] = cell
        try:
            return await make()
        finally:
            lt.runs.pop(task, None)
            done.set()

    fut = asyncio.run_coroutine_threadsafe(main(), lt.loop)
    try:
        return fut.result()
    except KeyboardInterrupt as exc:
        fut.cancel()
        # the scheduler records the cancellation before we return (bounded, in case the
        # run's coroutine never started: asyncio runs its first step before the cancel)
        done.wait(timeout=_CANCEL_WAIT)
        exc.run_result = getattr(scheduler, "result", None)  # type: ignore[attr-defined]
        raise
    except (asyncio.CancelledError, concurrent.futures.CancelledError):
        interrupt = cell[0]
        if interrupt is None:
            raise RuntimeError("fluxnb's run loop was cancelled") from None
        done.wait()
        # each caller its own: other threads' blocking runs got the same one
        mine = type(interrupt)(*interrupt.args)
        mine.run_result = getattr(scheduler, "result", None)  # type: ignore[attr-defined]
        raise mine from interrupt

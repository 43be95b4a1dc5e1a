"""Where a step's callable runs: the executor interface and the local executor.

The local executor runs async callables on the run's event loop and sync callables in a
bounded thread pool. An async callable is first driven inline: if it finishes without
suspending (a cache hit, a no-op, pure computation) it never becomes an asyncio Task,
which is most of the floor's per-step cost. Only a callable that really waits is handed
to a Task, resumed exactly where it stopped.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from ..spec import Binding


class Executor(Protocol):
    """Runs step callables for a scheduler. One instance serves one run.

    An executor may also define ``async def aclose()``, awaited after ``close()``.
    """

    #: Recorded in each event row's ``executor`` column.
    name: str

    def open(self, loop: asyncio.AbstractEventLoop, max_threads: int | None) -> None:
        """Prepare to run on ``loop``."""

    def start(self, binding: Binding, kwargs: dict[str, Any]) -> tuple[bool, Any]:
        """Begin one call. Returns ``(True, value)`` when it already finished, or
        ``(False, future)`` with an asyncio future to wait for. Raises what the callable
        raised when it failed at once."""

    def placement(self, fut: Any) -> str | None:
        """Where a finished call ran (e.g. a worker's address), if the executor knows."""

    def close(self) -> None:
        """Release resources; calls still running in threads are abandoned, not joined."""


class LocalExecutor:
    """Async callables on the loop (inline first), sync callables in a thread pool."""

    name = "local"

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._max_threads = 1

    def open(self, loop: asyncio.AbstractEventLoop, max_threads: int | None) -> None:
        self._loop = loop
        self._max_threads = max_threads or min(32, (os.cpu_count() or 1) + 4)

    def start(self, binding: Binding, kwargs: dict[str, Any]) -> tuple[bool, Any]:
        loop = self._loop
        assert loop is not None, "LocalExecutor.open() was not called"
        context = contextvars.copy_context()
        if binding.is_async:
            coro = context.run(binding.fn, **kwargs)
            try:
                yielded = context.run(coro.send, None)
            except StopIteration as stop:
                return True, stop.value
            return False, loop.create_task(_continue(coro, yielded), context=context)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._max_threads, thread_name_prefix="fluxnb-step")
        call = functools.partial(context.run, binding.fn, **kwargs)
        return False, loop.run_in_executor(self._pool, call)

    def placement(self, fut: Any) -> str | None:
        return None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class _Resume:
    """Continue driving a coroutine that already yielded ``yielded`` once.

    The Task sees exactly what the coroutine yields (futures, or None for a bare
    ``sleep(0)``) and sends and throws (cancellation) straight into it.
    """

    __slots__ = ("coro", "yielded")

    def __init__(self, coro: Any, yielded: Any) -> None:
        self.coro = coro
        self.yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self.coro, self.yielded
        while True:
            try:
                sent = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _continue(coro: Any, yielded: Any) -> Any:
    return await _Resume(coro, yielded)

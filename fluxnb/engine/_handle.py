"""Background runs: :func:`start` and the :class:`Run` handle it returns."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from .._exceptions import RunError
from ..spec import load_workflow
from ..store._recorder import RunRecord
from ._executor import Executor
from ._loop import _LoopThread
from ._result import RunResult
from ._runner import _prepare
from ._scheduler import Scheduler
from ._setup import DEFAULT
from ._stream_runner import StreamRun


class Run:
    """A run going on in the background (see :func:`start`).

    It runs on fluxnb's own loop thread, or — with ``here=True`` inside a running event
    loop, e.g. a notebook kernel's — as a task on that loop, so later cells run meanwhile.

    >>> handle = fluxnb.start(wf, namespace=globals())      # doctest: +SKIP
    >>> handle.cancel(); handle.result().status              # doctest: +SKIP
    <RunStatus.CANCELLED: 'cancelled'>
    """

    def __init__(
        self, scheduler: Scheduler | StreamRun, record: RunRecord, *, here: bool = False
    ) -> None:
        self._scheduler = scheduler
        self.run_id = record.run_id
        self.workflow = record.workflow
        self._task: asyncio.Task[RunResult] | None = None
        self._future: Any = None
        self._cancel_requested = False

        async def main() -> Any:
            try:
                return await scheduler.run(record)
            except asyncio.CancelledError:
                assert scheduler.result is not None
                return scheduler.result  # cancelled on purpose: the result says so

        if here:
            self._loop = asyncio.get_running_loop()
            self._task = self._loop.create_task(main())
        else:
            self._loop = _LoopThread.get().loop

            async def tracked() -> RunResult:
                self._task = task = asyncio.current_task()  # type: ignore[assignment]
                if self._cancel_requested and task is not None:
                    task.cancel()  # cancelled before it started: still recorded as cancelled
                return await main()

            self._future = asyncio.run_coroutine_threadsafe(tracked(), self._loop)

    @property
    def status(self) -> Any:
        """``RunStatus.RUNNING`` until it ends."""
        return self._scheduler.status

    def add_done_callback(self, fn: Any) -> None:
        """Call ``fn(self)`` when the run ends (on the thread that ends it)."""
        if self._future is not None:
            self._future.add_done_callback(lambda _f: fn(self))
        elif self._task is not None:
            self._task.add_done_callback(lambda _t: fn(self))

    def done(self) -> bool:
        if self._future is not None:
            return bool(self._future.done())
        return self._task is not None and self._task.done()

    def cancel(self) -> None:
        """Cancel the run: running steps get CancelledError, it is recorded ``cancelled``."""
        self._cancel_requested = True
        task = self._task
        if task is not None:
            self._loop.call_soon_threadsafe(task.cancel)

    def result(self, timeout: float | None = None) -> RunResult:
        """Wait for the end (at most ``timeout`` seconds) and return the RunResult.

        A run on the caller's own loop cannot be waited for here: ``await`` it instead.
        """
        if self._future is not None:
            return self._future.result(timeout)  # type: ignore[no-any-return]
        assert self._task is not None
        if not self._task.done():
            raise RunError(
                f"run {self.run_id} is still going on this event loop; use 'await handle'"
            )
        return self._task.result()

    def __await__(self) -> Any:
        if self._future is not None:
            return asyncio.wrap_future(self._future).__await__()
        assert self._task is not None
        return self._task.__await__()

    def __repr__(self) -> str:
        return f"<Run {self.run_id} '{self.workflow}' {self.status.value}>"

    def _repr_html_(self) -> str:
        from .._html import badge

        state = badge(self.status.value)
        return f"<div>run <code>{self.run_id}</code> '{self.workflow}' {state}</div>"


def start(
    manifest: Any,
    namespace: Mapping[str, Any] | None = None,
    *,
    store: Any = DEFAULT,
    tenant: str | None = None,
    seed: int = 0,
    executor: Executor | str | None = None,
    run_id: str | None = None,
    here: bool = False,
    params: Mapping[str, Any] | None = None,
    cache: bool | str | None = None,
) -> Run:
    """Start a run and return at once with a :class:`Run` handle: on fluxnb's own loop
    thread, or with ``here=True`` as a task on the running loop (a notebook kernel's).
    ``params`` fill the manifest's ``{{name}}`` placeholders and ``cache`` makes it an
    incremental run, as for :func:`run`."""
    wf = load_workflow(manifest, params=params)
    scheduler, record = _prepare(wf, namespace, store, tenant, seed, executor, run_id, cache)
    return Run(scheduler, record, here=here)

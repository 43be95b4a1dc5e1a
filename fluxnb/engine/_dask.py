"""The Dask executor: steps run on a Dask cluster; scheduling, traces, retries, breakers
and timeouts stay in the kernel.

- ``dask``: an on-demand ``distributed.LocalCluster`` (worker processes, one thread each,
  sized to the machine) that fluxnb starts on first use, reuses for every run of the
  process, and closes at exit.
- ``dask://HOST:PORT``: an existing Dask scheduler.

Each run talks to the cluster through distributed's *asynchronous* client on the run's own
event loop, so nothing blocks the loop. Callables travel by value (cloudpickle, as Dask
does), so functions defined in a notebook work. A worker that dies mid-step makes that
attempt fail with ``KilledWorker`` (fluxnb asks the scheduler not to re-run it elsewhere:
its retry policy decides), and a timed-out or cancelled step cancels its Dask future.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import threading
import uuid
from typing import Any

from .._exceptions import RunError
from ..spec import Binding


class _Shared:
    """The on-demand cluster of this process."""

    cluster: Any = None
    lock = threading.Lock()


def require_distributed() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise RunError(
            "the dask executor needs Dask's distributed scheduler: pip install 'fluxnb[dask]'"
        ) from None


def shared_cluster() -> Any:
    """The process's on-demand LocalCluster (started on first use; blocking: call it off
    the event loop)."""
    with _Shared.lock:
        cluster = _Shared.cluster
        if cluster is None or cluster.status.name in ("closed", "closing", "failed"):
            import dask
            from distributed import LocalCluster

            workers = max(1, min(os.cpu_count() or 1, 8))
            # a dead worker fails the attempt at once: fluxnb's retry policy decides
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                cluster = _Shared.cluster = LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    # a free port on loopback only: never 8787 (taken by another
                    # cluster: a warning), never every interface (":0")
                    dashboard_address="127.0.0.1:0",
                )
            atexit.register(close_shared_cluster)
        return cluster


def close_shared_cluster() -> None:
    """Stop the on-demand cluster (also done at exit)."""
    with _Shared.lock:
        cluster, _Shared.cluster = _Shared.cluster, None
        if cluster is not None:
            cluster.close()


def _call_on_worker(fn: Any, is_async: bool, kwargs: dict[str, Any]) -> tuple[str, Any]:
    """Runs on the worker: the step, and where it ran."""
    from distributed import get_worker

    where = get_worker().address
    if is_async:
        return where, asyncio.run(fn(**kwargs))
    return where, fn(**kwargs)


class DaskExecutor:
    """Runs step callables on a Dask cluster (see the module docstring)."""

    name = "dask"

    def __init__(self, address: str | None = None) -> None:
        require_distributed()
        self.address = address
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._connecting: asyncio.Future[Any] | None = None
        self._placed: dict[Any, str] = {}

    def open(self, loop: asyncio.AbstractEventLoop, max_threads: int | None) -> None:
        self._loop = loop

    async def _get_client(self) -> Any:
        if self._client is not None:
            return self._client
        assert self._loop is not None
        if self._connecting is None:
            self._connecting = self._loop.create_future()
            try:
                from distributed import Client

                address = self.address
                if address is None:  # starting processes blocks: do it off the loop
                    cluster = await asyncio.to_thread(shared_cluster)
                    address = cluster.scheduler_address
                self._client = await Client(
                    address, asynchronous=True, set_as_default=False, timeout="30s"
                )
                self._connecting.set_result(self._client)
            except BaseException as exc:
                self._connecting.set_exception(exc)
                self._connecting.exception()  # retrieved: no "never retrieved" warning
                raise
        return await asyncio.shield(self._connecting)

    def start(self, binding: Binding, kwargs: dict[str, Any]) -> tuple[bool, Any]:
        assert self._loop is not None, "DaskExecutor.open() was not called"
        task = self._loop.create_task(self._run(binding, kwargs))
        return False, task

    async def _run(self, binding: Binding, kwargs: dict[str, Any]) -> Any:
        client = await self._get_client()
        name = getattr(binding.fn, "__name__", "step")
        future = client.submit(
            _call_on_worker,
            binding.fn,
            binding.is_async,
            kwargs,
            key=f"fluxnb-{name}-{uuid.uuid4().hex[:12]}",
            pure=False,
        )
        try:
            where, value = await future
        except asyncio.CancelledError:
            # the cluster may be gone; the attempt is cancelled either way
            with contextlib.suppress(Exception):
                await client.cancel([future], force=True)
            raise
        task = asyncio.current_task()
        if task is not None:
            self._placed[task] = where
        return value

    def placement(self, fut: Any) -> str | None:
        return self._placed.pop(fut, None)

    def close(self) -> None:
        self._placed.clear()

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(Exception):
                await client.close()


def executor_for(spec: str) -> DaskExecutor:
    """``dask`` or ``dask://HOST:PORT`` → a DaskExecutor."""
    if spec == "dask":
        return DaskExecutor()
    if spec.startswith("dask://"):
        return DaskExecutor("tcp://" + spec[len("dask://") :])
    raise RunError(f"unknown executor '{spec}': use local, dask or dask://HOST:PORT")

"""Entry points that run a workflow: ``run`` (blocking), ``arun`` (on the caller's loop).

``arun`` runs on the event loop of whoever awaits it (in a notebook, the kernel's loop).
``run`` blocks: with no loop running in this thread it runs a fresh loop here (Ctrl-C
cancels the run cleanly); inside a running loop (a notebook cell) it runs on fluxnb's
own loop in a daemon thread and waits, so the kernel's loop is never patched.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .._session import Action
from ..spec import Net, Workflow
from ..spec._net_manifest import load_any
from ..store._recorder import NullRecorder, RunRecord
from ._cache import attach, uncached
from ._executor import Executor
from ._loop import _block, _block_coro, _settled
from ._plan import plan_for
from ._scheduler import RunOptions, Scheduler
from ._setup import (
    DEFAULT,
    _check_new_id,
    _executors,
    admit,
    new_run_id,
    recorder_for,
    run_record,
)
from ._stream_runner import StreamRun

__all__ = ["arun", "run"]


async def arun(
    manifest: Any,
    namespace: Mapping[str, Any] | None = None,
    *,
    store: Any = DEFAULT,
    tenant: str | None = None,
    seed: int = 0,
    executor: Executor | str | None = None,
    run_id: str | None = None,
    max_firings: int | None = None,
    params: Mapping[str, Any] | None = None,
    cache: bool | str | None = None,
) -> Any:
    """Load (if needed), validate, resolve and run a workflow on the running event loop.

    A Petri-net manifest (``net:`` or the state-machine form) or a ``Net`` runs as a
    net: to its final marking, a dead marking or ``max_firings``; it returns a
    ``NetResult`` instead of a ``RunResult``.

    Args:
        manifest: YAML text, a path to a ``.yaml`` file, a dict, or a ``Workflow``.
        namespace: where step callables are looked up by name (e.g. ``globals()``).
        store: where the trace goes: a path, ``":memory:"``, a ``Store``, a recorder,
            ``None`` for nowhere; by default ``FLUXNB_STORE`` or ``.fluxnb/fluxnb.duckdb``.
        tenant: recorded with the run (overrides ``router.tenant``).
        seed: seeds jittered backoff so a run's delays are reproducible.
        executor: where steps run: ``"local"`` (this loop and a thread pool, the
            default), ``"dask"`` (an on-demand LocalCluster), ``"dask://HOST:PORT"``, or
            an Executor; agents can still choose ``executor: local|dask`` each.
        run_id: use this id instead of a new one.
        max_firings: nets only: stop after this many firings (default: the net's
            ``max_firings``, else 100,000).
        params: values for the manifest's ``{{name}}`` placeholders; they win over its
            ``params:`` defaults (docs/manifest.md, "Parameters").
        cache: incremental run (docs/caching.md): ``True`` / ``"use"`` reuses the recorded
            output of every step whose cache key is unchanged, ``"refresh"`` runs them all
            and records them anew, ``False`` / ``"off"`` caches nothing; None (default):
            the manifest's ``router.cache`` and steps' ``cache:`` decide (off by default).

    Raises:
        ManifestError: the manifest or a callable is invalid (nothing is recorded).
        asyncio.CancelledError: the awaiting task was cancelled; the run is recorded
            ``cancelled`` with every row written so far.
    """
    wf = load_any(manifest, params=params)
    if isinstance(wf, Net):
        uncached("a net", cache)
        return await _net_coro(wf, namespace, store, tenant, seed, executor, run_id, max_firings)
    scheduler, record = _prepare(wf, namespace, store, tenant, seed, executor, run_id, cache)
    return await scheduler.run(record)


def _net_coro(
    net: Net,
    namespace: Mapping[str, Any] | None,
    store: Any,
    tenant: str | None,
    seed: int,
    executor: Executor | str | None,
    run_id: str | None,
    max_firings: int | None,
) -> Any:
    from ._net_runner import arun_net

    tenant, scope = admit(Action.RUN, net.name, net.router, store, tenant)
    _check_new_id(run_id, store)
    return arun_net(
        net,
        namespace,
        recorder=recorder_for(store),
        run_id=run_id or new_run_id(),
        tenant=tenant,
        run_namespace=scope,
        seed=seed,
        max_firings=max_firings,
        executor=executor,
    )


def _prepare(
    wf: Workflow,
    namespace: Mapping[str, Any] | None,
    store: Any,
    tenant: str | None,
    seed: int,
    executor: Executor | str | None,
    run_id: str | None,
    cache: bool | str | None = None,
) -> tuple[Scheduler | StreamRun, RunRecord]:
    tenant, scope = admit(Action.RUN, wf.name, wf.router, store, tenant)
    _check_new_id(run_id, store)
    with collector_paused():
        plan = plan_for(wf, namespace)
    recorder = recorder_for(store)  # opened only for a valid workflow
    text = None
    if not isinstance(recorder, NullRecorder):
        with collector_paused():
            text = wf.manifest_text()
    rid = run_id or new_run_id()
    record = run_record(wf.name, len(wf), rid, time.time_ns() // 1000, scope, tenant, text, seed)
    if plan.streams:  # a generator step: the workflow runs as a stream net
        uncached("a workflow with streaming steps", cache)
        return StreamRun(wf, plan, namespace, recorder, rid, seed, executor), record
    options = RunOptions(rid, wf.name, seed)
    default, executors = _executors(wf, plan, executor)
    scheduler = Scheduler(
        plan, options, recorder=recorder, executors=executors, default_executor=default
    )
    attach(scheduler, wf, plan, recorder, scope, cache)
    return scheduler, record


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a new workflow's plan and manifest text are
    made: tens of thousands of tuples, dicts and lists, none in a cycle, whose allocation
    set off ~200 collections and a full one that walked the whole process (a W1 10,000
    first run: 45-100 ms of its 200-350). It is on again afterwards, even on an error,
    unless it was off already."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def run(
    manifest: Any,
    namespace: Mapping[str, Any] | None = None,
    *,
    store: Any = DEFAULT,
    tenant: str | None = None,
    seed: int = 0,
    executor: Executor | str | None = None,
    run_id: str | None = None,
    max_firings: int | None = None,
    params: Mapping[str, Any] | None = None,
    cache: bool | str | None = None,
) -> Any:
    """Blocking form of :func:`arun` (same arguments); safe to call inside a notebook.

    A KeyboardInterrupt (Ctrl-C, the kernel's stop button) cancels the run: running steps
    get CancelledError, the run is recorded ``cancelled``, and the KeyboardInterrupt is
    re-raised with the partial result attached as ``.run_result``.
    """
    wf = load_any(manifest, params=params)
    if isinstance(wf, Net):
        uncached("a net", cache)
        net = wf
        return _settled(
            lambda: _block_coro(
                lambda: _net_coro(
                    net, namespace, store, tenant, seed, executor, run_id, max_firings
                )
            )
        )
    scheduler, record = _prepare(wf, namespace, store, tenant, seed, executor, run_id, cache)
    return _settled(lambda: _block(scheduler, record))

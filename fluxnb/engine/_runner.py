"""Entry points that run a workflow: ``run`` (blocking), ``arun`` (on the caller's loop).

``arun`` runs on the event loop of whoever awaits it (in a notebook, the kernel's loop).
``run`` blocks: with no loop running in this thread it runs a fresh loop here (Ctrl-C
cancels the run cleanly); inside a running loop (a notebook cell) it runs on fluxnb's
own loop in a daemon thread and waits, so the kernel's loop is never patched.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import math
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .._exceptions import Problem, ReplayError, ResolutionError, RunError
from .._session import Action, check_name
from ..spec import Net, RouterSettings, Workflow, load_workflow
from ..spec._net_manifest import load_any
from ..store._recorder import NullRecorder, Recorder, RunRecord
from ._executor import Executor
from ._plan import Plan, plan_for
from ._result import RunResult
from ._scheduler import RunOptions, Scheduler


class _DefaultStore:
    """``store=DEFAULT``: FLUXNB_STORE, else ``.fluxnb/fluxnb.duckdb`` in the cwd."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _DefaultStore()


def new_run_id() -> str:
    """A readable, sortable, unique run id: ``20261122-041502-9f3a1c``."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def admit(
    action: Action, name: str, router: RouterSettings, store: Any, tenant: str | None = None
) -> tuple[str, str]:
    """Check that the acting session may ``action`` the workflow or net ``name`` (its role,
    the manifest's ``router.rbac``, and its namespace); PermissionDenied otherwise, with an
    ``audit`` row. Returns the run's (tenant, namespace): the ``tenant`` argument, else
    ``router.tenant``, else the session's; ``router.namespace``, else the session's."""
    from .._session import current
    from ..store._audit import authorize

    if tenant is not None:
        check_name(tenant, "tenant")
    s = current()
    billed = tenant or router.tenant or s.tenant
    if not getattr(store, "admitted", False):  # a replay's re-execution: checked as a replay
        s = authorize(
            action,
            store=store,
            workflow=name,
            rbac=router.rbac,
            namespace=router.namespace,
            tenant=billed,
        )
    return billed, router.namespace or s.namespace


def recorder_for(store: Any) -> Recorder:
    """The recorder a ``store=`` argument asks for (emitting OpenTelemetry spans too when
    ``fluxnb.metrics.enable_otel()`` is on)."""
    from ..metrics._otel import traced

    return traced(_plain_recorder(store))


def _plain_recorder(store: Any) -> Recorder:
    if store is None:
        return NullRecorder()
    if hasattr(store, "event") and hasattr(store, "run_started"):
        return store  # already a Recorder (e.g. fluxnb.testing.MemoryRecorder)
    from ..store import Store, open_store

    if isinstance(store, Store):
        return store.recorder()
    return open_store(None if store is DEFAULT else store).recorder()


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

    Raises:
        ManifestError: the manifest or a callable is invalid (nothing is recorded).
        asyncio.CancelledError: the awaiting task was cancelled; the run is recorded
            ``cancelled`` with every row written so far.
    """
    wf = load_any(manifest, params=params)
    if isinstance(wf, Net):
        return await _net_coro(wf, namespace, store, tenant, seed, executor, run_id, max_firings)
    scheduler, record = _prepare(wf, namespace, store, tenant, seed, executor, run_id)
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
) -> tuple[Scheduler, RunRecord]:
    tenant, scope = admit(Action.RUN, wf.name, wf.router, store, tenant)
    _check_new_id(run_id, store)
    plan = plan_for(wf, namespace)
    recorder = recorder_for(store)
    rid = run_id or new_run_id()
    text = None if isinstance(recorder, NullRecorder) else wf.manifest_text()
    record = run_record(wf.name, len(wf), rid, time.time_ns() // 1000, scope, tenant, text, seed)
    options = RunOptions(rid, wf.name, seed)
    default, executors = _executors(wf, plan, executor)
    scheduler = Scheduler(
        plan, options, recorder=recorder, executors=executors, default_executor=default
    )
    return scheduler, record


def _check_new_id(run_id: str | None, store: Any) -> None:
    """A caller's ``run_id`` must be new to the store: a run with it (in any namespace)
    is never overwritten or moved. The refusal is the same whoever owns that run, so it
    tells nothing about another namespace's runs beyond the id being taken."""
    if run_id is None or store is None:
        return
    if hasattr(store, "event") and hasattr(store, "run_started"):
        return  # a recorder of the caller's own (MemoryRecorder, a replay): not a store
    from ..store import Store, open_store

    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise RunError(
            f"run id {run_id!r} is not valid: use 1-128 letters, digits, '-', '_', '.' or "
            "':', starting with a letter or digit"
        )
    st = store if isinstance(store, Store) else open_store(None if store is DEFAULT else store)
    if st.has_run(run_id):
        raise RunError(
            f"run id '{run_id}' is already taken in the store {st.path}: a new run needs a "
            "new id (leave run_id out for a fresh one; to continue a run of yours, use "
            "fluxnb.resume)"
        )


#: What a caller's run id may look like (a new_run_id() fits): no paths, no quotes.
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


def run_record(
    workflow: str,
    steps: int,
    run_id: str,
    started_us: int,
    namespace: str | None,
    tenant: str | None,
    text: str | None,
    seed: int,
    resumed: int = 0,
) -> RunRecord:
    """The ``runs`` row of a run (of a workflow or a net: ``steps`` steps or transitions)
    starting, or resuming, in this process."""
    return RunRecord(
        run_id=run_id,
        workflow=workflow,
        status="running",
        started_at=started_us,
        namespace=namespace,
        tenant=tenant,
        steps=steps,
        manifest=text,
        manifest_hash=hashlib.sha256(text.encode()).hexdigest()[:16] if text else None,
        host=socket.gethostname(),
        pid=os.getpid(),
        seed=seed,
        resumed=resumed,
    )


def _executors(
    wf: Workflow, plan: Plan, executor: Executor | str | None
) -> tuple[str, dict[str, Executor]]:
    """The run's default executor name and the executor instances it needs."""
    if executor is not None and not isinstance(executor, str):
        return executor.name, {executor.name: executor}
    spec = executor or wf.router.executor or "local"
    default = executor_kind(spec)
    names = {name or default for name in plan.executors}
    executors: dict[str, Executor] = {}
    if "dask" in names:
        from ._dask import executor_for

        executors["dask"] = executor_for(spec if spec.startswith("dask") else "dask")
        _check_serialisable(wf, plan, default)
    return default, executors


def executor_kind(spec: str) -> str:
    """``local`` or ``dask`` for an executor spec (``dask://HOST:PORT`` is ``dask``)."""
    kind = "dask" if spec.startswith("dask") else spec
    if kind not in ("local", "dask"):
        raise RunError(f"unknown executor '{spec}': use local, dask or dask://HOST:PORT")
    return kind


def _check_serialisable(wf: Workflow, plan: Plan, default: str) -> None:
    """Callables bound for Dask must pickle (by value): fail before the run, not in it."""
    import cloudpickle

    problems = []
    for ti, binding in enumerate(plan.bindings):
        if binding is None or (plan.executors[ti] or default) != "dask":
            continue
        try:
            cloudpickle.dumps(binding.fn)
        except Exception as exc:
            problems.append(
                Problem(
                    "not_serialisable",
                    f"pipeline[{ti}].step",
                    f"step '{plan.ids[ti]}' runs on Dask, but its callable cannot be sent "
                    f"to a worker: {type(exc).__name__}: {exc}. Make what it closes over "
                    "picklable, or run this step locally (agents: executor: local)",
                )
            )
    if problems:
        raise ResolutionError(problems, wf.source)


def resume(
    run_id: str,
    namespace: Mapping[str, Any] | None = None,
    *,
    store: Any = DEFAULT,
    manifest: Any = None,
    force: bool = False,
    trust: bool = False,
) -> RunResult:
    """Continue a failed, cancelled or interrupted run (also after its process died).

    Steps that succeeded are not called again: their recorded outputs feed the steps
    that still have to run. The new events join the same run (same ``run_id``; attempt
    numbers continue), and the run's row gets its new status and ``resumed`` count.

    Args:
        run_id: the run to continue.
        namespace: where step callables are looked up, as for :func:`run`.
        store: the store holding the run (default store by default).
        manifest: run this manifest or Workflow instead of the recorded one.
        force: resume a run recorded ``running`` even if its process seems alive.
        trust: unpickle recorded outputs this store did not sign (an imported trace's):
            unpickling runs code, so only for traces whose origin you trust.

    Only one resume of a run goes at a time (a lease beside the store, dropped when its
    process ends however it ends); a second is refused while the first runs.

    Raises:
        ReplayError: unknown run, a run that succeeded, or one still running.
        RunBusy: (a ReplayError) another resume of this run is going now.
        UntrustedOutput: a recorded pickle this store did not sign, without ``trust``.
    """
    lease, scheduler, record = _prepare_resume(run_id, namespace, store, manifest, force, trust)
    try:
        return _settled(lambda: _block(scheduler, record))
    finally:
        lease.release()


async def aresume(
    run_id: str,
    namespace: Mapping[str, Any] | None = None,
    *,
    store: Any = DEFAULT,
    manifest: Any = None,
    force: bool = False,
    trust: bool = False,
) -> RunResult:
    """:func:`resume` on the running event loop."""
    lease, scheduler, record = _prepare_resume(run_id, namespace, store, manifest, force, trust)
    try:
        return await scheduler.run(record)
    finally:
        lease.release()


def _alive(run: Mapping[str, Any]) -> bool:
    from ..store._liveness import process_alive

    # a resumed run's process started when it resumed
    started = run.get("resumed_at") or run.get("started_at")
    started_us = (
        int(started.replace(tzinfo=UTC).timestamp() * 1e6)
        if isinstance(started, datetime)
        else None
    )
    return process_alive(run.get("host"), run.get("pid"), started_us)


def _prepare_resume(
    run_id: str,
    namespace: Mapping[str, Any] | None,
    store: Any,
    manifest: Any,
    force: bool,
    trust: bool = False,
) -> tuple[Any, Scheduler, RunRecord]:
    from ..store import Store, open_store
    from ..store._leases import RunLease

    st = store if isinstance(store, Store) else open_store(None if store is DEFAULT else store)
    lease = RunLease(st, str(run_id))  # taken before reading: a finished resume is seen
    try:
        scheduler, record = _resume_plan(run_id, namespace, st, manifest, force, trust)
    except BaseException:
        lease.release()
        raise
    return lease, scheduler, record


def _resume_plan(
    run_id: str,
    namespace: Mapping[str, Any] | None,
    st: Any,
    manifest: Any,
    force: bool,
    trust: bool,
) -> tuple[Scheduler, RunRecord]:
    from ._history import completed_outputs, load_trace

    trace = load_trace(run_id, st)
    run = trace.run
    if run["status"] == "succeeded":
        raise ReplayError(f"run {run_id} succeeded; there is nothing to resume")
    if run["status"] == "running" and not force and _alive(run):
        raise ReplayError(
            f"run {run_id} is still running in process {run['pid']} on {run['host']}; "
            "cancel it first, or pass force=True if that process is not fluxnb's"
        )
    source = manifest if manifest is not None else run.get("manifest")
    if not source:
        raise ReplayError(f"run {run_id} has no recorded manifest; pass manifest=")
    wf = load_workflow(source)
    from ..store._audit import authorize

    authorize(
        Action.RESUME,
        store=st,
        workflow=wf.name,
        rbac=wf.router.rbac,
        namespace=run.get("namespace") or "default",
        target=run_id,
        tenant=run.get("tenant") or "default",
    )
    plan = plan_for(wf, namespace)
    outputs, attempts = completed_outputs(trace, trust)
    started = run["started_at"]
    started_us = (
        int(started.replace(tzinfo=UTC).timestamp() * 1e6)
        if isinstance(started, datetime)
        else int(datetime.fromisoformat(str(started)).replace(tzinfo=UTC).timestamp() * 1e6)
    )
    text = wf.manifest_text()
    seed = int(run.get("seed") or 0)
    record = run_record(
        wf.name,
        len(wf),
        run_id,
        started_us,
        run.get("namespace"),
        run.get("tenant"),
        text,
        seed,
        resumed=int(run.get("resumed") or 0) + 1,
    )
    # the run's duration_s counts the time it ran: its executions so far, then this one
    ran = run.get("duration_s")
    record = dataclasses.replace(
        record,
        resumed_at=time.time_ns() // 1000,
        ran_before_s=float(ran) if isinstance(ran, int | float) and math.isfinite(ran) else 0.0,
    )
    default, executors = _executors(wf, plan, None)
    scheduler = Scheduler(
        plan,
        RunOptions(run_id, wf.name, seed),
        recorder=recorder_for(st),
        executors=executors,
        default_executor=default,
    )
    scheduler.preset(outputs, attempts)
    return scheduler, record


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
) -> Any:
    """Blocking form of :func:`arun` (same arguments); safe to call inside a notebook.

    A KeyboardInterrupt (Ctrl-C, the kernel's stop button) cancels the run: running steps
    get CancelledError, the run is recorded ``cancelled``, and the KeyboardInterrupt is
    re-raised with the partial result attached as ``.run_result``.
    """
    wf = load_any(manifest, params=params)
    if isinstance(wf, Net):
        net = wf
        return _settled(
            lambda: _block_coro(
                lambda: _net_coro(
                    net, namespace, store, tenant, seed, executor, run_id, max_firings
                )
            )
        )
    scheduler, record = _prepare(wf, namespace, store, tenant, seed, executor, run_id)
    return _settled(lambda: _block(scheduler, record))


def _settled(call: Any) -> Any:
    """``call()``, a blocking run, then its store file made complete for other programs
    (see ``store._health.settle``), also when Ctrl-C interrupts it."""
    from ..store._health import settle

    try:
        result = call()
    except KeyboardInterrupt as exc:
        settle(getattr(exc, "run_result", None))
        raise
    return settle(result)


def _block_coro(make: Any) -> Any:
    """Await ``make()`` from synchronous code, like ``_block`` does a scheduler."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        with asyncio.Runner() as runner:
            return runner.run(make())
    lt = _LoopThread.get()
    if threading.current_thread() is lt.thread:
        raise RunError("fluxnb.run() was called from fluxnb's own loop; use 'await fluxnb.arun'")
    fut = asyncio.run_coroutine_threadsafe(make(), lt.loop)
    try:
        return fut.result()
    except KeyboardInterrupt:
        fut.cancel()
        with contextlib.suppress(BaseException):  # the engine records the cancellation
            fut.result(timeout=10)
        raise


def _block(scheduler: Scheduler, record: RunRecord) -> RunResult:
    """Run to the end from synchronous code: here if no loop runs in this thread, else on
    fluxnb's own loop thread (a notebook cell), never patching the caller's loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_here(scheduler, record)
    return _run_in_thread(scheduler, record)


def _run_here(scheduler: Scheduler, record: RunRecord) -> RunResult:
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
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="fluxnb-loop", daemon=True
        )
        self.thread.start()

    @classmethod
    def get(cls) -> _LoopThread:
        with cls._lock:
            if cls._instance is None or not cls._instance.thread.is_alive():
                cls._instance = cls()
            return cls._instance


def _run_in_thread(scheduler: Scheduler, record: RunRecord) -> RunResult:
    lt = _LoopThread.get()
    if threading.current_thread() is lt.thread:
        raise RunError(
            "fluxnb.run() was called from a step running on fluxnb's own loop, where it "
            "would wait for itself forever; use 'await fluxnb.arun(...)' inside async steps"
        )
    done = threading.Event()

    async def main() -> RunResult:
        try:
            return await scheduler.run(record)
        finally:
            done.set()

    fut = asyncio.run_coroutine_threadsafe(main(), lt.loop)
    try:
        return fut.result()
    except KeyboardInterrupt as exc:
        fut.cancel()
        done.wait()  # the scheduler records the cancellation before we return
        exc.run_result = getattr(scheduler, "result", None)  # type: ignore[attr-defined]
        raise
    except asyncio.CancelledError:
        raise RuntimeError("fluxnb's run loop was cancelled") from None

"""Continuing a failed, cancelled or interrupted run: ``resume`` and ``aresume``.

The recorded outputs of steps that succeeded stand in for calling them again (only pickles
this store signed, unless ``trust``), attempt numbers continue, and one lease per run keeps
two resumes from running the same steps twice.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .._exceptions import ReplayError
from .._session import Action
from ..spec import load_workflow
from ..store._recorder import RunRecord
from ._cache import attach
from ._loop import _block, _settled
from ._plan import plan_for
from ._result import RunResult
from ._scheduler import RunOptions, Scheduler
from ._setup import DEFAULT, _executors, recorder_for, run_record


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
    from ._history import _records, completed_outputs, load_trace

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
    if plan.streams:
        raise ReplayError(
            f"run {run_id} streamed items (it has a generator step), and a stream is not "
            "resumed half-consumed: its items were not "
            "recorded one by one, so resuming could lose or repeat them. Run the workflow "
            "again (fluxnb.run); see docs/streams.md, 'Resume'"
        )
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
    recorder = recorder_for(st)
    scheduler = Scheduler(
        plan,
        RunOptions(run_id, wf.name, seed),
        recorder=recorder,
        executors=executors,
        default_executor=default,
    )
    scheduler.preset(outputs, attempts)
    # the manifest's cache settings hold for the steps still to run; their keys need the
    # recorded digests of the steps that finished before
    digests = {
        r["step"]: r["output_digest"]
        for r in _records(trace.events)
        if r["final"] and r["status"] in ("succeeded", "cached") and r.get("output_digest")
    }
    attach(scheduler, wf, plan, recorder, run.get("namespace"), None, digests)
    return scheduler, record

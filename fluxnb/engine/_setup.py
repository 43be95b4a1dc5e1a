"""What every run sets up before it starts, for DAGs and nets alike: admission (who may
run it, for which tenant, in which namespace), a new run id (never one already taken), the
recorder a ``store=`` argument asks for, the ``runs`` row, and the executors.

The runners (``_runner`` for workflows, ``_net_runner`` for nets, ``_resume``) all build on
this module and none of them on each other's internals, so the engine has no import circles.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
import weakref
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from .._exceptions import Problem, ResolutionError, RunError
from .._session import Action, check_name
from ..spec import Binding, RouterSettings, Workflow
from ..store._recorder import NullRecorder, Recorder, RunRecord
from ._executor import Executor
from ._plan import Plan


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
    if store not in ADMITTED:  # a replay's re-execution was checked as a replay
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


def _check_new_id(run_id: str | None, store: Any) -> None:
    """A caller's ``run_id`` must be new to the store: a run with it (in any namespace)
    is never overwritten or moved. The refusal is the same whoever owns that run, so it
    tells nothing about another namespace's runs beyond the id being taken."""
    if run_id is None or store is None:
        return
    from ..store._audit import audit_store

    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise RunError(
            f"run id {run_id!r} is not valid: use 1-128 letters, digits, '-', '_', '.' or "
            "':', starting with a letter or digit"
        )
    # the Store behind any store= (a path, DEFAULT, a Store, its recorder, a wrapper of it);
    # None for a recorder of the caller's own (MemoryRecorder, a replay): nothing to overwrite
    st = audit_store(store)
    if st is not None and st.has_run(run_id):
        raise RunError(
            f"run id '{run_id}' is already taken in the store {st.path}: a new run needs a "
            "new id (leave run_id out for a fresh one; to continue a run of yours, use "
            "fluxnb.resume)"
        )


#: Recorders of replays, authorized as a replay by fluxnb itself (a weak set only fluxnb's
#: replay adds to: no attribute a caller could set skips the permission check).
ADMITTED: weakref.WeakSet[Any] = weakref.WeakSet()

#: What a caller's run id may look like (a new_run_id() fits): no paths, no quotes.
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


#: The last manifest text hashed and its hash: a warm workflow's runs record the very same
#: text object (Workflow.manifest_text caches it), hashed once instead of once a run
#: (~2,800 instructions a step for a 10,000-step workflow).
_last_hash: list[tuple[str, str]] = [("", "")]


def _manifest_hash(text: str) -> str:
    last = _last_hash[0]
    if last[0] is text:
        return last[1]
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    _last_hash[0] = (text, digest)
    return digest


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
        manifest_hash=_manifest_hash(text) if text else None,
        host=socket.gethostname(),
        pid=os.getpid(),
        seed=seed,
        resumed=resumed,
    )


def _executors(
    wf: Workflow, plan: Plan, executor: Executor | str | None
) -> tuple[str, dict[str, Executor]]:
    """A workflow run's default executor name and the executor instances it needs."""
    return executors_for(
        executor,
        wf.router.executor,
        plan.executors,
        plan.bindings,
        plan.ids,
        wf.source,
        "pipeline[{}].step",
        "step",
    )


def executors_for(
    executor: Executor | str | None,
    router_executor: str | None,
    names: Sequence[str | None],
    bindings: Sequence[Binding | None],
    ids: Sequence[str],
    source: str | None,
    path: str,
    word: str,
) -> tuple[str, dict[str, Executor]]:
    """The run's default executor name and the executor instances its steps or
    transitions need (``names``: each one's own ``executor:``, None for the run's)."""
    if executor is not None and not isinstance(executor, str):
        return executor.name, {executor.name: executor}
    spec = executor or router_executor or "local"
    default = executor_kind(spec)
    if "dask" in {name or default for name in names}:
        from ._dask import executor_for

        _check_serialisable(names, bindings, ids, default, source, path, word)
        return default, {"dask": executor_for(spec if spec.startswith("dask") else "dask")}
    return default, {}


def executor_kind(spec: str) -> str:
    """``local`` or ``dask`` for an executor spec (``dask://HOST:PORT`` is ``dask``)."""
    kind = "dask" if spec.startswith("dask") else spec
    if kind not in ("local", "dask"):
        raise RunError(f"unknown executor '{spec}': use local, dask or dask://HOST:PORT")
    return kind


def _check_serialisable(
    names: Sequence[str | None],
    bindings: Sequence[Binding | None],
    ids: Sequence[str],
    default: str,
    source: str | None,
    path: str,
    word: str,
) -> None:
    """Callables bound for Dask must pickle (by value): fail before the run, not in it."""
    import cloudpickle

    problems = []
    for ti, binding in enumerate(bindings):
        if binding is None or (names[ti] or default) != "dask":
            continue
        try:
            cloudpickle.dumps(binding.fn)
        except Exception as exc:
            problems.append(
                Problem(
                    "not_serialisable",
                    path.format(ti),
                    f"{word} '{ids[ti]}' runs on Dask, but its callable cannot be sent "
                    f"to a worker: {type(exc).__name__}: {exc}. Make what it closes over "
                    f"picklable, or run this {word} locally (executor: local)",
                )
            )
    if problems:
        raise ResolutionError(problems, source)

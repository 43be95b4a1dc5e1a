"""Triggers: schedules, file watches, webhooks, run events and named events start workflows.

Declare them in a manifest (``triggers:``) or register them from Python with
:func:`trigger`; the server (``fluxnb serve``, the control plane) runs a
:class:`TriggerService` that fires them, each firing's key recorded in the store before
its run starts, so a key fires once however many servers share the store. See
docs/triggers.md.

>>> import fluxnb
>>> wf = fluxnb.load('''
... name: nightly
... pipeline: [{step: "builtins:print"}]
... triggers:
...   - {id: nightly-2am, schedule: "0 2 * * *", timezone: Europe/Berlin}
... ''')
>>> [t.id for t in fluxnb.trigger(wf, store=":memory:")]
['nightly-2am']
"""

from __future__ import annotations

import os
from typing import Any

from .._exceptions import TriggerError
from ..spec._triggers import Backoff, Trigger, read_trigger
from ._clock import Clock, ManualClock, SystemClock
from ._launch import Firing, Launcher, LocalLauncher, Outcome
from ._records import Registered
from ._service import HookAnswer, TriggerService
from ._webhook import DELIVERY_HEADER, SIGNATURE_HEADER, sign

__all__ = [
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "Backoff",
    "Clock",
    "Firing",
    "HookAnswer",
    "Launcher",
    "LocalLauncher",
    "ManualClock",
    "Outcome",
    "Registered",
    "SystemClock",
    "Trigger",
    "TriggerService",
    "emit",
    "fire_now",
    "firings",
    "list_triggers",
    "pause",
    "resume",
    "sign",
    "trigger",
]


def _store(store: Any) -> Any:
    from ..store._store import Store, open_store

    return store if isinstance(store, Store) else open_store(store)


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def trigger(
    workflow: Any,
    id: str | None = None,
    *,
    store: Any = None,
    namespace: str | None = None,
    now: Any = None,
    **settings: Any,
) -> list[Trigger]:
    """Register triggers of ``workflow`` in ``store`` (default: the default store).

    With only a workflow (a Workflow, or manifest text / path / dict), its manifest's
    ``triggers:`` are registered. With ``id`` and settings — exactly one kind
    (``schedule=``, ``watch=``, ``webhook=``, ``on_run=``, ``event=``) and any of
    ``timezone``, ``params``, ``catch_up``, ``overlap``, ``max_concurrency``, ``backoff``,
    ``paused`` — that one trigger is. A workflow given as an object or text is stored with
    the trigger, so a standalone service can run it; a name alone refers to the control
    plane's registry. Registering a trigger id again replaces its settings.

    >>> fluxnb.trigger("etl", "hourly", schedule="0 * * * *", store=":memory:")  # doctest: +SKIP

    Raises:
        ManifestError: a bad setting (located by key).
        TriggerError: the id already starts another workflow.
        PermissionDenied: the session may not run the workflow.
    """
    from dataclasses import replace

    from .._session import Action
    from ..spec import Workflow
    from ..spec._manifest import load_workflow, read_source
    from ..spec._triggers import manifest_triggers
    from ..store._audit import authorize
    from . import _records as rec

    target = _store(store)
    manifest: str | None = None
    triggers: tuple[Trigger, ...]
    if isinstance(workflow, str) and _is_name(workflow):
        name, triggers = workflow, ()
    elif isinstance(workflow, str | os.PathLike):  # text: its params are filled per firing
        manifest, source, stem = read_source(workflow, None)
        found, triggers = manifest_triggers(manifest, source)
        name = found or stem or "workflow"
    else:
        wf = workflow if isinstance(workflow, Workflow) else load_workflow(workflow)
        name, triggers, manifest = wf.name, wf.triggers, wf.manifest_text()
    if id is not None:
        triggers = (read_trigger({"id": id, **settings}, source=f"fluxnb.trigger({id!r})"),)
    elif settings:
        raise TypeError("trigger settings need an id: fluxnb.trigger(wf, 'my-id', schedule=...)")
    from .._session import current

    s = current()  # its runs bill this session's tenant and go to its namespace
    ns = namespace or s.namespace
    authorize(Action.RUN, store=target, workflow=name, namespace=ns, target=f"triggers of {name}")
    when = now or _now()
    return [
        rec.register(
            target, replace(t, workflow=name), now=when, manifest=manifest, namespace=ns,
            tenant=s.tenant,
        ).trigger
        for t in triggers
    ]  # fmt: skip


def _is_name(text: str) -> bool:
    """A registered workflow's name rather than manifest text or a file path."""
    return "\n" not in text and not text.endswith((".yaml", ".yml")) and not os.path.exists(text)


def list_triggers(store: Any = None) -> Any:
    """Registered triggers as a DataFrame: id, workflow, kind, what, state (``active``,
    ``paused`` or ``backing off until ...``), failures in a row, last error, last fired."""
    import pandas as pd

    from . import _records as rec

    target = _store(store)
    regs = [r for r in rec.all_triggers(target) if _readable(r)]
    with target.connect() as con:
        last = dict(
            con.execute(
                "SELECT trigger, max(fired_at) FROM firings WHERE claim IS NOT NULL "
                "GROUP BY trigger"
            ).fetchall()
        )
    now = _now()
    rows = []
    for r in regs:
        t = r.trigger
        if r.paused:
            state = "paused"
        elif r.backoff_until is not None and r.backoff_until > now:
            state = f"backing off until {r.backoff_until:%Y-%m-%d %H:%M:%S} UTC"
        else:
            state = "active"
        rows.append(
            {
                "trigger": r.id,
                "workflow": t.workflow,
                "kind": t.kind,
                "what": ", ".join(f"{k}={v}" for k, v in t.spec.items()),
                "state": state,
                "failures": r.failures,
                "last_error": r.last_error,
                "last_fired": last.get(r.id),
            }
        )
    columns = [
        "trigger",
        "workflow",
        "kind",
        "what",
        "state",
        "failures",
        "last_error",
        "last_fired",
    ]
    return pd.DataFrame(rows, columns=columns)


def firings(trigger_id: str | None = None, *, store: Any = None) -> Any:
    """The ``firings`` table (of one trigger, or all) as a DataFrame, oldest first; a
    non-admin session sees its namespace's triggers' firings only."""
    import pandas as pd

    from . import _records as rec

    target = _store(store)
    mine = [r.id for r in rec.all_triggers(target) if _readable(r)]
    wanted = [t for t in mine if trigger_id is None or t == trigger_id]
    rows = rec.firing_rows(target, "list_contains($1, trigger)", [wanted]) if wanted else []
    return pd.DataFrame(rows, columns=list(rec.FIRING_COLUMNS))


def _readable(reg: Registered) -> bool:
    from .._session import current

    s = current()
    return s.is_admin or (reg.namespace or "default") == s.namespace


def _allowed(target: Any, trigger_id: str, what: str) -> Registered:
    """The trigger, if the acting session may run its workflow (PermissionDenied, audited,
    if not; TriggerError if there is no such trigger in its reach)."""
    from .._session import Action
    from ..store._audit import authorize
    from . import _records as rec

    reg = rec.require(target, trigger_id)
    if not _readable(reg):  # as if it did not exist: no leak across namespaces
        raise TriggerError(trigger_id, f"no trigger '{trigger_id}' in {target.path}")
    authorize(
        Action.RUN,
        store=target,
        workflow=reg.trigger.workflow,
        namespace=reg.namespace or "default",
        target=f"{what} trigger {trigger_id}",
    )
    return reg


def pause(trigger_id: str, *, store: Any = None) -> Registered:
    """Pause a trigger: nothing fires until :func:`resume` (runs going are left alone).

    Raises:
        TriggerError: no such trigger. PermissionDenied: the session may not run its
        workflow."""
    from . import _records as rec

    target = _store(store)
    _allowed(target, trigger_id, "pause")
    return rec.set_paused(target, trigger_id, True, _now())


def resume(trigger_id: str, *, store: Any = None) -> Registered:
    """Resume a paused trigger from now on (what it would have fired meanwhile is not
    caught up); its failure count and backoff are cleared. Raises as :func:`pause`."""
    from . import _records as rec

    target = _store(store)
    _allowed(target, trigger_id, "resume")
    return rec.set_paused(target, trigger_id, False, _now())


def fire_now(trigger_id: str, *, store: Any = None) -> str:
    """Ask for a firing of ``trigger_id`` now, by hand; its key. It is recorded
    ``queued`` and started by the trigger service (of any process on the store) as soon
    as the trigger has room."""
    import uuid

    from . import _records as rec

    target = _store(store)
    reg = _allowed(target, trigger_id, "fire")
    key = f"{trigger_id}#manual:{uuid.uuid4().hex[:12]}"
    rec.claim(
        target,
        key,
        reg.trigger,
        now=_now(),
        decide=lambda _r, _q: ("queued", "fired by hand; waiting for the trigger service"),
        payload={"manual": True},
    )
    return key


def emit(name: str, data: Any = None, *, store: Any = None) -> str:
    """Post event ``name`` (JSON-able ``data``) on the store's bus, in the acting
    session's namespace; its event id. Every ``event: name`` trigger of that namespace
    fires once for it."""
    from .._session import current
    from ..store._event_bus import emit as post

    return post(_store(store), name, data, source="python", namespace=current().namespace)

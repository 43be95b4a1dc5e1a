"""Permission checks with an audit trail: every denial, and every privileged action that
was allowed, becomes an ``audit`` row (written like trace rows: no lock taken)."""

from __future__ import annotations

import os
import socket
import time
import warnings
from typing import Any

from .._exceptions import PermissionDenied
from .._session import PRIVILEGED, Action, Role, Session, current, decide
from .._session import session as _set_session
from ._store import Store, open_store


def audit_store(store: Any) -> Store | None:
    """The Store an audit row goes to, for a ``store=`` argument of any form: the run's
    store, the default store for ``None`` / the default, None for a custom recorder."""
    seen = 0
    while seen < 5 and hasattr(store, "event"):  # recorders wrapping recorders
        if isinstance(getattr(store, "store", None), Store):
            return store.store
        store, seen = getattr(store, "inner", getattr(store, "_inner", None)), seen + 1
        if store is None:
            return None
    if isinstance(store, Store):
        return store
    if store is None or isinstance(store, (str, os.PathLike)):
        return open_store(store)
    if hasattr(store, "event"):  # a recorder of the user's own: nowhere to write
        return None
    return open_store(None)  # the DEFAULT sentinel


def write_audit(
    store: Store | None,
    s: Session,
    action: Action | str,
    target: str | None,
    outcome: str,
    detail: str | None = None,
) -> None:
    """One ``audit`` row; a store that cannot be written warns and never hides the
    original outcome (a denial is still raised)."""
    if store is None:
        return
    row = (
        time.time_ns() // 1000,
        str(s.role),
        s.tenant,
        s.namespace,
        str(action),
        target,
        outcome,
        detail,
        socket.gethostname(),
        os.getpid(),
        s.user,
    )
    try:
        store.append("audit", [row])
    except Exception as exc:  # auditing must never mask the real outcome
        warnings.warn(
            f"fluxnb could not write an audit row to {store.path}: {exc}",
            RuntimeWarning,
            stacklevel=3,
        )


def authorize(
    action: Action,
    *,
    store: Any = None,
    workflow: str | None = None,
    rbac: Any = None,
    namespace: str | None = None,
    target: str | None = None,
    detail: str | None = None,
    tenant: str | None = None,
) -> Session:
    """The acting session if it may do ``action``; else PermissionDenied (audited).

    ``namespace``: where the action lands (a workflow's ``router.namespace``, a recorded
    run's namespace); a non-admin may act only in its session's namespace.
    ``tenant``: who the action bills (a run's tenant); a non-admin bills only its
    session's tenant.
    ``rbac``: the manifest's RbacSettings, which can only narrow the role's permissions.
    """
    s = current()
    ok, allowed, why = decide(action, s, rbac)
    if ok and namespace is not None and not s.is_admin and namespace != s.namespace:
        ok = False
        why = (
            f"it belongs to namespace '{namespace}' and this session acts in "
            f"'{s.namespace}' (only admin may act across namespaces)"
        )
    if ok and tenant is not None and not s.is_admin and tenant != s.tenant:
        ok = False
        why = (
            f"it would bill tenant '{tenant}' and this session bills '{s.tenant}' (only "
            "admin may run for another tenant)"
        )
    what = target or workflow
    if not ok:
        write_audit(audit_store(store), s, action, what, "denied", why)
        raise PermissionDenied(str(s.role), str(action), allowed, workflow=workflow, why=why)
    if action in PRIVILEGED:
        write_audit(audit_store(store), s, action, what, "allowed", detail)
    return s


def session(
    role: str | Role | None = None,
    *,
    tenant: str | None = None,
    namespace: str | None = None,
    store: Any = None,
) -> Session:
    """Set who is acting (any field given) and return the session; with no arguments,
    return the acting session unchanged. A context manager too: ``with
    fluxnb.session(role="viewer"):`` restores the previous session on exit.

    >>> with fluxnb.session(role="viewer", namespace="team-a"):  # doctest: +SKIP
    ...     fluxnb.sql("SELECT count(*) FROM runs")   # team-a's runs only

    A non-admin session can lower its role but not raise it, and cannot leave its
    namespace or tenant: that is PermissionDenied, audited in ``store`` (default: the
    default store).

    Raises:
        FluxError: an unknown role or an invalid tenant / namespace name.
        PermissionDenied: a non-admin session asked for more.
    """
    try:
        return _set_session(role, tenant=tenant, namespace=namespace)
    except PermissionDenied as exc:
        write_audit(audit_store(store), current(), exc.action, None, "denied", str(exc))
        raise

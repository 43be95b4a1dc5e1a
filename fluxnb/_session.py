"""Who is acting: the session's role, tenant and namespace, and what each role may do.

The acting role comes from ``fluxnb.session(role=...)`` if one was set, else from the
``FLUXNB_ROLE`` environment variable, else ``admin``; the tenant and namespace likewise
(``FLUXNB_TENANT``, ``FLUXNB_NAMESPACE``, default ``default``). Python, the magics and the
CLI all read it here, so a rule is applied the same way whatever face asks.

Why ``admin`` when nothing is configured: a store is a DuckDB file its owner can open with
``duckdb`` anyway, so an unconfigured session acts as that owner. Shared setups (a
JupyterHub, a team server) set ``FLUXNB_ROLE`` / ``FLUXNB_NAMESPACE`` for each user.

This is cooperative access control for shared notebooks and stores, not authentication:
whoever can set an environment variable can pick a role. It stops mistakes (a viewer's
notebook re-running production work, one team's query reading another's traces), and the
``audit`` table says who tried what.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ._exceptions import FluxError, PermissionDenied


class Role(StrEnum):
    """The three roles, each allowed everything the one before it is."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


class Action(StrEnum):
    """What a session may be allowed to do."""

    READ = "read"  # traces, usage, invoices, rate cards (of its namespace)
    VALIDATE = "validate"  # validate / analyse a manifest
    RUN = "run"
    REPLAY = "replay"
    RESUME = "resume"
    READ_ALL = "read every namespace"
    MANAGE_TENANTS = "manage tenants"
    SET_RATES = "set rate cards"
    CORRECT_USAGE = "correct usage"
    ISSUE_INVOICES = "issue invoices"
    MANAGE_WORKFLOWS = "manage workflows"  # delete from the control plane's registry


_VIEWER = frozenset({Action.READ, Action.VALIDATE})
_OPERATOR = _VIEWER | {Action.RUN, Action.REPLAY, Action.RESUME}
#: What each role may do (documented in docs/tenants.md; a test pins it).
PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.VIEWER: _VIEWER,
    Role.OPERATOR: _OPERATOR,
    Role.ADMIN: frozenset(Action),
}
#: Privileged actions: allowed ones are written to ``audit`` too, not only denials.
PRIVILEGED = frozenset(
    {
        Action.MANAGE_TENANTS,
        Action.SET_RATES,
        Action.CORRECT_USAGE,
        Action.ISSUE_INVOICES,
        Action.MANAGE_WORKFLOWS,
    }
)
#: The manifest's ``router.rbac`` list that narrows each action (FluxRoute's names).
RBAC_FIELD: dict[Action, str] = {
    Action.RUN: "run_roles",
    Action.VALIDATE: "validate_roles",
    Action.REPLAY: "replay_roles",
    Action.RESUME: "replay_roles",
    Action.CORRECT_USAGE: "admin_roles",
}

_NAME = re.compile(r"[a-z0-9](?:[a-z0-9_.-]{0,61}[a-z0-9])?")
DEFAULT_NAME = "default"


def check_name(value: Any, what: str) -> str:
    """``value`` if it is a valid tenant or namespace name, else FluxError saying why."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise FluxError(
            f"{what} name {value!r} is not valid: use 1-63 lowercase letters, digits, '-', "
            "'_' or '.', starting and ending with a letter or digit (e.g. 'acme', 'team-a')"
        )
    return value


def _role(value: Any, where: str) -> Role:
    try:
        return Role(str(value).strip().lower())
    except ValueError:
        raise FluxError(f"{where} {value!r} is not a role; use viewer, operator or admin") from None


@dataclass(frozen=True)
class Session:
    """The acting role, tenant and namespace. Also a context manager: ``with
    fluxnb.session(role="viewer"):`` restores the previous session on exit."""

    #: viewer, operator or admin (see PERMISSIONS).
    role: Role
    #: Runs are billed to this tenant unless the run or its manifest names another.
    tenant: str
    #: Runs without ``router.namespace`` belong here; non-admins see only this namespace.
    namespace: str
    _previous: Session | None = field(default=None, compare=False, repr=False)
    #: Who is acting, when something authenticated them (the control plane's Jupyter user
    #: name); recorded in ``audit.user_name``. None inside a kernel or a terminal.
    user: str | None = field(default=None, compare=False)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def can(self, action: Action) -> bool:
        return action in PERMISSIONS[self.role]

    def __repr__(self) -> str:
        return f"Session(role='{self.role}', tenant='{self.tenant}', namespace='{self.namespace}')"

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        with _acting.lock:
            _acting.session = self._previous

    def _repr_html_(self) -> str:
        return (
            f"<code>fluxnb session</code>: role <b>{self.role}</b>, tenant <b>{self.tenant}"
            f"</b>, namespace <b>{self.namespace}</b>"
        )


class _Acting:
    """The session set with :func:`session` (None: read the environment), process-wide:
    a kernel is one user, and steps on fluxnb's threads act for that user too."""

    lock = threading.Lock()
    session: Session | None = None


_acting = _Acting()


#: The session of one request of the control plane (fluxnb.server): many users share its
#: process, so their sessions are per context, never process-wide.
_request: ContextVar[Session | None] = ContextVar("fluxnb_request_session", default=None)


@contextmanager
def acting(s: Session) -> Iterator[Session]:
    """Act as ``s`` in this context only (this thread or task; a server's request)."""
    token = _request.set(s)
    try:
        yield s
    finally:
        _request.reset(token)


def current() -> Session:
    """The acting session: a request's (:func:`acting`), else the one set with
    :func:`session`, else from the environment."""
    s = _request.get()
    if s is not None:
        return s
    s = _acting.session
    if s is not None:
        return s
    return Session(
        role=_role(os.environ.get("FLUXNB_ROLE") or Role.ADMIN, "FLUXNB_ROLE"),
        tenant=check_name(os.environ.get("FLUXNB_TENANT") or DEFAULT_NAME, "FLUXNB_TENANT"),
        namespace=check_name(
            os.environ.get("FLUXNB_NAMESPACE") or DEFAULT_NAME, "FLUXNB_NAMESPACE"
        ),
    )


def session(
    role: str | Role | None = None, *, tenant: str | None = None, namespace: str | None = None
) -> Session:
    """Set who is acting (any field given) and return the session; with no arguments,
    return the acting session unchanged.

    >>> with fluxnb.session(role="viewer", namespace="team-a"):  # doctest: +SKIP
    ...     fluxnb.sql("SELECT count(*) FROM runs")   # team-a's runs only

    A non-admin session can lower its role but not raise it, and cannot leave its
    namespace or tenant (PermissionDenied): widening takes a process started with other
    ``FLUXNB_ROLE`` / ``FLUXNB_NAMESPACE`` / ``FLUXNB_TENANT`` values.

    Raises:
        FluxError: an unknown role or an invalid tenant / namespace name.
        PermissionDenied: a non-admin session asked for more.
    """
    before = current()
    if role is None and tenant is None and namespace is None:
        return before
    wanted = _role(role, "role") if role is not None else before.role
    if not before.is_admin:  # a session can narrow itself, never widen
        rank = list(Role)
        if rank.index(wanted) > rank.index(before.role):
            raise PermissionDenied(
                str(before.role),
                f"act as {wanted}",
                (str(Role.ADMIN),),
                why="a session can lower its role but not raise it; start the process with "
                "another FLUXNB_ROLE",
            )
        if tenant is not None and tenant != before.tenant:
            raise PermissionDenied(
                str(before.role),
                f"switch to tenant '{tenant}'",
                (str(Role.ADMIN),),
                why=f"a {before.role} session bills its tenant '{before.tenant}' only",
            )
        if namespace is not None and namespace != before.namespace:
            raise PermissionDenied(
                str(before.role),
                f"switch to namespace '{namespace}'",
                (str(Role.ADMIN),),
                why=f"a {before.role} session stays in its namespace '{before.namespace}'",
            )
    new = Session(
        role=wanted,
        tenant=check_name(tenant, "tenant") if tenant is not None else before.tenant,
        namespace=check_name(namespace, "namespace") if namespace is not None else before.namespace,
        _previous=_acting.session,
    )
    with _acting.lock:
        _acting.session = new
    return new


def decide(
    action: Action, s: Session, rbac: Any = None
) -> tuple[bool, tuple[str, ...], str | None]:
    """(allowed, the roles that may, why not) for ``s`` doing ``action``; ``rbac`` is a
    manifest's RbacSettings, which can only narrow what a role may do."""
    allowed = tuple(str(r) for r in Role if action in PERMISSIONS[r])
    if not s.can(action):
        return False, allowed, None
    narrowed = getattr(rbac, RBAC_FIELD.get(action, ""), ()) if rbac is not None else ()
    if narrowed:
        roles = tuple(str(r).lower() for r in narrowed)
        allowed = tuple(r for r in allowed if r in roles)
        if str(s.role) not in roles:
            field_name = RBAC_FIELD[action]
            return False, allowed, f"the manifest's router.rbac.{field_name} lists {list(roles)}"
    return True, allowed, None


def denied(action: Action, s: Session, allowed: tuple[str, ...], **facts: Any) -> PermissionDenied:
    return PermissionDenied(str(s.role), str(action), allowed, **facts)

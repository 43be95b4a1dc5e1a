"""Who a Jupyter user is in fluxnb: ``c.FluxnbServer.roles`` read into sessions.

Jupyter Server authenticates (its token, JupyterHub); this maps the authenticated user to
a fluxnb role, the namespaces it may act in, and the tenant it bills. A request picks one of
its namespaces (``?namespace=`` or the ``X-Fluxnb-Namespace`` header; default: the first)
and never anything more: there is no way for a request to name a role.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .._exceptions import FluxError, PermissionDenied
from .._session import DEFAULT_NAME, Role, Session, check_name


@dataclass(frozen=True)
class Grant:
    """What one entry of ``c.FluxnbServer.roles`` gives."""

    #: viewer, operator or admin.
    role: Role
    #: Namespaces the user may act in, the first being the default; admin acts in any.
    namespaces: tuple[str, ...]
    #: The tenant runs are billed to unless a request names another (admin only).
    tenant: str


class Roles:
    """``c.FluxnbServer.roles``, checked once when the server starts (a bad entry stops it
    with a message naming the entry)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.open = not config  # no mapping: a single-user server, its user is admin
        self.grants = {key: _grant(key, value) for key, value in config.items()}

    def grant(self, user: str, groups: Iterable[str] = ()) -> Grant | None:
        """The grant of ``user`` (a member of ``groups``), or None: no access at all."""
        if self.open:
            return Grant(Role.ADMIN, (DEFAULT_NAME,), DEFAULT_NAME)
        if user in self.grants:
            return self.grants[user]
        member = set(groups)
        for key, grant in self.grants.items():
            if key.startswith("group:") and key[6:] in member:
                return grant
        return self.grants.get("*")

    def session(self, user: str, groups: Iterable[str], namespace: str | None) -> Session:
        """The session a request of ``user`` acts as, in ``namespace`` (None: the user's
        first). PermissionDenied for an unknown user or a namespace not granted."""
        grant = self.grant(user, groups)
        if grant is None:
            raise PermissionDenied(
                "none",
                "use the fluxnb control plane",
                tuple(str(r) for r in Role),
                why=f"the Jupyter user '{user}' has no entry in c.FluxnbServer.roles",
            )
        if namespace is None:
            namespace = grant.namespaces[0]
        check_name(namespace, "namespace")
        if grant.role is not Role.ADMIN and namespace not in grant.namespaces:
            raise PermissionDenied(
                str(grant.role),
                f"act in namespace '{namespace}'",
                (str(Role.ADMIN),),
                why=f"'{user}' may act in {list(grant.namespaces)} only",
            )
        return Session(role=grant.role, tenant=grant.tenant, namespace=namespace, user=user)

    def readable(self, user: str, groups: Iterable[str]) -> tuple[str, ...] | None:
        """The namespaces ``user`` may read (None: every one, an admin)."""
        grant = self.grant(user, groups)
        if grant is None:
            return ()
        return None if grant.role is Role.ADMIN else grant.namespaces


def _grant(key: Any, value: Any) -> Grant:
    where = f"c.FluxnbServer.roles[{key!r}]"
    if not isinstance(key, str) or not key:
        raise FluxError(f"{where}: keys are Jupyter user names, 'group:NAME' or '*'")
    if isinstance(value, str):
        value = {"role": value}
    if not isinstance(value, Mapping):
        raise FluxError(
            f"{where} is {value!r}; give a role name or "
            "{'role': ..., 'namespaces': [...], 'tenant': ...}"
        )
    unknown = set(value) - {"role", "namespaces", "tenant"}
    if unknown:
        raise FluxError(f"{where} has unknown keys {sorted(unknown)}; use role, namespaces, tenant")
    try:
        role = Role(str(value.get("role", "")).strip().lower())
    except ValueError:
        raise FluxError(
            f"{where}['role'] is {value.get('role')!r}; use viewer, operator or admin"
        ) from None
    spaces = value.get("namespaces", [DEFAULT_NAME])
    if isinstance(spaces, str) or not isinstance(spaces, Iterable) or not list(spaces):
        raise FluxError(f"{where}['namespaces'] must be a non-empty list of namespace names")
    names = tuple(check_name(n, f"{where} namespace") for n in spaces)
    tenant = check_name(value.get("tenant", DEFAULT_NAME), f"{where} tenant")
    return Grant(role, names, tenant)

"""The workflow registry: manifests kept by name and namespace, every version kept.

The control plane (fluxnb.server) registers manifests here so that runs can be started by
name from outside a Python process; each run started that way records the version it ran
(``workflow_runs``). Registering the same text again keeps its version; a changed text
adds the next version; deleting hides the name (its versions stay, for the runs that ran
them).

Writes are rare and small, so they go straight to the file (one short connection), not
through segments.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ._store import Store

__all__ = [
    "RegisteredWorkflow",
    "delete",
    "get",
    "list_workflows",
    "put",
    "record_run",
    "record_runs",
]


@dataclass(frozen=True)
class RegisteredWorkflow:
    """One version of a registered manifest."""

    #: Namespace the workflow belongs to; only sessions of it (and admins) see it.
    namespace: str
    name: str
    #: 1 for the first text registered under this name, then one more per changed text.
    version: int
    #: ``workflow`` (a DAG) or ``net`` (a Petri net).
    kind: str
    manifest: str
    #: SHA-256 of the manifest text.
    manifest_hash: str
    created_at: datetime
    #: Who registered it (the Jupyter user name, when known).
    created_by: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "version": self.version,
            "kind": self.kind,
            "manifest_hash": self.manifest_hash,
            "created_at": self.created_at.replace(tzinfo=UTC).isoformat(),
            "created_by": self.created_by,
        }


_COLUMNS = "namespace, name, version, kind, manifest, manifest_hash, created_at, created_by"


def _row(row: tuple) -> RegisteredWorkflow:
    return RegisteredWorkflow(*row)


def put(
    store: Store, namespace: str, name: str, kind: str, manifest: str, user: str | None
) -> tuple[RegisteredWorkflow, bool]:
    """Register ``manifest`` (already validated) as ``name``; (that version, whether it is
    new). The same text as the latest live version keeps that version."""
    digest = hashlib.sha256(manifest.encode()).hexdigest()
    with store.connect() as con:
        con.execute("BEGIN")
        try:
            latest = con.execute(
                f"SELECT {_COLUMNS}, deleted_at FROM workflows WHERE namespace = $1 AND "
                "name = $2 ORDER BY version DESC LIMIT 1",
                [namespace, name],
            ).fetchone()
            if latest is not None and latest[-1] is None and latest[5] == digest:
                con.execute("COMMIT")
                return _row(latest[:-1]), False
            version = 1 if latest is None else latest[2] + 1
            now = datetime.now(UTC).replace(tzinfo=None)
            con.execute(
                f"INSERT INTO workflows ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                [namespace, name, version, kind, manifest, digest, now, user],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return RegisteredWorkflow(namespace, name, version, kind, manifest, digest, now, user), True


def get(
    store: Store, namespace: str, name: str, version: int | None = None
) -> RegisteredWorkflow | None:
    """The latest live version of ``name`` in ``namespace`` (or that ``version``, even of
    a deleted name); None if there is none."""
    query = f"SELECT {_COLUMNS} FROM workflows WHERE namespace = $1 AND name = $2"
    args: list[Any] = [namespace, name]
    if version is None:
        query += " AND deleted_at IS NULL ORDER BY version DESC LIMIT 1"
    else:
        query += " AND version = $3"
        args.append(version)
    with store.connect() as con:
        row = con.execute(query, args).fetchone()
    return None if row is None else _row(row)


def list_workflows(store: Store, namespaces: list[str] | None) -> list[RegisteredWorkflow]:
    """The latest live version of every workflow of ``namespaces`` (None: all)."""
    query = (
        f"SELECT {_COLUMNS} FROM workflows w WHERE deleted_at IS NULL AND version = "
        "(SELECT max(version) FROM workflows v WHERE v.namespace = w.namespace AND "
        "v.name = w.name)"
    )
    args: list[Any] = []
    if namespaces is not None:
        query += " AND list_contains($1, namespace)"
        args.append(namespaces)
    with store.connect() as con:
        rows = con.execute(query + " ORDER BY namespace, name", args).fetchall()
    return [_row(r) for r in rows]


def delete(store: Store, namespace: str, name: str) -> bool:
    """Hide ``name`` (its versions stay for the runs that ran them); whether it was there."""
    with store.connect() as con:
        found = con.execute(
            "UPDATE workflows SET deleted_at = $3 WHERE namespace = $1 AND name = $2 "
            "AND deleted_at IS NULL RETURNING version",
            [namespace, name, datetime.now(UTC).replace(tzinfo=None)],
        ).fetchall()
    return bool(found)


def run_known(store: Store, run_id: str) -> bool:
    """Whether ``run_id`` is taken: a run in the store (any namespace) or one the control
    plane started (answers yes or no only, like ``Store.has_run``)."""
    with store.connect() as con:
        found = con.execute(
            "SELECT 1 FROM runs WHERE run_id = $1 UNION ALL "
            "SELECT 1 FROM workflow_runs WHERE run_id = $1",
            [run_id],
        ).fetchall()
    return bool(found)


def record_run(store: Store, run_id: str, wf: RegisteredWorkflow, user: str | None) -> None:
    """Note that run ``run_id`` runs version ``wf.version`` (before it starts)."""
    record_runs(store, [(run_id, wf, user)])


def record_runs(store: Store, runs: list[tuple[str, RegisteredWorkflow, str | None]]) -> None:
    """Note the version each run ``(run_id, workflow, user)`` runs, in one write."""
    now = time.time_ns() // 1000
    rows = [(rid, wf.namespace, wf.name, wf.version, user, now) for rid, wf, user in runs]
    with store.connect() as con:
        con.executemany(
            "INSERT INTO workflow_runs VALUES ($1, $2, $3, $4, $5, make_timestamp($6)) "
            "ON CONFLICT DO NOTHING",
            rows,
        )

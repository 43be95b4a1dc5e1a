"""Triggers, firings and bus events in the store.

Every write here is one short transaction on the store file (``Store.connect()``), which
DuckDB lets one process hold at a time: a claim reads and inserts under that exclusive
hold, and ``firings.claim`` is UNIQUE besides, so one key is claimed once whatever the
number of processes. Times are naive UTC in the tables, aware UTC in Python.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from .._exceptions import TriggerError
from ..spec._triggers import Trigger, read_trigger
from ..store._store import Store

#: The outcomes a firing row can have. ``started``/``queued``: it owns its key and its run
#: is going or waiting; the rest are final. ``duplicate`` and ``rejected`` rows own no key.
OUTCOMES = (
    "started",
    "queued",
    "succeeded",
    "failed",
    "cancelled",
    "interrupted",
    "skipped",
    "duplicate",
    "rejected",
)

FIRING_COLUMNS = (
    "key",
    "trigger",
    "workflow",
    "scheduled_for",
    "fired_at",
    "run_id",
    "outcome",
    "skipped_because",
    "payload",
    "ended_at",
    "host",
    "pid",
)


def _one(rows: list[tuple]) -> tuple | None:
    """The first row of a fully fetched result (``fetchone`` would leave the rest pending,
    and an in-memory store's connection refuses other work until it is finished)."""
    return rows[0] if rows else None


def naive(t: datetime | None) -> datetime | None:
    """An aware time as the naive UTC the tables hold."""
    return None if t is None else t.astimezone(UTC).replace(tzinfo=None)


def aware(t: datetime | None) -> datetime | None:
    return None if t is None else t.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Registered:
    """A trigger as the store has it, with its state."""

    trigger: Trigger
    namespace: str | None
    manifest: str | None
    paused: bool
    #: Schedule times, events and runs from this moment on count (registration, resume).
    since: datetime
    #: Failed runs in a row, when the trigger waits after them, and the last error.
    failures: int
    backoff_until: datetime | None
    last_error: str | None
    #: Whom its runs bill unless the manifest's ``router.tenant`` says: the tenant of the
    #: session that registered it (None: registered before fluxnb recorded it).
    tenant: str | None = None
    #: Refused webhook deliveries in all (the first few a minute also have a firings row).
    rejections: int = 0

    @property
    def id(self) -> str:
        return self.trigger.id


@dataclass(frozen=True)
class Claim:
    """What a claim did: ``outcome`` as recorded, the run id, and for a ``duplicate`` the
    firing that owns the key (``existing``)."""

    key: str
    outcome: str
    run_id: str | None
    skipped_because: str | None = None
    existing: dict[str, Any] | None = None

    @property
    def owned(self) -> bool:
        return self.outcome != "duplicate"


@contextmanager
def _tx(store: Store) -> Iterator[Any]:
    with store.connect() as con:
        con.execute("BEGIN")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")


def register(
    store: Store,
    trigger: Trigger,
    *,
    now: datetime,
    manifest: str | None = None,
    namespace: str | None = None,
    tenant: str | None = None,
) -> Registered:
    """Add or replace ``trigger`` (its ``workflow`` set). A trigger id names one trigger in
    the store: re-registering it for another workflow is refused. Its runs bill ``tenant``
    (default: the acting session's, whoever registers it) unless their manifest's
    ``router.tenant`` names one."""
    from .._session import current

    tenant = tenant or current().tenant
    if not trigger.workflow:
        raise TriggerError(trigger.id, f"trigger '{trigger.id}' names no workflow to start")
    spec = json.dumps(trigger.to_dict(), sort_keys=True)
    with _tx(store) as con:
        row = _one(
            con.execute(
                "SELECT workflow, since FROM triggers WHERE trigger_id = $1", [trigger.id]
            ).fetchall()
        )
        if row is not None and row[0] != trigger.workflow:
            raise TriggerError(
                trigger.id,
                f"trigger id '{trigger.id}' already starts workflow '{row[0]}'; trigger ids "
                "are unique in a store: choose another id, or delete that trigger first",
                workflow=row[0],
            )
        if row is None:
            con.execute(
                "INSERT INTO triggers (trigger_id, workflow, namespace, kind, spec, manifest, "
                "paused, since, failures, created_at, updated_at, tenant) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $8, $8, $9)",
                [
                    trigger.id,
                    trigger.workflow,
                    namespace,
                    trigger.kind,
                    spec,
                    manifest,
                    trigger.paused,
                    naive(now),
                    tenant,
                ],
            )
        else:
            con.execute(
                "UPDATE triggers SET kind = $2, spec = $3, manifest = coalesce($4, manifest), "
                "namespace = coalesce($5, namespace), updated_at = $6, tenant = $7 "
                "WHERE trigger_id = $1",
                [trigger.id, trigger.kind, spec, manifest, namespace, naive(now), tenant],
            )
    found = get(store, trigger.id)
    assert found is not None
    return found


def register_all(
    store: Store, triggers: Any, *, namespace: str | None, now: datetime | None = None
) -> list[Registered]:
    """Register every trigger of a workflow's manifest (the control plane does, when the
    workflow is registered)."""
    when = now or datetime.now(UTC)
    return [register(store, t, now=when, namespace=namespace) for t in triggers]


_TRIGGER_COLS = (
    "trigger_id, workflow, namespace, spec, manifest, paused, since, failures, "
    "backoff_until, last_error, tenant, rejections"
)


def _registered(row: tuple) -> Registered:
    tid, workflow, ns, spec, manifest, paused, since, failures, until, error, tenant, refused = row
    t = read_trigger(json.loads(spec), source=f"trigger {tid}")
    return Registered(
        trigger=replace(t, workflow=workflow, paused=bool(paused)),
        namespace=ns,
        manifest=manifest,
        paused=bool(paused),
        since=aware(since) or datetime.now(UTC),
        failures=failures,
        backoff_until=aware(until),
        last_error=error,
        tenant=tenant,
        rejections=refused,
    )


def all_triggers(store: Store) -> list[Registered]:
    """Every registered trigger (one whose stored spec cannot be read is left out and
    named in the log: one bad trigger never stops the others)."""
    import logging

    with store.connect() as con:
        rows = con.execute(f"SELECT {_TRIGGER_COLS} FROM triggers ORDER BY trigger_id").fetchall()
    out = []
    for row in rows:
        try:
            out.append(_registered(row))
        except Exception as exc:  # a row written by another version, say
            logging.getLogger("fluxnb.triggers").error("trigger %s is unreadable: %s", row[0], exc)
    return out


def get(store: Store, trigger_id: str) -> Registered | None:
    with store.connect() as con:
        row = _one(
            con.execute(
                f"SELECT {_TRIGGER_COLS} FROM triggers WHERE trigger_id = $1", [trigger_id]
            ).fetchall()
        )
    return None if row is None else _registered(row)


def require(store: Store, trigger_id: str) -> Registered:
    found = get(store, trigger_id)
    if found is None:
        raise TriggerError(
            trigger_id,
            f"no trigger '{trigger_id}' in {store.path}; `fluxnb triggers list` shows them",
        )
    return found


def set_paused(store: Store, trigger_id: str, paused: bool, now: datetime) -> Registered:
    """Pause or resume. Resuming starts the trigger afresh at ``now``: schedule times and
    events of the paused time are not caught up."""
    require(store, trigger_id)
    with _tx(store) as con:
        if paused:
            con.execute(
                "UPDATE triggers SET paused = true, updated_at = $2 WHERE trigger_id = $1",
                [trigger_id, naive(now)],
            )
        else:
            con.execute(
                "UPDATE triggers SET paused = false, since = $2, failures = 0, "
                "backoff_until = NULL, updated_at = $2 WHERE trigger_id = $1 AND paused",
                [trigger_id, naive(now)],
            )
    return require(store, trigger_id)


def delete(store: Store, trigger_id: str) -> bool:
    with _tx(store) as con:
        found = con.execute(
            "DELETE FROM triggers WHERE trigger_id = $1 RETURNING trigger_id", [trigger_id]
        ).fetchall()
    return bool(found)


#: decide(running, queued) -> (outcome, skipped_because) for a new owned firing.
Decide = Callable[[int, int], tuple[str, str | None]]


def claim(
    store: Store,
    key: str,
    trigger: Trigger,
    *,
    now: datetime,
    decide: Decide | None,
    scheduled_for: datetime | None = None,
    payload: dict[str, Any] | None = None,
) -> Claim | None:
    """Record the firing of ``key`` before anything runs: its outcome is ``decide(running,
    queued)`` (this trigger's firings now started / queued), or ``duplicate`` (recorded,
    owning nothing) when the key was claimed before, by any process. With no ``decide``
    only a duplicate is recorded (None: the key is not claimed yet)."""
    run_id = uuid.uuid4().hex
    with _tx(store) as con:
        prior = _one(
            con.execute(
                "SELECT run_id, outcome, fired_at, host, pid FROM firings WHERE claim = $1", [key]
            ).fetchall()
        )
        if prior is not None:
            why = (
                f"key {key} already fired at {prior[2]:%Y-%m-%d %H:%M:%S} UTC "
                f"(outcome {prior[1]}, run {prior[0]}, process {prior[4]} on {prior[3]})"
            )
            _insert(con, key, None, trigger, scheduled_for, now, None, "duplicate", why, None)
            existing = dict(
                zip(("run_id", "outcome", "fired_at", "host", "pid"), prior, strict=True)
            )
            return Claim(key, "duplicate", prior[0], why, existing)
        if decide is None:
            return None
        [(running, queued)] = con.execute(
            "SELECT count(*) FILTER (WHERE outcome = 'started'), "
            "count(*) FILTER (WHERE outcome = 'queued') FROM firings WHERE trigger = $1",
            [trigger.id],
        ).fetchall()
        outcome, because = decide(running, queued)
        rid = run_id if outcome in ("started", "queued") else None
        _insert(con, key, key, trigger, scheduled_for, now, rid, outcome, because, payload)
    return Claim(key, outcome, rid, because)


def reject(
    store: Store,
    key: str | None,
    trigger: Trigger,
    now: datetime,
    because: str,
    unrecorded: int = 0,
) -> None:
    """Count refused requests (a bad signature, say) in the trigger's ``rejections``: this
    one, recorded as a ``rejected`` firing that claims nothing (``key`` None: not recorded),
    and ``unrecorded`` earlier ones that were only counted."""
    with _tx(store) as con:
        if key is not None:
            _insert(con, key, None, trigger, None, now, None, "rejected", because, None)
        con.execute(
            "UPDATE triggers SET rejections = rejections + $2 WHERE trigger_id = $1",
            [trigger.id, unrecorded + (key is not None)],
        )


def _insert(
    con: Any,
    key: str,
    claim_key: str | None,
    trigger: Trigger,
    scheduled_for: datetime | None,
    now: datetime,
    run_id: str | None,
    outcome: str,
    because: str | None,
    payload: Any,
) -> None:
    con.execute(
        "INSERT INTO firings (key, claim, trigger, workflow, scheduled_for, fired_at, run_id, "
        "outcome, skipped_because, payload, host, pid) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        [
            key,
            claim_key,
            trigger.id,
            trigger.workflow,
            naive(scheduled_for),
            naive(now),
            run_id,
            outcome,
            because,
            None if payload is None else json.dumps(payload, default=str),
            socket.gethostname(),
            os.getpid(),
        ],
    )


def start_queued(store: Store, key: str, trigger_id: str, limit: int | None) -> bool:
    """Move a queued firing to started (True), unless another process took it first or
    the trigger already runs ``limit`` firings."""
    with _tx(store) as con:
        took = con.execute(
            "UPDATE firings SET outcome = 'started', skipped_because = NULL, host = $2, "
            "pid = $3 WHERE claim = $1 AND outcome = 'queued' AND (SELECT count(*) FROM "
            "firings WHERE trigger = $4 AND outcome = 'started') < $5 RETURNING claim",
            [key, socket.gethostname(), os.getpid(), trigger_id, limit or 2**62],
        ).fetchall()
    return bool(took)


def finish(
    store: Store, reg: Registered, key: str, outcome: str, now: datetime, error: str | None = None
) -> None:
    """A firing's run ended: record it, and count the trigger's failures in a row (a
    success clears them; enough failures set ``backoff_until``)."""
    with _tx(store) as con:
        con.execute(
            "UPDATE firings SET outcome = $2, ended_at = $3, "
            "skipped_because = coalesce($4, skipped_because) WHERE claim = $1",
            [key, outcome, naive(now), error if outcome != "succeeded" else None],
        )
        if outcome == "failed":
            row = _one(
                con.execute(
                    "SELECT failures FROM triggers WHERE trigger_id = $1", [reg.id]
                ).fetchall()
            )
            delay = reg.trigger.backoff.delay((row[0] if row else 0) + 1)
            until = naive(now + timedelta(seconds=delay)) if delay else None
            con.execute(
                "UPDATE triggers SET failures = failures + 1, last_error = $2, "
                "backoff_until = coalesce($3, backoff_until) WHERE trigger_id = $1",
                [reg.id, error, until],
            )
        elif outcome == "succeeded":
            con.execute(
                "UPDATE triggers SET failures = 0, last_error = NULL, backoff_until = NULL "
                "WHERE trigger_id = $1",
                [reg.id],
            )


def firing_rows(store: Store, where: str = "", args: list[Any] | None = None) -> list[dict]:
    """Firings as dicts (``where``: a SQL condition on the ``firings`` columns)."""
    query = f"SELECT {', '.join(FIRING_COLUMNS)} FROM firings"
    if where:
        query += f" WHERE {where}"
    with store.connect() as con:
        rows = con.execute(query + " ORDER BY fired_at, key", args or []).fetchall()
    return [dict(zip(FIRING_COLUMNS, r, strict=True)) for r in rows]


def last_scheduled(store: Store) -> dict[str, datetime]:
    """Each trigger's latest claimed schedule time."""
    with store.connect() as con:
        rows = con.execute(
            "SELECT trigger, max(scheduled_for) FROM firings WHERE claim IS NOT NULL "
            "AND scheduled_for IS NOT NULL GROUP BY trigger"
        ).fetchall()
    return {t: aware(s) for t, s in rows if s is not None}  # type: ignore[misc]


def pending_events(store: Store, reg: Registered) -> list[tuple[str, Any, datetime]]:
    """Events of ``reg``'s name and namespace since it started that it has not fired
    for."""
    prefix = f"{reg.id}#event:"
    with store.connect() as con:
        rows = con.execute(
            "SELECT event_id, data, emitted_at FROM bus_events e WHERE name = $1 "
            "AND emitted_at >= $2 AND coalesce(namespace, 'default') = $4 "
            "AND NOT EXISTS (SELECT 1 FROM firings f "
            "WHERE f.claim = $3 || e.event_id) ORDER BY emitted_at, event_id",
            [reg.trigger.spec["name"], naive(reg.since), prefix, reg.namespace or "default"],
        ).fetchall()
    return [(eid, json.loads(data) if data else None, aware(at)) for eid, data, at in rows]  # type: ignore[misc]


#: The run statuses each ``on_run: status`` follows, as SQL (constants, not input).
_STATUS = {
    "finished": "'succeeded', 'failed', 'cancelled'",
    "succeeded": "'succeeded'",
    "failed": "'failed'",
}


def finished_runs(store: Store, reg: Registered) -> list[dict[str, Any]]:
    """Runs of the followed workflow, in ``reg``'s namespace, that ended since it started
    and that it has not fired for, each with its outputs (the steps' recorded JSON outputs)."""
    spec = reg.trigger.spec
    prefix = f"{reg.id}#run:"
    statuses = _STATUS[spec["status"]]
    with store.connect() as con:
        runs = con.execute(
            "SELECT run_id, status, ended_at FROM runs r WHERE workflow = $1 "
            f"AND status IN ({statuses}) AND coalesce(namespace, 'default') = $4 "
            "AND ended_at >= $2 AND NOT EXISTS (SELECT 1 FROM firings f "
            "WHERE f.claim = $3 || r.run_id) ORDER BY ended_at, run_id",
            [spec["workflow"], naive(reg.since), prefix, reg.namespace or "default"],
        ).fetchall()
        out = []
        for run_id, status, ended in runs:
            outputs = {
                step: json.loads(text)
                for step, text in con.execute(
                    "SELECT step, output_json FROM events WHERE run_id = $1 AND final "
                    "AND status = 'succeeded' AND output_json IS NOT NULL ORDER BY seq",
                    [run_id],
                ).fetchall()
            }
            out.append(
                {"run_id": run_id, "status": status, "ended_at": aware(ended), "outputs": outputs}
            )
    return out


def run_status(store: Store, run_id: str) -> str | None:
    with store.connect() as con:
        row = _one(con.execute("SELECT status FROM runs WHERE run_id = $1", [run_id]).fetchall())
    return None if row is None else str(row[0])

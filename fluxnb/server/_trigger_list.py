"""``GET /triggers``: every trigger the caller may read, with when a schedule fires next and
how its last firing went; ``POST /triggers/{id}/pause``, ``/resume`` and ``/fire`` (an
operator). The Runs panel's Triggers section in JupyterLab."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ._base import FluxnbHandler, not_found


def trigger_rows(store: Any, readable: tuple[str, ...] | None) -> list[dict[str, Any]]:
    from ..triggers import _records as rec
    from ..triggers._schedule import next_time

    now = datetime.now(UTC)
    with store.connect() as con:  # each trigger's last firing
        lasts = {
            row[0]: row[1:]
            for row in con.execute(
                "SELECT trigger, arg_max(outcome, fired_at), max(fired_at), "
                "arg_max(run_id, fired_at) FROM firings GROUP BY trigger"
            ).fetchall()
        }
    out = []
    for reg in rec.all_triggers(store):
        if readable is not None and (reg.namespace or "default") not in readable:
            continue
        t = reg.trigger
        outcome, fired_at, run_id = lasts.get(t.id, (None, None, None))
        upcoming = None
        if t.kind == "schedule" and not reg.paused:
            upcoming = next_time(t, max(now, reg.backoff_until or now)).isoformat()
        out.append(
            {
                **t.to_dict(),
                "id": t.id,
                "workflow": t.workflow,
                "namespace": reg.namespace,
                "kind": t.kind,
                "paused": reg.paused,
                "failures": reg.failures,
                "last_error": reg.last_error,
                "next_fire": upcoming,
                "last_outcome": outcome,
                "last_fired_at": fired_at.replace(tzinfo=UTC).isoformat() if fired_at else None,
                "last_run_id": run_id,
            }
        )
    return out


class TriggerListHandler(FluxnbHandler):
    auth_resource = "fluxnb:workflows"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        rows = await self.call(trigger_rows, self.plane.store, self.readable())
        self.send({"triggers": rows})


class TriggerActionHandler(FluxnbHandler):
    """``POST /triggers/{id}/pause``, ``/resume`` or ``/fire`` (queued by hand, started by
    the trigger service as soon as the trigger has room): what ``fluxnb.triggers.pause``,
    ``resume`` and ``fire_now`` do, as the caller. Answers the trigger as it is then."""

    auth_resource = "fluxnb:workflows"

    @web.authenticated
    @authorized
    async def post(self, trigger_id: str, verb: str) -> None:
        from .. import triggers
        from .._exceptions import TriggerError

        store = self.plane.store
        act = {"pause": triggers.pause, "resume": triggers.resume, "fire": triggers.fire_now}

        def run() -> dict[str, Any]:
            try:
                key = act[verb](trigger_id, store=store)
            except TriggerError:  # none in the caller's reach: the one 404
                raise not_found("trigger", trigger_id) from None
            row = next(t for t in trigger_rows(store, None) if t["id"] == trigger_id)
            return {**row, "key": key} if verb == "fire" else row

        row = await self.call(run)
        self.plane.wake_triggers()
        self.send(row)

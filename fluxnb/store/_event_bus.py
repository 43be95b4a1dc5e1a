"""The event bus in the store: named events (``bus_events``) that ``event:`` triggers fire
on. Posted by ``POST /fluxnb/api/v1/events/{name}``, ``fluxnb.triggers.emit`` or a step's
``ctx.emit``; one short write each."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from .._exceptions import TriggerError
from ..spec._triggers import EVENT_NAME
from ._store import Store


def emit(
    store: Store,
    name: str,
    data: Any = None,
    *,
    now: datetime | None = None,
    source: str = "python",
    namespace: str | None = None,
    run_id: str | None = None,
    step: str | None = None,
    event_id: str | None = None,
) -> str:
    """Put event ``name`` with JSON-able ``data`` on the store's bus; its id.

    Raises:
        TriggerError: a bad event name, or data that is not JSON.
    """
    if not isinstance(name, str) or not EVENT_NAME.fullmatch(name):
        raise TriggerError(
            None,
            f"'{name}' is not an event name: use letters, digits and '_', '-', '.', ':' "
            "(up to 128), starting with a letter or digit",
        )
    try:
        text = json.dumps(data)
    except (TypeError, ValueError) as exc:
        raise TriggerError(None, f"event '{name}': its data is not JSON ({exc})") from None
    eid = event_id or uuid.uuid4().hex
    with store.connect() as con:
        con.execute(
            "INSERT INTO bus_events VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            [
                eid,
                name,
                text,
                namespace,
                (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None),
                source,
                run_id,
                step,
            ],
        )
    return eid

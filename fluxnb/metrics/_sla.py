"""SLA telemetry as DataFrames: the ``sla_steps``, ``sla_agents`` and ``sla_runs`` views."""

from __future__ import annotations

from typing import Any

from .._exceptions import FluxError
from ..store import Store, open_store

KINDS = {"steps": "sla_steps", "agents": "sla_agents", "runs": "sla_runs"}
ORDER = {"steps": "workflow, step", "agents": "agent", "runs": "started_at DESC"}


def sla(kind: str = "steps", *, workflow: str | None = None, store: Any = None) -> Any:
    """Latency percentiles (p50/p95/p99 seconds), error rate and retry rate per
    ``"steps"`` (workflow and step) or per ``"agents"`` (with the time each agent's circuit
    spent open), or totals per ``"runs"`` (FluxRoute's /sla snapshot). A non-admin session
    sees its namespace's runs only."""
    if kind not in KINDS:
        raise FluxError(f"sla kind {kind!r} is not one of {', '.join(KINDS)}")
    st = store if isinstance(store, Store) else open_store(store)
    where = "WHERE workflow = $w" if workflow and kind != "agents" else ""
    return st.sql(
        f"SELECT * FROM {KINDS[kind]} {where} ORDER BY {ORDER[kind]}",
        {"w": workflow} if where else None,
    )

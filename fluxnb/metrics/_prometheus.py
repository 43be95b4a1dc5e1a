"""The store's counters and histograms in the Prometheus text exposition format (0.0.4).

Computed from the store when called (serve it from any HTTP handler, or push it with a
Pushgateway); a non-admin session exposes its namespace only.
"""

from __future__ import annotations

import math
from typing import Any

from ..store import Store, open_store

#: Upper bounds (seconds) of the step-duration histogram.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _label(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: Any) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}"


def _num(x: Any) -> str:
    f = float(x or 0)
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    return repr(f) if not f.is_integer() else str(int(f))


def prometheus_text(*, store: Any = None) -> str:
    """Counters of runs, attempts, retries, usage and breaker openings, and a histogram
    of step attempt durations, as Prometheus text."""
    st = store if isinstance(store, Store) else open_store(store)
    out: list[str] = []

    def metric(name: str, kind: str, help_text: str) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")

    runs = st.sql(
        "SELECT workflow, status, coalesce(tenant, 'default') AS tenant, "
        "coalesce(namespace, 'default') AS namespace, count(*) AS n FROM runs "
        "GROUP BY ALL ORDER BY ALL"
    )
    metric("fluxnb_runs_total", "counter", "Runs recorded, by workflow and status.")
    for r in runs.itertuples():
        lab = _labels(workflow=r.workflow, status=r.status, tenant=r.tenant, namespace=r.namespace)
        out.append(f"fluxnb_runs_total{lab} {_num(r.n)}")

    attempts = st.sql(
        "SELECT r.workflow, e.step, e.status, count(*) AS n, "
        "count(*) FILTER (WHERE e.attempt > 1) AS retries "
        "FROM events e JOIN runs r USING (run_id) WHERE e.started_at IS NOT NULL "
        "GROUP BY ALL ORDER BY ALL"
    )
    metric("fluxnb_step_attempts_total", "counter", "Step attempts, by outcome.")
    for a in attempts.itertuples():
        lab = _labels(workflow=a.workflow, step=a.step, status=a.status)
        out.append(f"fluxnb_step_attempts_total{lab} {_num(a.n)}")
    metric("fluxnb_step_retries_total", "counter", "Step attempts after the first.")
    retries: dict[tuple[str, str], int] = {}
    for a in attempts.itertuples():
        retries[(a.workflow, a.step)] = retries.get((a.workflow, a.step), 0) + int(a.retries)
    for (wf, step), n in sorted(retries.items()):
        out.append(f"fluxnb_step_retries_total{_labels(workflow=wf, step=step)} {n}")

    counts = ", ".join(
        f"count(*) FILTER (WHERE e.duration_s <= {b}) AS b{i}" for i, b in enumerate(BUCKETS)
    )
    hist = st.sql(
        f"SELECT r.workflow, e.step, {counts}, count(*) AS n, sum(e.duration_s) AS total "
        "FROM events e JOIN runs r USING (run_id) "
        "WHERE e.started_at IS NOT NULL AND e.duration_s IS NOT NULL "
        "GROUP BY ALL ORDER BY ALL"
    )
    name = "fluxnb_step_duration_seconds"
    metric(name, "histogram", "Wall time of step attempts.")
    for h in hist.itertuples():
        for i, b in enumerate(BUCKETS):
            lab = _labels(workflow=h.workflow, step=h.step, le=_num(b))
            out.append(f"{name}_bucket{lab} {_num(getattr(h, f'b{i}'))}")
        lab = _labels(workflow=h.workflow, step=h.step, le="+Inf")
        out.append(f"{name}_bucket{lab} {_num(h.n)}")
        base = _labels(workflow=h.workflow, step=h.step)
        out.append(f"{name}_sum{base} {_num(h.total)}")
        out.append(f"{name}_count{base} {_num(h.n)}")

    used = st.sql(
        "SELECT tenant, namespace, unit, CAST(sum(quantity) AS DOUBLE) AS q FROM usage "
        "GROUP BY ALL ORDER BY ALL"
    )
    metric("fluxnb_usage_total", "counter", "Metered usage (with corrections), by unit.")
    for u in used.itertuples():
        lab = _labels(tenant=u.tenant, namespace=u.namespace, unit=u.unit)
        out.append(f"fluxnb_usage_total{lab} {_num(u.q)}")

    agents = st.sql("SELECT agent, breaker_open_s, breaker_opened FROM sla_agents ORDER BY agent")
    metric("fluxnb_breaker_opened_total", "counter", "Times an agent's circuit opened.")
    for g in agents.itertuples():
        out.append(f"fluxnb_breaker_opened_total{_labels(agent=g.agent)} {_num(g.breaker_opened)}")
    metric("fluxnb_breaker_open_seconds_total", "counter", "Seconds agents' circuits were open.")
    for g in agents.itertuples():
        out.append(
            f"fluxnb_breaker_open_seconds_total{_labels(agent=g.agent)} {_num(g.breaker_open_s)}"
        )
    return "\n".join(out) + "\n"

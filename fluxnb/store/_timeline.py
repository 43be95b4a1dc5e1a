"""A run's timeline (Gantt chart) as SVG: one row per step, one bar per attempt."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from .._exceptions import ReplayError
from .._html import _STATUS_COLOURS

_LEFT, _WIDTH, _ROW, _TOP = 170, 620, 22, 46


@dataclass
class Timeline:
    """What ``fluxnb.timeline(run)`` returns; displays itself in a notebook."""

    run: dict[str, Any]
    events: Any  # DataFrame

    def to_svg(self) -> str:
        ev = self.events
        started = ev["started_at"].dropna()
        ended = ev["ended_at"].dropna()
        steps = list(dict.fromkeys(ev.sort_values(["seq", "attempt"])["step"]))
        height = _TOP + _ROW * max(len(steps), 1) + 30
        title = html.escape(f"{self.run['workflow']} · {self.run['run_id']} · {self.run['status']}")
        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_LEFT + _WIDTH + 50}" '
            f'height="{height}" font-family="sans-serif" font-size="12">',
            f'<text x="8" y="18" font-weight="bold">{title}</text>',
        ]
        if started.empty:
            out.append('<text x="8" y="40">no attempt of this run ever started</text></svg>')
            return "".join(out)
        t0, t1 = started.min(), max(ended.max(), started.max())
        span = max((t1 - t0).total_seconds(), 1e-6)

        def x(t: Any) -> float:
            return _LEFT + (t - t0).total_seconds() / span * _WIDTH

        for i in range(6):  # time axis
            sec = span * i / 5
            xi = _LEFT + _WIDTH * i / 5
            label = f"{sec * 1000:.0f} ms" if span < 2 else f"{sec:.1f} s"
            out.append(
                f'<line x1="{xi:.1f}" y1="{_TOP - 8}" x2="{xi:.1f}" y2="{height - 28}" '
                f'stroke="#ddd"/><text x="{xi:.1f}" y="{height - 12}" text-anchor="middle" '
                f'fill="#555">{label}</text>'
            )
        row_of = {s: i for i, s in enumerate(steps)}
        for s, i in row_of.items():
            y = _TOP + i * _ROW
            out.append(f'<text x="8" y="{y + 14}">{html.escape(s)}</text>')
        for e in ev.itertuples(index=False):
            y = _TOP + row_of[e.step] * _ROW
            colour = _STATUS_COLOURS.get(e.status, "#555")
            if e.started_at is None or str(e.started_at) == "NaT":
                out.append(
                    f'<text x="{_LEFT + 4}" y="{y + 14}" fill="{colour}" font-style="italic">'
                    f"{html.escape(e.status)} (never started)</text>"
                )
                continue
            x0, x1 = x(e.started_at), x(e.ended_at if str(e.ended_at) != "NaT" else e.started_at)
            tip = html.escape(
                f"{e.step} attempt {e.attempt}: {e.status}, {(e.duration_s or 0) * 1000:.1f} ms"
                + (f" — {e.error_type}: {e.error_message}" if e.error_type else "")
            )
            out.append(
                f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 2):.1f}" height="{_ROW - 6}"'
                f' rx="2" fill="{colour}"><title>{tip}</title></rect>'
            )
            if e.attempt and e.attempt > 1:
                out.append(
                    f'<text x="{x0 + 3:.1f}" y="{y + 14}" fill="white" font-size="10">'
                    f"#{e.attempt}</text>"
                )
        out.append("</svg>")
        return "".join(out)

    def __repr__(self) -> str:
        return (
            f"<Timeline of run {self.run['run_id']} '{self.run['workflow']}': "
            f"{len(self.events)} attempts>"
        )

    def _repr_svg_(self) -> str:
        return self.to_svg()

    def save(self, path: str) -> None:
        with open(path, "w") as fh:
            fh.write(self.to_svg())


def timeline(run: Any = None, *, store: Any = None) -> Timeline:
    """The timeline of ``run`` (a RunResult, a run id, or None for the store's latest run)."""
    from . import Store, open_store

    st = store if isinstance(store, Store) else open_store(store)
    run_id = getattr(run, "run_id", run)
    if getattr(run, "store", None) and store is None:
        st = open_store(run.store)
    if run_id is None:
        latest = st.sql("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1")
        if latest.empty:
            raise ReplayError(f"the store {st.path} has no runs yet")
        run_id = latest["run_id"][0]
    runs = st.sql("SELECT * FROM runs WHERE run_id = $r", {"r": run_id})
    if runs.empty:
        raise ReplayError(f"no run '{run_id}' in the store {st.path}")
    events = st.sql(
        "SELECT step, seq, attempt, status, started_at, ended_at, duration_s, error_type, "
        "error_message FROM events WHERE run_id = $r ORDER BY seq, attempt",
        {"r": run_id},
    )
    events = events.astype(object).where(events.notna(), None)
    return Timeline(runs.iloc[0].to_dict(), events)

"""A run's timeline (Gantt chart) as SVG: one row per step, one bar per attempt."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

from .._exceptions import ReplayError
from .._html import _STATUS_COLOURS
from .._plural import plural

_LEFT, _WIDTH, _ROW, _TOP = 170, 620, 22, 46
_FOOT = 52  # below the rows: the axis labels, then the colour legend


def ticks(span: float, most: int = 8) -> tuple[float, int, str, float]:
    """A round time axis for ``span`` seconds: ``(step, count, unit, per_unit)``.

    ``step`` is 1, 2 or 5 x 10^k seconds, the smallest such that at most ``most`` steps
    cover ``span``; the axis runs from 0 to ``count * step``. Labels are in ``unit``
    (``µs``, ``ms`` or ``s``, by where the axis ends), one unit being ``per_unit`` seconds.
    """
    span = max(span, 1e-6)
    exp = math.floor(math.log10(span / most))
    step = next(
        m * 10.0**e
        for e in (exp, exp + 1)
        for m in (1, 2, 5)
        if m * 10.0**e * most >= span * (1 - 1e-9)
    )
    count = max(1, math.ceil(span / step - 1e-9))
    end = step * count
    unit, per_unit = ("µs", 1e-6) if end < 1e-3 else ("ms", 1e-3) if end < 1 else ("s", 1.0)
    return step, count, unit, per_unit


def tick_label(value: float, unit: str, per_unit: float) -> str:
    """``250 ms``, ``1.5 s``: a tick's value without floating-point noise."""
    return f"{round(value / per_unit, 6):g} {unit}"


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
        height = _TOP + _ROW * max(len(steps), 1) + _FOOT
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
        step, count, unit, per_unit = ticks((t1 - t0).total_seconds())
        span = step * count  # the axis ends on a round value

        def x(t: Any) -> float:
            return _LEFT + (t - t0).total_seconds() / span * _WIDTH

        for i in range(count + 1):  # time axis: 0, 1, 2, 5 x 10^k steps
            xi = _LEFT + _WIDTH * i / count
            out.append(
                f'<line x1="{xi:.1f}" y1="{_TOP - 8}" x2="{xi:.1f}" y2="{height - _FOOT + 2}" '
                f'stroke="#ddd"/><text x="{xi:.1f}" y="{height - _FOOT + 16}" '
                f'text-anchor="middle" fill="#555">{tick_label(i * step, unit, per_unit)}</text>'
            )
        out.extend(_legend(list(dict.fromkeys(ev["status"])), height - 12))
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
            f"{plural(len(self.events), 'attempt')}>"
        )

    def _repr_svg_(self) -> str:
        return self.to_svg()

    def save(self, path: str) -> None:
        with open(path, "w") as fh:
            fh.write(self.to_svg())


def _legend(statuses: list[str], y: int) -> list[str]:
    """A swatch and a name per status drawn (in the order they first appear)."""
    out, x = [], _LEFT
    for status in statuses:
        colour = _STATUS_COLOURS.get(status, "#555")
        out.append(
            f'<rect x="{x}" y="{y - 10}" width="12" height="12" rx="2" fill="{colour}"/>'
            f'<text x="{x + 16}" y="{y}" fill="#333">{html.escape(status)}</text>'
        )
        x += 28 + 7 * len(status)
    return out


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

"""How fluxnb objects and errors look as HTML in a notebook: pure functions, no Jupyter imports."""

from __future__ import annotations

import html
from typing import Any

from ._exceptions import ManifestError
from ._plural import plural

_STATUS_COLOURS = {
    "succeeded": "#2e7d32",
    "failed": "#c62828",
    "cancelled": "#6d4c41",
    "interrupted": "#ad1457",
    "skipped": "#9e9e9e",
    "running": "#1565c0",
    "retrying": "#ef6c00",
    "pending": "#757575",
    "cached": "#00838f",  # a recorded output reused (incremental runs)
}


def badge(status: str) -> str:
    colour = _STATUS_COLOURS.get(status, "#555")
    return (
        f'<span style="background:{colour};color:white;border-radius:3px;'
        f'padding:1px 6px;font-size:90%">{html.escape(status)}</span>'
    )


def manifest_error_text(err: ManifestError, cell: str | None, first_line: int = 1) -> str:
    """The problems, each with the cell line it points at and a caret under the column."""
    lines = cell.splitlines() if cell is not None else []
    out = []
    for p in err.problems[:10]:
        if p.line is not None and lines and 1 <= p.line <= len(lines):
            cell_line = p.line + first_line - 1
            src = lines[p.line - 1]
            caret = " " * ((p.column or 1) - 1) + "^"
            out.append(f"cell line {cell_line}: {p.message}\n    {src}\n    {caret}")
        else:
            where = f"line {p.line}: " if p.line else ""
            out.append(f"{where}{p.message}")
    if len(err.problems) > 10:
        out.append(f"... and {plural(len(err.problems) - 10, 'more problem')}")
    return "\n".join(out)


def error_html(title: str, body: str) -> str:
    return (
        '<div style="border-left:4px solid #c62828;background:#fdecea;padding:6px 10px;'
        'font-family:var(--jp-code-font-family,monospace);white-space:pre-wrap">'
        f"<b>{html.escape(title)}</b>\n{html.escape(body)}</div>"
    )


def result_html(result: Any) -> str:
    steps = list(result.steps.values())
    cache = getattr(result, "cache", None)  # incremental runs: why each step ran or not
    rows = []
    for r in steps[:200]:
        dur = "" if r.duration is None else f"{r.duration * 1000:.1f} ms"
        err = html.escape(str(r.error)) if r.error else ""
        why = "" if cache is None else f"<td>{html.escape(_why(cache.get(r.step)))}</td>"
        rows.append(
            f"<tr><td>{html.escape(r.step)}</td><td>{badge(r.status.value)}</td>"
            f"<td>{r.attempts}</td><td>{dur}</td><td>{err}</td>{why}</tr>"
        )
    more = (
        f"<tr><td colspan={5 if cache is None else 6}>... "
        f"{plural(len(steps) - 200, 'more step')} "
        "(result.to_frame())</td></tr>"
        if len(steps) > 200
        else ""
    )
    reason = f"<div>{html.escape(result.reason)}</div>" if result.reason else ""
    query = ""
    if result.store:
        query = (
            "<div style='color:#555'>trace: <code>%fluxsql SELECT * FROM events WHERE "
            f"run_id = '{html.escape(result.run_id)}'</code></div>"
        )
    return (
        f"<div><b>{html.escape(result.workflow)}</b> {badge(result.status.value)} "
        f"<code>{html.escape(result.run_id)}</code> in {result.duration:.3f} s{reason}"
        "<table><thead><tr><th>step</th><th>status</th><th>attempts</th><th>duration</th>"
        f"<th>error</th>{'' if cache is None else '<th>why (cache)</th>'}</tr></thead>"
        f"<tbody>{''.join(rows)}{more}</tbody></table>{query}</div>"
    )


def _why(decision: Any) -> str:
    """A step's cache decision in words: why it ran, or which run it was reused from."""
    if decision is None:
        return ""
    return decision.reason if decision.decision != "off" else f"not cached: {decision.reason}"


def workflow_html(wf: Any) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(s.id)}</td><td>{html.escape(', '.join(s.depends_on))}</td>"
        f"<td><code>{html.escape(s.reference if s.fn is None else getattr(s.fn, '__name__', '?'))}"
        "</code></td></tr>"
        for s in list(wf.steps.values())[:200]
    )
    return (
        f"<div><b>Workflow {html.escape(wf.name)}</b> · {plural(len(wf), 'step')}<table><thead><tr>"
        "<th>step</th><th>depends on</th><th>callable</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></div>"
    )


def _marking_table(tokens: dict[str, list[Any]], limit: int = 3) -> str:
    rows = []
    for place, toks in tokens.items():
        shown = ", ".join(html.escape(_short(t.data)) for t in toks[:limit] if t.data is not None)
        more = f" … +{len(toks) - limit}" if len(toks) > limit and shown else ""
        rows.append(
            f"<tr><td><code>{html.escape(place)}</code></td>"
            f"<td style='text-align:right'>{len(toks)}</td><td>{shown}{more}</td></tr>"
        )
    return "<table><tr><th>place</th><th>tokens</th><th>data</th></tr>" + "".join(rows) + "</table>"


def _short(value: Any, n: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 1] + "…"


def net_result_html(result: Any) -> str:
    head = (
        f"<b>net run</b> <code>{html.escape(result.run_id)}</code> · "
        f"<code>{html.escape(result.workflow)}</code> {badge(result.status.value)} "
        f"ended <b>{html.escape(result.ending)}</b> after {plural(result.firings, 'firing')} in "
        f"{result.duration:.3f}s"
    )
    reason = f"<div>{html.escape(result.reason)}</div>" if result.reason else ""
    counts = html.escape(result.fired())
    return (
        f"<div>{head}{reason}<div>fired: {counts or 'nothing'}</div>"
        f"{_marking_table(result.tokens)}</div>"
    )


def net_run_html(run: Any) -> str:
    enabled = run.enabled()
    buttons = " ".join(f"<code>{html.escape(t)}</code>" for t in enabled) or "none"
    head = (
        f"<b>interactive net run</b> <code>{html.escape(run.run_id)}</code> · "
        f"<code>{html.escape(run.net.name)}</code> {badge(run.status)} · "
        f"{plural(len(run.firings), 'firing')} · enabled: {buttons}"
    )
    return f"<div>{head}{_marking_table(run.tokens())}</div>"

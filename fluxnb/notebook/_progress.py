"""Live progress in a notebook: an HTML bar and per-step counts, updated in place.

In a kernel the bar is one output updated through its display id (``update_display_data``
messages), which JupyterLab, VS Code and nbconvert all understand, from whichever thread the
run uses. Elsewhere (a terminal IPython) a plain-text line is printed at most once a second,
and only for runs that last longer than one.
"""

from __future__ import annotations

import html
import sys
import threading
import time
from typing import Any

from .._html import badge
from ..store._recorder import EventRow, Recorder, RunRecord

_EVERY = 0.25  # seconds between two redraws
_SHOW_STEPS = 40  # up to this many steps, each one's status is shown


class NotebookProgress:
    """A Recorder that forwards everything and shows progress as it goes."""

    def __init__(self, inner: Recorder, steps: list[str], name: str, in_kernel: bool) -> None:
        total = len(steps)
        self.order = {s: i for i, s in enumerate(steps)}
        self.inner = inner
        self.total = total
        self.name = name
        self.in_kernel = in_kernel
        self.counts: dict[str, int] = {}
        self.state: dict[str, str] = dict.fromkeys(steps, "pending") if total <= _SHOW_STEPS else {}
        self.done = 0
        self._handle: Any = None
        self._drawn = 0.0
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self.updates = 0  # how many times the display was redrawn (tests read it)
        if in_kernel:
            from IPython.display import HTML, display

            self._handle = display(HTML(""), display_id=True)

    def __getattr__(self, name: str) -> Any:
        """What else the inner recorder offers (``meter`` for ctx.meter, ``llm``): a step
        run under the progress display meters and records exactly as without it."""
        inner = self.__dict__.get("inner")
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)

    @property
    def location(self) -> str | None:
        return self.inner.location

    @property
    def flush_interval(self) -> float | None:
        return getattr(self.inner, "flush_interval", None)

    def run_started(self, run: RunRecord) -> None:
        self.inner.run_started(run)
        self._draw(force=self.in_kernel)

    def attempt_started(self, step: str, attempt: int) -> None:
        with self._lock:
            self.state[step] = "running" if attempt == 1 else "retrying"
        self._draw()

    def event(self, row: EventRow) -> None:
        self.inner.event(row)
        with self._lock:
            step, status, final = row[2], row[4], row[5]
            if status == "failed" and not final:
                status = "retried"
                self.state[step] = "retrying"
            elif final:
                self.done += 1
                self.state[step] = status
            self.counts[status] = self.counts.get(status, 0) + 1
        self._draw()

    def circuit_event(self, row: tuple) -> None:
        self.inner.circuit_event(row)

    def run_finished(self, run: RunRecord) -> None:
        self.inner.run_finished(run)
        self._draw(force=self.in_kernel, final=run.status)

    def flush(self) -> None:
        self.inner.flush()

    def _draw(self, force: bool = False, final: str | None = None) -> None:
        now = time.monotonic()
        if not force and now - self._drawn < _EVERY:
            return
        self._drawn = now
        with self._lock:
            counts = dict(self.counts)
            done = self.done
            state = dict(self.state)
        self.updates += 1
        if self._handle is not None:
            from IPython.display import HTML

            self._handle.update(HTML(self._html(counts, done, final, state)))
        elif now - self._started > 1.0 or (final and now - self._started > 1.0):
            detail = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            steps = "step" if self.total == 1 else "steps"
            print(f"[{self.name}] {done}/{self.total} {steps} · {detail}", file=sys.stdout)

    def _html(
        self, counts: dict[str, int], done: int, final: str | None, state: dict[str, str]
    ) -> str:
        parts = " ".join(f"{badge(s)} {n}" for s, n in sorted(counts.items()))
        head = badge(final) if final else badge("running")
        steps = ""
        if self.total <= _SHOW_STEPS:  # small workflows: every step's live status
            steps = (
                "<div style='margin-top:2px'>"
                + " ".join(
                    f"<span style='white-space:nowrap'>{html.escape(s)} {badge(st)}</span>"
                    for s, st in sorted(state.items(), key=lambda kv: self.order.get(kv[0], 0))
                )
                + "</div>"
            )
        return (
            f"<div><b>{html.escape(self.name)}</b> {head} "
            f'<progress value="{done}" max="{max(self.total, 1)}" style="width:240px">'
            f"</progress> {done}/{self.total} {parts}{steps}</div>"
        )

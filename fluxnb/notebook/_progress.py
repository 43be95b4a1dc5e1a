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


class NotebookProgress:
    """A Recorder that forwards everything and shows progress as it goes."""

    def __init__(self, inner: Recorder, total: int, name: str, in_kernel: bool) -> None:
        self.inner = inner
        self.total = total
        self.name = name
        self.in_kernel = in_kernel
        self.counts: dict[str, int] = {}
        self.running: set[str] = set()
        self.done = 0
        self._handle: Any = None
        self._drawn = 0.0
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self.updates = 0  # how many times the display was redrawn (tests read it)
        if in_kernel:
            from IPython.display import HTML, display

            self._handle = display(HTML(""), display_id=True)

    @property
    def location(self) -> str | None:
        return self.inner.location

    @property
    def flush_interval(self) -> float | None:
        return getattr(self.inner, "flush_interval", None)

    def run_started(self, run: RunRecord) -> None:
        self.inner.run_started(run)
        self._draw(force=self.in_kernel)

    def event(self, row: EventRow) -> None:
        self.inner.event(row)
        with self._lock:
            status, final = row[4], row[5]
            if status == "failed" and not final:
                status = "retried"
            elif final:
                self.done += 1
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
        self.updates += 1
        if self._handle is not None:
            from IPython.display import HTML

            self._handle.update(HTML(self._html(counts, done, final)))
        elif now - self._started > 1.0 or (final and now - self._started > 1.0):
            detail = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            print(f"[{self.name}] {done}/{self.total} steps · {detail}", file=sys.stdout)

    def _html(self, counts: dict[str, int], done: int, final: str | None) -> str:
        parts = " ".join(f"{badge(s)} {n}" for s, n in sorted(counts.items()))
        state = badge(final) if final else badge("running")
        return (
            f"<div><b>{html.escape(self.name)}</b> {state} "
            f'<progress value="{done}" max="{max(self.total, 1)}" style="width:240px">'
            f"</progress> {done}/{self.total} {parts}</div>"
        )

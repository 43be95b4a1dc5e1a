"""A one-line progress count for long work (a big net's analysis): nothing for work that
ends within a second; then, in a Jupyter kernel, one output updated in place; on a terminal,
a line on stderr rewritten in place; elsewhere (a pipe, a log) nothing at all."""

from __future__ import annotations

import builtins
import sys
import time
from typing import Any


class ProgressLine:
    """``line = ProgressLine("analysing", "markings")``; ``line(n)`` as the count grows;
    ``line.close(n)`` at the end (says the final count if anything was shown)."""

    def __init__(self, doing: str, unit: str, after: float = 1.0, every: float = 0.5) -> None:
        self.doing, self.unit = doing, unit
        self.after, self.every = after, every
        self.started = time.monotonic()
        self._shown_at = 0.0
        self._handle: Any = None
        self._tty = False
        self.shown = 0  # how many times the line was drawn (tests read it)
        shell = getattr(builtins, "get_ipython", lambda: None)()
        self._kernel = getattr(shell, "kernel", None) is not None
        if not self._kernel:
            self._tty = bool(getattr(sys.stderr, "isatty", lambda: False)())

    def __call__(self, count: int) -> None:
        now = time.monotonic()
        if now - self.started < self.after or now - self._shown_at < self.every:
            return
        self._shown_at = now
        self._draw(f"{self.doing}: {count:,} {self.unit} so far ({now - self.started:.1f} s)")

    def close(self, count: int | None = None) -> None:
        if not self.shown:
            return
        took = time.monotonic() - self.started
        text = f"{self.doing}: {count:,} {self.unit} in {took:.1f} s" if count else ""
        self._draw(text, end=True)

    def _draw(self, text: str, end: bool = False) -> None:
        self.shown += 1
        if self._kernel:
            from IPython.display import display, update_display

            if self._handle is None:
                self._handle = display({"text/plain": text}, raw=True, display_id=True)
            else:
                update_display({"text/plain": text}, raw=True, display_id=self._handle.display_id)
        elif self._tty:
            sys.stderr.write("\r" + text + ("\n" if end else ""))
            sys.stderr.flush()

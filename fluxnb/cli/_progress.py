"""A live progress line on the terminal while ``fluxnb run`` works."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from ..store._recorder import EventRow, Recorder, RunRecord


class ProgressRecorder:
    """Forwards to another recorder and redraws one status line at most every 0.2 s."""

    def __init__(self, inner: Recorder, total: int, stream: TextIO | None = None) -> None:
        self.inner = inner
        self.total = total
        self.stream = stream or sys.stderr
        self.counts: dict[str, int] = {}
        self.done = 0
        self.last_step = ""
        self._drawn = 0.0

    @property
    def location(self) -> str | None:
        return self.inner.location

    def run_started(self, run: RunRecord) -> None:
        self.inner.run_started(run)
        self._draw(force=True)

    def event(self, row: EventRow) -> None:
        self.inner.event(row)
        status, final = row[4], row[5]
        if status == "failed" and not final:
            status = "retried"
        elif final:
            self.done += 1
        self.counts[status] = self.counts.get(status, 0) + 1
        self.last_step = row[2]
        self._draw()

    def run_finished(self, run: RunRecord) -> None:
        self.inner.run_finished(run)
        self._draw(force=True)
        self.stream.write("\n")
        self.stream.flush()

    def flush(self) -> None:
        self.inner.flush()

    @property
    def recording_error(self) -> Any:
        return getattr(self.inner, "recording_error", None)

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._drawn < 0.2:
            return
        self._drawn = now
        detail = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items()))
        line = f"[{self.done}/{self.total}] {detail}"
        if self.last_step:
            line += f" · last: {self.last_step}"
        self.stream.write("\r" + line[:120].ljust(80))
        self.stream.flush()


def with_progress(recorder: Any, total: int) -> ProgressRecorder:
    return ProgressRecorder(recorder, total)

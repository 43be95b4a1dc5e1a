"""The small interface through which a run writes what happened.

The engine calls a Recorder; it never knows whether rows go to DuckDB, to memory or
nowhere. ``NullRecorder`` makes a run without a store take the same code path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

#: Columns of one event row (one attempt of one step), in the order the engine fills them.
EVENT_COLUMNS: tuple[str, ...] = (
    "run_id",
    "seq",
    "step",
    "attempt",
    "status",
    "final",
    "started_at",  # epoch microseconds, UTC (None: never started)
    "ended_at",
    "duration_s",
    "delay_s",  # seconds waited before this attempt (backoff)
    "error_type",
    "error_message",
    "traceback",
)

EventRow = tuple  # a tuple in EVENT_COLUMNS order


@dataclass(frozen=True)
class RunRecord:
    """One row of the ``runs`` table."""

    run_id: str
    workflow: str
    status: str
    started_at: int  # epoch microseconds, UTC
    ended_at: int | None = None
    namespace: str | None = None
    tenant: str | None = None
    steps: int = 0
    manifest: str | None = None
    manifest_hash: str | None = None
    error: str | None = None
    host: str | None = None
    pid: int | None = None


class Recorder(Protocol):
    """Receives a run's record, its events, and its end; ``flush`` makes them durable."""

    def run_started(self, run: RunRecord) -> None: ...

    def event(self, row: EventRow) -> None: ...

    def run_finished(self, run: RunRecord) -> None:
        """The run's final row; implementations flush everything here."""

    def flush(self) -> None: ...

    @property
    def location(self) -> str | None:
        """Where the rows go (a path), for messages; None when nowhere."""


class NullRecorder:
    """Records nothing: the recorder of ``store=None`` runs and benchmarks of the core."""

    location = None

    def run_started(self, run: RunRecord) -> None:
        pass

    def event(self, row: EventRow) -> None:
        pass

    def run_finished(self, run: RunRecord) -> None:
        pass

    def flush(self) -> None:
        pass


class MemoryRecorder:
    """Keeps every row in lists: for tests of your own workflows (``fluxnb.testing``)."""

    location = None

    def __init__(self) -> None:
        self.runs: list[RunRecord] = []
        self.events: list[EventRow] = []

    def run_started(self, run: RunRecord) -> None:
        self.runs.append(run)

    def event(self, row: EventRow) -> None:
        self.events.append(row)

    def run_finished(self, run: RunRecord) -> None:
        self.runs = [r for r in self.runs if r.run_id != run.run_id] + [run]

    def flush(self) -> None:
        pass

    def rows(self) -> list[dict[str, object]]:
        """Events as dicts keyed by EVENT_COLUMNS."""
        return [dict(zip(EVENT_COLUMNS, r, strict=True)) for r in self.events]

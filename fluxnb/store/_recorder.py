"""The small interface through which a run writes what happened.

The engine calls a Recorder; it never knows whether rows go to DuckDB, to memory or
nowhere. ``NullRecorder`` makes a run without a store take the same code path.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Protocol

from .._exceptions import RecordingFailed
from ._schema import CIRCUIT_COLUMNS, EVENT_COLUMNS, OUTPUT_COLUMNS

__all__ = [
    "CIRCUIT_COLUMNS",
    "EVENT_COLUMNS",
    "OUTPUT_COLUMNS",
]  # also here: the recorder's row shape

EventRow = tuple  # EVENT_COLUMNS values, then the raw output


class _NoOutput:
    def __repr__(self) -> str:
        return "NO_OUTPUT"


#: The output slot of an event row whose attempt produced nothing (failed, cancelled).
NO_OUTPUT: Any = _NoOutput()


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
    seed: int | None = None
    #: How many times the run was resumed.
    resumed: int = 0
    #: When this execution of a resumed run started (epoch microseconds, UTC); None: the
    #: run's first execution, which starts at ``started_at``.
    resumed_at: int | None = None
    #: Seconds the run ran in its executions before this one (None: none before).
    #: ``duration_s`` is this plus this execution's time: the time the run actually ran.
    ran_before_s: float | None = None


def record_end(recorder: Any, final: RunRecord) -> Any:
    """Give ``recorder`` the run's last row. A recorder that raises (a full disk, a
    recorder of the user's own) loses no result: the error comes back as a
    ``RecordingFailed`` (the result's ``recording_error``), with a RuntimeWarning.
    Returns that error, or None (then the recorder's own ``recording_error``, if any)."""
    try:
        recorder.run_finished(final)
    except Exception as exc:
        where = getattr(recorder, "location", None) or type(recorder).__name__
        err = RecordingFailed(
            str(where),
            f"its end ({final.status}) was not recorded: {type(exc).__name__}: {exc}",
            run_id=final.run_id,
            errno=getattr(exc, "errno", None),
        )
        err.args = (  # not the store's own advice: the recorder may be anything
            f"run {final.run_id} could not be recorded by {where}: its end ({final.status}) "
            f"was not recorded: {type(exc).__name__}: {exc}. The result is complete.",
        )
        err.__cause__ = exc
        warnings.warn(str(err), RuntimeWarning, stacklevel=3)
        return err
    return getattr(recorder, "recording_error", None)


class Recorder(Protocol):
    """Receives a run's record, its events, and its end; ``flush`` makes them durable.

    A recorder may also define ``attempt_started(step, attempt)``, called as each attempt
    starts (live progress uses it; storage has no need), and ``meter(unit, amount, key,
    step, attempt, seq)``, which ``ctx.meter`` calls (without it, ``ctx.meter`` checks its
    arguments and records nothing), and ``llm``, the run's ``LLMLedger`` (its
    ``llm_calls`` rows and spending; without it, LLM calls are not recorded).
    """

    def run_started(self, run: RunRecord) -> None: ...

    def event(self, row: EventRow) -> None: ...

    def circuit_event(self, row: tuple) -> None: ...

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

    def circuit_event(self, row: tuple) -> None:
        pass

    def run_finished(self, run: RunRecord) -> None:
        pass

    def flush(self) -> None:
        pass

    def meter(
        self, unit: str, amount: Any, key: str | None, step: str, attempt: int, seq: int
    ) -> str:
        """Checks a ``ctx.meter`` call and records nothing (a run without a store)."""
        from ._usage import check_unit, quantity

        check_unit(unit)
        quantity(amount)
        return key or ""


class MemoryRecorder:
    """Keeps every row in lists: for tests of your own workflows (``fluxnb.testing``).

    ``usage`` holds the usage rows (USAGE_COLUMNS order) the run would have stored."""

    location = None

    def __init__(self) -> None:
        self.runs: list[RunRecord] = []
        self.events: list[EventRow] = []
        self.circuit_events: list[tuple] = []
        self.usage: list[tuple] = []
        self._meter: Any = None
        #: The run's LLM calls (``llm_calls`` rows in ``llm.all_rows``), once it started.
        self.llm: Any = None
        #: ``(run_id, store)`` when this records a replay of that run (its LLM answers).
        self.replay_of: tuple[str, Any] | None = None

    def run_started(self, run: RunRecord) -> None:
        from ._llm_ledger import LLMLedger
        from ._usage import UsageMeter

        self.runs.append(run)
        self._meter = UsageMeter(run)
        self.llm = LLMLedger(run)

    def event(self, row: EventRow) -> None:
        self.events.append(row)
        if self._meter is not None:
            self._meter.on_event(row)
            if self._meter.rows:
                self.usage.extend(self._meter.take())

    def meter(
        self, unit: str, amount: Any, key: str | None, step: str, attempt: int, seq: int
    ) -> str:
        if self._meter is None:
            raise RuntimeError("meter() before run_started()")
        out = self._meter.custom(unit, amount, key, step, attempt, seq)
        self.usage.extend(self._meter.take())
        return out

    def circuit_event(self, row: tuple) -> None:
        self.circuit_events.append(row)

    def run_finished(self, run: RunRecord) -> None:
        self.runs = [r for r in self.runs if r.run_id != run.run_id] + [run]

    def flush(self) -> None:
        pass

    def rows(self) -> list[dict[str, object]]:
        """Events as dicts keyed by EVENT_COLUMNS, plus ``output`` (the raw value, or
        absent when the attempt produced none)."""
        out = []
        for r in self.events:
            row: dict[str, object] = dict(zip(EVENT_COLUMNS, r[: len(EVENT_COLUMNS)], strict=True))
            if len(r) > len(EVENT_COLUMNS) and r[-1] is not NO_OUTPUT:
                row["output"] = r[-1]
            out.append(row)
        return out

    def circuit_rows(self) -> list[dict[str, object]]:
        return [dict(zip(CIRCUIT_COLUMNS, r, strict=True)) for r in self.circuit_events]

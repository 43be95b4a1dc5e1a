"""The recorder that writes a run into a Store: batched, flushed at the end of every run."""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import astuple
from typing import TYPE_CHECKING, Any

from .._exceptions import RecordingFailed
from ._llm_ledger import LLMLedger
from ._outputs import NOTHING, encode, sign, where
from ._recorder import EVENT_COLUMNS, NO_OUTPUT, EventRow, RunRecord
from ._schema import RUN_COLUMNS, RUN_DURATION
from ._segments import SMALL, arrow_table, write_segment
from ._usage import UsageMeter

_N = len(EVENT_COLUMNS)
_MANIFEST = RUN_COLUMNS.index("manifest")

if TYPE_CHECKING:
    from ._store import Store

_monotonic = time.monotonic
FLUSH_ROWS = 10_000  # a long run writes a segment every this many events...
#: ...or this often, so a killed process loses at most this much (FLUXNB_FLUSH_SECONDS)
FLUSH_SECONDS = float(os.environ.get("FLUXNB_FLUSH_SECONDS", "2.0"))


class StoreRecorder:
    """Buffers events and writes them in batches (Parquet segments, or Arrow inserts for
    an in-memory store). The run's own row is written when it starts and when it ends."""

    def __init__(self, store: Store) -> None:
        # no pyarrow here: it (and the pandas it loads on first use) costs 0.3-0.6 s once
        # per process, and a run's first rows are written without it (_ipc)
        self.store = store
        self._rows: list[EventRow] = []
        self._metered = 0  # how many of _rows the usage meter has counted
        self._circuit: list[tuple] = []
        self._meter: UsageMeter | None = None
        #: The run's LLM calls (``llm_calls`` rows, spending); set when the run starts.
        self.llm: LLMLedger | None = None
        self._unsent: list[Any] = []  # usage tables a failed write left behind
        self._last = time.monotonic()
        self._failed_once = False
        self._runs: list[tuple] = []  # runs rows a failed write left behind
        self._manifest: str | None = None  # the one the run's first row carries
        self._error: OSError | None = None  # the last write failure
        #: Set at the run's end when some of its rows could be written nowhere (a full
        #: disk): the run's result carries it as ``recording_error``.
        self.recording_error: RecordingFailed | None = None
        #: Incremental runs (engine/_cache.StepCache): ``stored_for(row)`` gives a cache
        #: hit's recorded output columns; ``on_output(row, stored)`` hears every output's.
        self.cache: Any = None

    #: The engine also flushes on this timer, so rows of a step that ended before a
    #: long-running one are on disk within this many seconds.
    flush_interval = FLUSH_SECONDS

    @property
    def location(self) -> str:
        return self.store.path

    def run_started(self, run: RunRecord) -> None:
        self._meter = UsageMeter(run)
        self.llm = LLMLedger(run, self.store)
        first = astuple(run)
        if not self._write("runs", [first]):
            self._runs.append(first)
        # the manifest this run's first row carries (written now, or kept to go first)
        self._manifest = run.manifest

    def meter(
        self, unit: str, amount: Any, key: str | None, step: str, attempt: int, seq: int
    ) -> str:
        """``ctx.meter``: a custom usage row, stored with the run's next flush."""
        if self._meter is None:
            raise RuntimeError("meter() before run_started()")
        return self._meter.custom(unit, amount, key, step, attempt, seq)

    def event(self, row: EventRow) -> None:
        """Keep the row with its output serialised (now: a later step may mutate the
        object it received); everything else (usage, Arrow columns) is done in bulk by
        ``flush``."""
        output = row[_N]
        cache = self.cache  # a cache hit's row carries its source's columns as they are
        if cache is None:
            stored = NOTHING if output is NO_OUTPUT else encode(output)
        else:
            stored = cache.stored_for(row) or (NOTHING if output is NO_OUTPUT else encode(output))
        if stored[0] == "pickle":  # pickles are code: sign them with the store's key
            place = where(row[0], row[2])  # its run and step
            stored = (stored[0], None, sign(stored[2] or b"", self.store.output_key(), place),
                      *stored[3:])  # fmt: skip
        if cache is not None:  # incremental runs learn each output's digest
            cache.on_output(row, stored)
        rows = self._rows
        rows.append(row[:_N] + stored)
        if len(rows) >= FLUSH_ROWS or _monotonic() - self._last >= FLUSH_SECONDS:
            self.flush()

    def circuit_event(self, row: tuple) -> None:
        self._circuit.append(row)

    def run_finished(self, run: RunRecord) -> None:
        self.flush()
        final = astuple(run)
        if run.manifest is not None and run.manifest == self._manifest and not self.store.in_memory:
            # the first row, on disk or going before this one, carries the manifest (1 MB at
            # 10,000 steps; writing it again cost 1-5 ms a run): the fold keeps that one
            final = (*final[:_MANIFEST], None, *final[_MANIFEST + 1 :])
        kept = self._rows or self._circuit or self._unsent or (self.llm and self.llm.rows)
        if self._runs or kept or not self._write("runs", [final]):
            # the final row goes last, so a reader never sees an ended run without rows;
            # rows a refused write kept get one more try here (there is no later flush)
            self._runs.append(final)
            self.flush()
        lost = len(self._rows) + len(self._circuit) + len(self._runs)
        lost += len(self.llm.rows) if self.llm is not None else 0
        lost += sum(t.num_rows for t in self._unsent)
        if lost and self._error is not None:
            from ._segments import pending_segments

            self.recording_error = RecordingFailed(
                self.store.path,
                self._error.strerror or str(self._error),
                run_id=run.run_id,
                errno=self._error.errno,
                lost=lost,
                pending=0
                if self.store.in_memory
                else len(pending_segments(self.store.segments_dir)),
            )
            if self._runs and self._runs[-1] == final:
                # the 'running' row may be on disk: say what the store will show instead
                err = self.recording_error
                err.args = (
                    f"{err} Its end ({run.status}) was not written either: the store lists "
                    "the run as running until this process ends, then as interrupted.",
                )
            warnings.warn(str(self.recording_error), RuntimeWarning, stacklevel=2)

    def flush(self) -> None:
        self._last = time.monotonic()
        rows, cols = self._rows, None
        if self._meter is not None and len(rows) > self._metered:
            # usage is counted here, in bulk, once per row (rows a failed write kept
            # were counted when they first came)
            if self._metered == 0:
                cols = list(zip(*rows, strict=True))
                self._meter.on_rows(rows, cols)
            else:
                self._meter.on_rows(rows[self._metered :])
            self._metered = len(rows)
        if self._meter is not None:
            usage = self._meter.take_table()
            if usage is not None and not self._write_table("usage", usage):
                self._unsent.append(usage)  # kept for the next flush
            while self._unsent and self._write_table("usage", self._unsent[0]):
                self._unsent.pop(0)
        if self.llm is not None and self.llm.rows:
            calls = self.llm.take()
            if not self._write("llm_calls", calls):
                self.llm.rows[:0] = calls  # kept for the next flush
        if self._circuit:
            circuit, self._circuit = self._circuit, []
            if not self._write("circuit_events", circuit):
                self._circuit = circuit + self._circuit
        if rows:
            self._rows, self._metered = [], 0
            if not self._write("events", rows, cols):
                self._rows, self._metered = rows, len(rows)  # kept for the next flush
        if self._runs and not self._rows and self._write("runs", self._runs):
            self._runs = []

    def _write_table(self, table: str, data: Any) -> bool:
        """An Arrow table of ``table``'s segment schema (usage): append it."""
        try:
            self.store.append_table(table, data)
            return True
        except OSError as exc:
            self._warn(table, data.num_rows, exc)
            return False

    def _warn(self, table: str, n: int, exc: OSError) -> None:
        self._error = exc
        if not self._failed_once:
            self._failed_once = True
            warnings.warn(
                f"fluxnb could not write {n} {table} rows to {self.store.path}: "
                f"{exc}. They are kept in memory and retried at the next flush.",
                RuntimeWarning,
                stacklevel=3,
            )

    def _write(self, table: str, rows: list[tuple], cols: list[tuple] | None = None) -> bool:
        """Append ``rows`` of ``table`` (``cols``: the same rows column by column, if
        known); False, with a warning, when the disk refuses them."""
        try:
            if table == "runs" and self.store.in_memory:
                data = arrow_table(table, rows)
                with self.store.connect() as con:
                    con.register("_fluxnb_batch", data)
                    try:
                        con.execute(
                            f"INSERT OR REPLACE INTO runs BY NAME SELECT *, {RUN_DURATION} "
                            "AS duration_s FROM _fluxnb_batch"
                        )
                    finally:
                        con.unregister("_fluxnb_batch")
            elif table == "runs":
                write_segment(self.store.segments_dir, table, rows)
            elif cols is not None and len(rows) > SMALL:
                self.store.append_table(table, arrow_table(table, rows, cols))
            else:
                self.store.append(table, rows)
            return True
        except OSError as exc:
            self._warn(table, len(rows), exc)
            return False

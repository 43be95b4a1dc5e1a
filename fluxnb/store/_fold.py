"""Folding pending segments into the attached DuckDB file: one transaction per fold.

The fold reads every pending segment (setting aside those that can never load, see
``_quarantine``), inserts their rows, notes their names in ``fluxnb_segments`` in the same
transaction, commits, and only then deletes the files: a crash between the commit and the
deletion leaves files whose names are in the ledger, skipped and deleted next time.
"""

from __future__ import annotations

import warnings
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._plural import plural
from ._quarantine import BadSegment, Quarantined, quarantine, read_checked
from ._schema import RUN_DURATION
from ._segments import _schemas, pending_segments, table_of

#: How a batch of rows (a registered Arrow table ``{source}``) joins its table. Usage
#: rows are idempotent: an event id already stored is ignored, and within a batch the
#: first (oldest segment) copy of an id wins (INSERT OR IGNORE keeps the first it meets).
APPEND = {
    "events": "INSERT INTO events BY NAME SELECT * EXCLUDE (segment) FROM {source}",
    "circuit_events": "INSERT INTO circuit_events BY NAME SELECT * EXCLUDE (segment) FROM {source}",
    "audit": "INSERT INTO audit BY NAME SELECT * EXCLUDE (segment) FROM {source}",
    "llm_calls": "INSERT INTO llm_calls BY NAME SELECT * EXCLUDE (segment) FROM {source}",
    "cache_entries": "INSERT INTO cache_entries BY NAME SELECT * EXCLUDE (segment) FROM {source}",
    "usage": """INSERT OR IGNORE INTO usage BY NAME
        SELECT * EXCLUDE (segment) FROM {source} ORDER BY segment""",
}

#: The order a fold inserts tables in: a run's own row last, so a reader never sees an
#: ended run without its rows.
TABLES_IN_ORDER = (
    "events",
    "circuit_events",
    "audit",
    "usage",
    "llm_calls",
    "cache_entries",
    "runs",
)

# within one execution of a run (same `resumed`) an ended row beats a 'running' one
# whatever the order (clock steps); a resumed execution's rows beat those of the
# executions before it. A run's final row carries no manifest when its first row did (a
# manifest is up to megabytes: StoreRecorder.run_finished): the row kept takes it from
# the batch's rows of the same execution (a resume may run another manifest) or from the
# row already stored.
_RUNS = f"""INSERT OR REPLACE INTO runs BY NAME
    SELECT * EXCLUDE (segment, manifest),
        coalesce(manifest, max(manifest) OVER (PARTITION BY run_id, coalesce(resumed, 0)),
                 (SELECT r.manifest FROM runs r WHERE r.run_id = b.run_id)) AS manifest,
        {RUN_DURATION} AS duration_s
    FROM {{source}} b
    WHERE NOT EXISTS (
        SELECT 1 FROM runs r WHERE r.run_id = b.run_id
        AND (coalesce(r.resumed, 0) > coalesce(b.resumed, 0)
             OR (coalesce(r.resumed, 0) = coalesce(b.resumed, 0)
                 AND b.status = 'running' AND r.status <> 'running')))
    QUALIFY row_number() OVER (PARTITION BY run_id
        ORDER BY coalesce(resumed, 0) DESC, (status <> 'running') DESC,
                 segment DESC) = 1"""


@dataclass
class FoldReport:
    """What one fold did (``Store.flush()`` returns it)."""

    #: Segment files whose rows went into the DuckDB file.
    loaded: int = 0
    #: Rows inserted per table (``runs`` counts run rows read, newest per run kept).
    rows: dict[str, int] = field(default_factory=dict)
    #: Files set aside this time because they can never load.
    quarantined: list[Quarantined] = field(default_factory=list)
    #: Files left in place because reading them failed for now (an OSError).
    skipped: list[Path] = field(default_factory=list)

    def __str__(self) -> str:
        rows = ", ".join(f"{n} {t}" for t, n in sorted(self.rows.items()) if n)
        text = f"loaded {plural(self.loaded, 'segment')}" + (f" ({rows})" if rows else "")
        if self.quarantined:
            text += f"; set aside {plural(len(self.quarantined), 'corrupt segment')}: " + ", ".join(
                str(q.path) for q in self.quarantined
            )
        if self.skipped:
            text += f"; {len(self.skipped)} could not be read now and wait"
        return text


def fold(con: Any, folder: Path) -> FoldReport:
    """Load the pending segments of ``folder`` into the store attached and in use on
    ``con``, in one transaction; delete the files after the commit.

    A segment that reads as Arrow but whose rows the table refuses (a NULL where the
    schema says NOT NULL, a quantity that is not a number) fails that transaction: then
    the segments are folded again one at a time, each in its own transaction, and those
    the table refuses are set aside with DuckDB's words as the reason."""
    import duckdb

    report = FoldReport()
    files = pending_segments(folder)
    if not files:
        return report
    names = [f.name for f in files]
    done = {
        r[0]
        for r in con.execute(
            "SELECT name FROM fluxnb_segments WHERE name IN (SELECT unnest($1))", [names]
        ).fetchall()
    }
    entries: list[tuple[Path, Any]] = []
    for i, f in enumerate(files):
        if f.name in done:
            continue
        data = _read(f, i, report)
        if data is not None:
            entries.append((f, data))
    try:
        loaded = _fold_together(con, entries, names, report)
    except duckdb.Error as exc:
        if not refused_rows(exc):
            raise
        report.rows = {}
        loaded = _fold_one_by_one(con, entries, names, report)
    report.loaded = len(loaded)
    gone = set(loaded)  # quarantined files were moved; skipped ones stay for next time
    for f in files:
        if f.name in done or f in gone:
            f.unlink(missing_ok=True)
    return report


def refused_rows(exc: BaseException) -> bool:
    """DuckDB refused rows for what they hold (a NULL in a NOT NULL column, a value that
    does not convert, a duplicate key), as opposed to a disk that refused a write."""
    import duckdb

    if isinstance(exc, duckdb.IOException) or "No space left" in str(exc):
        return False
    return isinstance(
        exc, (duckdb.ConstraintException, duckdb.DataError, duckdb.InvalidInputException)
    )


def _read(f: Path, i: int, report: FoldReport) -> Any:
    """The rows of segment ``f`` (the ``i``-th pending) with their ``segment`` column, or
    None when it was set aside or cannot be read now."""
    import pyarrow as pa

    if not f.is_file():  # a folder (or a device) named like a segment never loads
        kind = "a folder" if f.is_dir() else "not a regular file"
        report.quarantined.append(quarantine(f, f"it is {kind}, not a segment file"))
        return None
    try:
        data = read_checked(f)
    except BadSegment as exc:
        report.quarantined.append(quarantine(f, str(exc)))
        return None
    except OSError as exc:
        report.skipped.append(f)
        warnings.warn(
            f"fluxnb: cannot read the segment {f} now ({exc}); it waits for the next load",
            RuntimeWarning,
            stacklevel=4,
        )
        return None
    # `segment` orders rows by file age (names sort by creation time)
    return data.append_column("segment", pa.array([i] * data.num_rows, pa.int32()))


def _insert(con: Any, table: str, batches: list[Any]) -> int:
    """Insert Arrow ``batches`` of ``table`` (with their ``segment`` column); rows read."""
    import pyarrow as pa

    data = pa.concat_tables(batches, promote_options="default")
    data = _all_columns(data, table)  # a segment written before a column existed
    con.register("_fluxnb_batch", data)
    sql = _RUNS if table == "runs" else APPEND[table]
    con.execute(sql.format(source="_fluxnb_batch"))  # on failure, _rollback unregisters
    con.unregister("_fluxnb_batch")
    return int(data.num_rows)


def _rollback(con: Any) -> None:
    import duckdb

    with suppress(duckdb.Error):  # a failed COMMIT has ended the transaction already
        con.execute("ROLLBACK")
    with suppress(duckdb.Error):  # an aborted transaction refuses it until the rollback
        con.unregister("_fluxnb_batch")


def _fold_together(
    con: Any, entries: list[tuple[Path, Any]], names: list[str], report: FoldReport
) -> list[Path]:
    """Every segment of ``entries`` in one transaction (the fast way); the files loaded."""
    batches: dict[str, list[Any]] = {}
    for f, data in entries:
        batches.setdefault(table_of(f), []).append(data)
    con.execute("BEGIN")
    try:
        for table in TABLES_IN_ORDER:
            if table in batches:
                report.rows[table] = _insert(con, table, batches[table])
        if entries:
            con.execute(
                "INSERT INTO fluxnb_segments SELECT unnest($1), now(), 0",
                [[f.name for f, _ in entries]],
            )
        # ledger rows whose files are gone can never be needed again
        con.execute("DELETE FROM fluxnb_segments WHERE name NOT IN (SELECT unnest($1))", [names])
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise
    return [f for f, _ in entries]


def _fold_one_by_one(
    con: Any, entries: list[tuple[Path, Any]], names: list[str], report: FoldReport
) -> list[Path]:
    """Each segment in its own transaction, oldest first (the same rows win as in one
    transaction: runs and usage rows are decided by segment age); a segment whose rows
    the table refuses is set aside. The files loaded."""
    loaded: list[Path] = []
    for f, data in entries:
        table = table_of(f)
        con.execute("BEGIN")
        try:
            n = _insert(con, table, [data])
            con.execute("INSERT INTO fluxnb_segments VALUES ($1, now(), 0)", [f.name])
            con.execute("COMMIT")
        except BaseException as exc:
            _rollback(con)
            if not refused_rows(exc):
                raise  # those committed are in the ledger: deleted on the next fold
            reason = f"its rows do not fit the {table} table: {exc}"
            report.quarantined.append(quarantine(f, reason))
            continue
        report.rows[table] = report.rows.get(table, 0) + n
        loaded.append(f)
    con.execute("DELETE FROM fluxnb_segments WHERE name NOT IN (SELECT unnest($1))", [names])
    return loaded


def _all_columns(data: Any, table: str) -> Any:
    """``data`` with every column of ``table``'s segment schema (missing ones NULL)."""
    import pyarrow as pa

    for f in _schemas()[table]:
        if f.name not in data.column_names:
            data = data.append_column(f, pa.nulls(data.num_rows, f.type))
    return data

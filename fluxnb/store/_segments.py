"""Append-only Parquet segments: how a run's rows reach the disk without taking a lock.

A writer turns a batch of rows into an Arrow table and writes it as one Parquet file:
first under a ``.tmp`` name, fsync-ed, then renamed into place, so a segment is either
whole or absent. Names sort by creation time. Any process that later opens the store
loads the segments into DuckDB in one transaction, notes them in ``fluxnb_segments``
(so a crash between commit and delete never loads a segment twice), then deletes them.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._recorder import EVENT_COLUMNS
from ._schema import RUN_COLUMNS

_counter = itertools.count()


def _schemas() -> tuple[Any, Any]:
    import pyarrow as pa

    ts = pa.timestamp("us")
    events = pa.schema(
        [
            ("run_id", pa.string()),
            ("seq", pa.int32()),
            ("step", pa.string()),
            ("attempt", pa.int32()),
            ("status", pa.string()),
            ("final", pa.bool_()),
            ("started_at", ts),
            ("ended_at", ts),
            ("duration_s", pa.float64()),
            ("delay_s", pa.float64()),
            ("error_type", pa.string()),
            ("error_message", pa.string()),
            ("traceback", pa.string()),
        ]
    )
    runs = pa.schema(
        [
            ("run_id", pa.string()),
            ("workflow", pa.string()),
            ("status", pa.string()),
            ("started_at", ts),
            ("ended_at", ts),
            ("namespace", pa.string()),
            ("tenant", pa.string()),
            ("steps", pa.int32()),
            ("manifest", pa.string()),
            ("manifest_hash", pa.string()),
            ("error", pa.string()),
            ("host", pa.string()),
            ("pid", pa.int32()),
        ]
    )
    assert tuple(events.names) == EVENT_COLUMNS and tuple(runs.names) == RUN_COLUMNS
    return events, runs


_SCHEMAS: tuple[Any, Any] | None = None


def arrow_table(table: str, rows: Sequence[tuple]) -> Any:
    """Rows (tuples in column order) of ``events`` or ``runs`` as an Arrow table."""
    import pyarrow as pa

    global _SCHEMAS
    if _SCHEMAS is None:
        _SCHEMAS = _schemas()
    schema = _SCHEMAS[0] if table == "events" else _SCHEMAS[1]
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
    return pa.table(
        [pa.array(col, type=field.type) for col, field in zip(columns, schema, strict=True)],
        schema=schema,
    )


def write_segment(folder: Path, table: str, rows: Sequence[tuple]) -> Path:
    """Write ``rows`` of ``table`` as one new segment in ``folder``; return its path."""
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns():020d}-{os.getpid()}-{next(_counter):06d}-{table}.parquet"
    final = folder / name
    tmp = folder / (name + ".tmp")
    data = arrow_table(table, rows)
    with open(tmp, "wb") as fh:
        pq.write_table(data, fh, compression="zstd")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    return final


def pending_segments(folder: Path) -> list[Path]:
    """Whole segments waiting to be loaded, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.parquet"))


def table_of(segment: Path) -> str:
    return segment.stem.rsplit("-", 1)[-1]

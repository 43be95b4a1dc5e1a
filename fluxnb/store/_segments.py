"""Append-only segments: how a run's rows reach the disk without taking a lock.

A writer turns a batch of rows into an Arrow table and writes it as one Arrow IPC file
(uncompressed: 0.3-0.5 ms for 1,000 rows, against 1-2 ms for Parquet; measured in
docs/store.md; a batch of up to ``SMALL`` rows is written by ``_ipc``, without pyarrow):
first under a ``.tmp`` name, then renamed into place, so a segment is either whole or
absent. Names sort by creation time. Any process that later opens the store loads the
segments into DuckDB in one transaction, notes them in ``fluxnb_segments``
(so a crash between commit and delete never loads a segment twice), then deletes them.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import struct
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._ipc import BINARY, BOOL, FLOAT64, INT32, INT64, TIMESTAMP_US, UTF8, ipc_file
from ._schema import (
    AUDIT_COLUMNS,
    CACHE_COLUMNS,
    CIRCUIT_COLUMNS,
    EVENT_COLUMNS,
    LLM_CALL_COLUMNS,
    OUTPUT_COLUMNS,
    RUN_COLUMNS,
    USAGE_COLUMNS,
)

_counter = itertools.count()


#: Each segment table's columns and their kinds (``_ipc``), in column order: the one
#: description of a segment's schema, read by fluxnb's own small writer and by pyarrow.
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "events": (
        ("run_id", UTF8), ("seq", INT32), ("step", UTF8), ("attempt", INT32),
        ("status", UTF8), ("final", BOOL), ("started_at", TIMESTAMP_US),
        ("ended_at", TIMESTAMP_US), ("duration_s", FLOAT64), ("delay_s", FLOAT64),
        ("error_type", UTF8), ("error_message", UTF8), ("traceback", UTF8),
        ("executor", UTF8), ("worker", UTF8), ("output_format", UTF8),
        ("output_json", UTF8), ("output_pickle", BINARY), ("output_digest", UTF8),
        ("output_size", INT64),
    ),
    "runs": (
        ("run_id", UTF8), ("workflow", UTF8), ("status", UTF8), ("started_at", TIMESTAMP_US),
        ("ended_at", TIMESTAMP_US), ("namespace", UTF8), ("tenant", UTF8), ("steps", INT32),
        ("manifest", UTF8), ("manifest_hash", UTF8), ("error", UTF8), ("host", UTF8),
        ("pid", INT32), ("seed", INT64), ("resumed", INT32), ("resumed_at", TIMESTAMP_US),
        ("ran_before_s", FLOAT64),
    ),
    "circuit_events": (
        ("occurred_at", TIMESTAMP_US), ("agent", UTF8), ("from_state", UTF8),
        ("to_state", UTF8), ("reason", UTF8), ("failures", INT32), ("run_id", UTF8),
        ("step", UTF8),
    ),
    # quantity: exact decimal text, which DuckDB casts to DECIMAL(38, 9) on load, ~20x
    # faster than Arrow converting Python Decimals
    "usage": (
        ("event_id", UTF8), ("tenant", UTF8), ("namespace", UTF8), ("unit", UTF8),
        ("quantity", UTF8), ("occurred_at", TIMESTAMP_US), ("source", UTF8),
        ("run_id", UTF8), ("workflow", UTF8), ("step", UTF8), ("attempt", INT32),
        ("reason", UTF8), ("corrects", UTF8), ("actor", UTF8), ("recorded_at", TIMESTAMP_US),
    ),
    "audit": (
        ("occurred_at", TIMESTAMP_US), ("role", UTF8), ("tenant", UTF8), ("namespace", UTF8),
        ("action", UTF8), ("target", UTF8), ("outcome", UTF8), ("detail", UTF8),
        ("host", UTF8), ("pid", INT32), ("user_name", UTF8),
    ),
    # cost, provider_cost: decimal text, cast by DuckDB on load
    "llm_calls": (
        ("run_id", UTF8), ("step", UTF8), ("attempt", INT32), ("tenant", UTF8),
        ("provider", UTF8), ("model", UTF8), ("http_status", INT32), ("outcome", UTF8),
        ("prompt_tokens", INT64), ("cached_tokens", INT64), ("completion_tokens", INT64),
        ("reasoning_tokens", INT64), ("cost", UTF8), ("provider_cost", UTF8),
        ("cost_status", UTF8), ("ttft_ms", FLOAT64), ("latency_ms", FLOAT64),
        ("namespace", UTF8), ("step_attempt", INT32), ("call", INT32), ("candidate", INT32),
        ("candidates", UTF8), ("price_as", UTF8), ("error", UTF8),
        ("started_at", TIMESTAMP_US), ("output", UTF8),
    ),
    "cache_entries": (
        ("run_id", UTF8), ("seq", INT32), ("step", UTF8), ("attempt", INT32),
        *((c, UTF8) for c in CACHE_COLUMNS[4:-1]),
        ("recorded_at", TIMESTAMP_US),
    ),
}  # fmt: skip
assert tuple(c for c, _ in COLUMNS["events"]) == EVENT_COLUMNS + OUTPUT_COLUMNS
assert tuple(c for c, _ in COLUMNS["runs"]) == RUN_COLUMNS
assert tuple(c for c, _ in COLUMNS["circuit_events"]) == CIRCUIT_COLUMNS
assert tuple(c for c, _ in COLUMNS["usage"]) == USAGE_COLUMNS
assert tuple(c for c, _ in COLUMNS["audit"]) == AUDIT_COLUMNS
assert tuple(c for c, _ in COLUMNS["llm_calls"]) == LLM_CALL_COLUMNS
assert tuple(c for c, _ in COLUMNS["cache_entries"]) == CACHE_COLUMNS


@functools.cache
def _schemas() -> dict[str, Any]:
    """``COLUMNS`` as pyarrow schemas."""
    import pyarrow as pa

    types = {UTF8: pa.string(), BINARY: pa.binary(), INT32: pa.int32(), INT64: pa.int64(),
             FLOAT64: pa.float64(), BOOL: pa.bool_(), TIMESTAMP_US: pa.timestamp("us")}  # fmt: skip
    return {t: pa.schema([(c, types[k]) for c, k in cols]) for t, cols in COLUMNS.items()}


#: Tables whose rows travel in segments.
TABLES = ("events", "runs", "circuit_events", "usage", "audit", "llm_calls", "cache_entries")


def arrow_table(
    table: str, rows: Sequence[tuple], columns: Sequence[Sequence[Any]] | None = None
) -> Any:
    """Rows (tuples in column order) of one of ``TABLES`` (``columns``: the same rows
    column by column, when the caller has them)."""
    import pyarrow as pa

    schema = _schemas()[table]
    if columns is None:
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
    return pa.table(
        [_array(pa, col, field.type) for col, field in zip(columns, schema, strict=True)],
        schema=schema,
    )


def _array(pa: Any, values: Sequence[Any], type_: Any) -> Any:
    """One column as an Arrow array; a column holding one text, integer or None all
    along (a run id, a status, an executor, no error, final) is not converted value by
    value. A text UTF-8 cannot hold (a lone surrogate, as in a path decoded with
    ``surrogateescape``) is written with that character escaped: ``'\\udcff'``."""
    try:
        return _converted(pa, values, type_)
    except UnicodeEncodeError:
        return _converted(pa, [_utf8(v) for v in values], type_)


def _utf8(value: Any) -> Any:
    """A str UTF-8 can encode: its lone surrogates written as escapes (``\\udcff``)."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return value.encode(errors="backslashreplace").decode()
    return value


def _converted(pa: Any, values: Sequence[Any], type_: Any) -> Any:
    n = len(values)
    if n > 16:
        first = values[0]
        if (first is None or type(first) in (str, int, bool)) and values.count(first) == n:
            if first is None:
                return pa.nulls(n, type_)
            return pa.repeat(pa.scalar(first, type_), n)
    return pa.array(values, type=type_)


SUFFIX = ".arrow"

#: fsync every segment (survives power loss, costs ~0.6 ms a segment). Without it a
#: segment survives any crash of the process, as the OS holds it.
FSYNC = os.environ.get("FLUXNB_FSYNC", "") not in ("", "0", "false", "no")


#: Batches of up to this many rows are written by fluxnb's own writer (``_ipc``), without
#: pyarrow: a run's ``runs`` rows, small runs' events. Bigger ones go through pyarrow,
#: which converts a column of Python values faster.
SMALL = 256


def write_segment(folder: Path, table: str, rows: Sequence[tuple] | Any) -> Path:
    """Write ``rows`` of ``table`` (tuples, or an Arrow table of its schema) as one new
    segment in ``folder``; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns():020d}-{os.getpid()}-{next(_counter):06d}-{table}{SUFFIX}"
    final = folder / name
    tmp = folder / (name + ".tmp")
    data = _ipc_bytes(table, rows)
    try:
        _write_file(tmp, data)
        os.replace(tmp, final)
    except BaseException:
        # a full disk (ENOSPC) must not leave a half-written .tmp behind for an hour
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return final


def _ipc_bytes(table: str, rows: Sequence[tuple] | Any) -> memoryview:
    """The Arrow IPC file of ``rows``: a small batch of tuples without pyarrow."""
    if not hasattr(rows, "num_rows") and len(rows) <= SMALL:
        try:
            return memoryview(ipc_file(COLUMNS[table], rows))
        except (TypeError, ValueError, OverflowError, struct.error):
            pass  # a value of another type (a Decimal, a datetime): pyarrow converts it or says why
    import pyarrow as pa

    data: Any = rows if hasattr(rows, "num_rows") else arrow_table(table, rows)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, data.schema) as writer:
        writer.write_table(data)
    return memoryview(sink.getvalue())


def _write_file(path: Path, data: memoryview) -> None:
    """Write ``data`` as a new file with plain ``os.write`` calls (the one place a
    segment's bytes reach the disk: an OSError such as ENOSPC surfaces here)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        while data:
            data = data[os.write(fd, data) :]
        if FSYNC:
            os.fsync(fd)
    finally:
        os.close(fd)


def read_segments(paths: Sequence[Path]) -> Any:
    """The rows of several segments of one table, as one Arrow table, oldest first,
    with a ``segment`` column giving each row's file position in ``paths``."""
    import pyarrow as pa

    tables = []
    for i, path in enumerate(paths):
        with pa.memory_map(str(path)) as source:
            t = pa.ipc.open_file(source).read_all()
        tables.append(t.append_column("segment", pa.array([i] * t.num_rows, pa.int32())))
    return pa.concat_tables(tables, promote_options="default")


def pending_segments(folder: Path) -> list[Path]:
    """Whole segments waiting to be loaded, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*" + SUFFIX))


def table_of(segment: Path) -> str:
    return segment.stem.split("-", 3)[-1]

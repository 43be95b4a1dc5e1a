"""Reading an exported trace file as hostile input.

A trace file comes from anywhere. Before any of it reaches a store (``import_trace``) or a
replay, its parts are checked against the store's schema: a JSON object of the right shape,
a run row with known fields of the right types and valid names, events and circuit events
that all name that run, timestamps that parse, base64 that decodes. Anything else is one
``ReplayError`` naming the file and the field, never a traceback from pandas or DuckDB.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from .._exceptions import FluxError, ReplayError
from .._session import check_name
from ..store._recorder import CIRCUIT_COLUMNS, EVENT_COLUMNS, OUTPUT_COLUMNS
from ..store._schema import RUN_COLUMNS
from ..store._segments import _schemas
from ._states import RunStatus, StepStatus

#: What a run id in a file may look like (what ``run(run_id=...)`` accepts).
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
_TEXT = (str,)
_INT = (int,)
#: The run row's fields and the Python types each may hold (None is always allowed, but
#: for the required ones).
_RUN_TYPES: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(RUN_COLUMNS, _TEXT),
    "steps": _INT,
    "pid": _INT,
    "seed": _INT,
    "resumed": _INT,
    "duration_s": (int, float),
    "ran_before_s": (int, float),
    "started_at": (str,),
    "ended_at": (str,),
    "resumed_at": (str,),
}
#: The range of each integer field, as the store's columns hold them (INTEGER, BIGINT).
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_RUN_RANGES = {"steps": _INT32, "pid": _INT32, "resumed": _INT32, "seed": _INT64}
_REQUIRED_RUN = ("run_id", "workflow", "status", "started_at")
_REQUIRED_EVENT = ("run_id", "seq", "step", "attempt", "status", "final")
_EVENT_FIELDS = (*EVENT_COLUMNS, *OUTPUT_COLUMNS)


def bad(path: Path, what: str) -> ReplayError:
    return ReplayError(f"{path} is not a valid fluxnb trace: {what} (nothing was read)")


def check_run(run: Any, path: Path) -> dict[str, Any]:
    """The run row, checked: known fields, right types, valid names and status.

    A run recorded ``running`` is imported as ``interrupted``: its process is not one of
    this machine's, and a forged host and pid must not make it look alive."""
    if not isinstance(run, dict):
        raise bad(path, f"'run' must be an object, found {type(run).__name__}")
    unknown = sorted(set(run) - set(_RUN_TYPES))
    if unknown:
        raise bad(path, f"unknown run field(s) {unknown}; known: {sorted(_RUN_TYPES)}")
    for name in _REQUIRED_RUN:
        if run.get(name) is None:
            raise bad(path, f"the run has no '{name}'")
    out: dict[str, Any] = {}
    for name, kinds in _RUN_TYPES.items():
        value = run.get(name)
        if value is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
            raise bad(path, f"run.{name} must be {kinds[0].__name__}, found {value!r:.60}")
        out[name] = value
    for name, (low, high) in _RUN_RANGES.items():
        if out.get(name) is not None and not low <= out[name] <= high:
            raise bad(path, f"run.{name} {out[name]!s:.40} is out of range ({low} to {high})")
    for name in ("duration_s", "ran_before_s"):
        if out.get(name) is not None:
            _number(out[name], f"run.{name}", path)
    for name in ("started_at", "ended_at", "resumed_at"):
        if isinstance(out.get(name), str):
            _timestamp(out[name], f"run.{name}", path)
    if not RUN_ID.fullmatch(out["run_id"]):
        raise bad(path, f"run.run_id {out['run_id']!r:.60} is not a valid run id")
    try:
        status = RunStatus(out["status"])
    except ValueError:
        raise bad(path, f"run.status {out['status']!r:.40} is not a run status") from None
    if status is RunStatus.RUNNING:
        out["status"] = RunStatus.INTERRUPTED.value
    for name in ("namespace", "tenant"):
        if out.get(name) is not None:
            try:
                check_name(out[name], f"run.{name}")
            except FluxError as exc:
                raise bad(path, str(exc)) from None
    return out


def check_events(rows: Any, run_id: str, path: Path) -> list[dict[str, Any]]:
    """Event dicts from a JSON file, checked: known fields, this run's, decoded pickles."""
    if not isinstance(rows, list):
        raise bad(path, f"'events' must be a list, found {type(rows).__name__}")
    statuses = {s.value for s in StepStatus}
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise bad(path, f"events[{i}] must be an object")
        unknown = sorted(set(row) - set(_EVENT_FIELDS))
        if unknown:
            raise bad(path, f"events[{i}] has unknown field(s) {unknown}")
        for name in _REQUIRED_EVENT:
            if row.get(name) is None:
                raise bad(path, f"events[{i}] has no '{name}'")
        _belongs(row, run_id, f"events[{i}]", path)
        _typed(row, "events", f"events[{i}]", path)
        if row["status"] not in statuses:
            raise bad(path, f"events[{i}] has a bad step or status")
        blob = row.get("output_pickle")
        if blob is not None:
            try:
                blob = base64.b64decode(blob, validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise bad(path, f"events[{i}].output_pickle is not base64") from None
        out.append({**row, "output_pickle": blob})
    return out


def check_event_table(table: Any, run_id: str, path: Path) -> Any:
    """An events table read from Parquet (Arrow), checked like JSON events: each column
    cast to the store's type (safely: no overflow, timestamps that parse), required
    columns without nulls, this run's rows only; as a DataFrame."""
    import pyarrow as pa
    import pyarrow.compute as pc

    unknown = sorted(set(table.column_names) - set(_EVENT_FIELDS))
    if unknown:
        raise bad(path, f"the events table has unknown column(s) {unknown}")
    missing = [c for c in _REQUIRED_EVENT if c not in table.column_names]
    if missing:
        raise bad(path, f"the events table has no column(s) {missing}")
    schema = _schemas()["events"]
    columns = []
    for name in table.column_names:
        column, want = table.column(name), schema.field(name).type
        if pa.types.is_timestamp(column.type) and column.type.tz is not None:
            column = column.cast(pa.timestamp(column.type.unit, "UTC")).cast(
                pa.timestamp(column.type.unit)
            )
        try:
            column = column.cast(want, safe=True)
        except (pa.ArrowException, ValueError) as exc:
            raise bad(path, f"the events column {name!r} does not hold {want}: {exc}") from None
        if name in _REQUIRED_EVENT and column.null_count:
            raise bad(path, f"the events column {name!r} has empty values (it is required)")
        columns.append(column)
    table = pa.table(columns, names=table.column_names)
    statuses = {s.value for s in StepStatus}
    for value in pc.unique(table.column("status")).to_pylist():
        if value not in statuses:
            raise bad(path, f"the events column 'status' holds {value!r:.40}, not a step status")
    for i, other in enumerate(table.column("run_id").to_pylist()):
        if other != run_id:
            raise _other_run(path, f"events[{i}]", other, run_id)
    return table.to_pandas()


def check_circuit(rows: Any, run_id: str, path: Path) -> list[dict[str, Any]]:
    if rows is None:
        return []
    if not isinstance(rows, list):
        raise bad(path, "'circuit_events' must be a list")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise bad(path, f"circuit_events[{i}] must be an object")
        unknown = sorted(set(row) - set(CIRCUIT_COLUMNS))
        if unknown:
            raise bad(path, f"circuit_events[{i}] has unknown field(s) {unknown}")
        _belongs(row, run_id, f"circuit_events[{i}]", path)
        for name in ("occurred_at", "agent", "from_state", "to_state"):
            if row.get(name) is None:
                raise bad(path, f"circuit_events[{i}] has no '{name}'")
        _typed(row, "circuit_events", f"circuit_events[{i}]", path)
    return rows


def _typed(row: dict[str, Any], table: str, where: str, path: Path) -> None:
    """Each value of ``row`` of the type its store column holds (its segment schema):
    text, an integer within the column's range, a number, true/false, a timestamp
    string, base64 text for bytes. None is left to the required-field checks."""
    import pyarrow as pa

    schema = _schemas()[table]
    for name, value in row.items():
        if value is None or name not in schema.names:
            continue
        kind = schema.field(name).type
        if pa.types.is_integer(kind):
            low, high = _INT32 if kind.bit_width == 32 else _INT64
            if not isinstance(value, int) or isinstance(value, bool):
                raise bad(path, f"{where}.{name} must be an integer, found {value!r:.40}")
            if not low <= value <= high:
                raise bad(path, f"{where}.{name} {value!s:.40} is out of range ({low} to {high})")
        elif pa.types.is_floating(kind):
            _number(value, f"{where}.{name}", path)
        elif pa.types.is_boolean(kind):
            if not isinstance(value, bool):
                raise bad(path, f"{where}.{name} must be true or false")
        elif pa.types.is_timestamp(kind):
            if not isinstance(value, str):
                raise bad(path, f"{where}.{name} must be a timestamp string")
            _timestamp(value, f"{where}.{name}", path)
        elif not isinstance(value, str):  # text, and bytes as base64 text
            raise bad(path, f"{where}.{name} must be text, found {type(value).__name__}")


def _number(value: Any, where: str, path: Path) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise bad(path, f"{where} must be a number, found {value!r:.40}")
    try:
        float(value)
    except OverflowError:
        raise bad(path, f"{where} {value!s:.40} is out of range") from None


def _timestamp(value: str, where: str, path: Path) -> None:
    import pandas as pd

    try:
        stamp = pd.Timestamp(value)
        if stamp is pd.NaT:
            raise ValueError(value)
        pd.to_datetime([value], utc=True)  # what the import does with it
    except (ValueError, TypeError, OverflowError):
        raise bad(path, f"{where} {value!r:.40} is not an ISO 8601 timestamp") from None


def _belongs(row: dict[str, Any], run_id: str, where: str, path: Path) -> None:
    if row.get("run_id") != run_id:
        raise _other_run(path, where, row.get("run_id"), run_id)


def _other_run(path: Path, where: str, other: Any, run_id: str) -> ReplayError:
    return ReplayError(
        f"{path}: {where} belongs to run {other!r:.60}, not to the trace's run {run_id!r}; "
        "a trace file holds one run's rows only (nothing was imported)"
    )


#: The largest trace file fluxnb reads (``FLUXNB_MAX_TRACE_BYTES``, default 256 MiB): a
#: trace holds at most 1 MiB per recorded output, so a bigger file is a mistake or an attack.
MAX_TRACE_BYTES = int(os.environ.get("FLUXNB_MAX_TRACE_BYTES", str(256 << 20)))


def check_size(path: Path) -> None:
    """Refuse a trace file past MAX_TRACE_BYTES (or one that is not a regular file)."""
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        raise bad(path, "it is not a regular file")
    if st.st_size > MAX_TRACE_BYTES:
        raise bad(
            path,
            f"it is {st.st_size:,} bytes, over the {MAX_TRACE_BYTES:,} fluxnb reads "
            "(FLUXNB_MAX_TRACE_BYTES)",
        )


def load_json(data: bytes, path: Path, what: str) -> Any:
    """``data`` parsed as JSON; a ReplayError when it is not JSON or nests too deep."""
    try:
        return json.loads(data)
    except RecursionError:
        raise bad(path, f"{what} nests JSON too deeply") from None
    except ValueError as exc:
        raise bad(path, f"{what} is not JSON: {exc}") from None


def read_json(path: Path, fmt: str) -> tuple[dict[str, Any], list[dict[str, Any]], list[Any]]:
    """The run row, events and circuit events of a JSON trace file, all checked."""
    check_size(path)
    doc = load_json(path.read_bytes(), path, "the file")
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise ReplayError(f"{path} is not a fluxnb trace (no format '{fmt}')")
    run = check_run(doc.get("run"), path)
    events = check_events(doc.get("events", []), run["run_id"], path)
    circuit = check_circuit(doc.get("circuit_events"), run["run_id"], path)
    return run, events, circuit


def not_imported(path: Path, store: Any, run_id: str, exc: BaseException) -> FluxError:
    """A DuckDB (or OS) error while importing ``path``, as one error for people: the disk
    refused the write (RecordingFailed, CLI exit 6), else the file's rows do not fit
    (ReplayError, exit 2). Either way nothing was imported (the transaction rolled back)."""
    import errno as errnos

    from .._exceptions import RecordingFailed
    from ..store._fold import refused_rows

    text = str(exc).rsplit("Original error: ", maxsplit=1)[-1].strip()
    for noise in ("TransactionContext Error: ", "IO Error: ", "Failed to commit: "):
        text = text.replace(noise, "")
    code = getattr(exc, "errno", None)
    if code is None and "No space left" in text:
        code = errnos.ENOSPC
    if code is not None or "Could not write" in text or type(exc).__name__ == "IOException":
        err = RecordingFailed(store.path, text, run_id=run_id, errno=code)
        err.args = (
            f"cannot import {path} into the trace store {store.path}: {text}. Nothing was "
            "imported: free some space, then import it again.",
        )
        return err
    what = "its rows do not fit the store" if refused_rows(exc) else "the store refused it"
    return ReplayError(f"cannot import {path}: {what}: {text} (nothing was imported)")

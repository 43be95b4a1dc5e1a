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
        for name in ("seq", "attempt"):
            if not isinstance(row[name], int) or isinstance(row[name], bool):
                raise bad(path, f"events[{i}].{name} must be an integer")
        if not isinstance(row["step"], str) or row["status"] not in statuses:
            raise bad(path, f"events[{i}] has a bad step or status")
        if not isinstance(row["final"], bool):
            raise bad(path, f"events[{i}].final must be true or false")
        for name in ("started_at", "ended_at"):
            if row.get(name) is not None:
                if not isinstance(row[name], str):
                    raise bad(path, f"events[{i}].{name} must be a timestamp string")
                _timestamp(row[name], f"events[{i}].{name}", path)
        blob = row.get("output_pickle")
        if blob is not None:
            try:
                blob = base64.b64decode(blob, validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise bad(path, f"events[{i}].output_pickle is not base64") from None
        out.append({**row, "output_pickle": blob})
    return out


def check_event_frame(frame: Any, run_id: str, path: Path) -> Any:
    """An events table read from Parquet, checked like JSON events (as records)."""
    unknown = sorted(set(frame.columns) - set(_EVENT_FIELDS))
    if unknown:
        raise bad(path, f"the events table has unknown column(s) {unknown}")
    missing = [c for c in _REQUIRED_EVENT if c not in frame.columns]
    if missing:
        raise bad(path, f"the events table has no column(s) {missing}")
    for i, other in enumerate(frame["run_id"].tolist()):
        if other != run_id:
            raise _other_run(path, f"events[{i}]", other, run_id)
    return frame


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
    return rows


def _timestamp(value: str, where: str, path: Path) -> None:
    import pandas as pd

    try:
        pd.Timestamp(value)
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


def read_json(path: Path, fmt: str) -> tuple[dict[str, Any], list[dict[str, Any]], list[Any]]:
    """The run row, events and circuit events of a JSON trace file, all checked."""
    check_size(path)
    doc = json.loads(path.read_bytes())
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise ReplayError(f"{path} is not a fluxnb trace (no format '{fmt}')")
    run = check_run(doc.get("run"), path)
    events = check_events(doc.get("events", []), run["run_id"], path)
    circuit = check_circuit(doc.get("circuit_events"), run["run_id"], path)
    return run, events, circuit

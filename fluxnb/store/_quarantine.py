"""Segments that cannot be loaded are set aside, so one bad file never blocks a store.

A segment is written under a temporary name and renamed, so it is whole or absent; but a
machine that loses power before the disk has the data (without ``FLUXNB_FSYNC``), a full
disk under another tool, or a copy gone wrong can still leave a truncated or garbled file.
Loading checks each file (it must open as Arrow IPC, pass a full validation, and have the
columns of the table its name says); a file that fails is moved into ``quarantine/`` in
the segments folder with a ``.json`` note beside it (where it came from, its size, when,
why), a warning names it, and every other segment loads. ``fluxnb store check`` lists them.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._segments import TABLES, _schemas, table_of

QUARANTINE = "quarantine"


class BadSegment(Exception):
    """A segment file that can never load; the message says why."""


@dataclass(frozen=True)
class Quarantined:
    """One segment file set aside (see ``Store.check``)."""

    #: Where the file is now (in the quarantine folder).
    path: Path
    #: Its size in bytes.
    size: int
    #: When it was set aside (UTC).
    when: datetime
    #: Why it could not be loaded.
    reason: str
    #: Where it was (in the segments folder).
    original: str


def read_checked(path: Path) -> Any:
    """The rows of one segment as an Arrow table cast to its table's schema; BadSegment
    when the file can never load (OSError, e.g. a transient read failure, passes)."""
    import pyarrow as pa

    table = table_of(path)
    if table not in TABLES:
        raise BadSegment(f"its name does not say a table fluxnb knows ({table!r})")
    try:
        with pa.memory_map(str(path)) as source:
            data = pa.ipc.open_file(source).read_all()
        data.validate(full=True)
    except pa.ArrowException as exc:  # ArrowInvalid, ArrowTypeError, ...: not Arrow IPC
        raise BadSegment(f"not a whole Arrow IPC file: {exc}") from None
    schema = _schemas()[table]
    fields = []
    for name in data.column_names:
        if name not in schema.names:
            raise BadSegment(f"column {name!r} is not a column of {table}")
        fields.append(schema.field(name))
    try:
        return data.cast(pa.schema(fields))
    except (pa.ArrowException, ValueError) as exc:
        raise BadSegment(f"its columns do not have the types of {table}: {exc}") from None


def quarantine(path: Path, reason: str) -> Quarantined:
    """Move ``path`` into the quarantine folder beside it, note why, and warn."""
    folder = path.parent / QUARANTINE
    folder.mkdir(exist_ok=True)
    dest = folder / path.name
    n = 0
    while dest.is_dir() or (path.is_dir() and dest.exists()):  # a folder cannot replace it
        n += 1
        dest = folder / f"{path.name}.{n}"
    size = path.stat().st_size
    os.replace(path, dest)
    when = datetime.now(UTC)
    note = {"original": str(path), "size": size, "when": when.isoformat(), "reason": reason}
    (folder / (dest.name + ".json")).write_text(json.dumps(note, indent=1) + "\n")
    warnings.warn(
        f"fluxnb: the segment {path} cannot be loaded ({reason}); it was moved to {dest} "
        "and every other segment loaded. Its rows are missing from the store; "
        "`fluxnb store check` lists what was set aside.",
        RuntimeWarning,
        stacklevel=2,
    )
    return Quarantined(dest, size, when, reason, str(path))


def quarantined(segments: Path) -> list[Quarantined]:
    """The files set aside from the segments folder ``segments``, oldest first."""
    folder = segments / QUARANTINE
    if not folder.is_dir():
        return []
    out = []
    for f in sorted(folder.iterdir()):
        if f.suffix == ".json":  # a note; the thing set aside may be a file or a folder
            continue
        try:
            note = json.loads((folder / (f.name + ".json")).read_text())
        except (OSError, ValueError):  # the note is gone: say what the file says
            note = {}
        stat = f.stat()
        when = note.get("when")
        out.append(
            Quarantined(
                path=f,
                size=int(note.get("size", stat.st_size)),
                when=datetime.fromisoformat(when)
                if when
                else datetime.fromtimestamp(stat.st_mtime, tz=UTC),
                reason=str(note.get("reason", "unknown (no note beside the file)")),
                original=str(note.get("original", segments / f.name)),
            )
        )
    return out

"""What a run writes into a store, and when: segments written without pyarrow (_ipc), a
run's first row on disk before its first step starts, and the recorder's rows (events,
digests, usage) equal to those of the per-event reference (MemoryRecorder, encode)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluxnb.store._ipc import (
    BINARY,
    BOOL,
    FLOAT64,
    INT32,
    INT64,
    TIMESTAMP_US,
    UTF8,
    ipc_file,
)
from fluxnb.store._segments import COLUMNS, arrow_table, write_segment

from .conftest import cli_env

_VALUES = {
    UTF8: st.text(max_size=20),
    BINARY: st.binary(max_size=20),
    INT32: st.integers(-(2**31), 2**31 - 1),
    INT64: st.integers(-(2**63), 2**63 - 1),
    TIMESTAMP_US: st.integers(0, 4_102_444_800_000_000),  # up to 2100
    FLOAT64: st.floats(allow_nan=False),
    BOOL: st.booleans(),
}


def _rows(table: str) -> st.SearchStrategy[list[tuple]]:
    row = st.tuples(*(st.none() | _VALUES[kind] for _, kind in COLUMNS[table]))
    return st.lists(row, min_size=1, max_size=12)


def _read(data: bytes) -> pa.Table:
    table = pa.ipc.open_file(pa.py_buffer(data)).read_all()
    table.validate(full=True)
    return table


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_small_segments_read_back_as_pyarrow_writes_them(data: st.DataObject) -> None:
    for table in COLUMNS:
        rows = data.draw(_rows(table), label=table)
        written = _read(ipc_file(COLUMNS[table], rows))
        assert written.equals(arrow_table(table, rows)), table


def test_small_segment_with_only_nulls_and_empty_values() -> None:
    columns = [("s", UTF8), ("b", BINARY), ("i", INT32), ("f", BOOL)]
    rows = [("", b"", 0, False), (None, None, None, None), ("é\x00ü", b"\x00", -1, True)]
    got = _read(ipc_file(columns, rows)).to_pylist()
    assert [tuple(r.values()) for r in got] == rows


def test_a_value_the_small_writer_cannot_take_goes_to_pyarrow(tmp_path: Path) -> None:
    from decimal import Decimal

    row = ("r", "wf", "running", 1, None, None, None, 1, None, None, None, "h",
           1, Decimal(7), 0, None, None)  # fmt: skip
    with pytest.raises(struct.error):
        ipc_file(COLUMNS["runs"], [row])
    path = write_segment(tmp_path, "runs", [row])
    with pa.memory_map(str(path)) as source:
        assert pa.ipc.open_file(source).read_all().column("seed").to_pylist() == [7]


def test_a_run_records_its_start_before_pyarrow_is_imported(tmp_path: Path) -> None:
    """The run's ``runs`` row is a whole segment on disk when its first step starts, and
    nothing before that imported pyarrow, pandas or duckdb (they cost 0.3-0.6 s)."""
    store = tmp_path / "s.duckdb"
    code = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        import fluxnb
        seen = {{}}
        def first():
            seen["heavy"] = sorted(m for m in ("pyarrow", "pandas", "duckdb") if m in sys.modules)
            seen["runs"] = [p.name for p in Path({str(store)!r} + ".segments").glob("*-runs.arrow")]
            return 1
        wf = fluxnb.Workflow("cold")
        wf.add("first", first)
        result = fluxnb.run(wf, store={str(store)!r})
        print(json.dumps({{"ok": result.ok, "run_id": result.run_id, **seen}}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), check=True
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["ok"] and seen["heavy"] == [] and len(seen["runs"]) == 1
    import fluxnb

    runs = fluxnb.store(str(store)).sql("SELECT run_id, status FROM runs")
    assert list(runs["run_id"]) == [seen["run_id"]] and list(runs["status"]) == ["succeeded"]

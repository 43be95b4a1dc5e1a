"""What a run writes into a store, and when: segments written without pyarrow (_ipc), a
run's first row on disk before its first step starts, and the recorder's rows (events,
digests, usage) equal to those of the per-event reference (MemoryRecorder, encode)."""

from __future__ import annotations

import hashlib
import importlib
import json
import struct
import subprocess
import sys
import textwrap
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import fluxnb
from fluxnb.store import RunRecord, open_store
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
from fluxnb.store._outputs import encode, payload
from fluxnb.store._recorder import NO_OUTPUT
from fluxnb.store._segments import COLUMNS, _schemas, arrow_table, write_segment
from fluxnb.store._store_recorder import StoreRecorder
from fluxnb.store._usage import UsageMeter
from fluxnb.testing import failing, flaky

from .conftest import cli_env, refuse_events

# the module, not fluxnb.store (a function once fluxnb.store is touched)
_store_recorder = importlib.import_module("fluxnb.store._store_recorder")
_outputs = importlib.import_module("fluxnb.store._outputs")
_usage = importlib.import_module("fluxnb.store._usage")

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
    runs = fluxnb.store(str(store)).sql("SELECT run_id, status FROM runs")
    assert list(runs["run_id"]) == [seen["run_id"]] and list(runs["status"]) == ["succeeded"]


class _Teed(StoreRecorder):
    """A store's recorder that also hands every event row to a per-event reference
    UsageMeter (``on_event``, as MemoryRecorder counts) and keeps the rows."""

    def run_started(self, run: RunRecord) -> None:
        super().run_started(run)
        self.reference = UsageMeter(run)
        self.seen: list[tuple] = []

    def event(self, row: tuple) -> None:
        self.reference.on_event(row)
        self.seen.append(row)
        super().event(row)


def _returns(value: Any) -> Any:
    def step(src: int) -> Any:
        return value

    return step


def _sample_workflow() -> fluxnb.Workflow:
    """Steps whose rows take every path: repeated small outputs, unique ones, JSON
    containers, a pickle, no output, a retry, a failure tolerated, a custom meter."""
    wf = fluxnb.Workflow("sample")
    wf.add("src", lambda: 1)
    for i in range(40):  # more than a flush (FLUSH_ROWS is patched to 7)
        wf.add(f"same{i}", lambda src: src, depends_on="src")
        wf.add(f"uniq{i}", _returns(f"value {i} ünïcode"), depends_on="src")
    wf.add("nothing", lambda src: None, depends_on="src")
    wf.add("container", lambda src: {"a": [1, 2.5, None, True]}, depends_on="src")
    wf.add("tupled", lambda src: (1, "x"), depends_on="src")  # not JSON: a signed pickle
    wf.add("flaky", flaky(2, then=7), depends_on="src", retry=3)
    wf.add("broken", failing(ValueError("no")), depends_on="src", on_error="continue")

    def metered(ctx: Any, src: int) -> int:
        ctx.meter("widgets", 3)
        return src

    wf.add("metered", metered, depends_on="src")
    return wf


@pytest.mark.parametrize("fail_once", [False, True], ids=["written", "write-refused-once"])
def test_recorded_rows_digests_and_usage_equal_the_per_event_reference(
    store_path: str, monkeypatch: pytest.MonkeyPatch, fail_once: bool
) -> None:
    """Events as the engine gave them, each output's digest the SHA-256 of its recorded
    bytes, and usage rows equal to counting event by event — also when flushes split a
    step's attempts and when a refused write keeps rows for the next flush."""
    monkeypatch.setattr(_store_recorder, "FLUSH_ROWS", 7)
    st = open_store(store_path)
    refused = refuse_events(st, monkeypatch) if fail_once else []
    rec = _Teed(st)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the refused write's warning
        result = fluxnb.run(_sample_workflow(), store=rec)
    assert not result.ok and result.run_id  # 'broken' failed (tolerated)
    assert len(refused) == fail_once  # the refusal happened (once) when asked for
    run = result.run_id
    events = st.sql("SELECT * FROM events WHERE run_id = $r ORDER BY seq, attempt", {"r": run})
    by_key = {(r[1], r[3]): r for r in rec.seen}
    by_step = {r[2]: r[1] for r in rec.seen}
    assert len(events) == len(rec.seen) == len(by_key)
    for e in events.to_dict("records"):
        row = by_key[(e["seq"], e["attempt"])]
        assert (e["step"], e["status"], e["final"], e["error_type"], e["executor"]) == (
            row[2],
            row[4],
            row[5],
            row[10],
            row[13],
        )
        if e["output_format"] == "json":
            data = e["output_json"].encode()
            assert json.loads(data) == row[-1]
        elif e["output_format"] == "pickle":
            data = payload(bytes(e["output_pickle"]))
        else:
            assert e["output_format"] is None and row[-1] is NO_OUTPUT
            continue
        assert e["output_digest"] == hashlib.sha256(data).hexdigest()[:32]
        assert e["output_size"] == len(data)
    formats = set(events["output_format"].dropna())
    assert formats == {"json", "pickle"}
    usage = st.sql(
        "SELECT event_id, unit, quantity, step, attempt, epoch_us(occurred_at) AS at, source "
        "FROM usage WHERE run_id = $r",
        {"r": run},
    )
    rows = [tuple(r.values()) for r in usage.to_dict("records")]
    assert [r[:4] for r in rows if r[-1] == "custom"] == [
        (f"custom:{run}:{by_step['metered']}:1:widgets:1", "widgets", Decimal(3), "metered")
    ]
    got = sorted((r for r in rows if r[-1] == "auto"), key=str)
    want = sorted(
        ((r[0], r[3], Decimal(r[4]), r[9], r[10], r[5], r[6]) for r in rec.reference.take()),
        key=str,
    )
    assert got == want
    units = {u for _, u, *_ in got}
    assert {"invocations", "compute_seconds", "retries"} <= units


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_columns_of_one_value_convert_as_value_by_value(data: st.DataObject) -> None:
    """A batch whose columns each hold one value (a run id, a status, no error...) is
    built without converting every value: the table is the same."""
    for table in COLUMNS:
        row = data.draw(_rows(table), label=table)[0]
        rows = [row] * 40
        schema = _schemas()[table]
        cols = zip(*rows, strict=True)
        plain = pa.table(
            [pa.array(list(c), type=f.type) for c, f in zip(cols, schema, strict=True)],
            schema=schema,
        )
        assert arrow_table(table, rows).equals(plain), table


def test_repeated_small_outputs_keep_their_digest_and_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for value in (1, 1, None, True, 1.0, -0.0, 0.0, "ok", "ok", "ü" * 30):
        fmt, text, _, digest, size = encode(value)
        assert (fmt, json.loads(text or "")) == ("json", value)
        assert digest == hashlib.sha256((text or "").encode()).hexdigest()[:32]
        assert size == len((text or "").encode())
    assert encode(-0.0)[1] == "-0.0" and encode(0.0)[1] == "0.0"
    assert encode(1)[1] == "1" and encode(True)[1] == "true"
    monkeypatch.setattr(_outputs, "CAP", 40)  # "ü" * 30 is 62 bytes of JSON
    assert encode("ü" * 30)[0] == "too_large"


def test_cold_start_benchmark_prints_its_verdict() -> None:
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "cold_start.py"), "--rounds", "1"],
        capture_output=True,
        text=True,
        env=cli_env(),
        check=True,
        timeout=120,
    ).stdout
    assert "store on,  from the call" in out
    assert "] store on: the step starts <= 50 ms after the call" in out


#: Any text, lone surrogates too (written with their escapes, as in every table).
_ANY_TEXT = st.text(
    st.characters()
    | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=()),
    max_size=8,
)
_EXECUTIONS = st.lists(
    st.tuples(
        st.integers(1, 2**40),  # seq
        _ANY_TEXT,  # step
        st.floats(min_value=1e-9, max_value=1e6)  # seconds, ties of 6 places included
        | st.sampled_from([0.0078125, 0.5e-6, 2.5e-6, 1.0000005]),
        st.none() | st.integers(0, 4_102_444_800_000_000),  # ended (None: not known)
    ),
    min_size=1,
    max_size=30,
    unique_by=lambda e: e[0],
)


@settings(max_examples=40, deadline=None)
@given(executions=_EXECUTIONS, run_id=_ANY_TEXT.filter(bool))
@example(executions=[(1, "s\udcff", 0.0078125, None), (2, "t", 2.5e-6, 5)], run_id="r\ud800")
def test_usage_built_by_arrow_equals_usage_built_row_by_row(
    executions: list[tuple], run_id: str
) -> None:
    """The usual batch's usage table (one-attempt executions, built by Arrow) holds the
    very rows the Python columns give, in the same order: ids, units, quantity texts
    (``f"{s:.6f}"``, ties of the sixth place included), times, steps."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_usage, "time", _FixedTime())
        _same_usage_both_ways(executions, run_id)


def _same_usage_both_ways(executions: list[tuple], run_id: str) -> None:
    run = RunRecord(run_id, "wf", "running", 0, tenant="acme")
    done = tuple(list(c) for c in zip(*((s, st_, 1, 1, sec, 0, at) for s, st_, sec, at in
                                         executions), strict=True))  # fmt: skip
    meter = UsageMeter(run)
    built = meter._usual_table(done)
    assert built is not None
    c = meter._auto_columns(done)
    names = ("event_id", "unit", "quantity", "occurred_at", "step", "attempt", "recorded_at")
    reference = arrow_table("usage", [
        (i, meter.tenant, meter.namespace, u, q, at, "auto", run_id, "wf", step, a, None,
         None, None, rec)
        for i, u, q, at, step, a, rec in zip(*(c[n] for n in names), strict=True)
    ])  # fmt: skip
    assert built.equals(reference)


def test_usage_of_other_batches_is_counted_row_by_row() -> None:
    """A batch with a retry, a zero duration or a later first attempt is not the usual
    one: the Arrow path declines it (the Python columns count it)."""
    run = RunRecord("r", "wf", "running", 0)
    meter = UsageMeter(run)
    usual = ([1, 2], ["a", "b"], [1, 1], [1, 1], [0.5, 0.25], [0, 0], [5, 6])
    assert meter._usual_table(usual) is not None
    for column, value in ((2, [1, 3]), (4, [0.5, 0.0]), (5, [0, 1]), (3, [1, 2])):
        other = tuple(value if i == column else list(c) for i, c in enumerate(usual))
        assert meter._usual_table(other) is None


class _FixedTime:
    """``time`` for the usage module with one fixed clock (recorded_at is 'now')."""

    @staticmethod
    def time_ns() -> int:
        return 1_700_000_000_000_000_000


_TWO = "pipeline:\n  - step: a\n  - step: b\n    depends_on: a\n"


def _runs_segments(store_path: str) -> list[dict[str, Any]]:
    """The ``runs`` rows waiting in segments, oldest first."""
    files = sorted(Path(store_path + ".segments").glob("*-runs.arrow"))
    return [r for f in files for r in _read(f.read_bytes()).to_pylist()]


def _stored_manifest(store_path: str, run_id: str) -> tuple[str, Any]:
    found = open_store(store_path).sql(
        "SELECT status, manifest FROM runs WHERE run_id = $r", {"r": run_id}
    )
    assert len(found) == 1
    return found["status"][0], found["manifest"][0]


def test_a_runs_manifest_is_written_once_and_its_row_keeps_it(store_path: str) -> None:
    """The final runs row carries no copy of the manifest its first row wrote (megabytes
    for a big workflow); the row the store keeps has it, whether both rows load together
    or the first loaded while the run was going on."""
    import asyncio

    def b(a: int) -> int:
        if a == 2:  # the second run: its first row is loaded while it runs
            open_store(store_path).flush()
        return a + 1

    together = asyncio.run(fluxnb.arun(_TWO, {"a": lambda: 1, "b": b}, store=store_path))
    pending = _runs_segments(store_path)
    assert [r["status"] for r in pending] == ["running", "succeeded"]
    manifest = pending[0]["manifest"]
    assert manifest and pending[1]["manifest"] is None
    assert pending[1]["manifest_hash"] == pending[0]["manifest_hash"]
    assert _stored_manifest(store_path, together.run_id) == ("succeeded", manifest)

    apart = asyncio.run(fluxnb.arun(_TWO, {"a": lambda: 2, "b": b}, store=store_path))
    assert [r["status"] for r in _runs_segments(store_path)] == ["succeeded"]  # only the end
    assert _stored_manifest(store_path, apart.run_id) == ("succeeded", manifest)


def test_a_refused_first_runs_row_goes_later_with_the_manifest(
    store_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first runs row refused by the disk is kept and written before the final one:
    the manifest is still on disk once and the stored row has it."""
    write = _store_recorder.write_segment
    refused: list[str] = []

    def refuse_first_runs(folder: Path, table: str, rows: Any) -> Path:
        if table == "runs" and not refused:
            refused.append(rows[0][2])
            raise OSError(28, "No space left on device")
        return write(folder, table, rows)

    monkeypatch.setattr(_store_recorder, "write_segment", refuse_first_runs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = fluxnb.run(_TWO, {"a": lambda: 1, "b": lambda a: a + 1}, store=store_path)
    assert refused == ["running"] and result.recording_error is None
    status, manifest = _stored_manifest(store_path, result.run_id)
    assert status == "succeeded" and manifest and "step: b" in manifest


def test_an_in_memory_store_keeps_the_manifest_of_a_run() -> None:
    st = open_store(":memory:")
    result = fluxnb.run(_TWO, {"a": lambda: 1, "b": lambda a: a + 1}, store=st)
    found = st.sql("SELECT status, manifest FROM runs WHERE run_id = $r", {"r": result.run_id})
    assert list(found["status"]) == ["succeeded"] and "step: b" in found["manifest"][0]


def test_a_resumed_run_keeps_the_manifest_it_resumed_with(store_path: str) -> None:
    """A resume may run another manifest: the stored row has the one its execution ran."""
    import asyncio

    def broken(a: int) -> int:
        raise ValueError("not yet")

    first = asyncio.run(fluxnb.arun(_TWO, {"a": lambda: 1, "b": broken}, store=store_path))
    assert not first.ok
    edited = _TWO.replace("- step: b", "- step: b\n    description: fixed")
    resumed = fluxnb.resume(
        first.run_id, {"a": lambda: 1, "b": lambda a: a + 1}, store=store_path, manifest=edited
    )
    assert resumed.ok
    status, manifest = _stored_manifest(store_path, first.run_id)
    assert status == "succeeded" and "fixed" in manifest


def test_a_big_batchs_usage_built_by_arrow_reads_back_as_counted_event_by_event(
    store_path: str,
) -> None:
    """A flush of more than ARROW_ROWS one-attempt steps (Arrow's path, end to end):
    the stored usage rows equal counting event by event."""
    wf = fluxnb.Workflow("wide")
    wf.add("src", lambda: 1)
    for i in range(_usage.ARROW_ROWS + 20):
        wf.add(f"w{i}", lambda src: src, depends_on="src")
    st = open_store(store_path)
    rec = _Teed(st)
    result = fluxnb.run(wf, store=rec)
    assert result.ok
    usage = st.sql(
        "SELECT event_id, unit, quantity, step, attempt, epoch_us(occurred_at) AS at, source "
        "FROM usage WHERE run_id = $r ORDER BY event_id",
        {"r": result.run_id},
    )
    got = [tuple(r.values()) for r in usage.to_dict("records")]
    want = sorted(
        (r[0], r[3], Decimal(r[4]), r[9], r[10], r[5], r[6]) for r in rec.reference.take()
    )
    assert len(got) == 2 * (_usage.ARROW_ROWS + 21) and got == want

"""The DuckDB trace store: a real file, its schema, batching, locks, two processes."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

import fluxnb
from fluxnb import StoreLockedError
from fluxnb.store import Store, open_store
from fluxnb.store._schema import SCHEMA_VERSION
from fluxnb.testing import failing

from .conftest import FLUXNB, cli_env

TWO = "pipeline:\n  - step: a\n  - step: b\n    depends_on: a\n"
NS = {"a": lambda: 1, "b": lambda a: a + 1}


def test_default_store_is_a_file_under_the_cwd(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("FLUXNB_STORE")
    monkeypatch.chdir(tmp_path)
    result = fluxnb.run(TWO, NS)
    assert result.store == str(tmp_path / ".fluxnb" / "fluxnb.duckdb")
    frame = fluxnb.traces(result.run_id)
    assert list(frame["step"]) == ["a", "b"]
    assert (tmp_path / ".fluxnb" / "fluxnb.duckdb").is_file()
    assert (tmp_path / ".fluxnb" / ".gitignore").read_text() == "*\n"


def test_env_var_and_argument_choose_the_store(tmp_path: Path, monkeypatch) -> None:
    env_path = tmp_path / "env.duckdb"
    monkeypatch.setenv("FLUXNB_STORE", str(env_path))
    r1 = fluxnb.run(TWO, NS)
    assert r1.store == str(env_path)
    arg_path = tmp_path / "arg.duckdb"
    r2 = fluxnb.run(TWO, NS, store=str(arg_path))
    assert r2.store == str(arg_path)
    assert len(fluxnb.store(str(arg_path)).sql("SELECT * FROM runs")) == 1
    assert len(fluxnb.store().sql("SELECT * FROM runs")) == 1


def test_schema_tables_and_version(store_path: str) -> None:
    fluxnb.run(TWO, NS, store=store_path)
    st = open_store(store_path)
    tables = set(st.sql("SELECT table_name FROM information_schema.tables")["table_name"])
    assert {"runs", "events", "fluxnb_schema", "fluxnb_segments"} <= tables
    assert st.sql("SELECT max(version) AS v FROM fluxnb_schema")["v"][0] == SCHEMA_VERSION
    events = st.sql("SELECT * FROM events")
    from fluxnb.store._recorder import EVENT_COLUMNS, OUTPUT_COLUMNS

    assert set(events.columns) == {*EVENT_COLUMNS, *OUTPUT_COLUMNS}  # migrations append
    assert list(events["executor"]) == ["local", "local"]
    assert EVENT_COLUMNS[:5] == ("run_id", "seq", "step", "attempt", "status")
    assert "circuit_events" in tables
    assert list(events["output_format"]) == ["json", "json"]
    assert list(events["output_json"]) == ["1", "2"]
    run = st.sql("SELECT * FROM runs").iloc[0]
    assert run["status"] == "succeeded" and run["steps"] == 2
    assert run["manifest"] == TWO and len(run["manifest_hash"]) == 16
    assert run["duration_s"] > 0 and run["pid"] == os.getpid()


def test_newer_schema_is_refused(store_path: str) -> None:
    fluxnb.run(TWO, NS, store=store_path)
    Store(store_path).sql("SELECT 1")  # the file is created and migrated at first access
    con = duckdb.connect(store_path)
    con.execute("INSERT INTO fluxnb_schema VALUES (999, now(), 'future')")
    con.close()
    with pytest.raises(fluxnb.StoreError, match="newer than this fluxnb"):
        Store(store_path).sql("SELECT 1")


def test_failed_run_keeps_traceback(store_path: str) -> None:
    result = fluxnb.run(TWO, {"a": failing(ValueError("no data")), "b": NS["b"]}, store=store_path)
    assert not result.ok
    ev = fluxnb.traces(result.run_id, store=store_path)
    row = ev[ev.step == "a"].iloc[0]
    assert row["status"] == "failed" and row["error_type"] == "ValueError"
    assert "no data" in row["traceback"] and "Traceback" in row["traceback"]
    assert ev[ev.step == "b"].iloc[0]["status"] == "cancelled"
    runs = fluxnb.store(store_path).runs()
    assert runs.iloc[0]["status"] == "failed"
    assert runs.iloc[0]["error"] == "ValueError: no data"


def test_writes_are_batched_into_few_segments(
    store_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fluxnb.store._store_recorder import StoreRecorder

    # the batching, not the timer: a slow (loaded) machine also flushes every 2 s
    monkeypatch.setattr(StoreRecorder, "flush_interval", 3600.0)
    wf = fluxnb.Workflow("many")
    for i in range(2000):
        wf.add(f"s{i}", lambda: None)
    asyncio.run(wf.arun(store=store_path))  # arun leaves the segments for the next access
    segments = list(Path(store_path + ".segments").glob("*.arrow"))
    assert len(segments) <= 4  # the run's start row, its events, its usage, its end row
    assert fluxnb.sql("SELECT count(*) AS n FROM events", store=store_path)["n"][0] == 2000
    assert not list(Path(store_path + ".segments").glob("*.arrow"))  # loaded, then removed


def test_no_store_records_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLUXNB_STORE")
    result = fluxnb.run(TWO, NS, store=None)
    assert result.store is None
    assert not (tmp_path / ".fluxnb").exists()


def test_memory_store() -> None:
    st = Store(":memory:")
    result = fluxnb.run(TWO, NS, store=st)
    assert result.store == ":memory:"
    assert list(st.traces(result.run_id)["status"]) == ["succeeded", "succeeded"]
    assert st.runs().iloc[0]["status"] == "succeeded"


def test_sql_parameters_and_errors(store_path: str) -> None:
    result = fluxnb.run(TWO, NS, store=store_path)
    st = fluxnb.store(store_path)
    frame = st.sql("SELECT step FROM events WHERE run_id = $r ORDER BY seq", {"r": result.run_id})
    assert list(frame["step"]) == ["a", "b"]
    with pytest.raises(fluxnb.QueryError) as info:
        st.sql("SELEC nonsense")
    assert "syntax" in str(info.value).lower()


def test_null_strings_are_none_in_every_frame(store_path: str) -> None:
    r = fluxnb.run(
        "pipeline:\n  - step: a\n  - step: b\n    depends_on: a\n",
        {"a": lambda: 1, "b": failing(ValueError("no"))},
        store=store_path,
    )
    events = fluxnb.traces(r.run_id, store=store_path)
    error_types = events.set_index("step")["error_type"]
    assert error_types["a"] is None and error_types["b"] == "ValueError"
    frame = fluxnb.sql(
        "SELECT * FROM (VALUES ('x', 1.5::DECIMAL(10, 2)), (NULL, NULL)) t(s, d)", store=store_path
    )
    assert frame["s"].tolist() == ["x", None] and frame["d"].tolist()[1] is None
    assert fluxnb.sql("SELECT NULL::VARCHAR AS s", store=store_path)["s"][0] is None
    steps = r.to_frame().set_index("step")["error"]
    assert steps["a"] is None and "no" in steps["b"]


@pytest.mark.parametrize("span", [3e-5, 0.0005, 0.0123, 0.31, 0.999, 1.0, 1.7, 9.99, 37.0, 3600.0])
def test_timeline_ticks_are_round_numbers(span: float) -> None:
    import math

    from fluxnb.store._timeline import tick_label, ticks

    step, count, unit, per_unit = ticks(span)
    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-9)
    assert round(mantissa, 9) in (1, 2, 5) and 1 <= count <= 8
    assert step * count >= span * (1 - 1e-9) and step * (count - 1) < span
    labels = [tick_label(i * step, unit, per_unit) for i in range(count + 1)]
    assert all(len(lb.split()[0]) <= 5 for lb in labels)  # no 0.30000000000000004


def test_timeline_has_round_ticks_and_a_colour_legend(store_path: str) -> None:
    import re
    import time as clock

    def nap() -> int:
        clock.sleep(0.03)
        return 1

    r = fluxnb.run(
        "pipeline:\n  - step: a\n  - step: b\n    depends_on: a\n",
        {"a": nap, "b": failing(ValueError("no"))},
        store=store_path,
    )
    t = fluxnb.timeline(r, store=store_path)
    svg = t.to_svg()
    labels = re.findall(r'text-anchor="middle" fill="#555">([^<]+)</text>', svg)
    assert labels[0] in ("0 ms", "0 s") and len(labels) >= 2
    values = [float(lb.split()[0]) for lb in labels]
    step = values[1] - values[0]
    assert all(abs(v - i * step) < 1e-9 for i, v in enumerate(values))
    # the legend names each status drawn, next to its colour
    for status, colour in (("succeeded", "#2e7d32"), ("failed", "#c62828")):
        assert re.search(f'fill="{colour}"/><text[^>]*>{status}</text>', svg)
    assert repr(t).endswith(": 2 attempts>")


def test_segment_loaded_exactly_once_after_a_crash_between_commit_and_delete(
    store_path: str,
) -> None:
    asyncio.run(fluxnb.arun(TWO, NS, store=store_path))  # its segments wait
    seg_dir = Path(store_path + ".segments")
    kept = seg_dir.parent / "kept"
    shutil.copytree(seg_dir, kept)
    st = Store(store_path)
    assert len(st.sql("SELECT * FROM events")) == 2
    # the process "died" after the commit and before deleting: the files come back
    for f in kept.iterdir():
        shutil.copy(f, seg_dir / f.name)
    assert len(st.sql("SELECT * FROM events")) == 2
    assert not list(seg_dir.glob("*.arrow"))


def test_locked_store_gives_a_clear_error_and_loses_nothing(store_path: str) -> None:
    fluxnb.run(TWO, NS, store=store_path)
    Store(store_path).sql("SELECT 1")  # load the first run
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import duckdb, sys, time
            con = duckdb.connect({store_path!r})
            print("locked", flush=True)
            sys.stdin.readline()
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        # runs still record while another program holds the file...
        result = fluxnb.run(TWO, NS, store=store_path)
        assert result.ok
        # ...and a query says clearly what is wrong
        with pytest.raises(StoreLockedError) as info:
            Store(store_path, lock_timeout=0.5).sql("SELECT 1")
        assert info.value.path == store_path
        assert "another program" in str(info.value) and "FLUXNB_STORE" in str(info.value)
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(10)
    assert len(Store(store_path).sql("SELECT * FROM runs")) == 2
    assert len(Store(store_path).sql("SELECT * FROM events")) == 4


STEPS_PY = """
import time
def make(i):
    def step(**_):
        time.sleep(0.0005)
        return i
    return step
for _i in range(300):
    globals()[f"s{_i}"] = make(_i)
"""


def test_two_processes_share_one_store(tmp_path: Path, store_path: str) -> None:
    manifest = tmp_path / "many.yaml"
    lines = ["router:\n  worker_pool_size: 8\npipeline:"]
    for i in range(300):
        lines.append(f"  - step: s{i}" + (f"\n    depends_on: s{i - 1}" if i % 10 else ""))
    manifest.write_text("\n".join(lines) + "\n")
    steps = tmp_path / "steps.py"
    steps.write_text(STEPS_PY)
    cmd = [*FLUXNB, "run", str(manifest), "--import", str(steps), "--store", store_path, "--json"]
    procs = [
        subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env()
        )
        for _ in range(2)
    ]
    # a third process queries while both write
    query = [*FLUXNB, "sql", "SELECT count(*) FROM events", "--store", store_path]
    deadline = time.monotonic() + 60
    queries = 0
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        q = subprocess.run(query, capture_output=True, text=True, env=cli_env(), timeout=60)
        assert q.returncode == 0, q.stderr
        queries += 1
    outs = [p.communicate(timeout=60) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    assert queries >= 1
    st = Store(store_path)
    assert st.sql("SELECT count(*) AS n FROM runs WHERE status = 'succeeded'")["n"][0] == 2
    per_run = st.sql("SELECT run_id, count(*) AS n FROM events GROUP BY run_id")
    assert sorted(per_run["n"]) == [300, 300]


def test_an_ended_run_row_wins_over_running_whatever_the_file_order(store_path: str) -> None:
    from dataclasses import astuple

    from fluxnb.store import RunRecord
    from fluxnb.store._segments import write_segment

    seg = Path(store_path + ".segments")
    start = RunRecord("r1", "wf", "running", 1_700_000_000_000_000)
    end = RunRecord("r1", "wf", "succeeded", 1_700_000_000_000_000, ended_at=1_700_000_001_000_000)
    first = write_segment(seg, "runs", [astuple(end)])
    second = write_segment(seg, "runs", [astuple(start)])  # as if the clock stepped back
    assert sorted(seg.glob("*.arrow")) == [first, second]
    st = Store(store_path)
    row = st.sql("SELECT status, duration_s FROM runs").iloc[0]
    assert row["status"] == "succeeded" and row["duration_s"] == 1.0
    write_segment(seg, "runs", [astuple(start)])  # a late 'running' row in a later load
    assert st.sql("SELECT status FROM runs")["status"][0] == "succeeded"


def test_runs_whose_process_is_gone_are_marked_interrupted(store_path: str) -> None:
    """A run row saying 'running' whose process on this machine has ended (here: a pid that
    exited, and a live pid younger than the run) becomes 'interrupted' at the next read;
    a live process's run, another machine's run and an ended run stay as they are."""
    import socket
    from dataclasses import astuple

    from fluxnb.store import RunRecord
    from fluxnb.store._segments import write_segment

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    here, now = socket.gethostname(), int(time.time() * 1e6)
    rows = {
        "dead": RunRecord("dead", "wf", "running", now - 10**6, host=here, pid=gone.pid, steps=3),
        "live": RunRecord("live", "wf", "running", now - 10**6, host=here, pid=os.getpid()),
        # this very process, but the run started (per its row) long before it: a reused pid
        "reused": RunRecord(
            "reused", "wf", "running", 946_684_800_000_000, host=here, pid=os.getpid()
        ),
        "elsewhere": RunRecord("elsewhere", "wf", "running", now, host="other-machine", pid=1),
        "ended": RunRecord("ended", "wf", "failed", now, ended_at=now, host=here, pid=gone.pid),
    }
    write_segment(Path(store_path + ".segments"), "runs", [astuple(r) for r in rows.values()])
    st = Store(store_path)
    assert sorted(st.mark_interrupted()) == ["dead", "reused"]
    status = dict(st.sql("SELECT run_id, status FROM runs").itertuples(index=False))
    assert status == {
        "dead": "interrupted",
        "live": "running",
        "reused": "interrupted",
        "elsewhere": "running",
        "ended": "failed",
    }
    dead = st.sql("SELECT * FROM runs WHERE run_id = 'dead'").iloc[0]
    assert dead["steps"] == 3 and f"process {gone.pid}" in dead["error"]
    assert st.mark_interrupted() == []  # once only
    # a resumed execution of the run shows as running, then as it ended
    again = RunRecord("dead", "wf", "running", now, host=here, pid=os.getpid(), resumed=1)
    write_segment(Path(store_path + ".segments"), "runs", [astuple(again)])
    assert st.sql("SELECT status FROM runs WHERE run_id = 'dead'")["status"][0] == "running"
    done = RunRecord("dead", "wf", "succeeded", now, ended_at=now + 1, resumed=1)
    write_segment(Path(store_path + ".segments"), "runs", [astuple(done)])
    late = RunRecord("dead", "wf", "running", now, host=here, pid=os.getpid(), resumed=1)
    write_segment(Path(store_path + ".segments"), "runs", [astuple(late)])  # clock stepped
    assert st.sql("SELECT status FROM runs WHERE run_id = 'dead'")["status"][0] == "succeeded"


def test_nested_access_to_the_same_store_works(store_path: str) -> None:
    fluxnb.run(TWO, NS, store=store_path)
    st = Store(store_path)
    with st.connect() as con:
        inner = st.sql("SELECT count(*) AS n FROM events")
        assert inner["n"][0] == 2
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    with st.connect(), pytest.raises(fluxnb.StoreError, match="finish the outer query"):
        Store(store_path + ".other").sql("SELECT 1")


def test_stale_temporary_segments_are_cleaned(store_path: str) -> None:
    seg = Path(store_path + ".segments")
    seg.mkdir(parents=True)
    tmp = seg / "00000000000000000001-1-000000-events.arrow.tmp"
    tmp.write_bytes(b"half a file")
    old = time.time() - 7200
    os.utime(tmp, (old, old))
    fresh = seg / "00000000000000000002-1-000000-events.arrow.tmp"
    fresh.write_bytes(b"being written right now")
    Store(store_path).sql("SELECT 1")
    assert not tmp.exists() and fresh.exists()


def test_rows_reach_disk_while_a_long_step_runs(store_path: str, monkeypatch) -> None:
    from fluxnb.store import _store_recorder

    monkeypatch.setattr(_store_recorder.StoreRecorder, "flush_interval", 0.05)
    seen: dict[str, int] = {}
    seg = Path(store_path + ".segments")

    def long_step(quick: int) -> int:
        time.sleep(0.3)  # meanwhile the timer flushes 'quick' to disk
        seen["files"] = len(list(seg.glob("*-events.arrow")))
        return quick

    r = fluxnb.run(
        "pipeline:\n  - step: quick\n  - step: long_step\n    depends_on: quick\n",
        {"quick": lambda: 1, "long_step": long_step},
        store=store_path,
    )
    assert r.ok and seen["files"] >= 1

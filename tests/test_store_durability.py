"""The store survives bad segment files and full disks, and its DuckDB file is complete
for other programs after a blocking run and after every CLI command."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import fluxnb
from fluxnb import RecordingFailed
from fluxnb.cli import EXIT_NOT_RECORDED, main
from fluxnb.store import Store

from .conftest import FLUXNB, cli_env

TWO = "pipeline:\n  - step: a\n  - step: b\n    depends_on: a\n"
NS = {"a": lambda: 1, "b": lambda a: a + 1}


def _unfolded_runs(store_path: str, n: int) -> list[str]:
    """``n`` runs whose rows wait in segments (``arun`` leaves them for the next access)."""
    return [asyncio.run(fluxnb.arun(TWO, NS, store=store_path)).run_id for _ in range(n)]


def _read_only(path: str, query: str) -> list:
    """``query`` on the file by a separate program: plain DuckDB, read-only."""
    code = textwrap.dedent(f"""
        import duckdb, json
        con = duckdb.connect({path!r}, read_only=True)
        print(json.dumps(con.execute({query!r}).fetchall(), default=str))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


# ---------------------------------------------------------------- corrupt segments


def test_corrupt_and_truncated_segments_are_set_aside_and_every_other_row_loads(
    store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = _unfolded_runs(store_path, 3)
    seg = Path(store_path + ".segments")
    truncated = next(f for f in sorted(seg.glob("*-events.arrow")) if _holds(f, ids[1]))
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])  # power lost before the data was on disk
    garbage = seg / "00000000000000000001-1-000000-runs.arrow"
    garbage.write_bytes(os.urandom(3000))
    st = Store(store_path)
    with pytest.warns(RuntimeWarning) as caught:
        events = st.sql("SELECT run_id, count(*) AS n FROM events GROUP BY 1")
    said = " ".join(str(w.message) for w in caught)
    assert str(truncated) in said and str(garbage) in said
    # the other runs' rows are all there; the truncated file's run lost only that file
    assert dict(zip(events["run_id"], events["n"], strict=True)) == {ids[0]: 2, ids[2]: 2}
    assert set(st.sql("SELECT run_id FROM runs")["run_id"]) == set(ids)
    assert not list(seg.glob("*.arrow"))  # nothing left to trip the next access
    aside = {q.original: q for q in st.check().quarantined}
    assert set(aside) == {str(truncated), str(garbage)}
    assert aside[str(truncated)].size == len(data) // 2 and aside[str(garbage)].size == 3000
    assert all(q.path.is_file() and q.reason for q in aside.values())

    for command in (["store", "check"], ["doctor"]):
        capsys.readouterr()
        assert main([*command, "--store", store_path]) == 1
        out = capsys.readouterr().out
        assert "NOT healthy" in out
        assert all(str(q.path) in out and q.reason[:20] in out for q in aside.values())
    assert main(["doctor", "--store", store_path, "--json"]) == 1
    found = json.loads(capsys.readouterr().out)
    assert found["healthy"] is False
    assert {q["original"] for q in found["quarantined"]} == {str(truncated), str(garbage)}
    for q in aside.values():  # looked at and deleted: healthy again
        q.path.unlink()
    assert main(["store", "check", "--store", store_path]) == 0


def _holds(segment: Path, run_id: str) -> bool:
    import pyarrow as pa

    with pa.memory_map(str(segment)) as src:
        return run_id in pa.ipc.open_file(src).read_all().column("run_id").to_pylist()


def test_a_segment_with_foreign_columns_is_set_aside(store_path: str) -> None:
    import pyarrow as pa

    (ok,) = _unfolded_runs(store_path, 1)
    seg = Path(store_path + ".segments")
    bad = seg / "00000000000000000002-1-000000-events.arrow"
    table = pa.table({"run_id": ["x"], "not_a_column": [1]})
    with pa.OSFile(str(bad), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    with pytest.warns(RuntimeWarning, match="not_a_column"):
        report = Store(store_path).flush()
    assert [q.original for q in report.quarantined] == [str(bad)]
    assert report.rows["events"] == 2
    assert _read_only(store_path, "SELECT run_id FROM events GROUP BY 1") == [[ok]]


# ---------------------------------------------------------------- full disk


@pytest.fixture
def disk_full(store_path: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """``os.write`` into the store's segments folder fails with ENOSPC while
    ``state["full"]`` is true; other files (pytest's own) are written as usual."""
    state = {"full": 1, "refused": 0}
    folder = str(Path(store_path + ".segments").absolute())
    real = os.write

    def write(fd: int, data: bytes) -> int:
        if state["full"] and os.readlink(f"/proc/self/fd/{fd}").startswith(folder):
            state["refused"] += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)
    return state


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see the fd's file")
def test_a_run_that_cannot_be_written_says_so(store_path: str, disk_full: dict) -> None:
    with pytest.warns(RuntimeWarning, match="No space left"):
        result = fluxnb.run(TWO, NS, store=store_path)
    assert disk_full["refused"] > 0
    err = result.recording_error
    assert isinstance(err, RecordingFailed) and isinstance(err, fluxnb.StoreError)
    assert err.errno == errno.ENOSPC and err.run_id == result.run_id and err.path == store_path
    assert err.lost >= 3  # two events and the runs rows were written nowhere
    assert "NOT RECORDED" in result.summary()
    assert not list(Path(store_path + ".segments").glob("*.tmp"))  # no half files left


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see the fd's file")
def test_rows_refused_during_a_run_are_written_when_space_returns(
    store_path: str, disk_full: dict
) -> None:
    def b(a: int) -> int:
        disk_full["full"] = 0  # space returns while the run goes on
        return a + 1

    with pytest.warns(RuntimeWarning, match="kept in memory"):
        result = fluxnb.run(TWO, {"a": NS["a"], "b": b}, store=store_path)
    assert disk_full["refused"] > 0  # the run's first row was refused...
    assert result.recording_error is None  # ...and written later, with everything else
    rows = _read_only(
        store_path, f"SELECT status, (SELECT count(*) FROM events) FROM runs "
        f"WHERE run_id = '{result.run_id}'"
    )  # fmt: skip
    assert rows == [["succeeded", 2]]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see the fd's file")
def test_cli_run_on_a_full_disk_exits_6_with_a_message(
    tmp_path: Path, store_path: str, disk_full: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "steps.py").write_text("def a():\n    return 1\ndef b(a):\n    return a + 1\n")
    (tmp_path / "m.yaml").write_text(TWO)
    args = ["run", str(tmp_path / "m.yaml"), "--import", str(tmp_path / "steps.py")]
    with pytest.warns(RuntimeWarning):
        code = main([*args, "--store", store_path, "--no-progress"])
    err = capsys.readouterr().err
    assert code == EXIT_NOT_RECORDED == 6
    assert "could not be recorded" in err and "No space left" in err
    assert "Traceback" not in err


FOLD_ON_A_FULL_DISK = """
import asyncio, json, os, resource, signal, sys, warnings
import fluxnb
from fluxnb.store import Store

path = sys.argv[1]
wf = fluxnb.Workflow("big")
for i in range(2000):
    wf.add(f"s{i}", lambda: "x" * 100)
st = Store(path)
asyncio.run(wf.arun(store=path))
st.flush()
before = asyncio.run(wf.arun(store=path)).run_id  # waits in segments
# the disk is full: no file of this process may grow past 20 kB (the segments are
# smaller; DuckDB's write-ahead log is not)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
out = {}
try:
    st.flush()
except fluxnb.RecordingFailed as exc:
    out["flush"] = {"pending": exc.pending, "reason": exc.reason}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    out["events_now"] = int(st.sql("SELECT count(*) AS n FROM events")["n"][0])
    small = fluxnb.run("pipeline:\\n  - step: a\\n", {"a": lambda: 1}, store=path)
out["warned"] = [str(w.message) for w in caught]
err = small.recording_error
out["run"] = {"id": small.run_id, "status": small.status.value,
              "error": None if err is None else {"pending": err.pending, "run_id": err.run_id}}
out["before"] = before
print(json.dumps(out))
"""


def test_a_fold_the_disk_refuses_keeps_the_segments_until_space_returns(
    tmp_path: Path, store_path: str
) -> None:
    """A real write failure inside DuckDB (a file-size limit, as a full disk would be)."""
    script = tmp_path / "full.py"
    script.write_text(FOLD_ON_A_FULL_DISK)
    proc = subprocess.run(
        [sys.executable, str(script), store_path],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["flush"]["pending"] >= 2 and "Could not write" in out["flush"]["reason"]
    assert out["events_now"] == 2000  # reads still work, on what the file holds
    assert any("fluxnb store flush" in w for w in out["warned"])
    assert out["run"]["status"] == "succeeded"
    assert out["run"]["error"]["run_id"] == out["run"]["id"]
    assert out["run"]["error"]["pending"] >= out["flush"]["pending"]
    # space returns: the kept segments load, every row appears
    report = Store(store_path).flush()
    assert report.loaded >= out["run"]["error"]["pending"]
    counts = dict(_read_only(store_path, "SELECT run_id, count(*) FROM events GROUP BY 1"))
    assert counts[out["before"]] == 2000 and counts[out["run"]["id"]] == 1
    assert not list(Path(store_path + ".segments").glob("*.arrow"))


# ---------------------------------------------------------------- complete file


def test_the_file_is_complete_for_other_programs_after_run_returns(store_path: str) -> None:
    result = fluxnb.run(TWO, NS, store=store_path)
    rows = _read_only(
        store_path,
        f"SELECT status, (SELECT count(*) FROM events WHERE run_id = '{result.run_id}') "
        f"FROM runs WHERE run_id = '{result.run_id}'",
    )
    assert rows == [["succeeded", 2]]


def test_the_file_is_complete_after_a_cli_run_and_store_flush_says_what_it_did(
    tmp_path: Path, store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "steps.py").write_text("def a():\n    return 1\ndef b(a):\n    return a + 1\n")
    (tmp_path / "m.yaml").write_text(TWO)
    code = main(
        [
            "run",
            str(tmp_path / "m.yaml"),
            "--import",
            str(tmp_path / "steps.py"),
            "--store",
            store_path,
            "--json",
        ]
    )
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    assert code == 0
    query = f"SELECT count(*) FROM events WHERE run_id = '{run_id}'"
    assert _read_only(store_path, query) == [[2]]
    _unfolded_runs(store_path, 2)  # arun leaves its rows for the next access...
    assert _read_only(store_path, "SELECT count(*) FROM runs") == [[1]]
    assert main(["store", "flush", "--store", store_path]) == 0  # ...or a flush
    said = capsys.readouterr().out
    assert "loaded" in said and "4 events" in said
    assert _read_only(store_path, "SELECT count(*) FROM runs") == [[3]]
    assert main(["store", "flush", "--store", store_path]) == 0
    assert "loaded 0 segments" in capsys.readouterr().out


def test_sigint_of_a_cli_run_leaves_the_file_saying_cancelled(tmp_path: Path) -> None:
    steps = tmp_path / "steps.py"
    steps.write_text("import asyncio\ndef a():\n    return 1\nasync def slow(a):\n"
                     "    await asyncio.sleep(30)\n")  # fmt: skip
    m = tmp_path / "slow.yaml"
    m.write_text("pipeline:\n  - step: a\n  - step: slow\n    depends_on: a\n")
    store = str(tmp_path / "s.duckdb")
    proc = subprocess.Popen(
        [*FLUXNB, "run", str(m), "--import", str(steps), "--store", store],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    segs = Path(store + ".segments")
    deadline = time.monotonic() + 30
    while not list(segs.glob("*-runs.arrow")) and time.monotonic() < deadline:
        time.sleep(0.05)  # the run has started once its first row is on disk
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert _read_only(store, "SELECT status FROM runs") == [["cancelled"]]
    assert _read_only(store, "SELECT step, status FROM events ORDER BY seq") == [
        ["a", "succeeded"],
        ["slow", "cancelled"],
    ]

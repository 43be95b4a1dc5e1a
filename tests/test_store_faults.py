"""Faults of the store and of trace import found by an adversarial trial: segments that
read as Arrow but whose rows the tables refuse, folders named like segments, hostile
trace values, a full disk, an import under another tenant."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import fluxnb
from fluxnb.cli import main
from fluxnb.store import Store

from .conftest import FLUXNB, cli_env

TWO = "pipeline:\n  - step: a\n  - step: b\n    depends_on: a\n"
NS = {"a": lambda: 1, "b": lambda a: a + 1}


def _write_arrow(path: Path, table: Any) -> None:
    import pyarrow as pa

    path.parent.mkdir(parents=True, exist_ok=True)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)


def _usage(**over: Any) -> dict[str, list[Any]]:
    import pyarrow as pa

    cols: dict[str, Any] = {
        "event_id": ["e1"],
        "tenant": ["t"],
        "namespace": ["n"],
        "unit": ["u"],
        "quantity": ["1"],
        "occurred_at": pa.array([0], pa.timestamp("us")),
        "source": ["custom"],
        "recorded_at": pa.array([0], pa.timestamp("us")),
    }
    cols.update(over)
    return {k: v for k, v in cols.items() if v is not None}


# what each table refuses, and the words DuckDB uses for it
REFUSED = {
    "usage-without-occurred_at": ("usage", _usage(occurred_at=None), "usage.occurred_at"),
    "usage-quantity-abc": ("usage", _usage(quantity=["abc"]), "abc"),
    "usage-quantity-1e40": ("usage", _usage(quantity=["1e40"]), "1e40"),
    "events-without-run_id": ("events", {"seq": [1], "step": ["a"]}, "events.run_id"),
    "runs-without-status": (
        "runs",
        {"run_id": ["r9"], "workflow": ["w"], "started_at": [0]},
        "runs.status",
    ),
    "runs-without-workflow": ("runs", {"run_id": ["r9"], "status": ["failed"]}, "runs.workflow"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_segment_whose_rows_a_table_refuses_is_set_aside_and_the_rest_loads(
    case: str, store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow as pa

    table, columns, words = REFUSED[case]
    if "started_at" in columns:
        columns = {**columns, "started_at": pa.array(columns["started_at"], pa.timestamp("us"))}
    ids = [asyncio.run(fluxnb.arun(TWO, NS, store=store_path)).run_id for _ in range(2)]
    seg = Path(store_path + ".segments")
    bad = seg / f"99999999999999999998-1-000003-{table}.arrow"
    _write_arrow(bad, pa.table(columns))
    with pytest.warns(RuntimeWarning, match="cannot be loaded"):
        assert main(["runs", "--store", store_path, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert {r["run_id"] for r in shown} == set(ids)  # every good row loaded
    st = Store(store_path)
    assert len(st.sql("SELECT * FROM events")) == 4
    assert not list(seg.glob("*.arrow"))
    (aside,) = st.check().quarantined
    assert aside.original == str(bad) and words in aside.reason  # DuckDB's words
    for command in (["sql", "SELECT count(*) AS n FROM runs"], ["runs"]):
        assert main([*command, "--store", store_path]) == 0
    assert main(["store", "check", "--store", store_path]) == 1
    assert words in capsys.readouterr().out


def test_one_refused_segment_among_many_keeps_the_rows_of_all_the_others(
    store_path: str,
) -> None:
    import pyarrow as pa

    ids = [asyncio.run(fluxnb.arun(TWO, NS, store=store_path)).run_id for _ in range(3)]
    seg = Path(store_path + ".segments")
    # the bad one sorts in the middle of the good ones
    names = sorted(seg.glob("*.arrow"))
    middle = names[len(names) // 2].name.split("-", 1)[0]
    bad = seg / f"{middle}-1-999999-usage.arrow"
    _write_arrow(bad, pa.table(_usage(quantity=["abc"])))
    with pytest.warns(RuntimeWarning, match="abc"):
        report = Store(store_path).flush()
    assert [q.original for q in report.quarantined] == [str(bad)]
    assert report.loaded == len(names) and report.rows["events"] == 6
    st = Store(store_path)
    runs = st.sql("SELECT run_id, status FROM runs")
    assert dict(zip(runs["run_id"], runs["status"], strict=True)) == dict.fromkeys(ids, "succeeded")
    assert len(st.sql("SELECT * FROM events")) == 6  # nothing loaded twice


def test_a_folder_named_like_a_segment_is_set_aside_once(
    store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (rid,) = [asyncio.run(fluxnb.arun(TWO, NS, store=store_path)).run_id]
    folder = Path(store_path + ".segments") / "99999999999999999998-1-000007-runs.arrow"
    folder.mkdir()
    (folder / "inside").write_text("x")
    with pytest.warns(RuntimeWarning, match="folder") as caught:
        assert main(["runs", "--store", store_path]) == 0
    assert not any("waits for the next load" in str(w.message) for w in caught)
    assert rid in capsys.readouterr().out
    assert not folder.exists()
    (aside,) = Store(store_path).check().quarantined
    assert aside.original == str(folder) and "folder" in aside.reason and aside.path.is_dir()
    # nothing is said again: it is out of the way
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["runs", "--store", store_path]) == 0


def test_the_cli_prints_a_set_aside_segment_as_one_line(tmp_path: Path, store_path: str) -> None:
    asyncio.run(fluxnb.arun(TWO, NS, store=store_path))
    folder = Path(store_path + ".segments") / "99999999999999999998-1-000007-runs.arrow"
    folder.mkdir()
    proc = subprocess.run(
        [*FLUXNB, "runs", "--store", store_path],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("fluxnb: warning: the segment ") and str(folder) in lines[0]
    assert ".py:" not in proc.stderr and "quarantine(" not in proc.stderr


# ---------------------------------------------------------------- a full disk


@pytest.fixture
def full_writes(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``os.write`` to a file under ``state["under"]`` fails with ENOSPC while
    ``state["full"]``; other files (pytest's own) are written as usual."""
    import errno
    import os

    state: dict[str, Any] = {"full": False, "under": "/nowhere", "refused": 0}
    real = os.write

    def write(fd: int, data: Any) -> int:
        if state["full"] and os.readlink(f"/proc/self/fd/{fd}").startswith(state["under"]):
            state["refused"] += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)
    return state


needs_proc = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="needs /proc to see the fd's file"
)


@needs_proc
def test_a_lease_holds_when_the_disk_cannot_take_its_holder_note(
    store_path: str, full_writes: dict[str, Any]
) -> None:
    from fluxnb.store._leases import RunBusy, RunLease

    st = Store(store_path)
    full_writes.update(full=True, under=store_path + ".locks")
    with RunLease(st, "r1"):
        assert full_writes["refused"] == 1
        with pytest.raises(RunBusy, match="another resume"):
            RunLease(st, "r1")
    RunLease(st, "r1").release()  # given back


@needs_proc
def test_a_cli_run_whose_end_the_disk_refuses_says_so_once_and_honestly(
    tmp_path: Path, store_path: str, full_writes: dict[str, Any], capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "full_steps.py").write_text(
        "import fluxnb_disk\n"
        "def a():\n    return 1\n"
        "def b(a):\n    fluxnb_disk.state['full'] = True\n    return a + 1\n"
        "def c(b):\n    return b + 1\n"
    )
    (tmp_path / "m.yaml").write_text(TWO + "  - step: c\n    depends_on: b\n")
    full_writes["under"] = store_path + ".segments"
    sys.modules["fluxnb_disk"] = type(sys)("fluxnb_disk")
    sys.modules["fluxnb_disk"].state = full_writes  # type: ignore[attr-defined]
    try:
        args = ["run", str(tmp_path / "m.yaml"), "--import", str(tmp_path / "full_steps.py")]
        with pytest.warns(RuntimeWarning, match="No space left"):
            code = main([*args, "--store", store_path, "--no-progress"])
    finally:
        del sys.modules["fluxnb_disk"]
    out, err = capsys.readouterr()
    assert code == 6
    assert "NOT RECORDED" in out and "interrupted" in out  # what the store will show
    assert "trace: fluxnb sql" not in out  # no hint at rows that are not there
    assert "the run is recorded" not in err and "Traceback" not in err


IMPORT_ON_A_FULL_DISK = """
import resource, signal, sys
from fluxnb.cli import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
sys.exit(main(["import", sys.argv[1], "--store", sys.argv[2]]))
"""


def test_an_import_the_disk_refuses_is_one_message_and_imports_nothing(
    tmp_path: Path, store_path: str
) -> None:
    """A real write failure inside DuckDB (a file-size limit, as a full disk would be)."""
    run = fluxnb.run(TWO, NS, store=str(tmp_path / "other.duckdb"))
    trace = fluxnb.export_trace(
        run.run_id, tmp_path / "t.json", store=str(tmp_path / "other.duckdb")
    )
    fluxnb.sql("SELECT 1", store=store_path)  # the store exists, its file is whole
    script = tmp_path / "imp.py"
    script.write_text(IMPORT_ON_A_FULL_DISK)
    proc = subprocess.run(
        [sys.executable, str(script), str(trace), store_path],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
    )
    assert proc.returncode == 6, proc.stderr
    assert "Traceback" not in proc.stderr and "cannot rollback" not in proc.stderr
    assert f"cannot import {trace}" in proc.stderr and "Nothing was imported" in proc.stderr
    assert not fluxnb.store(store_path).has_run(run.run_id)
    assert main(["import", str(trace), "--store", store_path]) == 0  # space is back

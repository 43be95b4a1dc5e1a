"""The fluxnb command, run as a user runs it: a subprocess."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import duckdb

from .conftest import FLUXNB, SAMPLES, cli_env

STEPS = """
import asyncio
def a():
    return 1
def b(a):
    return a + 1
def boom(a):
    raise RuntimeError("kaput")
async def slow(a):
    await asyncio.sleep(30)
def after(slow):
    return slow
"""


def fluxnb_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FLUXNB, *args], capture_output=True, text=True, env=cli_env(), cwd=cwd, timeout=120
    )


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_validate_ok_and_invalid(tmp_path: Path) -> None:
    for sample in SAMPLES:
        r = fluxnb_cli("validate", str(sample))
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("ok:")
    bad = write(tmp_path, "bad.yaml", "pipeline:\n  - step: a\n    depends_on: [zz]\n")
    r = fluxnb_cli("validate", bad)
    assert r.returncode == 2
    assert f"{bad}:3:" in r.stderr and "Traceback" not in r.stderr
    r = fluxnb_cli("validate", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and "no such manifest file" in r.stderr


def test_validate_resolve_checks_callables(tmp_path: Path) -> None:
    m = write(tmp_path, "m.yaml", "pipeline:\n  - step: a\n  - step: c\n")
    steps = write(tmp_path, "steps.py", STEPS)
    r = fluxnb_cli("validate", m, "--import", steps)
    assert r.returncode == 2 and "no callable named 'c'" in r.stderr


def test_run_succeeds_prints_summary_and_records(tmp_path: Path) -> None:
    m = write(tmp_path, "m.yaml", "pipeline:\n  - step: a\n  - step: b\n    depends_on: a\n")
    steps = write(tmp_path, "steps.py", STEPS)
    store = str(tmp_path / "s.duckdb")
    r = fluxnb_cli("run", m, "--import", steps, "--store", store)
    assert r.returncode == 0, r.stderr
    assert "succeeded" in r.stdout and "step" in r.stdout
    # the file is complete for other tools right after the run
    con = duckdb.connect(store, read_only=True)
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == 2
    con.close()
    r = fluxnb_cli("run", m, "--import", steps, "--store", store, "--json")
    data = json.loads(r.stdout)
    assert data["status"] == "succeeded" and data["outputs"] == {"a": 1, "b": 2}
    assert [s["step"] for s in data["steps"]] == ["a", "b"]
    r = fluxnb_cli("runs", "--store", store)
    assert r.returncode == 0 and r.stdout.count("succeeded") == 2
    r = fluxnb_cli("sql", "SELECT step, status FROM events ORDER BY step", "--store", store)
    assert r.returncode == 0 and "a" in r.stdout and "succeeded" in r.stdout


def test_run_failure_exits_1_and_invalid_exits_2(tmp_path: Path) -> None:
    steps = write(tmp_path, "steps.py", STEPS)
    m = write(tmp_path, "f.yaml", "pipeline:\n  - step: a\n  - step: boom\n    depends_on: a\n")
    r = fluxnb_cli("run", m, "--import", steps, "--no-store")
    assert r.returncode == 1
    assert "RuntimeError: kaput" in r.stdout
    assert "kaput" in r.stderr  # the step's own traceback
    m2 = write(tmp_path, "i.yaml", "pipeline:\n  - step: nothing_here\n")
    r = fluxnb_cli("run", m2, "--import", steps, "--no-store")
    assert r.returncode == 2 and "no callable named 'nothing_here'" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_sql_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    r = fluxnb_cli("sql", "SELEC 1", "--store", str(tmp_path / "s.duckdb"))
    assert r.returncode == 2
    assert r.stderr.startswith("fluxnb: error: SQL error") and "Traceback" not in r.stderr


def test_no_command_prints_help() -> None:
    r = fluxnb_cli()
    assert r.returncode == 2 and "validate" in r.stderr


def test_sigint_cancels_the_run_and_keeps_every_row(tmp_path: Path) -> None:
    steps = write(tmp_path, "steps.py", STEPS)
    m = write(
        tmp_path,
        "slow.yaml",
        "pipeline:\n  - step: a\n  - step: slow\n    depends_on: a\n  - step: after\n    depends_on: slow\n",
    )
    store = str(tmp_path / "s.duckdb")
    proc = subprocess.Popen(
        [*FLUXNB, "run", m, "--import", steps, "--store", store],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    segs = Path(store + ".segments")
    deadline = time.monotonic() + 30
    while (
        not list(segs.glob("*-runs.arrow")) and proc.poll() is None and time.monotonic() < deadline
    ):
        time.sleep(0.05)  # the run has started once its first row is on disk
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "cancelled" in err
    r = fluxnb_cli("sql", "SELECT status FROM runs", "--store", store, "--json")
    assert json.loads(r.stdout) == [{"status": "cancelled"}]
    r = fluxnb_cli(
        "sql", "SELECT step, status FROM events ORDER BY seq", "--store", store, "--json"
    )
    assert json.loads(r.stdout) == [
        {"step": "a", "status": "succeeded"},
        {"step": "slow", "status": "cancelled"},
        {"step": "after", "status": "cancelled"},
    ]


def test_progress_line_on_request(tmp_path: Path) -> None:
    m = write(tmp_path, "m.yaml", "pipeline:\n  - step: a\n  - step: b\n    depends_on: a\n")
    steps = write(tmp_path, "steps.py", STEPS)
    r = fluxnb_cli("run", m, "--import", steps, "--no-store", "--progress")
    assert r.returncode == 0
    assert "[2/2] 2 succeeded" in r.stderr
    r = fluxnb_cli("run", m, "--import", steps, "--no-store")
    assert "[2/2]" not in r.stderr  # not a terminal: no progress line by default


def test_broken_import_is_a_message(tmp_path: Path) -> None:
    m = write(tmp_path, "m.yaml", "pipeline:\n  - step: a\n")
    broken = write(tmp_path, "broken.py", "def a(:\n    pass\n")
    r = fluxnb_cli("run", m, "--import", broken, "--no-store")
    assert r.returncode == 2
    assert "SyntaxError" in r.stderr and "line 1" in r.stderr and "Traceback" not in r.stderr
    raising = write(tmp_path, "raising.py", "raise RuntimeError('no config')\n")
    r = fluxnb_cli("run", m, "--import", raising, "--no-store")
    assert r.returncode == 2 and "RuntimeError: no config" in r.stderr


def test_a_stuck_sync_step_does_not_keep_the_cli_alive(tmp_path: Path) -> None:
    m = write(
        tmp_path,
        "m.yaml",
        "agents:\n  - id: stuck\n    timeout: 200ms\npipeline:\n  - step: stuck\n",
    )
    steps = write(tmp_path, "stuck.py", "import time\ndef stuck():\n    time.sleep(60)\n")
    start = time.monotonic()
    r = fluxnb_cli("run", m, "--import", steps, "--store", str(tmp_path / "s.duckdb"))
    assert time.monotonic() - start < 20
    assert r.returncode == 1 and "TimeoutError" in r.stdout
    r = fluxnb_cli("sql", "SELECT error_type FROM events", "--store", str(tmp_path / "s.duckdb"))
    assert "TimeoutError" in r.stdout

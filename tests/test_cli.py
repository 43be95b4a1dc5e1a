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


KILL_STEPS = """
import time
def make(i):
    def step(**_):
        time.sleep(0.15)
        with open(LOG, "a") as fh:
            fh.write(f"s{i}\\n")
        return i
    return step
for _i in range(12):
    globals()[f"s{_i}"] = make(_i)
"""


def test_resume_after_kill_9(tmp_path: Path) -> None:
    import os

    log = tmp_path / "calls.log"
    steps = write(tmp_path, "chain.py", f"LOG = {str(log)!r}\n" + KILL_STEPS)
    lines = ["pipeline:"] + [
        f"  - step: s{i}" + (f"\n    depends_on: s{i - 1}" if i else "") for i in range(12)
    ]
    m = write(tmp_path, "chain.yaml", "\n".join(lines) + "\n")
    store = str(tmp_path / "s.duckdb")
    env = {**cli_env(), "FLUXNB_FLUSH_SECONDS": "0.1"}
    proc = subprocess.Popen(
        [*FLUXNB, "run", m, "--import", steps, "--store", store],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not log.exists() or len(log.read_text().split()) < 5):
        time.sleep(0.02)
    time.sleep(0.15)  # let a periodic flush land
    from fluxnb.store import Store

    assert Store(store).mark_interrupted() == []  # its process is there: not taken for dead
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    before = log.read_text().split()
    assert 5 <= len(before) < 12
    r = fluxnb_cli("runs", "--store", store, "--json")
    [run] = json.loads(r.stdout)
    # the process died without a word; the store sees its pid gone and says so
    assert run["status"] == "interrupted"
    assert f"process {proc.pid}" in run["error"] and "fluxnb resume" in run["error"]
    recorded = json.loads(
        fluxnb_cli(
            "sql", "SELECT step FROM events WHERE status = 'succeeded'", "--store", store, "--json"
        ).stdout
    )
    assert len(recorded) >= 4
    r = fluxnb_cli("resume", run["run_id"], "--import", steps, "--store", store)
    assert r.returncode == 0, r.stderr
    after = log.read_text().split()
    rerun = after[len(before) :]
    # steps recorded as done were not called again; the rest ran once each
    assert not set(rerun) & {e["step"] for e in recorded}
    assert sorted(set(after), key=lambda s: int(s[1:])) == [f"s{i}" for i in range(12)]
    final = json.loads(
        fluxnb_cli("sql", "SELECT status, resumed FROM runs", "--store", store, "--json").stdout
    )
    assert final == [{"status": "succeeded", "resumed": 1}]
    n = json.loads(
        fluxnb_cli(
            "sql",
            "SELECT count(DISTINCT step) AS n FROM events WHERE status = 'succeeded' AND final",
            "--store",
            store,
            "--json",
        ).stdout
    )
    assert n == [{"n": 12}]


def test_replay_diff_export_import_commands(tmp_path: Path) -> None:
    steps = write(tmp_path, "steps.py", STEPS)
    m = write(tmp_path, "m.yaml", "pipeline:\n  - step: a\n  - step: b\n    depends_on: a\n")
    store = str(tmp_path / "s.duckdb")
    first = json.loads(fluxnb_cli("run", m, "--import", steps, "--store", store, "--json").stdout)
    rid = first["run_id"]
    r = fluxnb_cli("replay", rid, "--import", steps, "--store", store)
    assert r.returncode == 0 and "identical" in r.stdout
    changed = write(tmp_path, "changed.py", STEPS.replace("return a + 1", "return a + 2"))
    r = fluxnb_cli("replay", rid, "--import", changed, "--store", store)
    assert r.returncode == 1 and "DIVERGED" in r.stdout and "'b'" in r.stdout
    second = json.loads(
        fluxnb_cli("run", m, "--import", changed, "--store", store, "--json").stdout
    )
    r = fluxnb_cli("diff", rid, second["run_id"], "--store", store)
    assert r.returncode == 1 and "1 of 2 steps differ" in r.stdout
    out = str(tmp_path / "t.parquet")
    r = fluxnb_cli("export", rid, "--format", "parquet", "-o", out, "--store", store)
    assert r.returncode == 0 and Path(out).is_file()
    r = fluxnb_cli("import", out, "--store", str(tmp_path / "other.duckdb"))
    assert r.returncode == 0 and rid in r.stdout
    r = fluxnb_cli("replay", "no-such-run", "--store", store)
    assert r.returncode == 2 and "no run 'no-such-run'" in r.stderr

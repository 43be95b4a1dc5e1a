"""The Dask executor against a real distributed.LocalCluster with worker processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import fluxnb
from fluxnb import ResolutionError, RunStatus
from fluxnb.testing import MemoryRecorder

from .conftest import cli_env

pytest.importorskip("distributed", reason="install fluxnb[dask] to test the Dask executor")

DIAMOND = """
pipeline:
  - step: a
  - step: b
    depends_on: a
  - step: c
    depends_on: a
  - step: d
    depends_on: [b, c]
"""


def steps() -> dict[str, Any]:
    def a() -> list[int]:
        return list(range(10))

    def b(a: list[int]) -> int:
        return sum(x * x for x in a)

    async def c(a: list[int]) -> dict[str, Any]:
        await asyncio.sleep(0.01)
        return {"n": len(a), "pid": os.getpid()}

    def d(b: int, c: dict[str, Any]) -> tuple[int, int]:
        return b, c["n"]

    return {"a": a, "b": b, "c": c, "d": d}


def test_same_results_as_local_and_trace_says_where() -> None:
    local = fluxnb.run(DIAMOND, steps(), store=None)
    rec = MemoryRecorder()
    remote = fluxnb.run(DIAMOND, steps(), store=rec, executor="dask")
    assert remote.ok, remote.summary()
    assert remote["d"] == local["d"] == (285, 10)
    assert remote["c"]["pid"] != os.getpid()  # it really ran in a worker process
    rows = rec.rows()
    assert {r["executor"] for r in rows} == {"dask"}
    assert all(str(r["worker"]).startswith("tcp://") for r in rows)


def test_agents_choose_their_executor() -> None:
    text = DIAMOND.replace("pipeline:", "agents:\n  - id: a\n    executor: local\npipeline:")
    rec = MemoryRecorder()
    r = fluxnb.run(text, steps(), store=rec, executor="dask")
    assert r.ok
    where = {row["step"]: row["executor"] for row in rec.rows()}
    assert where == {"a": "local", "b": "dask", "c": "dask", "d": "dask"}


def test_notebook_style_functions_from_main_travel_by_value(tmp_path: Path) -> None:
    script = tmp_path / "nb.py"
    script.write_text(
        "import fluxnb\n"
        "def make():\n    return [3, 1, 2]\n"
        "def order(make):\n    return sorted(make)\n"
        "if __name__ == '__main__':\n"
        "    text = 'pipeline:\\n  - step: make\\n  - step: order\\n    depends_on: make\\n'\n"
        "    r = fluxnb.run(text, globals(), store=None, executor='dask')\n"
        "    print(r.status.value, r['order'])\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=cli_env(), timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "succeeded [1, 2, 3]"


def test_unserialisable_callable_fails_before_the_run() -> None:
    lock = threading.Lock()

    def guarded() -> int:
        with lock:
            return 1

    with pytest.raises(ResolutionError) as info:
        fluxnb.run(
            "pipeline:\n  - step: guarded\n", {"guarded": guarded}, store=None, executor="dask"
        )
    assert info.value.kind == "not_serialisable"
    assert "guarded" in str(info.value) and "lock" in str(info.value).lower()
    # the same step runs fine locally
    assert fluxnb.run("pipeline:\n  - step: guarded\n", {"guarded": guarded}, store=None).ok


def test_a_killed_worker_is_a_recorded_retryable_failure(tmp_path: Path) -> None:
    marker = str(tmp_path / "died-once")

    def fragile() -> str:
        import os
        import signal

        if not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)  # the worker process dies mid-step
        return "survived"

    rec = MemoryRecorder()
    text = (
        "agents:\n  - id: fragile\n    retry: {max_attempts: 3, backoff: linear, "
        "initial_delay: 500ms}\npipeline:\n  - step: fragile\n"
    )
    r = fluxnb.run(text, {"fragile": fragile}, store=rec, executor="dask")
    assert r.ok and r["fragile"] == "survived"
    rows = rec.rows()
    assert rows[0]["status"] == "failed" and rows[0]["error_type"] == "KilledWorker"
    assert rows[-1]["status"] == "succeeded" and len(rows) >= 2


def test_timeout_cancels_the_dask_future(tmp_path: Path) -> None:
    def hang() -> None:
        import time

        time.sleep(30)

    text = "agents:\n  - id: hang\n    timeout: 500ms\npipeline:\n  - step: hang\n"
    start = time.monotonic()
    r = fluxnb.run(text, {"hang": hang}, store=None, executor="dask")
    assert time.monotonic() - start < 15
    assert r.errors["hang"].type == "TimeoutError"


def test_cancel_cancels_remote_steps(store_path: str) -> None:
    def slow(a: int) -> int:
        import time

        time.sleep(30)
        return a

    handle = fluxnb.start(
        "pipeline:\n  - step: a\n  - step: slow\n    depends_on: a\n",
        {"a": lambda: 1, "slow": slow},
        store=store_path,
        executor="dask",
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and handle.status is RunStatus.RUNNING:
        rows = (
            fluxnb.store(store_path).sql("SELECT count(*) AS n FROM events")["n"][0]
            if Path(store_path + ".segments").exists()
            else 0
        )
        if rows:
            break
        time.sleep(0.1)
    time.sleep(0.5)
    handle.cancel()
    result = handle.result(timeout=30)
    assert result.status is RunStatus.CANCELLED
    ev = fluxnb.traces(result.run_id, store=store_path)
    assert dict(zip(ev["step"], ev["status"], strict=True)) == {
        "a": "succeeded",
        "slow": "cancelled",
    }


def test_interrupt_of_a_cli_run_on_dask(tmp_path: Path) -> None:
    steps_py = tmp_path / "s.py"
    steps_py.write_text("import time\ndef a():\n    return 1\ndef slow(a):\n    time.sleep(60)\n")
    m = tmp_path / "m.yaml"
    m.write_text("pipeline:\n  - step: a\n  - step: slow\n    depends_on: a\n")
    store = str(tmp_path / "s.duckdb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fluxnb",
            "run",
            str(m),
            "--import",
            str(steps_py),
            "--store",
            store,
            "--executor",
            "dask",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    seg = Path(store + ".segments")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(seg.glob("*-events.arrow")):
        time.sleep(0.1)  # 'a' finished on a worker (flushed by the 2 s timer at the latest)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    ev = fluxnb.traces(store=store)
    assert dict(zip(ev["step"], ev["status"], strict=True)) == {
        "a": "succeeded",
        "slow": "cancelled",
    }


def test_cpu_benchmark_runs_and_agrees() -> None:
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "dask_cpu.py"), "--quick", "--repeat", "1"],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "ratio dask/local" in out.stdout


def test_the_on_demand_cluster_never_fights_for_port_8787(tmp_path: Path) -> None:
    """Another cluster (or anything) on 8787: no 'Port 8787 is already in use' warning, and
    the scheduler's pages listen on loopback only."""
    import socket

    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 8787))
        holder.listen()
    except OSError:
        pass  # something else holds it already: just as good for this test
    try:
        (tmp_path / "dash_steps.py").write_text("def a():\n    return 1\n")
        (tmp_path / "m.yaml").write_text("pipeline: [{step: a}]\n")
        code = (
            "import sys, warnings\nwarnings.simplefilter('always')\n"
            "from fluxnb.cli import main\n"
            "from fluxnb.engine._dask import shared_cluster\n"
            "rc = main(['run', 'm.yaml', '--import', 'dash_steps', '--executor', 'dask', "
            "'--store', 's.duckdb'])\n"
            "print('LINK', shared_cluster().dashboard_link)\nsys.exit(rc)\n"
        )
        env = {**cli_env(), "PYTHONPATH": f"{tmp_path}{os.pathsep}{cli_env()['PYTHONPATH']}"}
        p = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
        assert p.returncode == 0, p.stderr
        assert "8787" not in p.stderr, p.stderr
        assert "LINK http://127.0.0.1:" in p.stdout
    finally:
        holder.close()

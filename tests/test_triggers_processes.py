"""Triggers across processes: two services on one store fire each key once, and a service
killed mid-firing neither loses nor doubles it (issue #18)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

import fluxnb
from fluxnb.triggers import firings, trigger

from .conftest import ROOT, cli_env

PER_SECOND = """
name: tick
pipeline:
  - step: beat
agents:
  - id: beat
    run: tests.trigger_worker:noop
"""
LINGER = """
name: lingering
pipeline:
  - step: wait
agents:
  - id: wait
    run: tests.trigger_worker:linger
"""


def worker(store: str, seconds: float, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.trigger_worker", store, str(seconds)],
        cwd=ROOT,
        env={**cli_env(), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_two_processes_on_one_store_fire_every_second_exactly_once(store_path: str) -> None:
    trigger(PER_SECOND, "every-second", schedule="* * * * * *", store=store_path)
    seconds = float(os.environ.get("FLUXNB_TRIGGER_SOAK", "8"))  # 60: the minute
    procs = [worker(store_path, seconds), worker(store_path, seconds)]
    for p in procs:
        _, err = p.communicate(timeout=seconds + 60)
        assert p.returncode == 0, err
    rows = firings("every-second", store=store_path).to_dict("records")
    owned = [r for r in rows if r["outcome"] != "duplicate"]
    counts = Counter(r["key"] for r in owned)
    assert counts and max(counts.values()) == 1  # no key fired twice
    times = sorted(r["scheduled_for"] for r in owned)
    assert len(times) >= 5
    # no second missing between the first and the last fired
    assert all(b - a == timedelta(seconds=1) for a, b in itertools.pairwise(times))
    assert {r["outcome"] for r in owned} == {"succeeded"}
    pids = {r["pid"] for r in owned}
    with fluxnb.store(store_path).connect() as con:
        runs = con.execute(
            "SELECT count(*), count(DISTINCT run_id) FROM runs WHERE workflow = 'tick' "
            "AND status = 'succeeded'"
        ).fetchall()[0]
    assert runs == (len(owned), len(owned))  # one run per key, each its own
    print(
        f"{len(owned)} keys, each once; firing processes {len(pids)}; "
        f"duplicates refused {len(rows) - len(owned)}"
    )


@pytest.mark.slow
def test_a_service_killed_mid_firing_is_finished_by_the_next_never_doubled(
    store_path: str, tmp_path: Path
) -> None:
    env = {"TRIGGER_TEST_DIR": str(tmp_path)}
    trigger(LINGER, "once", event="go", store=store_path)
    fluxnb.triggers.emit("go", {"n": 1}, store=store_path)
    first = worker(store_path, 60, env)
    mark = tmp_path / "started"
    deadline = time.monotonic() + 20
    while not mark.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mark.exists(), first.stderr.read() if first.poll() is not None else "no start"
    [row] = firings("once", store=store_path).to_dict("records")
    assert row["outcome"] == "started"  # recorded before the run, which is now going
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)

    second = worker(store_path, 5, env)
    _, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    rows = firings("once", store=store_path).to_dict("records")
    assert [(r["key"], r["outcome"], r["run_id"]) for r in rows] == [
        (row["key"], "succeeded", row["run_id"])
    ]
    assert len(mark.read_text().split()) == 2  # the step ran once more, in its resumed run
    with fluxnb.store(store_path).connect() as con:
        runs = con.execute(
            "SELECT run_id, status FROM runs WHERE workflow = 'lingering'"
        ).fetchall()
    assert runs == [(row["run_id"], "succeeded")]

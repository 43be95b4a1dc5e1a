"""The benchmarks compute the right thing at small sizes (their timings are not tested)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, cli_env

sys.path.insert(0, str(ROOT / "benchmarks"))

from floor import run_floor
from workloads import chain, independent, layered, noop, to_workflow, wide


async def count_parents(**parents: int) -> int:
    return 1 + sum(parents.values())


@pytest.mark.parametrize(
    "dag", [wide(50), chain(30), layered(200, layers=10), independent(20)], ids=str
)
def test_floor_and_fluxnb_agree(dag: dict) -> None:
    floor = asyncio.run(run_floor(dag, count_parents))
    result = to_workflow("w", dag, count_parents).run(store=None)
    assert result.ok
    assert result.outputs == floor
    assert len(result.outputs) == len(dag)


def test_layered_dag_shape() -> None:
    dag = layered(1000, layers=10)
    assert len(dag) == 1000
    assert all(1 <= len(p) <= 3 for n, p in dag.items() if not n.startswith("l0_"))


def test_runner_quick_prints_the_table() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--repeat", "1"],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    for label in ("W1 wide", "W2 chain", "W3 layered", "W4 200", "import fluxnb"):
        assert label in out.stdout
    _ = noop


def test_petri_benchmark_runs_without_the_peers_installed() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "petri.py"), "--sizes", "3", "5"],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(line.split()[:2] == ["5", "82"] for line in lines)  # 5 philosophers: 82 markings
    assert "DISAGREE" not in out.stdout


def test_token_game_benchmark_runs_and_the_compiled_game_beats_the_general_engine() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "token_game.py"), "--firings", "200000"],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    rows = {
        line[:26].strip(): line[26:].split()
        for line in out.stdout.splitlines()
        if line.startswith("fluxnb")
    }
    compiled = float(rows["fluxnb (compiled)"][0].replace(",", ""))
    general = float(rows["fluxnb (general engine)"][0].replace(",", ""))
    # a ratio measured in one process: the compiled game must be far ahead of the
    # general engine it replaces for black-token nets (about 60x on the dev machine)
    assert compiled > 10 * general


def test_billing_benchmark_invoices_its_synthetic_usage_exactly(tmp_path) -> None:
    from decimal import Decimal

    import billing

    events = 3000
    _, _, total = billing.invoicing(tmp_path, events, repeat=1)
    sums = {"invocations": Decimal(0), "compute_seconds": Decimal(0), "llm_tokens": Decimal(0)}
    for i in range(events):
        unit = ["invocations", "compute_seconds", "llm_tokens"][i % 3]
        sums[unit] += 1 + Decimal(i % 7) * Decimal("0.25")
    inv = sums["invocations"] / 1000 * Decimal("0.50")  # all within the first tier
    expected = sum(
        (
            x.quantize(Decimal("0.01"))
            for x in (
                inv,
                sums["compute_seconds"] * Decimal("0.0001"),
                sums["llm_tokens"] / 1000 * Decimal("0.002"),
            )
        ),
        Decimal(0),
    )
    assert total == expected


def test_first_run_benchmark_measures_both_targets(tmp_path: Path) -> None:
    figures = tmp_path / "first_run.json"
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "first_run.py"), "--steps", "50",
         "--rounds", "1", "--memory-steps", "2000", "--json", str(figures)],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=300,
    )  # fmt: skip
    assert out.returncode in (0, 1), out.stderr  # 1: a target missed at this tiny size
    data = json.loads(figures.read_text())
    assert data["first_run"]["ratio"] > 0
    assert [m["shape"] for m in data["memory"]] == ["W1", "W2", "W3"]  # a process each
    assert all(m["steps"] == 2000 and m["scheduler_freed"] is True for m in data["memory"])
    assert out.stdout.count("pass") + out.stdout.count("FAIL") == 5


def test_run_all_knows_every_target_benchmark_and_reads_each_verdict_format() -> None:
    """`benchmarks/run.py --all` runs each other target's benchmark and keeps its verdict
    lines: every script it names exists, and each script's way of saying pass/fail is read."""
    import run  # benchmarks/ is on sys.path (above)

    for _title, script, *_ in run.OTHERS:
        assert (ROOT / "benchmarks" / script).exists(), script
    said = [
        "  [ok] import fluxnb, process <= 1.3x: 1.06x",
        "  [MISS] W1 100 fluxnb (store off) >= 5x faster than Hamilton async: 2.0x",
        "  [skip] fluxnb >= 5x faster than Hamilton's async driver: needs --python",
        "pass  100,000 steps store off: 942 B kept per step",
        "FAIL  W1 10,002 store on: first run 177 ms, warm 114 ms: 1.55x",
        "   compiled >= 1M firings/s (median): PASS (2,137,936)",
    ]
    assert all(run._VERDICT.search(line.strip()) for line in said)
    assert not run._VERDICT.search("  5        82            0.06ms            0.06ms")
    assert not run._VERDICT.search("bypassed 3 steps")

"""fluxnb against the asyncio floor, measured in one process and one run.

    python benchmarks/run.py            # full sizes (a few minutes)
    python benchmarks/run.py --quick    # small sizes, for a smoke test
    python benchmarks/run.py --json out.json
    python benchmarks/run.py --all      # then every other target of issues 15 and 22
    # side venvs (never dependencies): PEERS_PY=python with Hamilton, PM4PY_PY=with PM4Py

Every workload runs the floor (benchmarks/floor.py), fluxnb with the store off, and fluxnb
with the DuckDB store on, after one warm-up, in rounds: each round runs the three in a
rotated order, with a ``gc.collect()`` before every timed call (so no run pays for another's
garbage), and the ratios are taken *within* the round; a figure is the median over rounds.
The ratios are what carries between machines; absolute times drift.

Two step bodies: ``noop`` (returns at once: never suspends, the inline path) and ``awaits``
(``await asyncio.sleep(0)`` once, as any step doing I/O does). The floor runs the very same
body with the same arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from floor import run_floor
from workloads import (
    awaits,
    chain,
    independent,
    layered,
    make_sleeper,
    noop,
    to_workflow,
    wide,
)

#: Ratio to the floor per step body: (store off, store on). Steps that await are where users
#: are (issue 22's targets); the no-op figures keep the older, looser bounds.
TARGETS = {"noop": (2.0, 3.0), "awaits": (1.2, 2.0), "sleep_wall": 3.0}


def _time(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(name: str, dag: dict, fn: Any, repeat: int, store_dir: Path) -> dict[str, Any]:
    wf = to_workflow(name, dag, fn)
    store_path = str(store_dir / f"{name}.duckdb")
    n = len(dag)

    def floor() -> None:
        asyncio.run(run_floor(dag, fn))

    def off() -> None:
        assert asyncio.run(wf.arun(store=None)).ok

    def on() -> None:
        assert asyncio.run(wf.arun(store=store_path)).ok

    for f in (floor, off, on):  # warm-up: imports, the cached plan
        f()
    samples: dict[str, list[float]] = {"floor": [], "off": [], "on": []}
    ratios: dict[str, list[float]] = {"off": [], "on": []}
    order = [("floor", floor), ("off", off), ("on", on)]
    for r in range(repeat):
        times = {}
        for key, f in order[r % 3 :] + order[: r % 3]:  # a rotated order each round
            gc.collect()
            times[key] = _time(f)
            samples[key].append(times[key])
        ratios["off"].append(times["off"] / times["floor"])
        ratios["on"].append(times["on"] / times["floor"])
    med = {k: statistics.median(v) for k, v in samples.items()}
    # loading the segments the "on" runs wrote, into the DuckDB file (paid at query time)
    import fluxnb

    load = _time(lambda: fluxnb.store(store_path).sql("SELECT count(*) FROM events"))
    return {
        "workload": name,
        "nodes": n,
        "floor_us": med["floor"] / n * 1e6,
        "off_us": med["off"] / n * 1e6,
        "on_us": med["on"] / n * 1e6,
        "off_ratio": statistics.median(ratios["off"]),
        "on_ratio": statistics.median(ratios["on"]),
        "floor_ms": med["floor"] * 1e3,
        "off_ms": med["off"] * 1e3,
        "on_ms": med["on"] * 1e3,
        "load_ms": load * 1e3,
        "runs_loaded": repeat + 1,
    }


def import_check() -> dict[str, Any]:
    """One fresh interpreter: ``import asyncio, yaml`` timed, then ``import fluxnb``
    (benchmarks/import_time.py takes the median over interleaved rounds)."""
    code = (
        "import sys, time, json; t = time.perf_counter(); import asyncio, yaml; "
        "b = time.perf_counter() - t; t = time.perf_counter(); import fluxnb; "
        "d = time.perf_counter() - t; "
        "print(json.dumps({'import_ms': d * 1e3, 'ratio': (b + d) / b, 'heavy': [m for m in "
        "('pandas', 'duckdb', 'pyarrow', 'ipywidgets', 'networkx', 'IPython') "
        "if m in sys.modules]}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, 3 repeats")
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument(
        "--all",
        action="store_true",
        help="then every other target of issues 15 and 22, each from its own benchmark",
    )
    args = ap.parse_args(argv)
    scale = 10 if args.quick else 1
    repeat = args.repeat or (3 if args.quick else 9)
    sleep_n, sleep_s = 200, 0.010
    workloads = []
    for body, fn in (("noop", noop), ("awaits", awaits)):
        workloads += [
            (f"W1 wide 1->{10_000 // scale}->1 {body}", wide(10_000 // scale), fn),
            (f"W2 chain {1_000 // scale} {body}", chain(1_000 // scale), fn),
            (
                f"W3 layered {10_000 // scale} {body}",
                layered(10_000 // scale, layers=100 // scale),
                fn,
            ),
        ]
    workloads.append((f"W4 {sleep_n} x sleep 10ms", independent(sleep_n), make_sleeper(sleep_s)))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, dag, fn in workloads:
            r = measure("_".join(name.split()[:1] + name.split()[-1:]), dag, fn, repeat, Path(tmp))
            r["workload"] = name
            results.append(r)
    imp = import_check()

    print(f"fluxnb benchmarks (median of {repeat}; per-node overhead and ratio to the floor)")
    print(f"{'workload':<31}{'floor':>10}{'store off':>20}{'store on':>20}{'load':>10}")
    for r in results:
        if r["workload"].startswith("W4"):
            print(
                f"{r['workload']:<31}{r['floor_ms']:>8.1f}ms"
                f"{r['off_ms']:>12.1f}ms wall  {r['on_ms']:>10.1f}ms wall  "
                f"{r['load_ms']:>6.1f}ms"
            )
        else:
            print(
                f"{r['workload']:<31}{r['floor_us']:>8.2f}us"
                f"{r['off_us']:>10.2f}us ({r['off_ratio']:.2f}x)"
                f"{r['on_us']:>10.2f}us ({r['on_ratio']:.2f}x)"
                f"{r['load_ms']:>8.1f}ms"
            )
    print(
        f"import fluxnb: {imp['import_ms']:.0f} ms after asyncio and yaml "
        f"({imp['ratio']:.2f}x import asyncio, yaml); heavy modules imported: "
        f"{imp['heavy'] or 'none'}"
    )
    checks = []
    for r in results:
        if r["workload"].startswith("W4"):
            limit = TARGETS["sleep_wall"] * sleep_s * 1e3
            checks.append((f"{r['workload']} store off < {limit:.0f}ms", r["off_ms"] < limit))
            checks.append((f"{r['workload']} store on < {limit:.0f}ms", r["on_ms"] < limit))
        else:
            off_t, on_t = TARGETS[r["workload"].split()[-1]]
            checks.append((f"{r['workload']} store off <= {off_t}x", r["off_ratio"] <= off_t))
            checks.append((f"{r['workload']} store on <= {on_t}x", r["on_ratio"] <= on_t))
    checks.append(("import fluxnb <= 1.3x import asyncio, yaml", imp["ratio"] <= 1.3))
    checks.append(
        (
            "import fluxnb loads no pandas/duckdb/pyarrow/ipywidgets",
            not set(imp["heavy"]) & {"pandas", "duckdb", "pyarrow", "ipywidgets"},
        )
    )
    for label, ok in checks:
        print(f"  [{'ok' if ok else 'MISS'}] {label}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"results": results, "import": imp, "checks": dict(checks)}, indent=2)
        )
    if args.all:
        other_targets(args.quick)
    return 0


#: The other targets' benchmarks (each prints its own verdict lines), with their arguments
#: (full, --quick) and the environment variable naming a side venv's python to run it with
#: (PM4Py and Hamilton are never fluxnb dependencies).
OTHERS = (
    ("first runs and memory per step (22: 3, 6)", "first_run.py", [], ["--rounds", "3"], ""),
    ("import fluxnb (22: 5)", "import_time.py", [], ["--rounds", "5"], ""),
    ("a cold one-step run with a store (22: 5)", "cold_start.py", [], ["--rounds", "3"], ""),
    ("nets with guards and data, actions (22: 4)", "net_engine.py", [], ["--rounds", "3"], ""),
    ("reachability (22: 7)", "petri.py", ["--million"], ["--repeat", "3"], "PM4PY_PY"),
    ("streams per item (15)", "streams.py", [], [], ""),
    ("Hamilton's async driver (22: 2)", "hamilton.py", [], ["--quick"], ""),
)
_VERDICT = re.compile(r"\[(ok|MISS|skip)\]|\bPASS\b|\bFAIL\b|^pass\s")


def other_targets(quick: bool) -> None:
    """Run each other benchmark in its own interpreter and print its verdict lines."""
    here = Path(__file__).resolve().parent
    print("\nthe other targets (each from its own benchmark; its whole output: run it alone)")
    for title, script, full, small, side in OTHERS:
        python = os.environ.get(side, sys.executable) if side else sys.executable
        cmd = [python, str(here / script), *(small if quick else full)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        lines = [ln.strip() for ln in proc.stdout.splitlines() if _VERDICT.search(ln.strip())]
        print(f"- {title}: benchmarks/{script}")
        if proc.returncode:
            print(f"    [MISS] it failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
        missing = f"(no verdict printed{f'; set {side} to a venv with its peer' if side else ''})"
        for line in lines or [missing]:
            print(f"    {line}")


if __name__ == "__main__":
    sys.exit(main())

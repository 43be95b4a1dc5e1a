"""What ``import fluxnb`` costs over ``import asyncio, yaml`` (issue 22, target 5).

    python benchmarks/import_time.py              # 15 rounds
    python benchmarks/import_time.py --rounds 31 --json out.json

An import can be measured once per interpreter, so every figure comes from fresh
interpreters run in interleaved rounds: each round starts ``python -c "import asyncio, yaml"``
(the baseline) and ``python -c "import asyncio, yaml; import fluxnb"`` in an order that
alternates from round to round, and takes the ratio of their wall times *within* the round; a
figure is the median over rounds. Two readings of the target:

- ``process``: whole interpreter runs, start-up included (the wall time a user waits for
  ``python -c``);
- ``import``: the imports alone, timed inside one interpreter run: ``import asyncio, yaml``
  first, then ``import fluxnb``, and the ratio is (both) / (asyncio and yaml) — the stricter one,
  as start-up does not dilute it.

Also measured, not a target: ``first line`` — ``import fluxnb`` and touching ``fluxnb.Workflow``,
``fluxnb.load`` and ``fluxnb.run`` (what a notebook's first cell pays before any step runs),
over the same baseline. Then the ``-X importtime`` table of what ``import fluxnb`` loads, the
slowest ten by self time. Wall times are noisy on a shared machine; for an A/B of a change,
count instructions with callgrind (docs/benchmarks.md says how).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: The most ``import fluxnb`` may cost, as a multiple of ``import asyncio, yaml``.
TARGET = 1.3

BASE = "import asyncio, yaml"
FIRST_LINE = "import fluxnb; fluxnb.Workflow; fluxnb.load; fluxnb.run"
#: One interpreter run: both imports timed, printed as two numbers of seconds.
TIMED = (
    "import time; t0 = time.perf_counter(); import asyncio, yaml; t1 = time.perf_counter(); "
    "{extra}; t2 = time.perf_counter(); print(t1 - t0, t2 - t1)"
)


#: The children's environment: compiled modules are cached (in a private folder, see main),
#: as in an installed package, even where PYTHONDONTWRITEBYTECODE is set.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _wall(code: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV)
    return time.perf_counter() - t


def _imports(extra: str) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-c", TIMED.format(extra=extra)],
        capture_output=True,
        text=True,
        check=True,
        env=ENV,
    ).stdout.split()
    return float(out[0]), float(out[1])


def measure(rounds: int) -> dict[str, Any]:
    """Medians of in-round ratios over ``rounds`` interleaved rounds (one warm-up first,
    so every .pyc is written before timing)."""
    for code in (BASE, f"{BASE}; import fluxnb", f"{BASE}; {FIRST_LINE}"):
        _wall(code)
    ratios: dict[str, list[float]] = {"process": [], "import": [], "first line": []}
    ms: dict[str, list[float]] = {"base": [], "fluxnb": [], "first line": []}
    for r in range(rounds):
        runs = [
            ("base", lambda: _wall(BASE)),
            ("fluxnb", lambda: _wall(f"{BASE}; import fluxnb")),
            ("first line", lambda: _wall(f"{BASE}; {FIRST_LINE}")),
        ]
        times: dict[str, float] = {}
        for key, fn in runs[r % 3 :] + runs[: r % 3]:  # a rotated order each round
            times[key] = fn()
        ratios["process"].append(times["fluxnb"] / times["base"])
        ratios["first line"].append(times["first line"] / times["base"])
        base_s, fluxnb_s = _imports("import fluxnb")
        ratios["import"].append((base_s + fluxnb_s) / base_s)
        ms["base"].append(base_s * 1e3)
        ms["fluxnb"].append(fluxnb_s * 1e3)
        ms["first line"].append(_imports(FIRST_LINE)[1] * 1e3)
    return {
        "rounds": rounds,
        "ratio": {k: statistics.median(v) for k, v in ratios.items()},
        "ms": {k: statistics.median(v) for k, v in ms.items()},
    }


def importtime_top(n: int = 10) -> list[tuple[str, int, int]]:
    """The ``n`` modules that ``import fluxnb`` loads (after asyncio and yaml) with the
    largest self time: (name, self us, cumulative us), from one ``-X importtime`` run."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"{BASE}; import fluxnb"],
        capture_output=True,
        text=True,
        check=True,
        env=ENV,
    ).stderr
    rows = []
    for line in err.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        rows.append(
            (parts[2].strip(), int(parts[0]), int(parts[1]), len(parts[2]) - len(parts[2].lstrip()))
        )
    # the table lists a module's imports before it: fluxnb's subtree is the run of deeper
    # lines just above its own top-level line
    end = max(i for i, row in enumerate(rows) if row[0] == "fluxnb" and row[3] == 1)
    start = end
    while start > 0 and rows[start - 1][3] > 1:
        start -= 1
    tree = [(name, own, cum) for name, own, cum, _ in rows[start : end + 1]]
    return sorted(tree, key=lambda row: -row[1])[:n]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default 15)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as cache:
        ENV["PYTHONPYCACHEPREFIX"] = cache  # the warm-up compiles every module into it
        result = measure(args.rounds)
        result["top"] = importtime_top()
    ratio, ms = result["ratio"], result["ms"]
    print(f"import fluxnb over import asyncio, yaml (median of {args.rounds} interleaved rounds)")
    print(
        f"  imports alone: asyncio+yaml {ms['base']:.1f} ms, then fluxnb {ms['fluxnb']:.1f} ms "
        f"(first line: {ms['first line']:.1f} ms)"
    )
    print(f"  first line ({FIRST_LINE}), process: {ratio['first line']:.2f}x (not a target)")
    print("  -X importtime, slowest modules under fluxnb (self us, cumulative us):")
    for name, own, cum in result["top"]:
        print(f"    {own:>7} {cum:>8}  {name}")
    checks = [
        (f"import fluxnb, process <= {TARGET}x: {ratio['process']:.2f}x", ratio["process"]),
        (f"import fluxnb, imports alone <= {TARGET}x: {ratio['import']:.2f}x", ratio["import"]),
    ]
    for label, value in checks:
        print(f"  [{'ok' if value <= TARGET else 'MISS'}] {label}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

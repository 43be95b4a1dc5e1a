"""fluxnb against Apache Hamilton's async driver (issue 22, target 2: >= 5x faster).

Hamilton is never a fluxnb dependency: it lives in a side virtualenv, and the measurement is
the peer harness's (``bench_multi.py``: every peer in ONE process, interleaved rounds in a
rotating order, checksums checked). This script runs it per workload and reports, per round,
Hamilton's time over fluxnb's (store off and on) and each over the asyncio floor; a figure is
the median over rounds.

    python -m venv /tmp/peers && /tmp/peers/bin/pip install sf-hamilton -e .
    python benchmarks/hamilton.py --python /tmp/peers/bin/python --peers-dir ../shared/peers

Without a side interpreter that imports ``hamilton`` (or without the harness) it says so and
exits 0: the target is then not measured, not passed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

TARGET = 5.0  # Hamilton's time / fluxnb's, every workload
WORKLOADS = (("W1", 1_000), ("W1", 10_000), ("W2", 1_000), ("W3", 10_000))
PEERS = "floor,fluxnb_off,fluxnb_on,hamilton_async"


def _in_round(per: dict, a: str, b: str) -> float:
    """Median over rounds of a's time / b's time (both ran in the same round)."""
    pairs = zip(per[a]["run_s_all"], per[b]["run_s_all"], strict=True)
    return statistics.median(x / y for x, y in pairs)


def run(python: str, peers_dir: Path, reps: int, budget: float, quick: bool) -> list[dict]:
    env = {**os.environ, "HAMILTON_TELEMETRY_ENABLED": "false", "DO_NOT_TRACK": "1"}
    out = []
    for name, size in WORKLOADS:
        n = size // 10 if quick else size
        cmd = [python, str(peers_dir / "bench_multi.py"), "--workload", name, "--n", str(n),
               "--peers", PEERS, "--reps", str(reps), "--budget", str(budget)]  # fmt: skip
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, cwd=peers_dir, check=False
        )
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            raise SystemExit(f"{name} {n}: the harness failed:\n{proc.stderr[-2000:]}")
        rec = json.loads(line[len("RESULT ") :])
        per = rec["per_peer"]
        out.append(
            {
                "workload": f"{name} {n}",
                "load": f"{rec['load_before']} -> {rec['load_after']}",
                "off_floor": _in_round(per, "fluxnb_off", "floor"),
                "on_floor": _in_round(per, "fluxnb_on", "floor"),
                "hamilton_floor": _in_round(per, "hamilton_async", "floor"),
                "hamilton_over_off": _in_round(per, "hamilton_async", "fluxnb_off"),
                "hamilton_over_on": _in_round(per, "hamilton_async", "fluxnb_on"),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--python", default=os.environ.get("PEERS_PY"), help="side venv's python")
    default_dir = Path(__file__).resolve().parents[2] / "shared" / "peers"
    ap.add_argument("--peers-dir", type=Path, default=default_dir)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--budget", type=float, default=120.0, help="seconds per workload")
    ap.add_argument("--quick", action="store_true", help="a tenth of the sizes")
    args = ap.parse_args(argv)
    harness = args.peers_dir / "bench_multi.py"
    if not args.python or not harness.exists():
        print("  [skip] fluxnb >= 5x faster than Hamilton's async driver: needs --python (a side")
        print(f"         venv with sf-hamilton and fluxnb) and the peer harness ({harness})")
        return 0
    probe = subprocess.run(
        [args.python, "-c", "import hamilton, fluxnb"], capture_output=True, check=False
    )
    if probe.returncode:
        print(f"  [skip] {args.python} cannot import hamilton and fluxnb")
        return 0
    rows = run(args.python, args.peers_dir, args.reps, args.budget, args.quick)
    print("fluxnb vs Hamilton's async driver (medians of in-round ratios, steps await once)")
    print(f"{'workload':<10}{'fluxnb off':>12}{'fluxnb on':>11}{'Hamilton':>10}"
          f"{'H/off':>8}{'H/on':>8}   load")  # fmt: skip
    for r in rows:
        print(f"{r['workload']:<10}{r['off_floor']:>11.2f}x{r['on_floor']:>10.2f}x"
              f"{r['hamilton_floor']:>9.2f}x{r['hamilton_over_off']:>7.1f}x"
              f"{r['hamilton_over_on']:>7.1f}x   {r['load']}")  # fmt: skip
    for r in rows:
        ok = r["hamilton_over_off"] >= TARGET
        print(f"  [{'ok' if ok else 'MISS'}] {r['workload']} fluxnb (store off) >= {TARGET:.0f}x "
              f"faster than Hamilton async: {r['hamilton_over_off']:.1f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

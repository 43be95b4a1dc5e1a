"""A cold one-step run: how long from ``fluxnb.run(...)`` until the step's first line.

    python benchmarks/cold_start.py              # 11 rounds
    python benchmarks/cold_start.py --rounds 21

Each sample is a fresh interpreter that imports fluxnb, builds a one-step workflow and
runs it; the step notes ``time.perf_counter()`` as its first line, compared with the time
just before the call. Three kinds of sample, in a rotated order each round (the machine's
load drifts): store off (``store=None``), store on (a new DuckDB file store), and store on
timed from before the first touch of ``fluxnb.run`` (``import fluxnb`` loads the engine
lazily, on that touch). Figures are medians over rounds. Target (issue 22): with a store,
the step starts within 50 ms of the call.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

TARGET_MS = 50.0

CHILD = r"""
import json, sys, time
seen = {}
def step():
    seen["first"] = time.perf_counter()
    return 1
import fluxnb
wf = fluxnb.Workflow("cold")
wf.add("one", step)
store = sys.argv[1] if sys.argv[1] != "-" else None
t_touch = time.perf_counter()
run = fluxnb.run  # the engine loads here (lazily) the first time
t0 = time.perf_counter()
result = run(wf, store=store)
t1 = time.perf_counter()
first = seen["first"]
print(json.dumps({"call_ms": (first - t0) * 1e3, "touch_ms": (first - t_touch) * 1e3,
                  "total_ms": (t1 - t0) * 1e3, "ok": result.ok}))
"""


def sample(store: str | None) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, store or "-"], capture_output=True, text=True, check=True
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["ok"], data
    return data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=11)
    args = ap.parse_args(argv)
    got: dict[str, list[float]] = {"off": [], "on": [], "on_touch": [], "on_total": []}
    with tempfile.TemporaryDirectory() as tmp:
        sample(None)  # warm the OS caches (.pyc files, shared libraries)
        kinds = ["off", "on"]
        for r in range(args.rounds):
            for kind in kinds[r % 2 :] + kinds[: r % 2]:
                if kind == "off":
                    got["off"].append(sample(None)["call_ms"])
                else:
                    s = sample(str(Path(tmp) / f"s{r}.duckdb"))
                    got["on"].append(s["call_ms"])
                    got["on_touch"].append(s["touch_ms"])
                    got["on_total"].append(s["total_ms"])
    med = {k: statistics.median(v) for k, v in got.items()}
    print(f"cold one-step run, median of {args.rounds} fresh interpreters")
    print("(ms until the step's first line)")
    print(f"  store off, from the call               {med['off']:8.1f} ms")
    print(f"  store on,  from the call               {med['on']:8.1f} ms")
    print(f"  store on,  from the first touch of run {med['on_touch']:8.1f} ms")
    print(f"  store on,  whole run (call to return)  {med['on_total']:8.1f} ms")
    ok = med["on"] <= TARGET_MS
    mark = "ok" if ok else "MISS"
    print(f"  [{mark}] store on: the step starts <= {TARGET_MS:.0f} ms after the call")
    return 0


if __name__ == "__main__":
    sys.exit(main())

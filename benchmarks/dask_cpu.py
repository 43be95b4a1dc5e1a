"""CPU-bound steps: the local thread pool (held back by the GIL) against Dask processes.

    python benchmarks/dask_cpu.py              # 8 steps, about 0.4 s of pure Python each
    python benchmarks/dask_cpu.py --quick      # tiny, for a smoke test

Both runs use the same workflow object; the Dask one uses the on-demand LocalCluster (one
worker process per core), started and warmed before timing. Prints the wall times and the
ratio dask / local (below 1 is faster).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time


def burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def build(steps: int, n: int):  # type: ignore[no-untyped-def]
    import fluxnb

    wf = fluxnb.Workflow("cpu")
    for i in range(steps):
        wf.add(f"burn{i}", burn, with_={"n": n})
    wf.add(
        "total", lambda **parts: sum(parts.values()), depends_on=[f"burn{i}" for i in range(steps)]
    )
    return wf


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    n = 20_000 if args.quick else 4_000_000
    wf = build(8, n)
    expected = 8 * burn(n)
    wf.run(store=None, executor="dask")  # start and warm the cluster
    local, dask = [], []
    for _ in range(args.repeat):
        for key, samples in (("local", local), ("dask", dask)):
            t = time.perf_counter()
            r = wf.run(store=None, executor=key)
            samples.append(time.perf_counter() - t)
            assert r.ok and r["total"] == expected, r.summary()
    lm, dm = statistics.median(local), statistics.median(dask)
    from fluxnb.engine._dask import shared_cluster

    workers = len(shared_cluster().workers)
    print(
        f"8 CPU-bound steps: local threads {lm:.2f}s, dask ({workers} worker processes) "
        f"{dm:.2f}s, ratio dask/local {dm / lm:.2f}"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"local_s": lm, "dask_s": dm, "ratio": dm / lm, "workers": workers}, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())

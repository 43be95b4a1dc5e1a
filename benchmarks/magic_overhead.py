"""What the %%fluxroute magic costs over fluxnb.run() in a plain script.

    python benchmarks/magic_overhead.py

A 10-step trivial DAG, the same manifest text, the same store file; the magic runs in a real
IPython InteractiveShell with its defaults (progress on). Prints the median per run of each
and the ratio (target: at most 2x).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

BODY = "pipeline:\n" + "".join(
    f"  - step: s{i}\n" + (f"    depends_on: s{i - 1}\n" if i else "") for i in range(10)
)
STEPS = "".join(f"def s{i}(**_):\n    return {i}\n" for i in range(10))


def main(repeat: int = 30) -> float:
    from IPython.testing.globalipapp import start_ipython

    import fluxnb

    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "m.duckdb")
        ns: dict = {}
        exec(STEPS, ns)
        ip = start_ipython()
        ip.run_line_magic("load_ext", "fluxnb")
        ip.run_cell(STEPS)
        fluxnb.run(BODY, ns, store=store)  # warm both paths
        ip.run_cell_magic("fluxroute", f"--store {store}", BODY)
        plain, magic = [], []
        for _ in range(repeat):
            t = time.perf_counter()
            assert fluxnb.run(BODY, ns, store=store).ok
            plain.append(time.perf_counter() - t)
            t = time.perf_counter()
            assert ip.run_cell_magic("fluxroute", f"--store {store}", BODY).ok
            magic.append(time.perf_counter() - t)
    p, m = statistics.median(plain), statistics.median(magic)
    print(
        f"10-step DAG: fluxnb.run {p * 1e3:.2f} ms, %%fluxroute {m * 1e3:.2f} ms, "
        f"ratio {m / p:.2f} (target <= 2)"
    )
    return m / p


if __name__ == "__main__":
    main()
    sys.exit(0)

"""A new workflow's first run against its warm runs, and the memory a big run keeps.

    python benchmarks/first_run.py        # W1 10,000 store on; W1, W2, W3 100,000 store off
    python benchmarks/first_run.py --rounds 5 --memory-steps 20000   # quicker

Issue 22, target 3: the first run of a new workflow (validate, plan, manifest text, all
of it) costs at most 1.5x a warm run of it (its plan cached), for W1 (1 -> 10,000 -> 1),
the store on. In one warm process, each round makes a **new** Workflow of the same shape
with the same step function (as a notebook cell run again does) and runs it twice, a
``gc.collect()`` before each; the ratio is taken within the round (first / second) and the
figure is the median over rounds. Every run writes into one store file, made fresh when the
process starts, as runs in a notebook share the project's store.

Target 6: 100,000 steps with the store off keep at most 1 KB per step, for each of the
three shapes (W1 wide 1 -> n -> 1, W2 a chain, W3 layered: 100 layers, 1-3 parents each):
measured with tracemalloc in a fresh process per shape, from before the workflow is built
(step ids included) to after the run, with the Workflow (and the plan it caches) and the
RunResult still alive; the peak of the whole build and run is printed too. Each process
checks that the run's Scheduler is gone once ``run()`` has returned, while its result lives.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from workloads import chain, layered, noop, to_workflow, wide

FIRST_RUN_RATIO = 1.5  # target 3: a first run <= 1.5x a warm one
KEPT_BYTES = 1024  # target 6: <= 1 KB kept per step


def first_vs_warm(steps: int, rounds: int) -> dict[str, Any]:
    store = str(Path(tempfile.mkdtemp()) / "fluxnb.duckdb")
    dag = wide(steps)

    def timed(wf: Any) -> float:
        gc.collect()
        t = time.perf_counter()
        assert asyncio.run(wf.arun(store=store)).ok
        return time.perf_counter() - t

    timed(to_workflow("warm-up", dag, noop))  # imports, the store's tables, the loop
    firsts, warms, ratios = [], [], []
    for _ in range(rounds):
        wf = to_workflow("w1", dag, noop)  # new each round: its first run plans it anew
        first, warm = timed(wf), timed(wf)
        firsts.append(first)
        warms.append(warm)
        ratios.append(first / warm)
    return {
        "steps": len(dag),
        "first_ms": statistics.median(firsts) * 1e3,
        "warm_ms": statistics.median(warms) * 1e3,
        "ratio": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
    }


#: The shapes target 6 holds for, by name: a DAG of ``steps`` steps.
SHAPES = {
    "W1": lambda steps: wide(steps - 2),
    "W2": chain,
    "W3": layered,
}


def memory_child(shape: str, steps: int) -> dict[str, Any]:
    """Runs in a fresh process (see main): what a big store-off run keeps."""
    from fluxnb.engine._scheduler import Scheduler

    to_workflow("warm-up", wide(10), noop).run(store=None)  # imports, not counted
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    wf = to_workflow(shape.lower(), SHAPES[shape](steps), noop)
    gc.collect()
    built = tracemalloc.get_traced_memory()[0]
    result = wf.run(store=None)
    gc.collect()
    after, peak = tracemalloc.get_traced_memory()
    assert result.ok and len(result.outputs) == steps
    return {
        "shape": shape,
        "steps": steps,
        "workflow_bytes_per_step": (built - before) / steps,
        "kept_bytes_per_step": (after - before) / steps,
        "peak_bytes_per_step": (peak - before) / steps,
        # no Scheduler object is left anywhere in the process, though the result is
        "scheduler_freed": not any(type(o) is Scheduler for o in gc.get_objects()),
    }


def memory(shape: str, steps: int) -> dict[str, Any]:
    """Target 6's figures for one shape, from a fresh interpreter."""
    child = subprocess.run(
        [sys.executable, __file__, "--memory-child", shape, str(steps)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(child.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=10_000, help="W1 width for target 3")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--memory-steps", type=int, default=100_000, help="steps for target 6")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--shapes", default="W1,W2,W3", help="target 6's shapes (W1,W2,W3)")
    ap.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_child:
        shape, steps = args.memory_child
        print(json.dumps(memory_child(shape, int(steps))))
        return 0
    memories = [memory(shape, args.memory_steps) for shape in args.shapes.split(",")]
    timing = first_vs_warm(args.steps, args.rounds)
    checks = [
        (
            f"W1 {timing['steps']:,} store on: first run {timing['first_ms']:.0f} ms, warm "
            f"{timing['warm_ms']:.0f} ms: {timing['ratio']:.2f}x (rounds "
            f"{timing['ratio_min']:.2f}-{timing['ratio_max']:.2f}) <= {FIRST_RUN_RATIO}x",
            timing["ratio"] <= FIRST_RUN_RATIO,
        ),
    ]
    for m in memories:
        checks.append(
            (
                f"{m['shape']} {m['steps']:,} steps store off: {m['kept_bytes_per_step']:.0f} B "
                f"kept per step (workflow {m['workflow_bytes_per_step']:.0f}, peak "
                f"{m['peak_bytes_per_step']:.0f}) <= {KEPT_BYTES} B",
                m["kept_bytes_per_step"] <= KEPT_BYTES,
            )
        )
    checks.append(
        (
            "the Scheduler is freed once run() returns, its result alive ("
            + ", ".join(m["shape"] for m in memories)
            + ")",
            all(m["scheduler_freed"] for m in memories),
        )
    )
    for text, ok in checks:
        print(f"{'pass' if ok else 'FAIL':<6}{text}")
    if args.json:
        Path(args.json).write_text(json.dumps({"first_run": timing, "memory": memories}, indent=2))
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())

"""What a run costs in the designer over the same run headless, in a real browser.

    python benchmarks/designer_run.py [--steps 200] [--repeat 3]

A real JupyterLab in Debian's Chromium (the browser tests' harness, ``tests/browser/lab.py``)
opens a notebook whose kernel holds a layered DAG of ``--steps`` trivial steps (10 wide).
Measured in that one kernel and page:

- headless: ``fluxnb.run(wf, ns, store=None)``, in the kernel (median of ``--repeat``);
- designer: from the Run button's click until the browser has drawn every node as
  succeeded (read from cytoscape on each animation frame), same store, same workflow.

Prints both, the difference (target: at most ~0.5 s at 200 steps) and the ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETUP = """
import time, fluxnb
WIDTH, STEPS = 10, {steps}
pipeline = []
for i in range(STEPS):
    entry = {{"step": f"s{{i}}"}}
    if i >= WIDTH:  # 10 chains side by side, 20 deep
        entry["depends_on"] = f"s{{i - WIDTH}}"
    pipeline.append(entry)
bench_ns = {{f"s{{i}}": (lambda **kw: 1) for i in range(STEPS)}}
bench_wf = fluxnb.load({{"name": "bench", "pipeline": pipeline}})
bench = fluxnb.Designer.from_workflow(bench_wf, namespace=bench_ns, store=None)
bench
"""

# from the click to the frame where every node is drawn succeeded (ms, in the page's
# clock), and how many status updates reached the view meanwhile
CLICK_AND_WAIT = """async (i) => { const root = document.querySelectorAll('.fluxnb-designer')[i];
    const cy = root.fluxnb.cy; let updates = 0; const count = () => { updates += 1; };
    root.fluxnb.model.on('change:status', count); const t0 = performance.now();
    root.querySelector('button[data-action=run]').click();
    const ms = await new Promise((done) => { const check = () => {
        if (cy.nodes().every(n => n.data('state') === 'succeeded')) done(performance.now() - t0);
        else requestAnimationFrame(check); }; requestAnimationFrame(check); });
    root.fluxnb.model.off('change:status', count); return [ms, updates]; }"""
NONE_SUCCEEDED = """(i) => document.querySelectorAll('.fluxnb-designer')[i].fluxnb.cy.nodes()
    .every(n => n.data('state') !== 'succeeded')"""
HEADLESS = (
    "(lambda t: (fluxnb.run(bench_wf, bench_ns, store=None), time.perf_counter() - t)[1])"
    "(time.perf_counter())"
)


def measure(lab: Any, index: int, repeat: int) -> dict[str, float]:
    """Time ``bench`` (the ``index``-th designer on the page, made by ``SETUP``): median
    seconds headless and click-to-drawn, after one warm-up each; the status updates the view
    received in the last designer run."""
    from tests.browser.lab import py

    headless = [py(lab, HEADLESS) for _ in range(repeat + 1)]  # the first warms up
    drawn, updates = [], 0
    for _ in range(repeat + 1):
        py(lab, "setattr(bench, 'status', {}) or None")
        lab.page.wait_for_function(NONE_SUCCEEDED, arg=index, timeout=30000)
        ms, updates = lab.page.evaluate(CLICK_AND_WAIT, index)
        drawn.append(ms / 1000)
        deadline = time.time() + 30
        # the run's handle gives way to its RunResult once it has finished
        while py(lab, "callable(getattr(bench.run_result, 'done', None))"):
            if time.time() > deadline:
                raise TimeoutError("the designer's run did not finish")
            time.sleep(0.1)
    h, w = statistics.median(headless[1:]), statistics.median(drawn[1:])
    return {"headless": h, "designer": w, "difference": w - h, "updates": updates}


def main(steps: int = 200, repeat: int = 3) -> dict[str, float]:
    from tests.browser.lab import Lab

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cell = {
            "cell_type": "code",
            "id": "c0",
            "metadata": {},
            "source": SETUP.format(steps=steps),
            "execution_count": None,
            "outputs": [],
        }
        nb = {
            "cells": [cell],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        (root / "bench.ipynb").write_text(json.dumps(nb))
        with Lab(root) as lab:
            lab.open("bench.ipynb")
            lab.run_all()
            cy = "document.querySelector('.fluxnb-designer').fluxnb.cy"
            lab.page.wait_for_function(f"() => {cy}.nodes().length === {steps}")
            got = measure(lab, 0, repeat)
    h, w = got["headless"], got["designer"]
    print(f"{steps} steps, median of {repeat} (after one warm-up each):")
    print(f"  headless fluxnb.run        {h:7.3f} s")
    print(f"  designer, click to drawn   {w:7.3f} s   ({got['updates']} status updates)")
    print(f"  difference                 {w - h:7.3f} s   (target <= ~0.5 s)")
    print(f"  ratio                      {w / h:7.1f}x")
    return got


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    main(args.steps, args.repeat)

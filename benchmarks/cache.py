"""Incremental runs (docs/caching.md): what a second run costs after one function changed,
and what caching costs a run in which nothing can be reused.

    python benchmarks/cache.py                      # 20 steps of 0.1 s; 1,000 no-op steps
    python benchmarks/cache.py --step-seconds 0.02 --noop-steps 200 --repeat 3

1. Iterate: a chain of ``--steps`` steps, each sleeping ``--step-seconds``, defined in a
   module file (as a notebook's functions have source). Run once with ``cache=True`` into a
   fresh store, change the last function, run again: the second run's wall time as a
   fraction of the first (target: at most 10%).
2. Overhead: ``--noop-steps`` no-op steps run into a fresh store with ``cache=True``
   (every key is new: nothing reusable) against the same run with caching off, best of
   ``--repeat``; the difference per step (target: at most 50 µs). Also the decision alone
   (``StepCache.lookup`` on a loaded index, no run around it), per step.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import fluxnb


def _module(folder: Path, name: str, steps: int, pause: float, last: str) -> Any:
    """A module of ``steps`` functions s0..s{n-1}, each sleeping ``pause``; ``last`` is
    the body of the last one's return expression."""
    lines = ["import time", ""]
    for i in range(steps):
        arg = "" if i == 0 else f"s{i - 1}"
        body = "0" if i == 0 else f"s{i - 1} + 1"
        if i == steps - 1:
            body = last
        lines += [f"def s{i}({arg}):", f"    time.sleep({pause})", f"    return {body}", ""]
    (folder / f"{name}.py").write_text("\n".join(lines))
    importlib.invalidate_caches()
    if name in sys.modules:
        del sys.modules[name]
    return importlib.import_module(name)


def _chain(n: int, name: str) -> str:
    out = [f"name: {name}", "pipeline:", "  - step: s0"]
    out += [f"  - step: s{i}\n    depends_on: [s{i - 1}]" for i in range(1, n)]
    return "\n".join(out) + "\n"


def iterate(folder: Path, steps: int, pause: float, repeat: int) -> tuple[float, float, int]:
    """(first run s, second run s, steps the second run called), each the best of
    ``repeat`` rounds on a fresh store, after a warm-up run (imports, the store's set-up)."""
    sys.path.insert(0, str(folder))
    manifest = _chain(steps, "iterate")
    warm = _module(folder, "bench_warm", 2, 0.0, "s0 + 1")
    fluxnb.run(_chain(2, "warm"), vars(warm), store=str(folder / "warm.duckdb"), cache=True)
    t1 = t2 = float("inf")
    called = -1
    for r in range(repeat):
        store = str(folder / f"iterate{r}.duckdb")
        fluxnb.store(store).sql("SELECT 1")  # the store's file made and migrated first
        mod = _module(folder, f"bench_a{r}", steps, pause, f"s{steps - 2} + 1")
        t = time.perf_counter()
        first = fluxnb.run(manifest, vars(mod), store=store, cache=True)
        t1 = min(t1, time.perf_counter() - t)
        mod = _module(folder, f"bench_b{r}", steps, pause, f"s{steps - 2} * 2")
        t = time.perf_counter()
        second = fluxnb.run(manifest, vars(mod), store=store, cache=True)
        t2 = min(t2, time.perf_counter() - t)
        assert first.ok and second.ok
        called = sum(1 for x in second.steps.values() if x.status.value == "succeeded")
    return t1, t2, called


async def _noop(*args: Any) -> None:  # async: runs inline, no thread pool noise
    return None


def _noops(name: str, steps: int) -> fluxnb.Workflow:
    """A chain of ``steps`` no-op steps."""
    wf = fluxnb.Workflow(name)
    for i in range(steps):
        wf.add(f"n{i}", _noop, depends_on=[f"n{i - 1}"] if i else [])
    return wf


def overhead(folder: Path, steps: int, repeat: int) -> tuple[float, float]:
    """(seconds per step a cached run costs more than an uncached one, seconds per
    decision alone)."""
    wf = _noops("noops", steps)
    n = iter(range(10**6))

    def once(cache: bool) -> float:
        store = str(folder / f"o{next(n)}.duckdb")
        fluxnb.store(store).sql("SELECT 1")  # the store's file made and migrated first
        t = time.perf_counter()
        result = fluxnb.run(wf, store=store, cache=cache)
        took = time.perf_counter() - t
        assert result.ok
        return took

    once(True)
    once(False)  # warm both paths
    on = off = float("inf")
    for _ in range(repeat):  # interleaved, so drift hits both alike
        off = min(off, once(False))
        on = min(on, once(True))
    return (on - off) / steps, _decisions(wf, folder, steps)


def inside(folder: Path, steps: int, repeat: int) -> float:
    """Seconds per step spent inside the run's cache (loading its index, deciding each
    step, noting each output, recording the decisions), timed around those calls: a
    figure the machine's other load does not drown the way a difference of two runs is."""
    from fluxnb.engine import _cache

    wf = _noops("inside", steps)
    spent = [0.0]
    cls = _cache.StepCache
    originals = {name: getattr(cls, name) for name in ("__init__", "lookup", "on_output", "finish")}

    def timed(fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - t

        return wrapper

    best = float("inf")
    try:
        for name, fn in originals.items():
            setattr(cls, name, timed(fn))
        for r in range(repeat):
            store = str(folder / f"inside{r}.duckdb")
            fluxnb.store(store).sql("SELECT 1")
            spent[0] = 0.0
            assert fluxnb.run(wf, store=store, cache=True).ok
            best = min(best, spent[0] / steps)
    finally:
        for name, fn in originals.items():
            setattr(cls, name, fn)
    return best


def _decisions(wf: fluxnb.Workflow, folder: Path, steps: int) -> float:
    """The decision alone: lookups on a loaded index where no key matches."""
    from fluxnb.engine._cache import StepCache, step_modes
    from fluxnb.engine._plan import plan_for

    plan = plan_for(wf, None)
    st = fluxnb.store(str(folder / "decide.duckdb"))
    best = float("inf")
    for _ in range(5):
        sc = StepCache(wf, plan, st, "r", "default", step_modes(wf, plan, "use"))
        t = time.perf_counter()
        for ti, sid in enumerate(plan.ids):
            assert sc.lookup(ti, {}) is None
            sc.digests[sid] = "0" * 32
        best = min(best, (time.perf_counter() - t) / steps)
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--step-seconds", type=float, default=0.1)
    p.add_argument("--noop-steps", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t1, t2, called = iterate(folder, args.steps, args.step_seconds, args.repeat)
        print(
            f"iterate: {args.steps} steps of {args.step_seconds} s, the last one changed: "
            f"first run {t1:.3f} s, second {t2:.3f} s ({t2 / t1:.1%} of the first; "
            f"{called} step called; best of {args.repeat})"
        )
        per_step, decide = overhead(folder, args.noop_steps, args.repeat)
        within = inside(folder, args.noop_steps, args.repeat)
        print(
            f"overhead, nothing reusable ({args.noop_steps} no-op steps, best of "
            f"{args.repeat}): {within * 1e6:.1f} µs per step inside the cache (index, "
            f"decisions, outputs, records); the decision alone {decide * 1e6:.1f} µs; "
            f"cached run minus uncached run {per_step * 1e6:.1f} µs per step (noisy)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

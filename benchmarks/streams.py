"""Streaming steps: per-item overhead against an asyncio-queue pipeline, and memory.

One async-generator producer → a 3-step chain of no-op async steps, N items, store off.
The floor is the same pipeline written by hand with bounded ``asyncio.Queue``s (one task
per stage, same step bodies). After one small warm-up run of each, rounds alternate which
goes first, with a ``gc.collect()`` before each; the ratio is the median of in-round ratios
(machines are noisy: the load average is printed with it).

Memory: each N runs in a fresh process with ``keep: last``, reporting peak RSS, so the
figures show whether memory grows with N (it should be bounded by ``capacity``).

    python benchmarks/streams.py              # 100,000 items, 7 rounds; RSS at 100k and 1M
    python benchmarks/streams.py --rounds 15  # more rounds
    python benchmarks/streams.py --quick      # 20,000 items, 3 rounds, no 1M run

Targets (issue #15): within 2x of the floor, and peak RSS at 1,000,000 items within 10%
of that at 100,000.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import subprocess
import sys
import time

TARGET = 2.0  # issue #15: within 2x of the floor, store off
FLAT = 1.10  # peak RSS at 1M items over that at 100k: memory does not grow with items


async def floor(n: int, capacity: int = 1024) -> None:
    q1: asyncio.Queue = asyncio.Queue(capacity)
    q2: asyncio.Queue = asyncio.Queue(capacity)
    q3: asyncio.Queue = asyncio.Queue(capacity)

    async def step(x: int) -> int:
        return x

    async def produce() -> None:
        for i in range(n):
            await q1.put(i)
        await q1.put(None)

    async def stage(qi: asyncio.Queue, qo: asyncio.Queue | None) -> None:
        while (x := await qi.get()) is not None:
            y = await step(x)
            if qo is not None:
                await qo.put(y)
        if qo is not None:
            await qo.put(None)

    await asyncio.gather(produce(), stage(q1, q2), stage(q2, q3), stage(q3, None))


def workflow(n: int):  # type: ignore[no-untyped-def]
    import fluxnb

    wf = fluxnb.Workflow("stream-bench")

    async def src():  # type: ignore[no-untyped-def]
        for i in range(n):
            yield i

    async def a(src):  # type: ignore[no-untyped-def]
        return src

    async def b(a):  # type: ignore[no-untyped-def]
        return a

    async def c(b):  # type: ignore[no-untyped-def]
        return b

    for name, fn in (("src", src), ("a", a), ("b", b), ("c", c)):
        wf.add(name, fn, keep="last")
    return wf


def overhead(n: int, rounds: int) -> tuple[float, float, list[float]]:
    """Median µs/item of the floor and of fluxnb, and the in-round ratios."""
    import fluxnb

    def ours() -> None:
        r = fluxnb.run(workflow(n), store=None)
        assert r.ok and r["c"] == n - 1, r

    asyncio.run(floor(1000))  # warm-up: what a first run loads is not per item
    fluxnb.run(workflow(1000), store=None)
    ratios, floors, mine = [], [], []
    for i in range(rounds):
        times = {}
        for name in ("floor", "fluxnb") if i % 2 == 0 else ("fluxnb", "floor"):
            gc.collect()
            t = time.perf_counter()
            if name == "floor":
                asyncio.run(floor(n))
            else:
                ours()
            times[name] = time.perf_counter() - t
        ratios.append(times["fluxnb"] / times["floor"])
        floors.append(times["floor"] / n * 1e6)
        mine.append(times["fluxnb"] / n * 1e6)
    return statistics.median(floors), statistics.median(mine), ratios


def peak_rss_mb(n: int) -> float:
    code = (
        "import resource, sys; sys.path.insert(0, 'benchmarks'); import fluxnb, streams; "
        f"r = fluxnb.run(streams.workflow({n}), store=None); assert r.ok; "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main() -> None:
    quick = "--quick" in sys.argv
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 7
    n = 20_000 if quick else 100_000
    load = os.getloadavg()[0]
    f, o, ratios = overhead(n, 3 if quick else rounds)
    ratio = statistics.median(ratios)
    print(f"{n:,} items, 1 producer -> 3 async no-op steps, store off; load average {load:.2f}")
    print(f"  floor (asyncio queues) {f:6.2f} us/item")
    print(
        f"  fluxnb                 {o:6.2f} us/item   ratio {ratio:.2f}x "
        f"(rounds {min(ratios):.2f}-{max(ratios):.2f}x, {len(ratios)})  target {TARGET}x  "
        f"{'PASS' if ratio <= TARGET else 'FAIL'}"
    )
    sizes = [20_000, 100_000] if quick else [100_000, 1_000_000]
    rss = [peak_rss_mb(size) for size in sizes]
    for size, mb in zip(sizes, rss, strict=True):
        print(f"  peak RSS, {size:>9,} items (keep: last): {mb:7.1f} MB")
    grew = rss[-1] / rss[0]
    print(
        f"  memory flat: {grew:.2f}x from {sizes[0]:,} to {sizes[-1]:,} items  "
        f"target {FLAT}x  {'PASS' if grew <= FLAT else 'FAIL'}"
    )


if __name__ == "__main__":
    main()

"""Streaming steps: per-item overhead against an asyncio-queue pipeline, and memory.

One async-generator producer → a 3-step chain of no-op async steps, N items, store off.
The floor is the same pipeline written by hand with bounded ``asyncio.Queue``s (one task
per stage, same step bodies). Rounds alternate floor / fluxnb with a ``gc.collect()``
before each; the ratio is the median of in-round ratios (machines are noisy).

Memory: each N runs in a fresh process with ``keep: last``, reporting peak RSS, so the
figures show whether memory grows with N (it should be bounded by ``capacity``).

    python benchmarks/streams.py            # 100,000 items, 3 rounds; RSS for 100k and 300k
    python benchmarks/streams.py --million  # RSS for 1,000,000 items too (slow)
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import subprocess
import sys
import time

TARGET = 2.0  # issue #15: within 2x of the floor, store off


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


def overhead(n: int, rounds: int) -> tuple[float, float, float]:
    import fluxnb

    ratios, floors, ours = [], [], []
    for _ in range(rounds):
        gc.collect()
        t = time.perf_counter()
        asyncio.run(floor(n))
        tf = time.perf_counter() - t
        wf = workflow(n)
        gc.collect()
        t = time.perf_counter()
        r = fluxnb.run(wf, store=None)
        tr = time.perf_counter() - t
        assert r.ok and r["c"] == n - 1, r
        ratios.append(tr / tf)
        floors.append(tf / n * 1e6)
        ours.append(tr / n * 1e6)
    return statistics.median(floors), statistics.median(ours), statistics.median(ratios)


def peak_rss_mb(n: int) -> float:
    code = (
        "import resource, sys; sys.path.insert(0, 'benchmarks'); import fluxnb, streams; "
        f"r = fluxnb.run(streams.workflow({n}), store=None); assert r.ok; "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main() -> None:
    n = 100_000
    f, o, ratio = overhead(n, 3)
    ok = "PASS" if ratio <= TARGET else "FAIL"
    print(f"{n:,} items, 1 producer -> 3 async no-op steps, store off")
    print(f"  floor (asyncio queues) {f:6.2f} us/item")
    print(f"  fluxnb                 {o:6.2f} us/item   ratio {ratio:.2f}x  target {TARGET}x  {ok}")
    sizes = [100_000, 300_000] + ([1_000_000] if "--million" in sys.argv else [])
    for size in sizes:
        print(f"  peak RSS, {size:>9,} items (keep: last): {peak_rss_mb(size):7.1f} MB")


if __name__ == "__main__":
    main()

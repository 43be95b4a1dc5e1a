"""fluxnb's overhead per LLM call against the bare SDK call, to the same fake server.

    python benchmarks/llm.py                 # 200 calls a round, 15 rounds
    python benchmarks/llm.py --calls 50 --rounds 5

One process, one event loop, one ``AsyncOpenAI`` client (fluxnb's, so both sides share its
connection pool), one fake OpenAI-compatible server on 127.0.0.1 (``FakeLLMServer``). Each
round makes ``--calls`` pairs: one bare ``client.chat.completions.create`` call and one
``fluxnb.allm`` call of the same request, back to back, in alternating order (a pair shares
the machine's noise of its moment); the overhead is the median over every pair of
(fluxnb - bare). Three fluxnb forms:

- ``loop``: ``allm(..., ctx=None)``: routing, prices, breaker, retry loop, answer parsing;
- ``recorded``: with a step's ``ctx`` on a memory recorder: plus the ``llm_calls`` row, the
  usage rows (``ctx.meter``) and the budget check (a per-run budget);
- ``stream``: streamed, both sides (the SDK iterating the SSE chunks itself).

The target (issue #19) is under 1 ms a call.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from fluxnb.engine._context import StepContext, meter_sink
from fluxnb.llms import FakeLLMServer, allm
from fluxnb.llms._providers import client_for, read_providers
from fluxnb.store._recorder import MemoryRecorder, RunRecord

TARGET_MS = 1.0
MODEL = "gpt-4o-mini"


def a_ctx() -> Any:
    rec = MemoryRecorder()
    rec.run_started(RunRecord("bench", "bench", "running", 0, tenant="acme"))
    return StepContext.make("bench", "bench", "ask", 1, meter_sink(rec, "ask", 1, 0))


async def measure(
    url: str, calls: int, rounds: int
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Per form: the (fluxnb - bare) milliseconds of every pair, and the bare call's median."""
    providers = read_providers([{"name": "openai", "base_url": url}])
    client = client_for(providers[0])
    messages = [{"role": "user", "content": "Say hello to the benchmark"}]

    async def bare(stream: bool) -> None:
        if stream:
            s = await client.chat.completions.create(
                model=MODEL,
                messages=messages,
                max_tokens=16,
                stream=True,
                stream_options={"include_usage": True},
            )
            async for _ in s:
                pass
        else:
            await client.chat.completions.create(model=MODEL, messages=messages, max_tokens=16)

    async def flux(ctx: Any, stream: bool) -> None:
        await allm(
            "Say hello to the benchmark",
            model=f"openai/{MODEL}",
            providers=providers,
            ctx=ctx,
            max_tokens=16,
            stream=stream,
            show=False,
            budget={"per_run": "1000"} if ctx is not None else None,
        )

    forms = {
        "loop": (lambda: bare(False), lambda: flux(None, False)),
        "recorded": (lambda: bare(False), lambda: flux(a_ctx(), False)),
        "stream": (lambda: bare(True), lambda: flux(None, True)),
    }
    for b, f in forms.values():  # warm both paths (connections, imports, caches)
        for _ in range(20):
            await b()
            await f()
    out: dict[str, list[float]] = {name: [] for name in forms}
    bare_times: dict[str, list[float]] = {name: [] for name in forms}
    clock = time.perf_counter
    for r in range(rounds):
        for name, (b, f) in forms.items():
            for i in range(calls):  # pairs next to each other in time share their noise
                first, second = (b, f) if (r + i) % 2 == 0 else (f, b)
                t0 = clock()
                await first()
                t1 = clock()
                await second()
                t2 = clock()
                bare_s, flux_s = (t1 - t0, t2 - t1) if first is b else (t2 - t1, t1 - t0)
                out[name].append((flux_s - bare_s) * 1000)
                bare_times[name].append(bare_s * 1000)
    return out, {name: statistics.median(t) for name, t in bare_times.items()}


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args(argv)
    with FakeLLMServer() as srv:
        diffs, bare_ms = asyncio.run(measure(srv.url, args.calls, args.rounds))
    print(
        f"fluxnb overhead per LLM call vs the bare SDK ({args.calls} calls x {args.rounds} rounds, "
        f"median of pairs; target < {TARGET_MS} ms)"
    )
    medians = {}
    for name, d in diffs.items():
        medians[name] = statistics.median(d)
        q1, _, q3 = statistics.quantiles(d, n=4)
        print(
            f"  {name:9} {medians[name]:7.3f} ms   (quartiles {q1:.3f} .. {q3:.3f}; bare call "
            f"{bare_ms[name]:.3f} ms)"
        )
    return medians


if __name__ == "__main__":
    main()

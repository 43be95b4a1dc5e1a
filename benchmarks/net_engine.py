"""The net engine with token data and guards, and with actions, against baselines measured
in the same process in interleaved rounds (rotating order, ``gc.collect()`` before each call).

    python benchmarks/net_engine.py                 # 7 rounds
    python benchmarks/net_engine.py --rounds 3 --firings 100000
    python benchmarks/net_engine.py --part 2     # actions only

1. Guards and data, no actions: a document cycles between two places; three guarded
   transitions (one that rejects it, one that takes it, one that sends it back reading
   ``tokens``), through ``fluxnb.run`` (store off). Baselines: the same run on the general
   engine (``NetEngine.advance``), and PM4Py's semantics (``enabled_transitions`` then
   ``execute``) on the same structure without guards or data (PM4Py has neither).
   Target: >= 1,000,000 firings/s and >= 8x PM4Py.
2. Actions: a cycle of two transitions whose action is an async no-op (then one that awaits
   once, as an action doing I/O does), against a DAG chain of as many steps calling the same
   function (store off). Target: per firing <= 1.5x per step, both ways.

PM4Py is not a fluxnb dependency: install it in a side virtualenv; without it the PM4Py
column says so.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent))
sys.path.insert(0, str(Path(__file__).parent))

import fluxnb
from fluxnb.engine._net_run import NetEngine, plan_net
from fluxnb.spec import Arc, Net, Transition

GUARDED = Net(
    "guarded",
    ("a", "b"),
    (1, 0),
    (
        Transition("big", (Arc(0),), (Arc(1),), guard="token.n > 5"),
        Transition("small", (Arc(0),), (Arc(1),), guard="token['n'] <= 5"),
        Transition("back", (Arc(1),), (Arc(0),), guard="token.n >= 0 and tokens.b.n < 10"),
    ),
    tokens={0: [{"n": 1}]},
)


async def noop(**_: Any) -> int:
    return 1


async def awaits(**_: Any) -> int:
    """An action that suspends once, as any action doing I/O does."""
    await asyncio.sleep(0)
    return 1


ACTIONS = Net(
    "actions",
    ("a", "b"),
    (1, 0),
    (
        Transition("t1", (Arc(0),), (Arc(1),), run="noop"),
        Transition("t2", (Arc(1),), (Arc(0),), run="noop"),
    ),
)


def compiled(n: int) -> int:
    return fluxnb.run(GUARDED, store=None, max_firings=n).firings


def general(n: int) -> int:
    engine = NetEngine(plan_net(GUARDED, None), run_id="bench", max_firings=n)

    async def go() -> None:
        await engine.advance()
        await engine.aclose()

    asyncio.run(go())
    return len(engine.sequence)


def pm4py_semantics(n: int) -> int:
    from pm4py.objects.petri_net import semantics
    from pm4py.objects.petri_net.obj import Marking, PetriNet
    from pm4py.objects.petri_net.utils import petri_utils

    pn = PetriNet("guarded")
    a, b = PetriNet.Place("a"), PetriNet.Place("b")
    pn.places.update({a, b})
    for tid, src, dst in (("big", a, b), ("small", a, b), ("back", b, a)):
        t = PetriNet.Transition(tid, tid)
        pn.transitions.add(t)
        petri_utils.add_arc_from_to(src, t, pn)
        petri_utils.add_arc_from_to(t, dst, pn)
    m = Marking()
    m[a] = 1
    fired = 0
    for _ in range(n):
        enabled = semantics.enabled_transitions(pn, m)
        if not enabled:
            break
        m = semantics.execute(next(iter(enabled)), pn, m)
        fired += 1
    return fired


def net_actions(n: int, fn: Any = noop) -> int:
    return fluxnb.run(ACTIONS, {"noop": fn}, store=None, max_firings=n).firings


_CHAINS: dict[tuple[int, Any], Any] = {}


def dag_chain(n: int, fn: Any = noop) -> int:
    from workloads import chain, to_workflow

    wf = _CHAINS.get((n, fn))
    if wf is None:  # the warm-up run compiles its plan (cached): timed runs are warm
        wf = _CHAINS[n, fn] = to_workflow(f"chain{n}", chain(n), fn)
    fluxnb.run(wf, store=None)
    return n


def rounds(fns: dict[str, tuple[Callable[[int], int], int]], k: int) -> dict[str, list[float]]:
    """µs per firing (or step) of every function in each of ``k`` rounds, rotating order."""
    out: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for name, (fn, n) in fns.items():
        try:
            fn(n)  # warm-up, at the same size (a workflow's plan is compiled on its first run)
        except ImportError as exc:
            print(f"{name}: not installed ({exc.name}); install it in a side virtualenv")
            names.remove(name)
    for r in range(k):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            fn, n = fns[name]
            gc.collect()
            t = time.perf_counter()
            done = fn(n)
            out[name].append((time.perf_counter() - t) / done * 1e6)
    return {name: v for name, v in out.items() if v}


def _ratios(a: list[float], b: list[float]) -> tuple[float, float]:
    r = [x / y for x, y in zip(a, b, strict=True)]
    return min(r), statistics.median(r)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--firings", type=int, default=300_000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--part", type=int, choices=(1, 2), help="run only part 1 or part 2")
    args = ap.parse_args(argv)
    n = args.firings
    if args.part != 2:
        guards(n, args.rounds)
    if args.part != 1:
        actions(n, args.rounds)
    return 0


def guards(n: int, k: int) -> None:
    guard = rounds(
        {
            "compiled": (compiled, n),
            "general engine": (general, n // 10),
            "pm4py semantics": (pm4py_semantics, n // 20),
        },
        k,
    )
    print("1. guards + token data, no actions (firings/s: best, median of rounds)")
    for name, us in guard.items():
        print(f"   {name:18} {1e6 / min(us):>12,.0f} {1e6 / statistics.median(us):>12,.0f}")
    rate = 1e6 / statistics.median(guard["compiled"])
    ok = rate >= 1_000_000
    print(f"   compiled >= 1M firings/s (median): {'PASS' if ok else 'FAIL'} ({rate:,.0f})")
    for peer in ("general engine", "pm4py semantics"):
        if peer in guard:
            lo, med = _ratios(guard[peer], guard["compiled"])
            need = " (target >= 8x)" if peer.startswith("pm4py") else ""
            print(f"   compiled vs {peer}: {lo:.1f}x min, {med:.1f}x median in-round{need}")


def actions(n: int, k: int) -> None:
    steps = max(1000, n // 100)
    for label, fn in (("an async no-op action", noop), ("an action that awaits once", awaits)):
        act = rounds(
            {
                "net action": (functools.partial(net_actions, fn=fn), steps),
                "dag step": (functools.partial(dag_chain, fn=fn), steps),
            },
            k,
        )
        print(f"2. {label}: µs per firing vs per DAG step ({steps:,} each)")
        for name, us in act.items():
            print(f"   {name:18} {min(us):>8.2f} {statistics.median(us):>8.2f}")
        lo, med = _ratios(act["net action"], act["dag step"])
        verdict = "PASS" if med <= 1.5 else "FAIL"
        print(f"   per firing / per step: {lo:.2f}x min, {med:.2f}x median (<= 1.5x: {verdict})")


if __name__ == "__main__":
    raise SystemExit(main())

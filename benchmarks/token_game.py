"""The token game on a two-place cycle (a ⇄ b, one token, no actions): firings per second
of fluxnb against PM4Py's semantics and SNAKES, measured in one process.

    python benchmarks/token_game.py                  # 1,000,000 fluxnb firings
    python benchmarks/token_game.py --firings 200000

PM4Py and SNAKES are not fluxnb dependencies: install them in the benchmark environment
(``pip install pm4py snakes``); whichever is missing is reported as such. Each peer plays
the same game its own idiomatic way: PM4Py asks ``enabled_transitions`` then ``execute``
(a new Marking per firing); SNAKES asks ``modes()`` then ``fire``. fluxnb is measured
through ``fluxnb.run`` (store=None), on the compiled game it picks for a black-token net,
and on the general coloured engine (tokens with ids and history) for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from fluxnb.engine._net_run import NetEngine, plan_net
from fluxnb.spec import Arc, Net, Transition

CYCLE = Net(
    "cycle",
    ("a", "b"),
    (1, 0),
    (Transition("t1", (Arc(0),), (Arc(1),)), Transition("t2", (Arc(1),), (Arc(0),))),
)


def fluxnb_compiled(n: int) -> int:
    import fluxnb

    return fluxnb.run(CYCLE, store=None, max_firings=n).firings


def fluxnb_general(n: int) -> int:
    engine = NetEngine(plan_net(CYCLE, None), run_id="bench", max_firings=n)

    async def go() -> None:
        await engine.advance()
        await engine.aclose()

    asyncio.run(go())
    return len(engine.sequence)


def pm4py_semantics(n: int) -> int:
    from pm4py.objects.petri_net import semantics
    from pm4py.objects.petri_net.obj import Marking, PetriNet
    from pm4py.objects.petri_net.utils import petri_utils

    pn = PetriNet("cycle")
    a, b = PetriNet.Place("a"), PetriNet.Place("b")
    t1, t2 = PetriNet.Transition("t1", "t1"), PetriNet.Transition("t2", "t2")
    pn.places.update({a, b})
    pn.transitions.update({t1, t2})
    petri_utils.add_arc_from_to(a, t1, pn)
    petri_utils.add_arc_from_to(t1, b, pn)
    petri_utils.add_arc_from_to(b, t2, pn)
    petri_utils.add_arc_from_to(t2, a, pn)
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


def snakes_game(n: int) -> int:
    import snakes.plugins  # noqa: F401 - SNAKES needs its package imported first
    from snakes.nets import PetriNet, Place, Transition, Value, dot

    pn = PetriNet("cycle")
    pn.add_place(Place("a", [dot]))
    pn.add_place(Place("b", []))
    for tid, src, dst in (("t1", "a", "b"), ("t2", "b", "a")):
        pn.add_transition(Transition(tid))
        pn.add_input(src, tid, Value(dot))
        pn.add_output(dst, tid, Value(dot))
    ts = [pn.transition("t1"), pn.transition("t2")]
    fired = 0
    for _ in range(n):
        for t in ts:
            modes = t.modes()
            if modes:
                t.fire(modes[0])
                fired += 1
                break
        else:
            break
    return fired


GAMES: dict[str, tuple[Callable[[int], int], float]] = {
    # name: (function, share of --firings it plays: peers are 20-200x slower)
    "fluxnb (compiled)": (fluxnb_compiled, 1.0),
    "fluxnb (general engine)": (fluxnb_general, 0.2),
    "pm4py semantics": (pm4py_semantics, 0.05),
    "snakes": (snakes_game, 0.02),
}


def measure(fn: Callable[[int], int], n: int, repeat: int = 3) -> float:
    """Best firings/s of ``repeat`` runs of ``n`` firings (after a small warm-up)."""
    fn(min(n, 1000))
    best = 0.0
    for _ in range(repeat):
        t = time.perf_counter()
        fired = fn(n)
        best = max(best, fired / (time.perf_counter() - t))
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--firings", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    rates: dict[str, float] = {}
    for name, (fn, share) in GAMES.items():
        try:
            rates[name] = measure(fn, max(1000, int(args.firings * share)))
        except ImportError as exc:
            print(f"{name}: not installed ({exc.name}); pip install pm4py snakes to compare")
    ours = rates["fluxnb (compiled)"]
    print(f"{'game':26} {'firings/s':>12} {'fluxnb compiled is':>20}")
    for name, rate in rates.items():
        ratio = "" if name == "fluxnb (compiled)" else f"{ours / rate:>18.1f}x"
        print(f"{name:26} {rate:>12,.0f} {ratio:>20}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Why a net run went round in circles: were all its choices made the same way?

A run that stops at ``max_firings`` on a net with a free choice and a loop (a review that can
be sent back, a request that can be reinitiated) usually took the loop every time: conflicts
go by priority, then declared order, so the first-declared branch always wins. This module
tells that from the firing sequence alone, so the engine and the compiled token game need no
bookkeeping while they run: walking the sequence backwards from the end marking gives the
marking before each firing, and with it which rivals (transitions sharing an input place)
were enabled as well — a choice — and which one was taken.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._plural import plural
from ..spec import Net, Transition
from ..spec._net import label, transition_names

#: Firings looked at, from the end of the run (the cost stays bounded on long runs).
LOOK_BACK = 100_000


def same_choices(
    net: Net,
    end: Sequence[int],
    sequence: Sequence[int],
    excluded: set[int] | frozenset[int] = frozenset(),
) -> str | None:
    """A sentence saying that every choice of the run went the same way, naming them; None
    when some choice went two ways, when there was no choice, or when the sequence cannot
    be replayed backwards from ``end`` (tokens were put by hand).

    ``excluded``: transitions that could not have been chosen (external, blocked). Rivals
    with a guard are left out too: whether it held then is not known from counts.
    """
    if not sequence:
        return None
    trs = net.transitions
    delta: list[list[tuple[int, int]]] = []
    for t in trs:
        d: dict[int, int] = {}
        for a in t.inputs:
            d[a.place] = d.get(a.place, 0) - a.weight
        for a in t.outputs:
            d[a.place] = d.get(a.place, 0) + a.weight
        delta.append([(p, x) for p, x in d.items() if x])
    consumers: dict[int, set[int]] = {}
    for ti, t in enumerate(trs):
        for a in t.inputs:
            consumers.setdefault(a.place, set()).add(ti)
    candidates = [
        ti for ti, t in enumerate(trs) if ti not in excluded and t.guard is None and not t.external
    ]
    rivals = [
        sorted({r for a in t.inputs for r in consumers[a.place] if r != ti} & set(candidates))
        for ti, t in enumerate(trs)
    ]
    if not any(rivals):  # no choice was ever possible: nothing to walk back through
        return None
    m = list(end)
    chosen: dict[frozenset[int], dict[int, int]] = {}
    first = max(0, len(sequence) - LOOK_BACK)
    for i in range(len(sequence) - 1, first - 1, -1):
        ti = sequence[i]
        for p, x in delta[ti]:
            m[p] -= x
            if m[p] < 0:
                return None  # not a plain replay (tokens put by hand)
        options = [r for r in rivals[ti] if _enabled(trs[r], m)]
        if options:
            taken = chosen.setdefault(frozenset((ti, *options)), {})
            taken[ti] = taken.get(ti, 0) + 1
    if not chosen or any(len(taken) > 1 for taken in chosen.values()):
        return None
    names = transition_names(net)
    ids = [t.id for t in trs]
    parts = []
    for key, taken in sorted(chosen.items(), key=lambda kv: -sum(kv[1].values())):
        ((ti, n),) = taken.items()
        others = " or ".join(label(ids[r], names) for r in sorted(key - {ti}))
        parts.append(f"{label(ids[ti], names)} over {others}, {plural(n, 'time')}")
    scope = "" if first == 0 else f" (in the last {LOOK_BACK:,} firings)"
    return (
        f"every choice went the same way{scope}: {'; '.join(parts)} — so the run took the "
        "same loop every time; use choice: random (fluxnb run --choice random --seed N) or "
        "priorities to take the other branches"
    )


def _enabled(t: Transition, m: list[int]) -> bool:
    return all(m[a.place] >= a.weight for a in t.inputs) and all(
        m[a.place] < a.weight for a in t.inhibitors
    )

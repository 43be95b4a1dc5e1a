"""The pure token game of a black-token net, compiled to one Python function.

A net whose transitions have no actions, no guards and no token data needs nothing but
token counts. Its game is generated as a single function that keeps every place's count
in a local variable and tries the transitions in conflict order (priority, then declared
order) with plain integer comparisons: no dicts, no objects, no task per firing. The
firing sequence goes into a preallocated array of transition indices.

The general engine (``_net_run``) plays the same game with the same conflict order; a
property test checks that the two agree firing for firing.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable

from ..spec import Net

#: Nets with more transitions than this use the general engine: the compiled game tries
#: transitions in order, so its cost per firing grows with their number.
MAX_COMPILED = 64

#: Why a compiled game stopped.
LIMIT, DEAD, FINAL = 0, 1, 2

Game = Callable[[list[int], int, array], tuple[int, int]]


def compilable(net: Net) -> bool:
    """Whether ``net`` runs on the compiled game in automatic mode."""
    return (
        len(net.transitions) <= MAX_COMPILED
        and net.choice == "priority"
        and not net.tokens
        and all(t.run is None and t.guard is None and not t.external for t in net.transitions)
    )


def conflict_order(net: Net) -> list[int]:
    """Transition indices in the order conflicts are resolved: priority, then declared."""
    return sorted(range(len(net.transitions)), key=lambda i: -net.transitions[i].priority)


def compile_game(net: Net) -> Game:
    """``game(marking, limit, log) -> (firings, why)``; updates ``marking`` in place.

    Fires at most ``limit`` times (``limit <= len(log)``), writing transition indices
    to ``log[0:firings]``; ``why`` is LIMIT, DEAD (nothing enabled) or FINAL.
    """
    n = len(net.places)
    var = [f"p{i}" for i in range(n)]
    finals = [[m.get(p, 0) for p in range(n)] for m in net.final_markings()]
    final = finals or None
    is_final = " or ".join(
        "(" + " and ".join(f"{v} == {x}" for v, x in zip(var, f, strict=True)) + ")" for f in finals
    )
    lines = ["def game(m, limit, log):"]
    if n:
        lines.append(f"    {', '.join(var)}, = m")
    lines.append("    k = 0")
    lines.append("    why = 0")
    if final is not None:
        lines += [f"    if {is_final}:", "        return 0, 2"]
    lines.append("    while k < limit:")
    for ti in conflict_order(net):
        t = net.transitions[ti]
        need: dict[int, int] = {}
        for a in t.inputs:
            need[a.place] = need.get(a.place, 0) + a.weight
        conds = [f"{var[p]} >= {w}" for p, w in need.items()]
        conds += [f"{var[a.place]} < {a.weight}" for a in t.inhibitors]
        delta: dict[int, int] = {}
        for p, w in need.items():
            delta[p] = delta.get(p, 0) - w
        for a in t.outputs:
            delta[a.place] = delta.get(a.place, 0) + a.weight
        lines.append(f"        if {' and '.join(conds) or 'True'}:  # {t.id}")
        for p, d in delta.items():
            if d:
                lines.append(f"            {var[p]} {'+' if d > 0 else '-'}= {abs(d)}")
        lines.append(f"            log[k] = {ti}")
        lines.append("            k += 1")
        if final is not None:
            lines += [
                f"            if {is_final}:",
                "                why = 2",
                "                break",
            ]
        lines.append("            continue")
    lines.append("        why = 1")
    lines.append("        break")
    if n:
        lines.append(f"    m[:] = ({', '.join(var)},)")
    lines.append("    return k, why")
    code = "\n".join(lines)
    scope: dict[str, object] = {}
    exec(compile(code, f"<token game of {net.name}>", "exec"), scope)
    game = scope["game"]
    game.source = code  # type: ignore[attr-defined]
    return game  # type: ignore[return-value]

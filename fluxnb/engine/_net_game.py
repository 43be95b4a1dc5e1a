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
from collections.abc import Callable, Sequence
from typing import Any

from ..spec import Guard, GuardError, Net

#: Nets with more transitions than this use the general engine: the compiled game tries
#: transitions in order, so its cost per firing grows with their number.
MAX_COMPILED = 64

#: Why a compiled game stopped.
LIMIT, DEAD, FINAL = 0, 1, 2

Game = Callable[[list[int], int, array], tuple[int, int]]
Game2 = Callable[[list[Any], list[Any], int, array], tuple[int, int]]


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
        lines.append(f"        if {' and '.join(conds) or 'True'}:  # {t.id!r}")
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


# ---------------------------------------------------------------------- coloured nets
#: A coloured game stopped because a guard could not be evaluated (its error is in state[2]).
GUARD_FAILED = 3


def coloured_compilable(net: Net) -> bool:
    """Whether ``net`` runs on the compiled coloured game in automatic mode: token data and
    guards, but no actions, no ``external`` transitions, ``choice: priority``, at most
    :data:`MAX_COMPILED` transitions, and no transition with two arcs from one place."""
    return (
        len(net.transitions) <= MAX_COMPILED
        and net.choice == "priority"
        and all(
            t.run is None and not t.external and len({a.place for a in t.inputs}) == len(t.inputs)
            for t in net.transitions
        )
    )


def compile_coloured(net: Net, guards: Sequence[Guard | None], clock: Callable[[], int]) -> Game2:
    """``game(places, state, limit, log) -> (firings, why)`` over coloured tokens.

    ``places`` holds one deque per place of ``(data, id, trail)`` tuples (a token; ``trail``
    in ``Token``'s format), changed in place; ``state`` is ``[firings so far, last token id,
    error]``. The game is the general engine's, step for step: transitions in conflict order;
    a guarded one tries its first input place's tokens oldest first and takes the first
    the guard accepts, the other input places give their oldest tokens; the produced tokens
    carry the first consumed token's data and continue its history; a pick is made before
    the firing limit is checked (so a guard that fails at the limit fails the run, as in the
    engine). ``clock()`` is read once per firing for the history (``Token``'s format:
    ``time.perf_counter_ns``).
    """
    n = len(net.places)
    scope: dict[str, object] = {"GuardError": GuardError, "_ns": clock}
    finals = [[m.get(p, 0) for p in range(n)] for m in net.final_markings()]
    is_final = " or ".join(
        "(" + " and ".join(f"len(q{p}) == {x}" for p, x in enumerate(f)) + ")" for f in finals
    )
    lines = ["def game(P, state, limit, log):"]
    if n:
        lines.append(f"    {''.join(f'q{p}, ' for p in range(n))}= P")
    lines += ["    seq, nid = state[0], state[1]", "    k = 0", "    why = 1", "    try:"]
    if finals:
        lines += [f"        if {is_final}:", "            why = 2"]
    lines.append("        while why == 1:")  # why is 1 here unless the start is final
    body: list[str] = []
    for ti in conflict_order(net):
        t = net.transitions[ti]
        guard = guards[ti]
        conds = [
            f"not q{a.place}" if a.weight == 1 else f"len(q{a.place}) < {a.weight}"
            for a in t.inhibitors
        ]
        conds += [
            f"q{a.place}" if a.weight == 1 else f"len(q{a.place}) >= {a.weight}" for a in t.inputs
        ]
        body.append(f"if {' and '.join(conds) or 'True'}:  # {t.id!r}")
        ind = "    "
        if guard is not None:
            body += _pick_lines(net, ti, guard, scope, ind)
            body.append(f"{ind}if i >= 0:")
            ind += "    "
        body += _fire_lines(net, ti, guard is not None, ind, is_final)
        body.append(f"{ind}continue")
    body += ["break"]
    lines += ["            " + line for line in body]
    lines += [
        "    except GuardError as exc:",
        "        state[2] = exc",
        f"        why = {GUARD_FAILED}",
        "    state[0], state[1] = seq, nid",
        "    return k, why",
    ]
    code = "\n".join(lines)
    scope["__builtins__"] = {"range": range, "len": len, "Exception": Exception}
    exec(compile(code, f"<coloured token game of {net.name}>", "exec"), scope)
    game = scope["game"]
    game.source = code  # type: ignore[attr-defined]
    return game  # type: ignore[return-value]


def _fire_lines(net: Net, ti: int, guarded: bool, ind: str, is_final: str) -> list[str]:
    """Lines firing transition ``ti`` (its tokens picked: the heads, or index ``i`` of the
    first input place when ``guarded``), as the general engine's ``fire`` does."""
    t = net.transitions[ti]
    names = net.places
    first = t.inputs[0] if t.inputs else None
    body: list[str] = []
    body += [f"{ind}if k >= limit:", f"{ind}    why = 0", f"{ind}    break"]
    if first is None:
        body += [f"{ind}d = None", f"{ind}par = None"]
    else:
        q, w = f"q{first.place}", first.weight
        if not guarded:
            body += [f"{ind}c = {q}[0]"] + [f"{ind}{q}.popleft()"] * w
        else:
            body += [
                f"{ind}c = {q}[i]",
                f"{ind}if i:",
                *[f"{ind}    del {q}[i]"] * w,
                f"{ind}else:",
                *[f"{ind}    {q}.popleft()"] * w,
            ]
        body += [f"{ind}d = c[0]", f"{ind}par = c[2]"]
    for a in t.inputs[1:]:
        body += [f"{ind}q{a.place}.popleft()"] * a.weight
    body.append(f"{ind}seq += 1")
    if t.outputs:
        body.append(f"{ind}at = _ns()")
    for a in t.outputs:
        body.append(f"{ind}tr = ({t.id!r}, seq, {names[a.place]!r}, at, par)")
        for _ in range(a.weight):
            body += [f"{ind}nid += 1", f"{ind}q{a.place}.append((d, nid, tr))"]
    body += [f"{ind}log[k] = {ti}", f"{ind}k += 1"]
    if is_final:
        body += [f"{ind}if {is_final}:", f"{ind}    why = 2", f"{ind}    break"]
    return body


def _pick_lines(net: Net, ti: int, guard: Guard, scope: dict[str, object], ind: str) -> list[str]:
    """Lines setting ``i`` to the index of the first token of the transition's first input
    place its guard accepts (-1: none), as the general engine's ``_bind`` chooses."""
    t = net.transitions[ti]
    names = net.places
    first = t.inputs[0] if t.inputs else None
    body: list[str] = []
    g = f"g{ti}"
    scope[g] = guard.function
    code = guard.code(f"g{ti}_")
    if code is not None:
        scope.update(code.scope)

    def test(token: str, tokens: str, ind: str, g: str = g, code: Any = code) -> list[str]:
        """Lines setting ``ok`` to the guard's answer: inline when compiled, and
        the guard itself (its interpreter's answer or GuardError) on any error."""
        if code is None:
            return [f"{ind}ok = {g}({token}, {tokens})"]
        return [
            f"{ind}token = {token}",
            *([f"{ind}tokens = {tokens}"] if tokens != "None" else []),
            f"{ind}try:",
            f"{ind}    ok = True if {code.source} else False",
            f"{ind}except Exception:",
            f"{ind}    ok = {g}(token, {'None' if tokens == 'None' else 'tokens'})",
        ]

    if first is None:
        body += test("None", "{}", ind)
        body += [f"{ind}i = 0 if ok else -1"]
    else:
        q, w = f"q{first.place}", first.weight

        def view(at: str, q: str = q, w: int = w, t: Any = t, guard: Guard = guard) -> str:
            if not guard.uses_tokens:
                return "None"
            first = t.inputs[0]
            items = [f"{names[first.place]!r}: {_data(q, at, w)}"]
            items += [
                f"{names[a.place]!r}: {_data(f'q{a.place}', '0', a.weight)}" for a in t.inputs[1:]
            ]
            return "{" + ", ".join(items) + "}"

        body += [
            *test(f"{q}[0][0]", view("0"), ind),
            f"{ind}if ok:",
            f"{ind}    i = 0",
            f"{ind}else:",
            f"{ind}    i = -1",
            f"{ind}    for j in range(1, len({q}) - {w - 1}):",
            *test(f"{q}[j][0]", view("j"), ind + "        "),
            f"{ind}        if ok:",
            f"{ind}            i = j",
            f"{ind}            break",
        ]
    return body


def _data(q: str, at: str, w: int) -> str:
    """The data a guard sees of ``w`` tokens of queue ``q`` from index ``at``."""
    if w == 1:
        return f"{q}[{at}][0]"
    return "[" + ", ".join(f"{q}[{at} + {j}][0]" for j in range(w)) + "]"

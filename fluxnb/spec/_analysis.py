"""What can a net do? Reachability, boundedness, deadlocks, liveness, soundness.

One exploration answers everything: a breadth-first Karp-Miller coverability graph. For a
bounded net its nodes are exactly the reachable markings (so the same pass counts them, finds
dead markings with a shortest witness, and builds the graph for liveness); for an unbounded
net, ω (``OMEGA``) marks the places that grow without limit and the exploration still ends.

Markings are stored compactly, once, in a dict: one int per marking (a bit per place) for
safe nets, ``bytes`` while every count fits in 0..255, else tuples; edges in flat arrays. In
the general search the acceleration check against ancestors is skipped in O(1) when no
ancestor holds fewer tokens in all, and otherwise walks up the path only while the path's
per-place minima still allow an ancestor to be covered (so a marking that merely grows costs
O(places), not O(depth): see ``_accelerate``); the search of a safe net needs none while it
runs (see ``_explore_safe``), and past 2,000 markings expands a chunk of nodes at a time with
numpy (``_safe_vector``). What is derived from the net's structure alone (bit masks,
workflow-net places) is computed once per Net object.

Semantics: P/T nets with arc weights and inhibitor arcs; guards and token data are ignored
(the analysis over-approximates a net whose guards block firings).

Why over 400 lines: one exploration answers every question (bounds, deadlock, liveness,
soundness); its hot loops and the answers share the graph's flat arrays.
"""

from __future__ import annotations

import gc
import sys
import time
import weakref
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import compress, count, islice
from operator import eq, gt, le
from typing import Any

from .._exceptions import FluxError
from .._plural import plural
from ._net import Net, label, transition_names

OMEGA = 1 << 62  # "as many as you like": larger than any real count


class StateBudgetExceeded(FluxError):
    """The exploration met more markings than allowed (``max_states``)."""

    def __init__(self, limit: int, checks: int | None = None) -> None:
        self.limit = limit
        #: Set when the coverability checks ran out instead (``WORK_PER_STATE`` x limit).
        self.checks = checks
        if checks is None:
            what = f"the net has more than {limit:,} reachable markings (the state budget)"
        else:
            what = (
                f"the coverability search made {checks:,} ancestor checks, the most "
                f"max_states = {limit:,} allows ({WORK_PER_STATE} per marking): the net's "
                "counts grow along long paths, which makes Karp-Miller slow"
            )
        super().__init__(f"{what}; raise max_states / --max-states, or analyse a smaller instance")


#: Ancestor checks of the Karp-Miller search allowed per marking of the state budget, so
#: ``max_states`` bounds the search's time as well as its memory (a net whose counts grow
#: along long paths costs O(depth) checks per marking).
WORK_PER_STATE = 64


class AnalysisTimeout(FluxError):
    """The analysis ran past its ``timeout`` (seconds); ``markings`` were found by then."""

    def __init__(self, timeout: float, markings: int) -> None:
        self.timeout = timeout
        self.markings = markings
        super().__init__(
            f"the analysis ran past its timeout of {timeout:g} s ({markings:,} markings "
            "found by then); raise timeout= / --timeout, or lower max_states / --max-states "
            "to give up sooner on nets too big to explore"
        )


class _Deadline:
    """When an analysis must give up (``time.monotonic()`` seconds), checked every
    ``_TICK`` markings of a search and between its phases."""

    __slots__ = ("at", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.at = time.monotonic() + timeout

    def check(self, markings: int) -> None:
        if time.monotonic() > self.at:
            raise AnalysisTimeout(self.timeout, markings)


@dataclass
class Analysis:
    """The answers (see ``to_json`` for the CLI's keys). None means "not decided"."""

    places: int
    transitions: int
    arcs: int
    bounded: bool
    bound: int | None
    reachable_markings: int | None
    deadlock: bool | None
    dead_transitions: list[str]
    live: bool | None
    workflow_net: bool
    sound: bool | None
    notes: list[str] = field(default_factory=list)
    #: A shortest firing sequence from the initial marking to a deadlock, if any.
    witness: list[str] | None = None
    #: Transitions that can fire again from every reachable marking (bounded nets).
    live_transitions: list[str] = field(default_factory=list)
    edges: int | None = None
    #: Display names (PNML ``<name>``) by transition id, for those that have one.
    transition_names: dict[str, str] = field(default_factory=dict)

    def to_json(self, witness: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "places": self.places,
            "transitions": self.transitions,
            "arcs": self.arcs,
            "bounded": self.bounded,
            "bound": self.bound,
            "reachable_markings": self.reachable_markings,
            "deadlock": self.deadlock,
            "dead_transitions": sorted(self.dead_transitions),
            "live": self.live,
            "workflow_net": self.workflow_net,
            "sound": self.sound,
        }
        if self.notes:
            out["notes"] = list(self.notes)
        if witness:
            out["witness"] = self.witness
        if self.transition_names:
            out["transition_names"] = dict(self.transition_names)
        return out

    def to_frame(self) -> Any:
        import pandas as pd

        row = self.to_json()
        return pd.DataFrame(
            [{k: v for k, v in row.items() if k not in ("notes", "transition_names")}]
        )


class _Firing:
    """Per transition: what it needs, what it must not see, and what it changes."""

    __slots__ = ("delta", "inhibit", "need", "tid")

    def __init__(self, net: Net, ti: int) -> None:
        t = net.transitions[ti]
        self.tid = t.id
        need: dict[int, int] = {}
        for a in t.inputs:
            need[a.place] = need.get(a.place, 0) + a.weight
        delta: dict[int, int] = {p: -w for p, w in need.items()}
        for a in t.outputs:
            delta[a.place] = delta.get(a.place, 0) + a.weight
        self.need = tuple(need.items())
        self.inhibit = tuple((a.place, a.weight) for a in t.inhibitors)
        self.delta = tuple((p, d) for p, d in delta.items() if d)

    def fire(self, m: tuple[int, ...]) -> tuple[int, ...] | None:
        for p, w in self.need:
            if m[p] < w:
                return None
        for p, w in self.inhibit:
            if m[p] >= w:  # an ω place always inhibits
                return None
        if not self.delta:
            return m
        new = list(m)
        for p, d in self.delta:
            if new[p] != OMEGA:
                new[p] += d
        return tuple(new)


def _successor_function(net: Net) -> Any:
    """A function ``m -> [(transition index, successor marking), ...]`` specialised to
    ``net``: every enabling test and update unrolled into straight-line code.

    The generated source contains only integers (place and transition indices, weights)
    from the net's structure — never a name or any text from the input — so compiling it
    is as safe as a loop over the same numbers, and several times faster. Markings are
    ``bytes`` (hashing a long tuple costs more than the rest of a firing); a count past 255
    raises ValueError and the explorer starts again with tuples. It is valid only for
    ω-free markings; the explorer switches to ``_Firing`` once an ω appears.
    """
    lines = ["def successors(m):", "    out = []"]
    for ti, t in enumerate(net.transitions):
        need: dict[int, int] = {}
        for a in t.inputs:
            need[a.place] = need.get(a.place, 0) + int(a.weight)
        delta: dict[int, int] = {p: -w for p, w in need.items()}
        for a in t.outputs:
            delta[a.place] = delta.get(a.place, 0) + int(a.weight)
        conds = [f"m[{p}]" if w == 1 else f"m[{p}] >= {w}" for p, w in need.items()]
        conds += [f"m[{a.place}] < {int(a.weight)}" for a in t.inhibitors]
        test = " and ".join(conds) or "True"
        changes = [(p, d) for p, d in delta.items() if d]
        lines.append(f"    if {test}:")
        if not changes:
            lines.append(f"        out.append(({ti}, m))")
            continue
        lines.append("        n = bytearray(m)")  # compact markings: counts of 0..255
        for p, d in changes:
            lines.append(f"        n[{p}] {'+' if d > 0 else '-'}= {abs(d)}")
        lines.append(f"        out.append(({ti}, bytes(n)))")
    lines.append("    return out")
    namespace: dict[str, Any] = {}
    exec(
        compile("\n".join(lines), f"<successors of {len(net.transitions)} transitions>", "exec"),
        namespace,
    )
    return namespace["successors"]


_SafeSpec = tuple[int, int, int, int, int, int]


def _safe_transitions(net: Net) -> list[_SafeSpec] | None:
    """(index, pre, post, inhibit, added, token growth) per transition, places as bit masks;
    None if the net has weights or doubled arcs that bits cannot express."""
    spec: list[_SafeSpec] | None = _derived(net, _bit_masks)
    return spec


def _derived(net: Net, compute: Any) -> Any:
    """``compute(net)``, computed once per Net object: what it derives depends only on the
    places and transitions, which are immutable (as a peer builds its own net object once)."""
    key = id(net)
    held = _DERIVED.get(key)
    if held is None or held[0]() is not net:

        def forget(_: object) -> None:
            _DERIVED.pop(key, None)

        held = _DERIVED[key] = (weakref.ref(net, forget), {})
    memo = held[1]
    if compute not in memo:
        memo[compute] = compute(net)
    return memo[compute]


#: id(net) -> (a weak reference to the net, its derived structures); leaves with its net.
_DERIVED: dict[int, tuple[Any, dict[Any, Any]]] = {}


def _bit_masks(net: Net) -> list[_SafeSpec] | None:
    out = []
    for ti, t in enumerate(net.transitions):
        pre = post = inhibit = 0
        for a in t.inputs:
            if a.weight != 1 or pre >> a.place & 1:
                return None  # two arcs on one place: weight 2 in effect
            pre |= 1 << a.place
        for a in t.outputs:
            if a.weight != 1 or post >> a.place & 1:
                return None
            post |= 1 << a.place
        for a in t.inhibitors:
            if a.weight != 1:
                return None
            inhibit |= 1 << a.place
        out.append((ti, pre, post, inhibit, post & ~pre, len(t.outputs) - len(t.inputs)))
    return out


def _safe_expander(spec: list[_SafeSpec]) -> Any:
    """``expand(first, last, search, max_states)``: _expand_plain's loop over nodes
    ``first..last-1`` with every transition's test and update unrolled into it (integers
    only; see _successor_function): no successor list, no tuple per edge, no call per node."""
    lines = [
        "def expand(first, last, s, max_states):",
        "    markings, index = s.markings, s.index",
        "    get, add = index.get, markings.append",
        "    to_parent, to_via = s.parent.append, s.via.append",
        "    to_t, to_dst, to_offsets = s.edge_t.append, s.edge_dst.append, s.offsets.append",
        "    n, e = len(markings), len(s.edge_t)",
        "    for node in range(first, last):",
        "        m = markings[node]",
    ]
    for ti, pre, post, inhibit, added, _ in spec:
        test = f"m & {pre} == {pre}" if pre else "True"
        if inhibit:
            test += f" and not m & {inhibit}"
        lines.append(f"        if {test}:")
        if added:
            lines.append(f"            if m & {added}:")
            lines.append("                raise ValueError('not safe')")
        lines += [
            f"            new = m ^ {pre ^ post}",  # m holds pre, none of post - pre
            "            j = get(new)",
            "            if j is None:",
            "                j = n",
            "                if j >= max_states:",
            "                    raise StateBudgetExceeded(max_states)",
            "                index[new] = j",
            "                n += 1",
            "                add(new)",
            "                to_parent(node)",
            f"                to_via({ti})",
            f"            to_t({ti})",
            "            to_dst(j)",
            "            e += 1",
        ]
    lines.append("        to_offsets(e)")
    namespace: dict[str, Any] = {"StateBudgetExceeded": StateBudgetExceeded}
    exec(  # generated from integers only (see _successor_function)
        compile("\n".join(lines), "<safe expansion>", "exec"), namespace
    )
    return namespace["expand"]


_COMPILE_AFTER = 2000  # markings explored before generated code pays for its compilation
_CHUNK = 65_536  # markings expanded between two calls of a progress callback
_TICK = 2048  # markings expanded between two looks at the clock (with a timeout)
_VECTOR_AFTER = 32_768  # markings found before a search imports numpy (~0.1 s) for itself
_VECTOR_NODES = 16_384  # nodes per chunk of the numpy search (without a timeout)
_VECTOR_PLACES = 64  # the numpy search holds a marking in a uint64

#: Told the number of markings found so far, now and then during a long exploration.
Progress = Callable[[int], None]


@dataclass
class _Graph:
    """The explored graph, compactly: markings (``bytes`` when every count fits in 0..255,
    else tuples) and edges in three flat arrays, node k's edges at ``offsets[k]:offsets[k+1]``
    (breadth-first search finishes nodes in index order, so this costs nothing)."""

    markings: list[Any]  # bytes, tuples, or ints (one bit per place: safe nets)
    parent: Sequence[int]
    via: Sequence[int]  # transition index that led to each node (-1 for the root)
    offsets: Sequence[int]
    edge_t: Sequence[int]
    edge_dst: Sequence[int]
    unbounded: bool

    def out(self, v: int) -> range:
        return range(self.offsets[v], self.offsets[v + 1])

    places: int = 0

    def marking(self, v: int) -> tuple[int, ...]:
        m = self.markings[v]
        if isinstance(m, int):
            return tuple((m >> p) & 1 for p in range(self.places))
        return tuple(m)

    def key(self, marking: tuple[int, ...]) -> Any:
        """``marking`` in the form the graph stores."""
        sample = self.markings[0]
        if isinstance(sample, int):
            return sum(1 << p for p, x in enumerate(marking) if x)
        return type(sample)(marking)

    def bound(self) -> int:
        sample = self.markings[0]
        if isinstance(sample, int):
            return 1 if any(self.markings) else 0
        return max((max(m) for m in self.markings if m), default=0)


def explore(
    net: Net,
    initial: tuple[int, ...] | None = None,
    max_states: int = 1_000_000,
    progress: Progress | None = None,
    deadline: _Deadline | None = None,
) -> _Graph:
    """The Karp-Miller coverability graph by breadth-first search (see the module doc).

    The collector is paused while it runs: the search allocates millions of small objects
    and no cycles, and in a kernel holding pandas and friends each full collection walks
    the whole heap for nothing.
    """
    start = tuple(initial if initial is not None else net.initial)
    paused = gc.isenabled()
    gc.disable()
    try:
        spec = _safe_transitions(net) if max(start, default=0) <= 1 else None
        if spec is not None:
            bits = sum(1 << p for p, x in enumerate(start) if x)
            try:
                return _explore_safe(spec, bits, max_states, len(net.places), progress, deadline)
            except ValueError:  # a place got a second token: bytes from the start
                pass
        if max(start, default=0) < 256:
            try:
                fast = _successor_function(net)
                return _explore(net, bytes(start), max_states, fast, progress, deadline)
            except ValueError:  # a count left 0..255, or an ω appeared: tuples from the start
                pass
        return _explore(net, start, max_states, None, progress, deadline)
    finally:
        if paused:
            gc.enable()


@dataclass
class _BitSearch:
    """The state of a breadth-first search over bit markings. Nodes are numbered in the
    order they are found, so the queue is just a counter: node k is expanded once
    ``offsets`` has k + 1 entries."""

    index: dict[int, int]
    markings: list[int]
    parent: Any  # lists of int, arrays once the search is big
    via: Any
    offsets: Any = field(default_factory=lambda: [0])
    edge_t: Any = field(default_factory=list)
    edge_dst: Any = field(default_factory=list)


def _explore_safe(
    spec: list[_SafeSpec],
    start: int,
    max_states: int,
    places: int,
    progress: Progress | None = None,
    deadline: _Deadline | None = None,
) -> _Graph:
    """The search for a safe net, markings as bit sets (ValueError once a place would hold
    two tokens).

    No Karp-Miller check is needed while it runs: bit markings are finitely many, and an
    unbounded net reaches a marking with two tokens in a place through safe markings, which
    this search explores first. Only when the state budget runs out is the partial graph
    checked for a marking that strictly covers one of its ancestors (growth without limit),
    so an unbounded net is still told from a big one.

    The first ``_COMPILE_AFTER`` nodes are expanded by a plain loop over the transitions (no
    set-up cost: small nets finish here); a bigger net of up to 64 places continues a chunk
    of nodes at a time with numpy (``_safe_vector``: the dict of markings was most of a big
    search's time), others with generated code (``_safe_expander``), whose compilation then
    pays for itself. Where numpy is not imported yet (a fresh process), generated code goes
    on until ``_VECTOR_AFTER`` markings, so a mid-size net does not wait for the import.
    """
    search = s = _BitSearch({start: 0}, [start], [-1], [-1])
    try:
        _expand_plain(search, spec, max_states)
        if len(s.offsets) <= len(s.markings):  # a big net: flat arrays (a fifth of the memory)
            s.parent, s.via, s.offsets, s.edge_t, s.edge_dst = (
                array("q", c) for c in (s.parent, s.via, s.offsets, s.edge_t, s.edge_dst)
            )
            vector = places <= _VECTOR_PLACES
            until = (0 if "numpy" in sys.modules else _VECTOR_AFTER) if vector else None
            _expand_compiled(search, spec, max_states, progress, deadline, until)
            if len(s.offsets) <= len(s.markings) and not _expand_vector(
                search, spec, max_states, progress, deadline
            ):
                raise StateBudgetExceeded(max_states)
    except StateBudgetExceeded:
        if any(grow > 0 for *_, grow in spec) and _covers_an_ancestor(s.markings, s.parent):
            raise ValueError("tokens grow without limit: not a safe net") from None
        raise
    return _Graph(s.markings, s.parent, s.via, s.offsets, s.edge_t, s.edge_dst, False, places)


def _plain_steps(spec: list[_SafeSpec]) -> list[tuple[int, tuple[int, int, int, int]]]:
    """What _expand_plain's loop reads per transition: the places it needs (the test, read
    alone: most fail), then index, flip, blocked, inhibit. ``blocked`` is "inhibited or not
    safe" in one test (rare: told apart only then); where it is clear, firing is one xor,
    ``flip`` (the places it empties and those it fills)."""
    return [(pre, (ti, pre ^ post, inh | added, inh)) for ti, pre, post, inh, added, _ in spec]


def _expand_plain(search: _BitSearch, spec: list[_SafeSpec], max_states: int) -> None:
    s = search
    index, markings, parent, via = s.index, s.markings, s.parent, s.via
    offsets, edge_t, edge_dst = s.offsets, s.edge_t, s.edge_dst
    steps = _plain_steps(spec)
    for node, m in enumerate(markings):  # the list grows as the search goes
        if node == _COMPILE_AFTER:
            return
        for pre, step in steps:
            if m & pre != pre:
                continue
            ti, flip, blocked, inhibit = step
            if m & blocked:
                if m & inhibit:
                    continue
                raise ValueError("not safe")
            new = m ^ flip
            j = index.get(new)
            if j is None:
                j = len(markings)
                if j >= max_states:
                    raise StateBudgetExceeded(max_states)
                index[new] = j
                markings.append(new)
                parent.append(node)
                via.append(ti)
            edge_t.append(ti)
            edge_dst.append(j)
        offsets.append(len(edge_t))


def _expand_compiled(
    search: _BitSearch,
    spec: list[_SafeSpec],
    max_states: int,
    progress: Progress | None = None,
    deadline: _Deadline | None = None,
    until: int | None = None,
) -> None:
    """The same as _expand_plain (keep the two in step), the enabling tests generated. Nodes
    are expanded in chunks of ``_CHUNK`` (a range per chunk costs less than a counter per
    node; ``_TICK`` with a deadline, checked after each), ``progress`` hearing the count of
    markings found every ``_CHUNK``. Stops early once ``until`` markings are found."""
    s = search
    markings = s.markings
    first = len(s.offsets) - 1
    step = _CHUNK if deadline is None else _TICK
    report = first + _CHUNK
    until = sys.maxsize if until is None else until
    expand = None
    while first < len(markings) < until:
        expand = expand or _safe_expander(spec)
        last = min(len(markings), first + step)
        expand(first, last, s, max_states)
        first = last
        if deadline is not None:
            deadline.check(len(markings))
        if progress is not None and (last >= report or first >= len(markings)):
            report = last + _CHUNK
            progress(len(markings))


def _expand_vector(
    search: _BitSearch,
    spec: list[_SafeSpec],
    max_states: int,
    progress: Progress | None = None,
    deadline: _Deadline | None = None,
) -> bool:
    """The rest of the search a chunk of nodes at a time (``_safe_vector``; generated code if
    numpy cannot be imported). False when the state budget runs out."""
    try:
        from . import _safe_vector
    except ImportError:  # numpy comes with pandas; without it, the generated code
        _expand_compiled(search, spec, max_states, progress, deadline)
        return True
    report = len(search.markings) + _CHUNK

    def tick(found: int) -> None:
        nonlocal report
        if deadline is not None:
            deadline.check(found)
        if progress is not None and found >= report:
            report = found + _CHUNK
            progress(found)

    nodes = _VECTOR_NODES if deadline is None else _TICK
    done = _safe_vector.expand(search, spec, max_states, tick, nodes)
    if done and progress is not None:
        progress(len(search.markings))
    return done


def _explore(
    net: Net,
    start: Any,
    max_states: int,
    fast: Any,
    progress: Progress | None = None,
    deadline: _Deadline | None = None,
) -> _Graph:
    """The search for markings as bytes (``fast``: generated successors) or tuples.

    ``lows[v]``, once needed, is the per-place minimum of the markings on the path from the
    root to ``v``: the walk up the path for Karp-Miller stops as soon as one place of the new
    marking holds fewer tokens than that (no ancestor further up can be covered). Computed
    lazily and only on paths where the token count grows, so most nets never pay for it."""
    firings = [_Firing(net, i) for i in range(len(net.transitions))]
    token_delta = [sum(d for _, d in f.delta) for f in firings]
    successors = fast or partial(_generic_successors, firings)
    index: dict[Any, int] = {start: 0}
    markings = [start]
    parent, via = array("q", [-1]), array("q", [-1])
    sums, minsum = [sum(start)], [sum(start)]
    lows: list[Any] = [tuple(start)]
    offsets, edge_t, edge_dst = array("q", [0]), array("q"), array("q")
    unbounded = False
    work = _Work(max_states, progress, deadline)
    queue = deque([0])
    while queue:
        node = queue.popleft()
        if not node % _TICK and (progress is not None or deadline is not None):
            _tick(node, len(markings), progress, deadline)
        m = markings[node]
        msum = sums[node]
        floor = minsum[node]
        for ti, produced in successors(m):
            new = produced
            j = index.get(new)
            if j is None:
                s_new = msum + token_delta[ti] if not unbounded else sum(new)
                if floor < s_new:  # an ancestor may be strictly covered: Karp-Miller
                    accelerated = _accelerate(tuple(new), node, markings, parent, sums, lows, work)
                    work.check(len(markings))
                    if OMEGA in accelerated:  # ω appeared (only in tuple mode)
                        if fast is not None:
                            raise ValueError("unbounded: continue with tuples")
                        new = accelerated
                        unbounded = True
                        s_new = sum(new)
                        j = index.get(new)
                if j is None:
                    j = len(markings)
                    if j >= max_states:
                        raise StateBudgetExceeded(max_states)
                    index[new] = j
                    markings.append(new)
                    parent.append(node)
                    via.append(ti)
                    sums.append(s_new)
                    minsum.append(floor if floor < s_new else s_new)
                    lows.append(None)
                    queue.append(j)
            edge_t.append(ti)
            edge_dst.append(j)
        offsets.append(len(edge_t))
    return _Graph(markings, parent, via, offsets, edge_t, edge_dst, unbounded, len(net.places))


def _generic_successors(
    firings: list[_Firing], m: tuple[int, ...]
) -> list[tuple[int, tuple[int, ...]]]:
    out = []
    for ti, f in enumerate(firings):
        new = f.fire(m)
        if new is not None:
            out.append((ti, new))
    return out


def _tick(node: int, found: int, progress: Progress | None, deadline: _Deadline | None) -> None:
    """Every ``_TICK`` nodes of a search: the clock, and every ``_CHUNK`` the progress."""
    if deadline is not None:
        deadline.check(found)
    if progress is not None and not node % _CHUNK:
        progress(found)


def _covers_an_ancestor(markings: list[int], parent: Any) -> bool:
    """Does some bit marking strictly cover (hold a strict superset of the places of) one of
    its ancestors? Then tokens grow without limit. Only a path on which the token count
    went up can hold one, so each node carries the fewest tokens on its path from the root
    and most walks are skipped."""
    counts = [m.bit_count() for m in markings]
    floor = counts[:]
    for v in range(1, len(markings)):
        up = floor[parent[v]]
        if up < counts[v]:
            floor[v] = up
            new, a = markings[v], parent[v]
            while a != -1:
                anc = markings[a]
                if anc != new and anc & new == anc:
                    return True
                a = parent[a]
    return False


class _Work:
    """The ancestor checks of a Karp-Miller search: bounded by the state budget (so
    ``max_states`` bounds time too), and a long run of them still meets the deadline."""

    __slots__ = ("budget", "deadline", "done", "limit", "next_tick", "progress")

    def __init__(self, limit: int, progress: Progress | None, deadline: _Deadline | None) -> None:
        self.limit = limit
        self.budget = limit * WORK_PER_STATE
        self.done = 0
        self.next_tick = _TICK
        self.progress = progress
        self.deadline = deadline

    def check(self, found: int) -> None:
        if self.done > self.budget:
            raise StateBudgetExceeded(self.limit, self.done)
        if self.done > self.next_tick and self.deadline is not None:
            self.next_tick = self.done + _TICK
            self.deadline.check(found)


def _accelerate(
    new: tuple[int, ...],
    node: int,
    markings: list[Any],
    parent: Any,
    sums: list[int],
    lows: list[Any],
    work: _Work,
) -> tuple[int, ...]:
    """Karp-Miller: where ``new`` strictly covers an ancestor, its growing places become ω.

    The walk up from ``node`` stops at the first ancestor whose path minimum (``lows``)
    exceeds ``new`` in some place: it and everything above it hold more there, so none can
    be covered. A path along which a place only drains (a counter counting down while
    another fills) thus costs O(places) per marking instead of O(depth)."""
    total = sum(new)
    a = node
    low = _low(node, markings, parent, lows)
    steps = 0
    while a != -1:
        steps += 1
        if any(map(gt, lows[a] if a != node else low, new)):
            break  # no ancestor from here up can be covered
        anc = markings[a]
        if sums[a] < total and all(map(le, anc, new)):
            new = tuple(OMEGA if y > x else y for x, y in zip(anc, new, strict=True))
            total = sum(new)
        a = parent[a]
    work.done += steps
    return new  # the very same object when nothing was accelerated


def _low(node: int, markings: list[Any], parent: Any, lows: list[Any]) -> tuple[int, ...]:
    """The per-place minimum over the path root..node, memoised in ``lows`` (None: not yet
    known) down the whole path, so each node's is computed at most once."""
    chain = []
    v = node
    while lows[v] is None:
        chain.append(v)
        v = parent[v]
    low = lows[v]
    for u in reversed(chain):
        low = lows[u] = tuple(map(min, low, markings[u]))
    result: tuple[int, ...] = low
    return result


def _bottom_sccs(g: _Graph) -> list[list[int]]:
    """Terminal strongly connected components (iterative Tarjan)."""
    n = len(g.markings)
    offsets, dst = g.offsets, g.edge_dst
    index = [-1] * n
    low = [0] * n
    on = [False] * n
    stack: list[int] = []
    comp = [-1] * n
    comps: list[list[int]] = []
    counter = 0
    for root in range(n):
        if index[root] != -1:
            continue
        work = [(root, offsets[root])]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on[root] = True
        while work:
            v, i = work[-1]
            if i < offsets[v + 1]:
                work[-1] = (v, i + 1)
                w = dst[i]
                if index[w] == -1:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on[w] = True
                    work.append((w, offsets[w]))
                elif on[w]:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    u = work[-1][0]
                    low[u] = min(low[u], low[v])
                if low[v] == index[v]:
                    members = []
                    while True:
                        w = stack.pop()
                        on[w] = False
                        comp[w] = len(comps)
                        members.append(w)
                        if w == v:
                            break
                    comps.append(members)
    bottoms = []
    for ci, members in enumerate(comps):
        if all(comp[dst[e]] == ci for v in members for e in range(offsets[v], offsets[v + 1])):
            bottoms.append(members)
    return bottoms


def workflow_places(net: Net) -> tuple[int, int] | None:
    """(source place, sink place) if ``net`` is a workflow net, else None."""
    found: tuple[int, int] | None = _derived(net, _workflow_places)
    return found


def _workflow_places(net: Net) -> tuple[int, int] | None:
    n_p = len(net.places)
    has_in = [False] * n_p
    has_out = [False] * n_p
    for t in net.transitions:
        for a in t.outputs:
            has_in[a.place] = True
        for a in t.inputs:
            has_out[a.place] = True
    sources = [p for p in range(n_p) if not has_in[p]]
    sinks = [p for p in range(n_p) if not has_out[p]]
    if len(sources) != 1 or len(sinks) != 1 or sources == sinks or not net.transitions:
        return None
    i, o = sources[0], sinks[0]
    # every node on a path from i to o <=> strongly connected once o is linked back to i
    nodes = n_p + len(net.transitions)
    fwd: list[list[int]] = [[] for _ in range(nodes)]
    for ti, t in enumerate(net.transitions):
        tn = n_p + ti
        for a in t.inputs:
            fwd[a.place].append(tn)
        for a in t.outputs:
            fwd[tn].append(a.place)
    fwd[o].append(i)
    bwd: list[list[int]] = [[] for _ in range(nodes)]
    for v, ws in enumerate(fwd):
        for w in ws:
            bwd[w].append(v)
    for graph in (fwd, bwd):
        seen = {i}
        todo = [i]
        while todo:
            for w in graph[todo.pop()]:
                if w not in seen:
                    seen.add(w)
                    todo.append(w)
        if len(seen) != nodes:
            return None
    return i, o


def analyze(
    net: Net,
    max_states: int = 1_000_000,
    progress: Progress | None = None,
    timeout: float | None = None,
) -> Analysis:
    """Every answer about ``net`` (see :class:`Analysis`); StateBudgetExceeded past the budget,
    AnalysisTimeout past ``timeout`` seconds.

    ``progress``, if given, hears the number of markings found so far, every ``_CHUNK``
    markings explored (big nets only)."""
    deadline = None if timeout is None else _Deadline(timeout)
    g = explore(net, max_states=max_states, progress=progress, deadline=deadline)
    if deadline is not None:
        deadline.check(len(g.markings))
    ids = [t.id for t in net.transitions]
    fired = set(g.via)  # the transitions that found a marking: often all of them
    if len(fired) <= len(ids):
        fired = set(g.edge_t)
    dead_transitions = [ids[i] for i in range(len(ids)) if i not in fired]
    notes: list[str] = []
    wf = workflow_places(net)
    finals = net.final_markings()
    if not finals and wf is not None:  # a workflow net ends with one token in its sink
        finals = [{wf[1]: 1}]
    offsets = g.offsets
    # nodes without successors, found at C speed (offsets[v] == offsets[v + 1])
    dead_nodes = list(compress(count(), map(eq, offsets, islice(offsets, 1, None))))
    ends = 0  # dead markings that are a final marking: a normal end
    if finals or g.unbounded:  # ω is only in an unbounded net's graph
        real = [v for v in dead_nodes if OMEGA not in g.marking(v)]
        dead_nodes = [v for v in real if not any(_is_final(g.marking(v), f) for f in finals)]
        ends = len(real) - len(dead_nodes)
    if dead_nodes or ends:
        notes.append(_dead_note(net, g, dead_nodes, ends, finals, wf))
    witness = _path(g, dead_nodes[0], ids) if dead_nodes else None
    result = Analysis(
        places=len(net.places),
        transitions=len(ids),
        arcs=net.arc_count,
        bounded=not g.unbounded,
        bound=None,
        reachable_markings=None,
        deadlock=bool(dead_nodes) or None,
        dead_transitions=dead_transitions,
        live=None,
        workflow_net=wf is not None,
        sound=None,
        notes=notes,
        witness=witness,
        edges=len(g.edge_t),
        transition_names=transition_names(net),
    )
    if g.unbounded:
        omega = sorted({net.places[p] for m in g.markings for p, x in enumerate(m) if x == OMEGA})
        notes.append(f"unbounded: places {', '.join(omega)} can hold any number of tokens")
        if result.deadlock is None:
            notes.append(
                "deadlock: undecided for an unbounded net (no dead marking was found "
                "in its coverability graph)"
            )
        notes.append("live: undecided for an unbounded net")
    else:
        result.bound = g.bound()
        result.reachable_markings = len(g.markings)
        result.deadlock = bool(dead_nodes)
        # a reachable dead marking is a bottom component where nothing fires: no transition
        # is live, and the strongly connected components need not be computed
        if deadline is not None:
            deadline.check(len(g.markings))
        live_t = set() if dead_nodes else _live_transitions(g)
        result.live_transitions = sorted(ids[i] for i in live_t)
        result.live = len(live_t) == len(ids)
    if wf is not None:
        if net.initial != tuple(1 if p == wf[0] else 0 for p in range(len(net.places))):
            notes.append(
                "soundness is judged from one token in the source place, not from "
                "the net's own initial marking"
            )
        result.sound = _sound(net, wf, max_states, notes, progress, deadline)
    return result


def _is_final(m: tuple[int, ...], final: dict[int, int]) -> bool:
    return bool(final) and all(m[p] == final.get(p, 0) for p in range(len(m)))


def _shown(net: Net, m: Any) -> str:
    return ", ".join(f"{net.places[p]}={x}" for p, x in enumerate(m) if x) or "no tokens"


def _dead_note(
    net: Net,
    g: _Graph,
    dead: list[int],
    ends: int,
    finals: list[dict[int, int]],
    wf: tuple[int, int] | None,
) -> str:
    """Which dead markings were counted as deadlocks, and why (the ``notes`` line)."""
    if not finals:
        why = (
            "the net declares no final marking and is not a workflow net, so every reachable "
            "marking where nothing can fire counts (declare final: to mark its normal end)"
        )
    else:
        ends_at = " or ".join(
            _shown(net, [f.get(p, 0) for p in range(len(net.places))]) for f in finals
        )
        if net.final_markings():
            why = f"a dead marking equal to the final marking ({ends_at}) is a normal end"
        else:
            assert wf is not None
            why = (
                f"the final marking is the sink place '{net.places[wf[1]]}' marked ({ends_at}), "
                "as this workflow net declares none: a dead marking equal to it is a normal end"
            )
        if ends:
            why += f" ({ends} such reached, not counted)"
    if not dead:
        return f"deadlock: none; {why}"
    first = _shown(net, g.marking(dead[0]))
    return f"deadlock: {plural(len(dead), 'dead marking')} counted (first: {first}); {why}"


def _path(g: _Graph, node: int, ids: list[str]) -> list[str]:  # a shortest one: BFS parents
    seq = []
    while g.parent[node] != -1:
        seq.append(ids[g.via[node]])
        node = g.parent[node]
    return seq[::-1]


def _live_transitions(g: _Graph) -> set[int]:
    bottoms = _bottom_sccs(g)
    live: set[int] | None = None
    for members in bottoms:
        labels = {g.edge_t[e] for v in members for e in g.out(v)}
        live = labels if live is None else live & labels
    return live or set()


def _sound(
    net: Net,
    wf: tuple[int, int],
    max_states: int,
    notes: list[str],
    progress: Progress | None = None,
    deadline: _Deadline | None = None,
) -> bool:
    """Classical soundness from [i] to [o]: option to complete, proper completion, no dead
    transitions."""
    i, o = wf
    start = tuple(1 if p == i else 0 for p in range(len(net.places)))
    g = explore(net, start, max_states, progress, deadline)
    if deadline is not None:
        deadline.check(len(g.markings))
    if g.unbounded:
        notes.append("not sound: unbounded from [source]")
        return False
    final = tuple(1 if p == o else 0 for p in range(len(net.places)))
    fired = set(g.edge_t)
    if len(fired) != len(net.transitions):
        names = transition_names(net)
        never = [label(t.id, names) for k, t in enumerate(net.transitions) if k not in fired]
        notes.append(
            f"not sound: transitions that can never fire from [source]: {', '.join(never)}"
        )
        return False
    final_key = g.key(final)
    for v in range(len(g.markings)):
        if g.markings[v] != final_key and g.marking(v)[o] >= 1:
            notes.append("not sound: a marking puts a token in the sink with others left")
            return False
    # option to complete: every reachable marking reaches [o] (backwards search)
    pred: list[list[int]] = [[] for _ in g.markings]
    for v in range(len(g.markings)):
        for e in g.out(v):
            pred[g.edge_dst[e]].append(v)
    try:
        target = g.markings.index(final_key)
    except ValueError:
        notes.append("not sound: the final marking [sink] is never reached")
        return False
    seen = {target}
    todo = [target]
    while todo:
        for v in pred[todo.pop()]:
            if v not in seen:
                seen.add(v)
                todo.append(v)
    if len(seen) != len(g.markings):
        notes.append("not sound: from some reachable marking the sink cannot be reached")
        return False
    return True

"""The breadth-first search of a big safe net, a chunk of nodes at a time, with numpy.

The search of ``_analysis._explore_safe`` spends most of a big net's time looking successors
up in a dict of millions of markings (a cache miss or more per edge: 1,331,714 markings and
13.8M edges took ~6 s). Here a chunk of nodes is expanded at once: every enabling test of
the chunk is one array operation, and each successor is found by sorting the chunk's
successors and searching them in sorted arrays of the markings known so far. The graph is
exactly the one the node-by-node search builds: nodes are expanded in index order, each
successor in transition order, and a new marking gets the next number at its first
occurrence in that order (tested against the plain loop, chunk sizes down to one node).

Markings are ``uint64`` here, so this serves nets of at most 64 places; numpy comes with
pandas (a dependency) and is imported only when a search gets here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Enabling tests computed at once, at most (nodes x transitions of a chunk): ~8 MB.
_CELLS = 1 << 20


def expand(s: Any, spec: list[Any], max_states: int, tick: Any, nodes: int) -> bool:
    """Expand every remaining node of the search ``s`` (an ``_analysis._BitSearch`` whose
    columns are ``array('q')``), ``nodes`` at most per chunk, calling ``tick(found)`` after
    each chunk. False when the state budget runs out: ``s.markings`` and ``s.parent`` then
    hold exactly the ``max_states`` markings found first (what the caller checks for
    unbounded growth). ValueError once a place would get a second token (not a safe net)."""
    masks = _Masks(spec)
    n = len(s.markings)
    marks = np.empty(max(2 * n, 1024), dtype=np.uint64)
    marks[:n] = s.markings
    known = _Known(marks[:n])
    parent: list[Any] = []  # the new nodes' columns, by chunk
    via: list[Any] = []
    e = s.offsets[-1]
    first = len(s.offsets) - 1
    step = max(1, min(nodes, _CELLS // max(1, len(spec))))
    try:
        while first < n:
            last = min(n, first + step)
            c = _Chunk(masks, marks[first:last], known)
            fresh, at = c.fresh(max_states - n)
            marks, n, added = _add(marks, n, c.values[fresh])
            parent.append(first + c.src[at])
            via.append(c.t[at])
            if len(fresh) < len(c.new):  # the budget ran out in this chunk
                return False
            c.dst[fresh] = added
            fresh.sort()  # by value again, for the sorted arrays
            known.add(c.values[fresh], c.dst[fresh])
            s.offsets.frombytes((e + np.cumsum(c.enabled.sum(axis=1))).tobytes())
            s.edge_t.frombytes(c.t.astype(np.int64).tobytes())
            s.edge_dst.frombytes(c.edge_dst().tobytes())
            e += len(c.succ)
            first = last
            tick(n)
        return True
    finally:
        s.markings = marks[:n].tolist()
        for column, parts in ((s.parent, parent), (s.via, via)):
            for part in parts:
                column.frombytes(part.astype(np.int64).tobytes())


class _Masks:
    """Per transition (by index): the places it needs, fills, must find empty, and adds a
    token to (``post`` less ``pre``: one there already means the net is not safe)."""

    def __init__(self, spec: list[Any]) -> None:
        self.pre, self.post, self.inhibit, self.added = (
            np.array([x[k] for x in spec], dtype=np.uint64) for k in (1, 2, 3, 4)
        )
        self.any_inhibit, self.any_added = bool(self.inhibit.any()), bool(self.added.any())


class _Chunk:
    """The successors of a chunk of nodes (markings ``m``) in the loop's order: node by
    node, transition by transition; ``values`` the distinct ones, sorted; ``dst`` the node
    number of each value (-1: new); ``found_at`` where the loop meets each value first."""

    def __init__(self, masks: _Masks, m: Any, known: _Known) -> None:
        pre = masks.pre
        self.enabled = enabled = (m[:, None] & pre) == pre
        if masks.any_inhibit:
            enabled &= (m[:, None] & masks.inhibit) == 0
        self.src, self.t = np.nonzero(enabled)  # row by row: (node, transition) order
        ms = m[self.src]
        self.bad = len(self.src)  # the first firing that puts a second token in a place
        if masks.any_added:
            unsafe = np.flatnonzero(ms & masks.added[self.t])
            if len(unsafe):
                self.bad = int(unsafe[0])
        self.succ = succ = (ms ^ pre[self.t]) | masks.post[self.t]
        self.order = order = np.argsort(succ)
        ordered = succ[order]
        head = np.ones(len(ordered), dtype=bool)
        np.not_equal(ordered[1:], ordered[:-1], out=head[1:])
        self.starts = starts = np.flatnonzero(head)
        self.values = ordered[starts]
        # where the loop meets each value first: the least position among its copies
        self.found_at = np.minimum.reduceat(order, starts) if len(starts) else starts
        self.dst = known.find(self.values)
        new = np.flatnonzero(self.dst < 0)
        self.new = new[np.argsort(self.found_at[new])]  # in the order the loop finds them

    def fresh(self, room: int) -> tuple[Any, Any]:
        """The new values the loop would number (``room`` at most: the budget) and where it
        meets each first; ValueError where it would meet a firing that is not safe first."""
        fresh, at = self.new, self.found_at[self.new]
        if self.bad < len(self.succ):  # only firings before the bad one count
            within = int(np.searchsorted(at, self.bad))
            if within <= room:
                raise ValueError("not safe")
            fresh, at = fresh[:within], at[:within]
        return fresh[:room], at[:room]

    def edge_dst(self) -> Any:
        """The node each successor is, in the loop's order."""
        out = np.empty(len(self.succ), dtype=np.int64)
        out[self.order] = np.repeat(self.dst, np.diff(np.r_[self.starts, len(self.succ)]))
        return out


def _add(marks: Any, n: int, new: Any) -> tuple[Any, int, Any]:
    """``new`` appended to the first ``n`` markings (the buffer doubles when full): the
    buffer, the new count, and the new markings' numbers."""
    end = n + len(new)
    if end > len(marks):
        grown = np.empty(max(2 * len(marks), end), dtype=np.uint64)
        grown[:n] = marks[:n]
        marks = grown
    marks[n:end] = new
    return marks, end, np.arange(n, end)


class _Known:
    """Markings found so far -> node number, as sorted arrays: a big one and a small recent
    one that new markings go into (inserting into the big one at every chunk would copy it
    every time), merged into the big one once it holds an eighth as many."""

    def __init__(self, markings: Any) -> None:
        order = np.argsort(markings)
        self.values, self.ids = markings[order], order.astype(np.int64)
        self.new_values = np.empty(0, dtype=np.uint64)
        self.new_ids = np.empty(0, dtype=np.int64)

    def find(self, values: Any) -> Any:
        """Node number of each of the sorted ``values``, -1 for those not found."""
        out = np.full(len(values), -1, dtype=np.int64)
        for known, ids in ((self.values, self.ids), (self.new_values, self.new_ids)):
            if len(known):
                at = np.minimum(np.searchsorted(known, values), len(known) - 1)
                hit = known[at] == values
                out[hit] = ids[at[hit]]
        return out

    def add(self, values: Any, ids: Any) -> None:
        """Sorted new ``values`` (none known yet) with their node numbers."""
        at = np.searchsorted(self.new_values, values)
        self.new_values = np.insert(self.new_values, at, values)
        self.new_ids = np.insert(self.new_ids, at, ids)
        if 8 * len(self.new_values) > len(self.values):
            at = np.searchsorted(self.values, self.new_values)
            self.values = np.insert(self.values, at, self.new_values)
            self.ids = np.insert(self.ids, at, self.new_ids)
            self.new_values, self.new_ids = self.new_values[:0], self.new_ids[:0]

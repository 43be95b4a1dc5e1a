"""Keeping arcs off nodes. The canvas draws an arc as a straight line between its ends, so
any layered layout (ours, or dagre's in the view) can leave a node on an arc that skips
its layer (``a→b, b→c, a→c`` in one row hides ``a→c`` behind ``b``). ``clear_arcs`` pushes
such nodes sideways off the arc, to the nearest spot clear of other nodes and arcs.

Vectorised with numpy (one segment against every node box, or every segment against one
box, per call): 200 steps with 400 arcs take well under a second.
"""

from __future__ import annotations

from typing import Any

Point = tuple[float, float]
#: A node's half width and height as the canvas draws it, with a few pixels of margin.
HALF = {"step": (61.0, 25.0), "place": (28.0, 28.0), "transition": (14.0, 30.0)}
#: Moves allowed, per node of the design, before the rest is left as it is: a dense design
#: with many long arcs (a random DAG) cannot be cleared by moves alone; best effort there.
BUDGET = 2


def _hits(a: Any, b: Any, c: Any, h: Any) -> Any:
    """Which segments a→b pass through which boxes (centre c, half size h); numpy arrays
    that broadcast (Liang-Barsky clipping on both axes)."""
    import numpy as np

    t0 = np.zeros(np.broadcast_shapes(a.shape[:-1], c.shape[:-1]))
    t1 = np.ones_like(t0)
    for axis in (0, 1):
        d = b[..., axis] - a[..., axis]
        lo = c[..., axis] - h[..., axis] - a[..., axis]
        hi = c[..., axis] + h[..., axis] - a[..., axis]
        with np.errstate(divide="ignore", invalid="ignore"):
            r1, r2 = lo / d, hi / d
        flat = d == 0
        inside = (lo <= 0) & (hi >= 0)
        near = np.where(flat, np.where(inside, -np.inf, np.inf), np.minimum(r1, r2))
        far = np.where(flat, np.where(inside, np.inf, -np.inf), np.maximum(r1, r2))
        t0, t1 = np.maximum(t0, near), np.minimum(t1, far)
    return t0 <= t1


def clear_arcs(
    pos: dict[str, Point], half: dict[str, Point], arcs: list[tuple[str, str]]
) -> dict[str, Point]:
    """``pos`` with each node that an arc it does not join runs through moved off it."""
    import numpy as np

    ids = list(pos)
    if not arcs or len(ids) < 3:
        return dict(pos)
    at = {n: i for i, n in enumerate(ids)}
    xy = np.array([pos[n] for n in ids], dtype=float)
    size = np.array([half[n] for n in ids], dtype=float)
    src = np.array([at[s] for s, _ in arcs])
    dst = np.array([at[t] for _, t in arcs])
    budget = BUDGET * len(ids)

    def spot_clear(n: int, spot: Any) -> bool:
        others = np.ones(len(ids), dtype=bool)
        others[n] = False
        apart = (np.abs(xy[:, 0] - spot[0]) >= size[:, 0] + size[n, 0]) | (
            np.abs(xy[:, 1] - spot[1]) >= size[:, 1] + size[n, 1]
        )
        if not apart[others].all():
            return False
        free = (src != n) & (dst != n)
        return not _hits(xy[src[free]], xy[dst[free]], spot, size[n]).any()

    def off(n: int, j: int) -> Any:
        a, b = xy[src[j]], xy[dst[j]]
        normal = np.array([a[1] - b[1], b[0] - a[0]]) / (np.hypot(*(b - a)) or 1.0)
        side = float((xy[n] - a) @ normal)
        if side < 0 or (side == 0 and normal[1] < 0):
            normal, side = -normal, -side
        reach = float(np.abs(size[n] * normal).sum())  # the box's extent along the normal
        for k in range(6):  # nearest first, its own side first
            for step in (reach - side + 4 + k * reach, -(reach + side + 4 + k * reach)):
                spot = xy[n] + normal * step
                if spot_clear(n, spot):
                    return spot
        return xy[n]  # no clear spot near: stay (an arc over a node beats two nodes stacked)

    ends = np.zeros((len(arcs), len(ids)), dtype=bool)
    ends[np.arange(len(arcs)), src] = ends[np.arange(len(arcs)), dst] = True
    best = (np.inf, xy.copy())
    for _ in range(30):  # each pass clears what it finds; a move may uncover more
        # every arc against every node at once, then each hit checked again as nodes move
        hits = _hits(xy[src][:, None], xy[dst][:, None], xy[None], size[None]) & ~ends
        if hits.sum() < best[0]:
            best = (hits.sum(), xy.copy())
        if not hits.any() or budget <= 0 or hits.sum() > len(ids):
            break  # clear, or out of moves, or so dense that nudging cannot clear it
        for j, n in zip(*np.nonzero(hits), strict=True):
            if budget > 0 and _hits(xy[src[j]], xy[dst[j]], xy[n], size[n]):
                xy[n] = off(int(n), int(j))
                budget -= 1
    xy = best[1]  # a dense design the budget could not clear: the pass that hid the fewest
    return {n: (float(xy[i, 0]), float(xy[i, 1])) for i, n in enumerate(ids)}

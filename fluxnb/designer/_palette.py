"""The designer's palette: the notebook's functions that look like steps, and a step made
from one, connected to the steps its parameters name, placed where nothing else is.

>>> def fetch(): ...
>>> def clean(fetch, limit=10): ...
>>> d = Design()
>>> ns = {"fetch": fetch, "clean": clean}
>>> add_function(d, ns, "fetch", 0, 0), add_function(d, ns, "clean", 0, 0)
('fetch', 'clean')
>>> [e.id for e in d.edges], d.nodes["clean"].props["run"]
(['fetch->clean'], 'clean')
"""

from __future__ import annotations

import inspect
import itertools
import math
import reprlib
import weakref
from collections.abc import Mapping
from typing import Any

from ..spec._resolve import read_signature
from ._model import STEP, AddNode, Batch, Command, Connect, Design, DesignError, Edge, Node

#: The room one node takes on the canvas (a step is drawn 110 x 38): new nodes keep it free.
CELL_W, CELL_H = 140.0, 64.0
#: Parameters that are never another step's output.
CONTEXT_PARAMS = frozenset({"ctx", "self", "cls"})


def step_functions(namespace: Any) -> list[dict[str, Any]]:
    """The functions of ``namespace`` a step could run: plain or async functions (and
    generators), not private, sorted by name. A module's globals (a notebook's: they hold
    ``__name__``) offer only the functions defined there, not the imported ones; a module
    is read as its globals. Each as ``{name, params: [{name, default, required}], doc,
    signature}``."""
    if namespace is not None and not isinstance(namespace, Mapping):
        namespace = getattr(namespace, "__dict__", None)  # a module
    if namespace is None:
        return []
    home = namespace.get("__name__")
    out = []
    for name, fn in list(namespace.items()):
        if not isinstance(name, str) or name.startswith("_") or not inspect.isfunction(fn):
            continue
        if (home and getattr(fn, "__module__", home) != home) or fn.__name__ == "<lambda>":
            continue
        entry = _describe(fn)
        if entry is not None:
            out.append({"name": name, **entry, "signature": f"{name}{entry['signature']}"})
    return sorted(out, key=lambda f: f["name"].lower())


# what a function offers, kept while it lives: the palette is read again after every edit
_DESCRIBED: weakref.WeakKeyDictionary[Any, dict[str, Any] | None] = weakref.WeakKeyDictionary()


def _describe(fn: Any) -> dict[str, Any] | None:
    """A function's parameters (those a step could be given), first doc line, signature."""
    if fn in _DESCRIBED:
        return _DESCRIBED[fn]
    sig = read_signature(fn)
    if sig is None:
        found = None
    else:
        params = [
            {
                "name": p.name,
                "required": p.default is p.empty,
                "default": None if p.default is p.empty else _short(p.default),
            }
            for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in CONTEXT_PARAMS
        ]
        doc = (inspect.getdoc(fn) or "").strip().split("\n", 1)[0]
        found = {"params": params, "doc": doc, "signature": _text(sig)}
    _DESCRIBED[fn] = found
    return found


def _text(sig: inspect.Signature) -> str:
    """``str(sig)`` with each default shown as ``_short`` shows it (str() would render a
    big default whole, and raise with a default whose ``__repr__`` raises)."""
    shown = [
        p if p.default is p.empty else p.replace(default=_Shown(_short(p.default)))
        for p in sig.parameters.values()
    ]
    try:
        return str(sig.replace(parameters=shown))
    except Exception:  # an annotation's repr of the user's own
        return "(" + ", ".join(p.name for p in shown) + ")"


class _Shown:
    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _short(value: Any) -> str:
    """A default's repr, cut to 40 characters: a big container is not rendered whole
    (``reprlib``), an object whose ``__repr__`` raises shows its type."""
    try:
        text = _REPR.repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 40 else text[:37] + "..."


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 40


def free_spot(
    design: Design, x: float, y: float, skip: frozenset[str] = frozenset()
) -> tuple[float, float]:
    """The free cell nearest to (x, y): no node's centre closer than a cell (``CELL_W`` by
    ``CELL_H``), so a new node never lands on another one."""
    return free_offset(design, [(0.0, 0.0)], x, y, skip)


def free_offset(
    design: Design,
    points: list[tuple[float, float]],
    dx: float,
    dy: float,
    skip: frozenset[str] = frozenset(),
) -> tuple[float, float]:
    """The shift nearest to (dx, dy) that puts every one of ``points`` on a free cell (a
    pasted group keeps its shape and covers no node)."""
    taken = [(n.x, n.y) for n in design.nodes.values() if n.id not in skip]

    def free(ox: float, oy: float) -> bool:
        return all(
            abs(px + ox - a) >= CELL_W or abs(py + oy - b) >= CELL_H
            for px, py in points
            for a, b in taken
        )

    if free(dx, dy):
        return dx, dy
    # rings of cells around the spot, nearest first (right and down before left and up)
    for r in range(1, 60):
        ring = [
            (i, j)
            for i, j in itertools.product(range(-r, r + 1), repeat=2)
            if max(abs(i), abs(j)) == r
        ]
        ring.sort(key=lambda c: (math.hypot(c[0] * CELL_W, c[1] * CELL_H), -c[0], -c[1]))
        for i, j in ring:
            if free(dx + i * CELL_W, dy + j * CELL_H):
                return dx + i * CELL_W, dy + j * CELL_H
    return dx, dy + CELL_H * len(taken)  # pragma: no cover  # 3,600 cells all taken


def _unique(design: Design, name: str) -> str:
    if name not in design.nodes:
        return name
    i = 2
    while f"{name}_{i}" in design.nodes:
        i += 1
    return f"{name}_{i}"


def add_function(
    design: Design, namespace: Mapping[str, Any] | None, name: str, x: float, y: float
) -> str:
    """Add a step running ``name`` (one undoable edit) at the free spot nearest (x, y),
    connected from the steps its parameters name and to the steps whose function takes
    its output; returns the new step's id."""
    if design.mode != "dag":
        raise DesignError("functions become steps of a DAG; a net's transitions take run: instead")
    found = {f["name"]: f for f in step_functions(namespace)}
    if name not in found:
        raise DesignError(
            f"no function '{name}' in the notebook: define it (def {name}(...): ...) and "
            "drop it again"
        )
    sid = _unique(design, name)
    px, py = free_spot(design, x, y)
    cmds: list[Command] = [AddNode(Node(sid, STEP, px, py, {"run": name}))]
    params = {p["name"] for p in found[name]["params"]}
    ups = [n for n in design.nodes if n in params]
    downs = []
    for n in design.nodes.values():  # steps already there that take this one's output
        fn = found.get(str(n.props.get("run") or n.id))
        takes = fn is not None and sid in {p["name"] for p in fn["params"]}
        # (not if it leads back to one of the steps feeding this one: that would be a loop)
        if takes and n.id not in ups and not any(design._path(n.id, u) for u in ups):
            downs.append(n.id)
    cmds += [Connect(Edge(u, sid)) for u in ups] + [Connect(Edge(sid, d)) for d in downs]
    design.execute(Batch(cmds, "add"))
    return sid

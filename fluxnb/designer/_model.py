"""The designer's model: a graph of steps (DAG mode) or places and transitions (net mode),
edited only through command objects, so every edit can be undone and redone.

The model knows nothing of the browser. Its manifest is the same dict a ``%%fluxroute`` cell
takes; validation is the manifest validator's own, its problems mapped back onto nodes.

Why over 400 lines: the design's commands (add, connect, move, rename, ...) with undo/redo
and the mapping of validator problems onto nodes are one model; the widget is separate.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from typing import Any

from .._exceptions import FluxError, ManifestError
from ..spec._step_fields import step_fields

DAG, NET = "dag", "net"
STEP, PLACE, TRANSITION = "step", "place", "transition"
NODE_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
#: The properties the inspector offers per kind (manifest keys; dotted = nested).
SCHEMA: dict[str, tuple[str, ...]] = {
    STEP: tuple(f.key for f in step_fields()),  # every key the validator reads
    PLACE: ("name", "tokens"),
    TRANSITION: (
        "name",
        "run",
        "guard",
        "priority",
        "timeout",
        "on_error",
        "external",
        "description",
    ),
    "arc": ("weight", "inhibitor"),
}
#: Net nodes' display name (PNML ``<name>``), kept in the manifest's ``names:``, not the node's.
NAME = "name"
#: A step's keys that go on its agent (``agents:``) and on its ``pipeline:`` entry.
AGENT_KEYS = tuple(dict.fromkeys(f.key.split(".")[0] for f in step_fields() if f.place == "agent"))
STEP_KEYS = tuple(dict.fromkeys(f.key.split(".")[0] for f in step_fields() if f.place == "step"))


class DesignError(FluxError):
    """An edit the designer refuses (a cycle in DAG mode, a place-to-place arc, a bad id)."""


@dataclass
class Node:
    id: str
    kind: str
    x: float = 0.0
    y: float = 0.0
    #: Manifest keys of the node (a step's agent and pipeline keys, a transition's keys,
    #: ``tokens`` of a place), as YAML would hold them.
    props: dict[str, Any] = field(default_factory=dict)


@dataclass
class Edge:
    source: str
    target: str
    props: dict[str, Any] = field(default_factory=dict)  # net arcs: weight, inhibitor

    @property
    def id(self) -> str:
        return f"{self.source}->{self.target}"


# ---------------------------------------------------------------------- commands
class Command:
    """One edit: ``do`` applies it, ``undo`` restores exactly what was there before."""

    label = "edit"

    def do(self, d: Design) -> None:
        raise NotImplementedError

    def undo(self, d: Design) -> None:
        raise NotImplementedError


class AddNode(Command):
    label = "add"

    def __init__(self, node: Node) -> None:
        self.node = node

    def do(self, d: Design) -> None:
        d.nodes[self.node.id] = copy.deepcopy(self.node)

    def undo(self, d: Design) -> None:
        del d.nodes[self.node.id]


class Connect(Command):
    label = "connect"

    def __init__(self, edge: Edge) -> None:
        self.edge = edge

    def do(self, d: Design) -> None:
        d.edges.append(copy.deepcopy(self.edge))

    def undo(self, d: Design) -> None:
        d.edges = [e for e in d.edges if e.id != self.edge.id]


class Remove(Command):
    """Remove nodes (with their edges) and edges; undo puts them back where they were."""

    label = "delete"

    def __init__(self, node_ids: list[str], edge_ids: list[str]) -> None:
        self.node_ids, self.edge_ids = node_ids, edge_ids
        self.saved: tuple[dict[str, Node], list[Edge]] | None = None

    def do(self, d: Design) -> None:
        self.saved = (copy.deepcopy(d.nodes), copy.deepcopy(d.edges))
        gone = set(self.node_ids)
        for nid in self.node_ids:
            d.nodes.pop(nid, None)
        d.edges = [
            e
            for e in d.edges
            if e.id not in self.edge_ids and e.source not in gone and e.target not in gone
        ]

    def undo(self, d: Design) -> None:
        assert self.saved is not None
        d.nodes, d.edges = copy.deepcopy(self.saved[0]), copy.deepcopy(self.saved[1])


class Move(Command):
    label = "move"

    def __init__(self, moves: dict[str, tuple[float, float]]) -> None:
        self.moves = moves
        self.before: dict[str, tuple[float, float]] = {}

    def do(self, d: Design) -> None:
        for nid, (x, y) in self.moves.items():
            n = d.nodes[nid]
            self.before.setdefault(nid, (n.x, n.y))
            n.x, n.y = float(x), float(y)

    def undo(self, d: Design) -> None:
        for nid, (x, y) in self.before.items():
            if nid in d.nodes:
                d.nodes[nid].x, d.nodes[nid].y = x, y


class Rename(Command):
    label = "rename"

    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new

    def _swap(self, d: Design, a: str, b: str) -> None:
        d.nodes = {(b if k == a else k): v for k, v in d.nodes.items()}
        d.nodes[b].id = b
        for e in d.edges:
            e.source = b if e.source == a else e.source
            e.target = b if e.target == a else e.target

    def do(self, d: Design) -> None:
        self._swap(d, self.old, self.new)

    def undo(self, d: Design) -> None:
        self._swap(d, self.new, self.old)


class SetProp(Command):
    """Set (or, with value None, remove) one property of a node or an edge."""

    label = "set"

    def __init__(self, target: str, key: str, value: Any) -> None:
        self.target, self.key, self.value = target, key, value
        self.before: Any = None
        self.had = False

    def _props(self, d: Design) -> dict[str, Any]:
        if self.target in d.nodes:
            return d.nodes[self.target].props
        return d.edge(self.target).props

    def do(self, d: Design) -> None:
        props = self._props(d)
        self.had, self.before = _get_path(props, self.key)
        _set_path(props, self.key, self.value)

    def undo(self, d: Design) -> None:
        _set_path(self._props(d), self.key, self.before if self.had else None)


class Batch(Command):
    """Several commands as one edit (paste, auto-layout, replacing the whole design)."""

    def __init__(self, commands: list[Command], label: str = "edit") -> None:
        self.commands, self.label = commands, label

    def do(self, d: Design) -> None:
        for c in self.commands:
            c.do(d)

    def undo(self, d: Design) -> None:
        for c in reversed(self.commands):
            c.undo(d)


class Replace(Command):
    """Replace the whole design (an applied YAML edit); undo brings the old one back."""

    label = "replace"

    def __init__(self, new: Design) -> None:
        self.new = new
        self.old: tuple[Any, ...] | None = None

    def do(self, d: Design) -> None:
        self.old = (d.mode, d.name, d.nodes, d.edges, d.extra)
        n = copy.deepcopy(self.new)
        d.mode, d.name, d.nodes, d.edges, d.extra = n.mode, n.name, n.nodes, n.edges, n.extra

    def undo(self, d: Design) -> None:
        assert self.old is not None
        d.mode, d.name, d.nodes, d.edges, d.extra = self.old


def _get_path(props: dict[str, Any], key: str) -> tuple[bool, Any]:
    cur: Any = props
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return False, None
        cur = cur[part]
    return True, copy.deepcopy(cur)


def _set_path(props: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    cur = props
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    if value is None:
        cur.pop(parts[-1], None)
        if len(parts) > 1 and not cur:  # drop an emptied retry: {} or circuit_breaker: {}
            _set_path(props, ".".join(parts[:-1]), None)
    else:
        cur[parts[-1]] = value


# ---------------------------------------------------------------------- the design
class Design:
    """A workflow being drawn. Edit it with the methods below (each one command)."""

    def __init__(self, mode: str = DAG, name: str = "design") -> None:
        if mode not in (DAG, NET):
            raise DesignError(f"mode must be 'dag' or 'net', found {mode!r}")
        self.mode = mode
        self.name = name
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []
        #: Manifest keys the designer does not draw (router, description, final, ...).
        self.extra: dict[str, Any] = {}
        self.undo_stack: list[Command] = []
        self.redo_stack: list[Command] = []
        self.clipboard: list[Node] = []
        #: The arcs copied with the nodes: among them, and (DAG) into them from outside.
        self.clipboard_edges: list[Edge] = []

    # -------------------------------------------------------------- queries
    def edge(self, edge_id: str) -> Edge:
        for e in self.edges:
            if e.id == edge_id:
                return e
        raise DesignError(f"no arc or dependency '{edge_id}'")

    def _check_new_id(self, nid: str) -> None:
        if not isinstance(nid, str) or not NODE_ID.fullmatch(nid):
            raise DesignError(
                f"'{nid}' is not a valid id: a letter or '_' first, then letters, digits, "
                "'_' or '-'"
            )
        if nid in self.nodes:
            raise DesignError(f"there is already a node '{nid}'")

    def fresh_id(self, kind: str) -> str:
        base = {STEP: "step", PLACE: "p", TRANSITION: "t"}[kind]
        i = 1
        while f"{base}{i}" in self.nodes:
            i += 1
        return f"{base}{i}"

    # -------------------------------------------------------------- edits
    def execute(self, cmd: Command) -> Command:
        cmd.do(self)
        self.undo_stack.append(cmd)
        self.redo_stack.clear()
        return cmd

    def undo(self) -> bool:
        if not self.undo_stack:
            return False
        cmd = self.undo_stack.pop()
        cmd.undo(self)
        self.redo_stack.append(cmd)
        return True

    def redo(self) -> bool:
        if not self.redo_stack:
            return False
        cmd = self.redo_stack.pop()
        cmd.do(self)
        self.undo_stack.append(cmd)
        return True

    def add(
        self, kind: str, id: str | None = None, x: float = 0.0, y: float = 0.0, **props: Any
    ) -> str:
        """Add a step (DAG mode) or a place / transition (net mode); returns its id."""
        allowed = (STEP,) if self.mode == DAG else (PLACE, TRANSITION)
        if kind not in allowed:
            have = "steps" if self.mode == DAG else "places and transitions"
            raise DesignError(f"a {self.mode.upper()} design has {have}, not {kind}s")
        nid = id or self.fresh_id(kind)
        self._check_new_id(nid)
        if kind == PLACE:
            props.setdefault("tokens", 0)
        self.execute(AddNode(Node(nid, kind, float(x), float(y), dict(props))))
        return nid

    def connect(self, source: str, target: str, **props: Any) -> str:
        """Draw an arc / dependency; refused (DesignError) if the mode forbids it."""
        for nid in (source, target):
            if nid not in self.nodes:
                raise DesignError(f"no node '{nid}'")
        if source == target:
            raise DesignError(f"'{source}' cannot connect to itself")
        edge = Edge(source, target, dict(props))
        if any(e.id == edge.id for e in self.edges):
            raise DesignError(f"'{source}' is already connected to '{target}'")
        a, b = self.nodes[source].kind, self.nodes[target].kind
        if self.mode == NET and a == b:
            raise DesignError(
                f"arcs join a place and a transition; '{source}' and '{target}' are both {a}s"
            )
        if self.mode == DAG:
            path = self._path(target, source)
            if path:
                loop = " → ".join([source, *path])
                raise DesignError(
                    f"'{target}' already leads to '{source}' ({' → '.join(path)}), so this "
                    f"would close a cycle {loop}; a DAG cannot loop (use a Petri net for loops)"
                )
        self.execute(Connect(edge))
        return edge.id

    def _path(self, start: str, goal: str) -> list[str]:
        """A path start → ... → goal along edges, or []."""
        parent: dict[str, str | None] = {start: None}
        todo = [start]
        while todo:
            cur = todo.pop()
            if cur == goal:
                path = [cur]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])  # type: ignore[arg-type]
                return path[::-1]
            for e in self.edges:
                if e.source == cur and e.target not in parent:
                    parent[e.target] = cur
                    todo.append(e.target)
        return []

    def delete(self, ids: list[str]) -> None:
        """Delete nodes (with their arcs) and arcs, by id."""
        nodes = [i for i in ids if i in self.nodes]
        edges = [i for i in ids if i not in self.nodes]
        for eid in edges:
            self.edge(eid)  # DesignError for an unknown id
        if nodes or edges:
            self.execute(Remove(nodes, edges))

    def move(self, moves: dict[str, tuple[float, float]]) -> None:
        moves = {k: v for k, v in moves.items() if k in self.nodes}
        if moves:
            self.execute(Move(moves))

    def rename(self, old: str, new: str) -> None:
        if old not in self.nodes:
            raise DesignError(f"no node '{old}'")
        if old != new:
            self._check_new_id(new)
            self.execute(Rename(old, new))

    def set(self, target: str, key: str, value: Any) -> None:
        """Set a property (``retry.max_attempts``, ``tokens``, ``weight``...); None removes it."""
        kind = self.nodes[target].kind if target in self.nodes else "arc"
        if kind == "arc":
            self.edge(target)
        known = SCHEMA[kind]
        roots = {k.split(".", maxsplit=1)[0] for k in known}
        if key not in known and key.split(".", maxsplit=1)[0] not in roots:
            raise DesignError(f"a {kind} has no property '{key}'; it has {', '.join(known)}")
        self.execute(SetProp(target, key, value))

    def copy(self, ids: list[str]) -> int:
        """Copy nodes with every property. A DAG step that runs the function named like
        its id gets that ``run:`` written out, so its copies (new ids) run it too."""
        self.clipboard = [copy.deepcopy(self.nodes[i]) for i in ids if i in self.nodes]
        chosen = {n.id for n in self.clipboard}
        for n in self.clipboard:
            if n.kind == STEP and not n.props.get("run"):
                n.props = {"run": n.id, **n.props}
        self.clipboard_edges = [
            copy.deepcopy(e)
            for e in self.edges
            if e.target in chosen and (e.source in chosen or self.mode == DAG)
        ]
        return len(self.clipboard)

    def paste(self, dx: float = 40.0, dy: float = 40.0) -> list[str]:
        """Paste the copied nodes (new ids) shifted by (dx, dy), with the arcs among them
        and, in a DAG, the dependencies they had on steps still in the design (a copied step
        gets the same inputs). The widget's ``paste(x, y)`` centres them on the pointer."""
        if not self.clipboard:
            return []
        ids: dict[str, str] = {}
        cmds: list[Command] = []
        taken = set(self.nodes)
        for n in self.clipboard:
            i, base = 1, re.sub(r"_copy\d*$", "", n.id)
            while f"{base}_copy{i}" in taken:
                i += 1
            ids[n.id] = f"{base}_copy{i}"
            taken.add(ids[n.id])
            cmds.append(
                AddNode(Node(ids[n.id], n.kind, n.x + dx, n.y + dy, copy.deepcopy(n.props)))
            )
        for e in self.clipboard_edges:
            source = ids.get(e.source, e.source)
            if e.target in ids and (source in self.nodes or e.source in ids):
                cmds.append(Connect(Edge(source, ids[e.target], copy.deepcopy(e.props))))
        self.execute(Batch(cmds, "paste"))
        return list(ids.values())

    def auto_layout(self, dx: float = 180.0, dy: float = 90.0) -> None:
        """Left to right. A DAG: each node one column right of its furthest predecessor. A
        net (cycles allowed): columns by distance from where the tokens start (marked
        places, else nodes nothing leads to), so loops point back leftwards."""
        preds: dict[str, list[str]] = {n: [] for n in self.nodes}
        succs: dict[str, list[str]] = {n: [] for n in self.nodes}
        for e in self.edges:
            preds[e.target].append(e.source)
            succs[e.source].append(e.target)
        rank: dict[str, int] = {}
        if self.mode == DAG:
            for n in self._topological():
                rank[n] = 1 + max((rank.get(p, 0) for p in preds[n]), default=-1)
        else:
            starts = (
                [
                    n.id
                    for n in self.nodes.values()
                    if n.kind == PLACE and _token_count(n.props.get("tokens"))
                ]
                or [n for n in self.nodes if not preds[n]]
                or list(self.nodes)[:1]
            )
            frontier = list(starts)
            for n in frontier:
                rank[n] = 0
            while frontier:
                nxt = []
                for n in frontier:
                    for m in succs[n]:
                        if m not in rank:
                            rank[m] = rank[n] + 1
                            nxt.append(m)
                frontier = nxt
            for n in self.nodes:  # not reachable from the start: first column
                rank.setdefault(n, 0)
        rows = _rows(list(self.nodes), rank, [(e.source, e.target) for e in self.edges])
        moves = self.clear_arcs(
            {n: (60.0 + rank[n] * dx, 200.0 + rows[n] * dy) for n in self.nodes}
        )
        if moves:
            self.execute(Batch([Move(moves)], "layout"))

    def clear_arcs(self, at: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        """``at`` (new positions by node id; the other nodes stay where they are) with every
        node that a straight arc would run through (an arc it does not join) pushed off it,
        sideways, to a spot clear of other nodes and arcs; the nodes moved, by id. The canvas
        draws arcs straight, so a layered layout can still put a node on an arc that skips
        its layer (``a→b, b→c, a→c`` in one row)."""
        from ._arcs import HALF, clear_arcs

        pos = {n.id: (n.x, n.y) for n in self.nodes.values()}  # where the others are
        pos.update({n: (float(x), float(y)) for n, (x, y) in at.items() if n in self.nodes})
        start = dict(pos)
        half = {n: HALF.get(self.nodes[n].kind, HALF[STEP]) for n in pos}
        pos = clear_arcs(pos, half, [(e.source, e.target) for e in self.edges])
        return {
            n: (float(round(x)), float(round(y)))
            for n, (x, y) in pos.items()
            if n in at or (x, y) != start[n]
        }

    def _topological(self) -> list[str]:
        indeg = {n: 0 for n in self.nodes}
        for e in self.edges:
            indeg[e.target] += 1
        order = [n for n, d in indeg.items() if d == 0]
        for n in order:
            for e in self.edges:
                if e.source == n:
                    indeg[e.target] -= 1
                    if indeg[e.target] == 0:
                        order.append(e.target)
        return order + [n for n in self.nodes if n not in order]  # a cycle: last

    def replace_with(self, other: Design) -> None:
        self.execute(Replace(other))

    # -------------------------------------------------------------- export
    def manifest(self) -> dict[str, Any]:
        """The manifest dict (what a ``%%fluxroute`` cell holds), with a ``layout:``."""
        out: dict[str, Any] = {"name": self.name, **copy.deepcopy(self.extra)}
        if self.mode == DAG:
            agents, pipeline = [], []
            for n in self.nodes.values():
                agent = {k: copy.deepcopy(v) for k, v in n.props.items() if k in AGENT_KEYS}
                if agent:
                    agents.append({"id": n.id, **agent})
                entry: dict[str, Any] = {"step": n.id}
                deps = [e.source for e in self.edges if e.target == n.id]
                if deps:
                    entry["depends_on"] = deps
                for k in STEP_KEYS:
                    if k in n.props:
                        entry[k] = copy.deepcopy(n.props[k])
                pipeline.append(entry)
            if agents:
                out["agents"] = agents
            out["pipeline"] = pipeline
        else:
            body = dict(copy.deepcopy(out.pop("net", {})))
            body["places"] = {
                n.id: copy.deepcopy(n.props.get("tokens", 0))
                for n in self.nodes.values()
                if n.kind == PLACE
            }
            transitions = []
            for n in self.nodes.values():
                if n.kind != TRANSITION:
                    continue
                t: dict[str, Any] = {"id": n.id}
                for direction, ends in (("inputs", "target"), ("outputs", "source")):
                    arcs = [
                        e
                        for e in self.edges
                        if getattr(e, ends) == n.id and not e.props.get("inhibitor")
                    ]
                    other = "source" if ends == "target" else "target"
                    if all(int(e.props.get("weight", 1)) == 1 for e in arcs):
                        t[direction] = [getattr(e, other) for e in arcs]
                    else:
                        t[direction] = {
                            getattr(e, other): int(e.props.get("weight", 1)) for e in arcs
                        }
                inhib = [
                    e.source for e in self.edges if e.target == n.id and e.props.get("inhibitor")
                ]
                if inhib:
                    t["inhibitors"] = inhib
                t.update(copy.deepcopy({k: v for k, v in n.props.items() if k != NAME}))
                transitions.append(t)
            body["transitions"] = transitions
            out["net"] = body
        out["layout"] = {n.id: [round(n.x, 1), round(n.y, 1)] for n in self.nodes.values()}
        names = {n.id: n.props[NAME] for n in self.nodes.values() if n.props.get(NAME)}
        if names and self.mode == NET:
            out["names"] = names
        return out

    def to_yaml(self) -> str:
        import yaml

        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: ~10x faster per edit
        return yaml.dump(
            self.manifest(),
            Dumper=dumper,
            sort_keys=False,
            default_flow_style=None,
            width=100,
            allow_unicode=True,
        )

    def workflow(self) -> Any:
        """The design as a ``Workflow`` (DAG mode) or ``Net``; ManifestError if invalid."""
        from ..spec._net_manifest import load_any

        return load_any(self.manifest(), source=f"designer '{self.name}'")

    def to_pnml(self) -> str:
        if self.mode != NET:
            raise DesignError("PNML holds Petri nets: this design is a DAG (export to_yaml())")
        from ..spec import write_pnml

        return write_pnml(self.workflow())

    # -------------------------------------------------------------- validation
    def problems(self, namespace: Any = None) -> dict[str, list[str]]:
        """What is wrong, by node or arc id ("" for the whole design): the manifest
        validator's problems mapped onto nodes, unconnected nodes, and (with a namespace)
        callables that cannot be found."""
        out: dict[str, list[str]] = {}
        if not self.nodes:  # an empty design is a start, not a mistake (the view hints)
            return out
        if len(self.nodes) > 1:
            linked = {e.source for e in self.edges} | {e.target for e in self.edges}
            for nid in self.nodes:
                if nid not in linked:
                    out.setdefault(nid, []).append("not connected to anything")
        try:
            obj = self.workflow()
        except ManifestError as err:
            for p in err.problems:
                out.setdefault(self._owner(p.path), []).append(p.message)
            return out
        if namespace is not None:
            try:
                if self.mode == DAG:
                    obj.validate(resolve=True, namespace=namespace)
                else:
                    from ..engine._net_run import plan_net

                    plan_net(obj, namespace)
            except ManifestError as err:
                for p in err.problems:
                    out.setdefault(self._owner(p.path), []).append(p.message)
        return out

    def _owner(self, path: str) -> str:
        """The node a problem's manifest path points into (``pipeline[2].with`` → step)."""
        m = re.match(r"(pipeline|agents|net\.transitions)\[(\d+)\]", path)
        if m:
            kinds = (STEP,) if m.group(1) != "net.transitions" else (TRANSITION,)
            ordered = [n for n in self.nodes.values() if n.kind in kinds]
            if m.group(1) == "agents":
                ordered = [n for n in ordered if any(k in AGENT_KEYS for k in n.props)]
            i = int(m.group(2))
            return ordered[i].id if i < len(ordered) else ""
        m = re.match(r"(?:net\.places|layout|names)\.([^.\[]+)", path)
        if m and m.group(1) in self.nodes:
            return m.group(1)
        return ""

    # -------------------------------------------------------------- import
    @classmethod
    def from_manifest(cls, data: dict[str, Any], positions: dict[str, Any] | None = None) -> Design:
        """A design from a (valid) manifest dict; nodes without a position are laid out."""
        data = copy.deepcopy(data)
        layout = {**data.pop("layout", {}), **(positions or {})}
        names = data.pop("names", None) or {}
        is_net = "net" in data
        d = cls(NET if is_net else DAG, str(data.pop("name", "design")))
        if is_net:
            body = data.pop("net")
            for pid, tokens in (body.pop("places", {}) or {}).items():
                d.nodes[pid] = Node(pid, PLACE, props={"tokens": tokens})
            for raw in body.pop("transitions", []) or []:
                t = dict(raw)
                tid = t.pop("id")
                d.nodes[tid] = Node(tid, TRANSITION)
                for key, src_is_place in (
                    ("inputs", True),
                    ("outputs", False),
                    ("inhibitors", True),
                ):
                    arcs = t.pop(key, None) or []
                    items = arcs.items() if isinstance(arcs, dict) else ((a, 1) for a in arcs)
                    for pid, w in items:
                        props: dict[str, Any] = {}
                        if w != 1:
                            props["weight"] = w
                        if key == "inhibitors":
                            props["inhibitor"] = True
                        s, g = (pid, tid) if src_is_place else (tid, pid)
                        d.edges.append(Edge(s, g, props))
                d.nodes[tid].props = t
            if body:
                data["net"] = body  # final, max_firings, choice
            for nid, name in names.items():
                if nid in d.nodes and name != nid:
                    d.nodes[nid].props[NAME] = name
        else:
            agents = {a["id"]: a for a in data.pop("agents", []) or []}
            for entry in data.pop("pipeline", []) or []:
                sid = entry["step"]
                props = {k: v for k, v in agents.get(sid, {}).items() if k != "id"}
                props.update({k: v for k, v in entry.items() if k in STEP_KEYS})
                d.nodes[sid] = Node(sid, STEP, props=props)
                deps = entry.get("depends_on") or []
                for dep in [deps] if isinstance(deps, str) else deps:
                    d.edges.append(Edge(dep, sid))
        d.extra = data
        placed = {k: v for k, v in layout.items() if k in d.nodes}
        for nid, (x, y) in placed.items():
            d.nodes[nid].x, d.nodes[nid].y = float(x), float(y)
        if len(placed) < len(d.nodes):
            d.auto_layout()
            d.undo_stack.clear()
            for nid, (x, y) in placed.items():
                d.nodes[nid].x, d.nodes[nid].y = float(x), float(y)
        return d

    @classmethod
    def from_pnml(cls, source: Any) -> Design:
        """A net design from PNML (text or a path): names shown, the file's coordinates
        scaled to the canvas (``canvas_positions``), nodes without any laid out."""
        from ..spec import read_pnml
        from ..spec._net_manifest import net_manifest

        data = net_manifest(read_pnml(source))
        drawn = canvas_positions({k: (x, y) for k, (x, y) in data.pop("layout", {}).items()})
        return cls.from_manifest(data, {k: [x, y] for k, (x, y) in drawn.items()})

    def to_graph(self) -> dict[str, Any]:
        """What the browser draws (the widget's ``graph``)."""
        return {
            "mode": self.mode,
            "name": self.name,
            "nodes": [
                {
                    "id": n.id,
                    "kind": n.kind,
                    "label": n.props.get(NAME) or n.id,  # what the canvas shows
                    "x": n.x,
                    "y": n.y,
                    "props": copy.deepcopy(n.props),
                    "tokens": _token_count(n.props.get("tokens", 0)) if n.kind == PLACE else None,
                }
                for n in self.nodes.values()
            ],
            "edges": [
                {
                    "id": e.id,
                    "source": e.source,
                    "target": e.target,
                    "props": copy.deepcopy(e.props),
                }
                for e in self.edges
            ],
        }


def _rows(order: list[str], rank: dict[str, int], arcs: list[tuple[str, str]]) -> dict[str, float]:
    """Each node's row in its column (0 = the middle). An arc spanning columns keeps a slot
    of its own in each column it crosses, and each column is sorted by the mean row of what
    feeds it (two sweeps, declaration order breaking ties): a straight arc then runs between
    the nodes of the columns it crosses, not through them (``a→b, b→c, a→c`` put b in the
    row of a→c). What the view's Layout does better (dagre); this one needs no browser."""
    columns: dict[int, list[str]] = {}
    feeds: dict[str, list[str]] = {n: [] for n in order}
    for n in order:
        columns.setdefault(rank[n], []).append(n)
    for k, (s, t) in enumerate(arcs):
        if rank[t] <= rank[s]:
            continue  # a net's loop back: drawn leftwards, no slots
        prev = s
        for r in range(rank[s] + 1, rank[t]):
            slot = f"\0{k}:{r}"  # not a node id (ids are words)
            columns.setdefault(r, []).append(slot)
            feeds[slot] = [prev]
            prev = slot
        feeds[t].append(prev)
    row: dict[str, float] = {}

    def place(members: list[str]) -> None:
        for i, n in enumerate(members):
            row[n] = i - (len(members) - 1) / 2

    for r in sorted(columns):
        place(columns[r])
    for _ in range(2):
        for r in sorted(columns):
            fed = {n: [row[p] for p in feeds[n]] for n in columns[r]}
            columns[r].sort(key=lambda n: sum(fed[n]) / len(fed[n]) if fed[n] else row[n])
            place(columns[r])
    return {n: row[n] for n in order}


def _token_count(tokens: Any) -> int:
    if isinstance(tokens, list):
        return len(tokens)
    return int(tokens) if isinstance(tokens, int) else 0


#: Distances between neighbouring nodes' centres that read well on the canvas (the
#: designer's own layout puts columns 180 apart, rows 90), and what other scales become.
READABLE, SPACING = (60.0, 240.0), 120.0


def canvas_positions(pos: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Another tool's coordinates, scaled so that neighbouring nodes sit about ``SPACING``
    apart, the drawing's corner at (60, 60). pm4py writes nets ~40 units apart (the nodes
    would overlap), others may spread them thousands apart; coordinates already at a
    readable scale (``READABLE``, e.g. a design the designer exported) are kept as they
    are. ``{}`` (lay it out instead) when most nodes share one spot: no real drawing."""
    if len(pos) < 2:
        return dict(pos)
    pts = list(pos.values())
    step = max(1, len(pts) // 500)  # nearest neighbours of <= ~500 nodes: O(500 n)
    nearest = sorted(
        min(math.dist(pts[i], q) for j, q in enumerate(pts) if j != i)
        for i in range(0, len(pts), step)
    )
    typical = nearest[len(nearest) // 2]
    if typical < 1.0:
        return {}
    if READABLE[0] <= typical <= READABLE[1]:
        return dict(pos)
    factor = SPACING / typical
    x0, y0 = min(x for x, _ in pts), min(y for _, y in pts)
    return {
        k: (round(60 + (x - x0) * factor, 1), round(60 + (y - y0) * factor, 1))
        for k, (x, y) in pos.items()
    }

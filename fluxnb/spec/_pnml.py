"""PNML (ISO/IEC 15909-2) place/transition nets: import and export.

Elements are identified by their PNML ``id``, never by ``<name>`` text. Several pages are
flattened, and reference places/transitions are resolved onto the nodes they refer to.
Names and graphics positions are kept (for the designer). Tool-specific elements, data
attributes (guards, variables) and ProM's ``<finalmarkings>`` extension: the final marking
is read; the rest is ignored. TAPAAL's inhibitor arcs (``type="inhibitor"``) are read as
inhibitor arcs.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from xml.parsers import expat

from .._exceptions import ManifestError, Problem
from ._files import MAX_FILE_BYTES, read_file_bytes
from ._net import Arc, Net, Transition, as_net

_NS = "http://www.pnml.org/version-2009/grammar/pnml"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: ET.Element, name: str) -> ET.Element | None:
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _text(el: ET.Element | None) -> str | None:
    if el is None:
        return None
    t = _child(el, "text")
    if t is not None and t.text is not None:
        return t.text.strip()
    return el.text.strip() if el.text and el.text.strip() else None


#: A whole number as PNML writes one: ASCII digits (not ``5_000``, not other scripts' digits).
_WHOLE = re.compile(r"[+-]?[0-9]+")
#: Node kinds whose ``id`` must be unique in a net.
_NODES = ("place", "transition", "arc", "referencePlace", "referenceTransition")


def _int(value: str | None, default: int, what: str, source: str) -> int:
    if value is None or value == "":
        return default
    if not _WHOLE.fullmatch(value):
        raise ManifestError(
            [Problem("bad_value", what, f"{what} must be a whole number, found {value[:40]!r}")],
            source,
        )
    limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 0
    digits = len(value.lstrip("+-"))
    if limit and digits > limit:
        raise ManifestError(
            [
                Problem(
                    "bad_value",
                    what,
                    f"{what} is too large: {digits:,} digits, at most {limit:,}",
                )
            ],
            source,
        )
    n = int(value)
    if n < 0:
        raise ManifestError([Problem("bad_value", what, f"{what} is negative ({n})")], source)
    return n


class _Reader:
    """Collects the nodes and arcs of every page of one ``<net>``."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.places: dict[str, int] = {}
        self.transitions: list[str] = []
        self.arcs: list[tuple[str, str, str, int, str]] = []  # id, source, target, weight, kind
        self.refs: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.positions: dict[str, tuple[float, float]] = {}
        #: id -> the kind of node that has it; a second node with the id is a problem
        self.ids: dict[str, str] = {}
        self.duplicates: list[tuple[str, str, str]] = []  # id, first kind, second kind

    def unique(self, kind: str, nid: str) -> bool:
        """Note ``nid``; False (and a problem) when an earlier node has it already."""
        if nid in self.ids:
            self.duplicates.append((nid, self.ids[nid], kind))
            return False
        self.ids[nid] = kind
        return True

    def meta(self, el: ET.Element, nid: str) -> None:
        label = _text(_child(el, "name"))
        if label:
            self.names[nid] = label
        g = _child(el, "graphics")
        pos = _child(g, "position") if g is not None else None
        if pos is not None:
            with contextlib.suppress(ValueError):
                self.positions[nid] = (float(pos.get("x", 0)), float(pos.get("y", 0)))

    def walk(self, container: ET.Element) -> None:
        pages = [iter(container)]  # pages nest; a stack keeps document order without recursion
        while pages:
            el = next(pages[-1], None)
            if el is None:
                pages.pop()
                continue
            kind, nid = _local(el.tag), el.get("id")
            if kind == "page":
                pages.append(iter(el))
            elif kind in _NODES and nid and not self.unique(kind, nid):
                continue  # reported with its line by read_pnml
            elif kind == "place" and nid:
                self.places[nid] = _int(
                    _text(_child(el, "initialMarking")),
                    0,
                    f"initial marking of place {nid}",
                    self.source,
                )
                self.meta(el, nid)
            elif kind == "transition" and nid:
                self.transitions.append(nid)
                self.meta(el, nid)
            elif kind in ("referencePlace", "referenceTransition") and nid and el.get("ref"):
                self.refs[nid] = el.get("ref", "")
            elif kind == "arc" and nid:
                weight = _int(
                    _text(_child(el, "inscription")), 1, f"inscription of arc {nid}", self.source
                )
                arc_kind = (el.get("type") or _text(_child(el, "arctype")) or "normal").lower()
                self.arcs.append(
                    (nid, el.get("source", ""), el.get("target", ""), weight, arc_kind)
                )

    def resolve(self, nid: str) -> str:
        """A reference node's target (following chains of references)."""
        seen = set()
        while nid in self.refs:
            if nid in seen:
                raise ManifestError(
                    [Problem("pnml_reference", "", f"reference cycle through '{nid}'")],
                    self.source,
                )
            seen.add(nid)
            nid = self.refs[nid]
        return nid

    def final_marking(self, net_el: ET.Element, index: dict[str, int]) -> dict[int, int]:
        """ProM's ``<finalmarkings>`` extension, if present."""
        final: dict[int, int] = {}
        fm = _child(net_el, "finalmarkings")
        marking = _child(fm, "marking") if fm is not None else None
        for pl in marking if marking is not None else []:
            pid = self.resolve(pl.get("idref", ""))
            n = _int(_text(pl), 0, f"final marking of {pid}", self.source)
            if pid in index and n:
                final[index[pid]] = n
        return final


def _parse(source: str | os.PathLike[str]) -> tuple[ET.Element, str, str | bytes]:
    name = str(source)
    text: str | bytes
    if isinstance(source, os.PathLike) or (
        isinstance(source, str) and not source.lstrip().startswith("<")
    ):
        text = read_file_bytes(source, "PNML")
    else:
        name, text = "<pnml>", source
        if len(text) > MAX_FILE_BYTES:
            raise ManifestError(
                [
                    Problem(
                        "too_large", "", f"PNML text may have at most {MAX_FILE_BYTES:,} characters"
                    )
                ],
                name,
            )
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ManifestError(
            [Problem("pnml_syntax", "", f"cannot read PNML: {exc}")], name
        ) from None
    except (LookupError, ValueError) as exc:  # encoding="nope" in the XML declaration
        raise ManifestError(
            [
                Problem(
                    "pnml_syntax",
                    "",
                    f"cannot read PNML: {exc}; declare a known encoding "
                    '(<?xml version="1.0" encoding="UTF-8"?>)',
                )
            ],
            name,
        ) from None
    net_el = root if _local(root.tag) == "net" else _child(root, "net")
    if net_el is None:
        raise ManifestError([Problem("pnml_syntax", "", "no <net> element")], name)
    return net_el, name, text


def _lines(text: str | bytes, ids: set[str]) -> dict[str, list[int]]:
    """The lines of the nodes of the first ``<net>`` with one of ``ids``, in document order
    (ElementTree keeps no lines, so this second pass runs only to locate a problem)."""
    found: dict[str, list[int]] = {}
    parser = expat.ParserCreate(namespace_separator="}")
    depth = 0  # inside the first <net>: > 0; after it: -1

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal depth
        local = _local(tag)
        if depth == 0 and local == "net":
            depth = 1
        elif depth > 0:
            depth += 1
            if local in _NODES and attrs.get("id") in ids:
                found.setdefault(attrs["id"], []).append(parser.CurrentLineNumber)

    def end(tag: str) -> None:
        nonlocal depth
        if depth > 0:
            depth -= 1
            depth = depth or -1

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    with contextlib.suppress(expat.ExpatError, ValueError, LookupError):
        parser.Parse(text, True)
    return found


def _a(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def _duplicates(r: _Reader, text: str | bytes) -> list[Problem]:
    lines = _lines(text, {nid for nid, _, _ in r.duplicates})
    problems = []
    for nid, first, kind in r.duplicates:
        seen = lines.get(nid, [])
        where = f" (line {seen[0]})" if seen else ""
        line = seen.pop(1) if len(seen) > 1 else None
        problems.append(
            Problem(
                "duplicate_id",
                nid,
                f"the id '{nid}' of this {kind} is taken by {_a(first)}{where}; every place, "
                "transition and arc of a PNML net needs its own id",
                line=line,
            )
        )
    return problems


def read_pnml(source: str | os.PathLike[str]) -> Net:
    """A Net from a PNML file path or PNML text; ManifestError if it is not one."""
    net_el, name, text = _parse(source)
    r = _Reader(name)
    r.walk(net_el)
    if r.duplicates:
        raise ManifestError(_duplicates(r, text), name)
    place_ids = list(r.places)
    index = {p: i for i, p in enumerate(place_ids)}
    ins: dict[str, list[Arc]] = {t: [] for t in r.transitions}
    outs: dict[str, list[Arc]] = {t: [] for t in r.transitions}
    inhibits: dict[str, list[Arc]] = {t: [] for t in r.transitions}
    problems = []
    for aid, raw_src, raw_dst, weight, kind in r.arcs:
        src, dst = r.resolve(raw_src), r.resolve(raw_dst)
        if src in index and dst in ins:
            (inhibits if kind == "inhibitor" else ins)[dst].append(Arc(index[src], weight))
        elif src in outs and dst in index and kind != "inhibitor":
            outs[src].append(Arc(index[dst], weight))
        else:
            problems.append(
                Problem(
                    "pnml_arc",
                    aid,
                    f"arc {aid} ({kind}) joins '{src}' and '{dst}', which are not a place "
                    "and a transition of this net in that direction",
                )
            )
    if problems:
        raise ManifestError(problems, name)
    return Net(
        name=net_el.get("id") or "net",
        places=tuple(place_ids),
        initial=tuple(r.places[p] for p in place_ids),
        transitions=tuple(
            Transition(t, tuple(ins[t]), tuple(outs[t]), inhibitors=tuple(inhibits[t]))
            for t in r.transitions
        ),
        final=r.final_marking(net_el, index),
        names=r.names,
        positions=r.positions,
    )


def write_pnml(net: Net) -> str:
    """PNML text of a net (one page); ``read_pnml(write_pnml(net))`` gives the same net."""
    net = as_net(net)  # a NetBuilder: the net built so far
    ET.register_namespace("", _NS)
    root = ET.Element(f"{{{_NS}}}pnml")
    net_el = ET.SubElement(
        root, f"{{{_NS}}}net", id=net.name, type="http://www.pnml.org/version-2009/grammar/ptnet"
    )
    page = ET.SubElement(net_el, f"{{{_NS}}}page", id="page0")

    def meta(el: ET.Element, nid: str) -> None:
        if nid in net.names:
            n = ET.SubElement(el, f"{{{_NS}}}name")
            ET.SubElement(n, f"{{{_NS}}}text").text = net.names[nid]
        if nid in net.positions:
            g = ET.SubElement(el, f"{{{_NS}}}graphics")
            x, y = net.positions[nid]
            ET.SubElement(g, f"{{{_NS}}}position", x=_num(x), y=_num(y))

    for pid, tokens in zip(net.places, net.initial, strict=True):
        el = ET.SubElement(page, f"{{{_NS}}}place", id=pid)
        meta(el, pid)
        if tokens:
            im = ET.SubElement(el, f"{{{_NS}}}initialMarking")
            ET.SubElement(im, f"{{{_NS}}}text").text = str(tokens)
    for t in net.transitions:
        meta(ET.SubElement(page, f"{{{_NS}}}transition", id=t.id), t.id)
    n = 0

    def arc(src: str, dst: str, weight: int, kind: str | None = None) -> None:
        nonlocal n
        n += 1
        attrs: dict[str, Any] = {"id": f"a{n}", "source": src, "target": dst}
        if kind:
            attrs["type"] = kind
        el = ET.SubElement(page, f"{{{_NS}}}arc", **attrs)
        if weight != 1:
            ins = ET.SubElement(el, f"{{{_NS}}}inscription")
            ET.SubElement(ins, f"{{{_NS}}}text").text = str(weight)

    for t in net.transitions:
        for a in t.inputs:
            arc(net.places[a.place], t.id, a.weight)
        for a in t.outputs:
            arc(t.id, net.places[a.place], a.weight)
        for a in t.inhibitors:
            arc(net.places[a.place], t.id, a.weight, "inhibitor")
    if net.final:
        fm = ET.SubElement(net_el, "finalmarkings")
        mk = ET.SubElement(fm, "marking")
        for pi, tokens in net.final.items():
            pl = ET.SubElement(mk, "place", idref=net.places[pi])
            ET.SubElement(pl, "text").text = str(tokens)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def load_pnml_file(path: str | os.PathLike[str]) -> Net:
    return read_pnml(Path(path))

"""YAML to plain Python values, remembering where every value came from.

PyYAML's ``safe_load`` forgets positions and silently keeps the last of two equal keys.
Here the document is composed into nodes, turned into plain dicts, lists and scalars,
and each value's ``(line, column)`` is kept in a side table keyed by its path.

Every YAML fluxnb reads (manifests, nets, rate cards, the designer's YAML view, ``--param``
values) comes through :func:`load_located`, which is safe on hostile text (docs/manifest.md,
"Limits"): at most :data:`MAX_TEXT` characters; aliases may add at most :data:`ALIAS_BUDGET`
values to the document (a "billion laughs" of a few hundred bytes is refused in microseconds,
before anything is expanded); values nest at most :data:`MAX_DEPTH` deep; only the plain YAML
types are built (strings, numbers, booleans, null, dates, lists, mappings) and a value its tag
cannot make (``!!int x``) is a located problem, not a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from .._exceptions import ManifestError, Problem

Path = tuple[str | int, ...]

#: The most characters (of a file: bytes) a manifest, net, PNML file or rate card may have.
MAX_TEXT = 16 * 1024 * 1024
#: How many values aliases (``*name``, ``<<: *name``) may add to a document in all.
ALIAS_BUDGET = 100_000
#: How deep lists and mappings may nest.
MAX_DEPTH = 200

_TAG = "tag:yaml.org,2002:"
#: The scalar types a manifest may hold, by tag (explicit or resolved): all plain data.
_SCALAR_TAGS = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp"))

try:  # libyaml is much faster when present; positions are the same
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader


@dataclass
class Located:
    """A parsed document plus the 1-based position of every value and key in it."""

    data: Any
    source: str | None
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def at(self, path: Path, *, key: bool = False) -> tuple[int | None, int | None]:
        """The position of ``path`` (its key when ``key``), else of its nearest parent."""
        table = self.key_positions if key else self.positions
        p = path
        while True:
            if p in table:
                return table[p]
            if p in self.positions:
                return self.positions[p]
            if not p:
                return (None, None)
            p = p[:-1]


def format_path(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def load_yaml(text: str, source: str | None = None) -> Any:
    """Plain data of YAML ``text`` under the limits of :func:`load_located`."""
    return load_located(text, source).data


def load_located(text: str, source: str | None = None) -> Located:
    """Parse YAML ``text``; raise ManifestError (with line and column) on bad YAML.

    Refuses (``too_large``, ``yaml_alias``, ``yaml_tag``, ``bad_value``) text past
    :data:`MAX_TEXT`, alias expansion past :data:`ALIAS_BUDGET`, nesting past
    :data:`MAX_DEPTH`, recursive aliases and tags other than the plain YAML types.
    """
    if len(text) > MAX_TEXT:
        raise ManifestError(
            [
                Problem(
                    "too_large",
                    "",
                    f"the document has {len(text):,} characters; a manifest may have at "
                    f"most {MAX_TEXT:,} (16 MiB)",
                )
            ],
            source,
        )
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        located = Located(None, source)
        if node is not None:
            if "*" in text:  # every alias starts with '*'; without one, nothing expands
                _check_expansion(node, source)
            located.data = _build(loader, node, (), located)
        return located
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        what = exc.problem or exc.context or "invalid YAML"
        raise ManifestError(
            [Problem("yaml_syntax", "", f"invalid YAML: {what}", line, col)], source
        ) from None
    except RecursionError:
        raise ManifestError(
            [Problem("yaml_syntax", "", "the document is nested too deeply to be a manifest")],
            source,
        ) from None
    except yaml.YAMLError as exc:
        raise ManifestError([Problem("yaml_syntax", "", f"invalid YAML: {exc}")], source) from None
    finally:
        loader.dispose()


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: yaml.Node, source: str | None) -> None:
    """Refuse a node graph whose aliases would expand past the budget or loop, before
    anything is built: one pass over the distinct nodes (aliases share them), no recursion."""
    size: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_.discard(key)
            size[key] = total = 1 + sum(size[id(k)] for k in _children(node))
            # (distinct nodes seen so far) <= (distinct nodes in the whole document), so
            # this never refuses what the whole document's budget would allow
            if total - len(size) > ALIAS_BUDGET:
                raise _problem(
                    "yaml_alias",
                    node,
                    f"aliases (*name) would expand this value to over {total:,} values; "
                    f"aliases may add at most {ALIAS_BUDGET:,} values to one document (write "
                    "the repeated part once, or fewer times)",
                    source,
                )
        elif key not in size:
            if key in open_:
                raise _problem(
                    "yaml_alias",
                    node,
                    "this value contains an alias of itself (*name inside &name); a "
                    "manifest cannot be recursive",
                    source,
                )
            open_.add(key)
            stack.append((node, True))
            stack.extend((k, False) for k in _children(node) if id(k) not in size)


def _problem(kind: str, node: yaml.Node, message: str, source: str | None) -> ManifestError:
    return ManifestError([Problem(kind, "", message, *_mark(node))], source)


def _scalar(loader: Any, node: yaml.Node, path: Path, source: str | None) -> Any:
    """A scalar of a plain YAML type; anything else is a located problem."""
    tag = node.tag
    if tag in (_TAG + "value", _TAG + "merge"):  # a lone '=' or '<<' as a value: text
        return node.value
    if not isinstance(node, yaml.ScalarNode) or tag not in _SCALAR_TAGS:
        shown = tag.replace(_TAG, "!!")
        expected = "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"
        if isinstance(node, yaml.ScalarNode):
            expected = "a string, number, boolean, date or null"
        raise ManifestError(
            [
                Problem(
                    "yaml_tag",
                    format_path(path),
                    f"the YAML tag {shown} is not allowed in a manifest; write {expected} "
                    "without a tag",
                    *_mark(node),
                    expected=expected,
                    found=shown,
                )
            ],
            source,
        )
    try:
        return loader.construct_object(node)
    except yaml.YAMLError:
        raise
    except Exception as exc:  # !!int x, !!float 110s, a 5,000-digit number, 2026-13-01...
        shown = tag.replace(_TAG, "")
        raise ManifestError(
            [
                Problem(
                    "bad_value",
                    format_path(path),
                    f"{node.value[:80]!r} is not a valid {shown} ({exc})",
                    *_mark(node),
                    expected=shown,
                    found=node.value[:80],
                )
            ],
            source,
        ) from None


def _build(loader: Any, node: yaml.Node, path: Path, located: Located) -> Any:
    located.positions[path] = _mark(node)
    if len(path) >= MAX_DEPTH and not isinstance(node, yaml.ScalarNode):
        raise _problem(
            "yaml_syntax",
            node,
            f"values nest more than {MAX_DEPTH} levels deep here; a manifest may nest at "
            f"most {MAX_DEPTH}",
            located.source,
        )
    if isinstance(node, yaml.MappingNode) and node.tag == _TAG + "map":
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ManifestError(
                    [
                        Problem(
                            "wrong_type",
                            format_path(path),
                            "a mapping key must be a plain value, not a list or mapping",
                            key_node.start_mark.line + 1,
                            key_node.start_mark.column + 1,
                        )
                    ],
                    located.source,
                )
            key = _scalar(loader, key_node, path, located.source)
            key_path = (*path, str(key))
            if key in out:
                first = located.key_positions.get(key_path, (None, None))
                raise ManifestError(
                    [
                        Problem(
                            "duplicate_key",
                            format_path(key_path),
                            f"key '{key}' appears twice in the same mapping "
                            f"(first at line {first[0]}); YAML would silently keep the last",
                            key_node.start_mark.line + 1,
                            key_node.start_mark.column + 1,
                        )
                    ],
                    located.source,
                )
            located.key_positions[key_path] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
            out[key] = _build(loader, value_node, key_path, located)
        return out
    if isinstance(node, yaml.SequenceNode) and node.tag == _TAG + "seq":
        return [_build(loader, item, (*path, i), located) for i, item in enumerate(node.value)]
    return _scalar(loader, node, path, located.source)

"""YAML to plain Python values, remembering where every value came from.

PyYAML's ``safe_load`` forgets positions and silently keeps the last of two equal keys.
Here the document is composed into nodes, turned into plain dicts, lists and scalars,
and each value's ``(line, column)`` is kept in a side table keyed by its path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from .._exceptions import ManifestError, Problem

Path = tuple[str | int, ...]

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


def load_located(text: str, source: str | None = None) -> Located:
    """Parse YAML ``text``; raise ManifestError (with line and column) on bad YAML."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        located = Located(None, source)
        if node is not None:
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


def _build(loader: Any, node: yaml.Node, path: Path, located: Located) -> Any:
    located.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
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
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*path, i), located) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)

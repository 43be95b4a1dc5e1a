"""``$name`` and ``$name.attr.attr`` in a ``%fluxsql`` query, bound as DuckDB parameters.

``$res.run_id`` binds ``res.run_id`` (plain attribute chains only: ``getattr`` of names
that do not start with ``_``; no calls, no subscripts). A chain stops at a ``dict``: DuckDB
binds a dict as a STRUCT and reads ``.key`` of it itself. A NumPy scalar binds as the Python
number it holds (DuckDB refuses NumPy scalars).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from IPython.core.error import UsageError

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
#: A '...' literal, a "..." identifier or a -- comment (skipped), or a $name[.attr...].
_TOKEN = re.compile(
    rf"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|(?<![$\w])\$({_IDENT})((?:\.{_IDENT})*)"""
)


def bind_params(query: str, ns: Mapping[str, Any]) -> tuple[str, dict[str, Any], dict[str, str]]:
    """The query with each ``$name.attr`` chain renamed to one parameter, the parameters'
    values, and for each parameter the ``$`` expression it stands for.

    Raises UsageError naming the ``$`` expression when a name is not a notebook variable
    or an attribute cannot be read.
    """
    params: dict[str, Any] = {}
    bound: dict[str, str] = {}  # the $expression -> its parameter name
    plain = {m.group(1) for m in _TOKEN.finditer(query) if m.group(1) and not m.group(2)}

    def sub(m: re.Match[str]) -> str:
        name, chain = m.group(1), m.group(2)
        if name is None:
            return m.group(0)  # a literal, an identifier or a comment
        if name not in ns:
            raise UsageError(f"${name} in the query names no notebook variable")
        value, attrs = ns[name], chain.split(".")[1:]
        used: list[str] = []
        while attrs and not isinstance(value, Mapping):
            value = _attribute(value, attrs[0], f"${name}{''.join('.' + a for a in used)}")
            used.append(attrs.pop(0))
        expr = "$" + ".".join([name, *used])
        if expr not in bound:
            key = "_".join([name, *used])
            while used and (key in plain or key in params):
                key += "_"
            bound[expr] = key
            params[key] = _plain(value)
        rest = "".join("." + a for a in attrs)  # struct fields DuckDB reads itself
        return f"${bound[expr]}{rest}"

    text = _TOKEN.sub(sub, query)
    return text, params, {key: expr for expr, key in bound.items()}


def _attribute(value: Any, attr: str, where: str) -> Any:
    if attr.startswith("_"):
        raise UsageError(
            f"{where}.{attr}: %fluxsql reads public attributes only (no names starting with _)"
        )
    try:
        out = getattr(value, attr)
    except AttributeError:
        fields = ", ".join(public_fields(value)[:8]) or "none"
        raise UsageError(
            f"{where}.{attr}: a {_type_name(value)} has no attribute '{attr}' "
            f"(its fields: {fields})"
        ) from None
    if callable(out) and not isinstance(out, type):
        raise UsageError(
            f"{where}.{attr} is a method: %fluxsql binds values, it calls nothing "
            f"(compute it first: x = {where[1:]}.{attr}(...), then use $x)"
        )
    return out


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python value it holds; anything else as it is."""
    item = getattr(value, "item", None)
    if type(value).__module__ == "numpy" and callable(item) and getattr(value, "ndim", 1) == 0:
        return item()
    return value


def public_fields(value: Any) -> list[str]:
    """Names of a value's data attributes and properties (without reading any property)."""
    names = set(getattr(value, "__dict__", {}))
    names |= {n for n in getattr(type(value), "__dataclass_fields__", {})}
    names |= {n for n in dir(type(value)) if isinstance(getattr(type(value), n, None), property)}
    return sorted(n for n in names if not n.startswith("_"))


def _type_name(value: Any) -> str:
    return type(value).__name__


def unbindable(params: Mapping[str, Any]) -> tuple[str, Any] | None:
    """The first parameter DuckDB cannot take as a value (its name and value), or None."""
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        for key, value in params.items():
            try:
                con.execute("SELECT $v", {"v": value})
            except duckdb.Error:
                return key, value
    finally:
        con.close()
    return None


def unbindable_message(expr: str, value: Any) -> str:
    """Why ``$expr`` cannot be bound, and what to bind instead."""
    t = type(value)
    hint = ""
    scalars = []
    for f in public_fields(value):
        v = getattr(value, f, None) if f in getattr(value, "__dict__", {}) else None
        if isinstance(v, str | int | float):
            scalars.append(f)
    if scalars:
        scalars.sort(key=lambda f: not f.endswith("id"))  # ids are what queries filter on
        hint = "; bind one of its fields instead, e.g. " + ", ".join(
            f"{expr}.{f}" for f in scalars[:3]
        )
    return (
        f"{expr} in the query is a {t.__name__} ({t.__module__}.{t.__qualname__}), which "
        "SQL cannot take as a value (bind a number, string, date, bytes, Decimal, list or "
        f"dict){hint}"
    )

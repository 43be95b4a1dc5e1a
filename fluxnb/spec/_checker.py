"""Reading a located document with checks that collect problems instead of raising."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .._exceptions import FluxError, Problem
from ._durations import DURATION_HELP, parse_duration
from ._graph import suggest
from ._located import Located, Path, format_path
from ._model import STEP_ID
from ._options import STRATEGIES, OnError

ON_ERROR_KEYS = ("strategy", "fallback")
#: What ``cache:`` may say (``true`` is ``use``, ``false`` is ``off``).
CACHE_MODES = ("use", "refresh", "off")
EXECUTOR_URL = re.compile(r"dask://[A-Za-z0-9_.\-\[\]:]+:\d+")

MISSING = object()


def kind_of(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"the string '{value}'" if len(value) < 60 else "a long string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class Checker:
    """Collects problems while reading a located document."""

    def __init__(self, doc: Located) -> None:
        self.doc = doc
        self.problems: list[Problem] = []

    def add(self, kind: str, path: Path, message: str, *, key: bool = False, **facts: Any) -> None:
        line, col = self.doc.at(path, key=key)
        self.problems.append(Problem(kind, format_path(path), message, line, col, **facts))

    def mapping(self, value: Any, path: Path, allowed: tuple[str, ...], what: str) -> dict:
        if not isinstance(value, dict):
            self.add(
                "wrong_type",
                path,
                f"{what} must be a mapping (key: value lines), found {kind_of(value)}",
                expected="a mapping",
                found=value,
            )
            return {}
        for key in value:
            if key not in allowed:
                hint = suggest(str(key), list(allowed))
                self.add(
                    "unknown_key",
                    (*path, str(key)),
                    f"unknown key '{key}' in {what}"
                    + (f" (did you mean '{hint}'?)" if hint else "")
                    + f"; allowed keys: {', '.join(allowed)}",
                    key=True,
                    expected=", ".join(allowed),
                    found=key,
                    suggestion=hint,
                )
        return value

    def get(self, m: dict, key: str, path: Path, check: Callable[[Any, Path], Any]) -> Any:
        if key not in m or m[key] is None:
            return MISSING
        return check(m[key], (*path, key))

    def integer(self, minimum: int) -> Callable[[Any, Path], Any]:
        def check(v: Any, path: Path) -> Any:
            if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
                self.add(
                    "wrong_type" if not isinstance(v, int) or isinstance(v, bool) else "bad_value",
                    path,
                    f"expected an integer >= {minimum}, found {kind_of(v)}",
                    expected=f"integer >= {minimum}",
                    found=v,
                )
                return MISSING
            return v

        return check

    def boolean(self, v: Any, path: Path) -> Any:
        if isinstance(v, bool):
            return v
        self.add("wrong_type", path, f"expected true or false, found {kind_of(v)}", expected="bool")
        return MISSING

    def duration(self, v: Any, path: Path) -> Any:
        try:
            return parse_duration(v)
        except ValueError as exc:
            self.add("bad_duration", path, str(exc), expected=DURATION_HELP, found=v)
            return MISSING

    def string(self, v: Any, path: Path) -> Any:
        if not isinstance(v, str) or not v.strip():
            self.add(
                "wrong_type",
                path,
                f"expected a non-empty string, found {kind_of(v)}",
                expected="a string",
                found=v,
            )
            return MISSING
        return v

    def step_id(self, v: Any, path: Path) -> Any:
        if isinstance(v, str) and not STEP_ID.fullmatch(v):
            self.add(
                "bad_value",
                path,
                f"'{v}' is not a valid step id: use letters, digits, '_' and '-', "
                "starting with a letter or '_'",
                expected="an id like fetch_orders",
                found=v,
            )
            return MISSING
        return self.string(v, path)

    def executor_ref(self, v: Any, path: Path) -> Any:
        """``local``, ``dask``, or ``dask://HOST:PORT``."""
        if isinstance(v, str) and (v in ("local", "dask") or EXECUTOR_URL.fullmatch(v)):
            return v
        self.add(
            "bad_value",
            path,
            f"expected local, dask or dask://HOST:PORT, found {kind_of(v)}",
            expected="local | dask | dask://HOST:PORT",
            found=v,
        )
        return MISSING

    def on_error(self, v: Any, path: Path) -> Any:
        """``stop`` | ``continue`` | ``skip`` | ``retry``, or ``{strategy:, fallback:}``."""
        if isinstance(v, dict):
            m = self.mapping(v, path, ON_ERROR_KEYS, "on_error")
            strategy = self.get(m, "strategy", path, self.choice(STRATEGIES))
            fallback = self.get(m, "fallback", path, self.choice(("stop", "continue", "skip")))
            if strategy is MISSING:
                if "strategy" not in m:
                    self.add("missing_key", path, "on_error needs a 'strategy'")
                return MISSING
            return OnError(strategy, "stop" if fallback is MISSING else fallback)
        strategy = self.choice(STRATEGIES)(v, path)
        return MISSING if strategy is MISSING else OnError(strategy)

    def layout(self, v: Any, path: Path) -> Any:
        """``{node id: [x, y]}`` — where the designer drew each node → dict of float pairs."""
        if not isinstance(v, dict):
            self.add(
                "wrong_type", path, f"layout must be a mapping of id: [x, y], found {kind_of(v)}"
            )
            return MISSING
        out: dict[str, tuple[float, float]] = {}
        for key, xy in v.items():
            ok = (
                isinstance(xy, list)
                and len(xy) == 2
                and all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in xy)
            )
            if not ok:
                self.add(
                    "wrong_type",
                    (*path, key),
                    f"a layout position is [x, y] (two numbers), found {kind_of(xy)}",
                    expected="[x, y]",
                    found=xy,
                )
                continue
            out[str(key)] = (float(xy[0]), float(xy[1]))
        return out

    def scope_name(self, v: Any, path: Path) -> Any:
        """A tenant or namespace name (lowercase letters, digits, '-', '_', '.')."""
        from .._session import check_name

        try:
            return check_name(v, str(path[-1]))
        except FluxError as exc:
            self.add("bad_value", path, str(exc), expected="a name like 'team-a'", found=v)
            return MISSING

    def roles(self, v: Any, path: Path) -> Any:
        """One role or a list of roles (viewer, operator, admin) → tuple."""
        items = self.strings(v, path)
        if items is MISSING:
            return MISSING
        known = ("viewer", "operator", "admin")
        for item in items:
            if item.lower() not in known:
                self.add(
                    "bad_value",
                    path,
                    f"'{item}' is not a role; use viewer, operator or admin",
                    expected="viewer | operator | admin",
                    found=item,
                    suggestion=suggest(item.lower(), list(known)),
                )
                return MISSING
        return tuple(i.lower() for i in items)

    def cache_mode(self, v: Any, path: Path) -> Any:
        """``true`` (= ``use``), ``false`` (= ``off``), ``use``, ``refresh`` or ``off``."""
        if v is True or v is False:
            return "use" if v else "off"
        return self.choice(CACHE_MODES)(v, path)

    def version(self, v: Any, path: Path) -> Any:
        """A ``cache_version:``: a string or a number, kept as text."""
        if isinstance(v, bool) or not isinstance(v, str | int | float) or v == "":
            self.add(
                "wrong_type",
                path,
                f"expected a version (a string or a number), found {kind_of(v)}",
                expected="a string or a number",
                found=v,
            )
            return MISSING
        return str(v)

    def strings(self, v: Any, path: Path) -> Any:
        """One string or a list of strings → tuple."""
        items = [v] if isinstance(v, str) else v
        if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
            self.add(
                "wrong_type",
                path,
                f"expected a string or a list of strings, found {kind_of(v)}",
                expected="a string or a list of strings",
                found=v,
            )
            return MISSING
        return tuple(items)

    def choice(self, choices: tuple[str, ...]) -> Callable[[Any, Path], Any]:
        def check(v: Any, path: Path) -> Any:
            if v not in choices:
                hint = suggest(str(v), list(choices)) if isinstance(v, str) else None
                self.add(
                    "bad_value",
                    path,
                    f"expected one of {', '.join(choices)}, found {kind_of(v)}"
                    + (f" (did you mean '{hint}'?)" if hint else ""),
                    expected=" | ".join(choices),
                    found=v,
                    suggestion=hint,
                )
                return MISSING
            return v

        return check


def opts(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not MISSING}

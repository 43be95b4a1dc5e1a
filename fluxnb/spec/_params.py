"""Run parameters: ``{{name}}`` in a manifest, filled from ``params=``, ``--param``, a
manifest's own ``params:`` defaults and (in a notebook) its variables.

One function, :func:`fill_text`, serves the API, the CLI and the ``%%fluxroute`` magic.

Values go in as YAML *values*, never as YAML text: each placeholder is located in the
document's tokens first, and the scalar holding it is rewritten whole — a text value is
emitted double-quoted and escaped, so ``"a: b\\nc: d"`` stays one string and can add no
keys. Precedence, highest first: ``params=`` / ``--param``; then (in the magic only) the
notebook's variables; then the manifest's ``params:`` defaults. A ``{{name}}`` left
unfilled is an error naming its line; a placeholder in a comment is left alone.

```yaml
params:
  limit: 3                          # a default (its type, int, is inferred)
  region: {type: str}               # required: no default
  ratio: {type: float, default: 0.5, description: share kept}
pipeline:
  - step: score
    with: {threshold: "{{limit}}", ratio: "{{ratio}}"}
```

Inside a quoted or block string, and inside a longer plain scalar (``timeout: {{n}}s``),
the value's text is spliced into the string; a plain scalar is then typed as YAML types
plain text (``1{{n}}`` with n=5 is the integer 15). A whole plain scalar (``n: {{n}}``)
takes the value's own type. Rewritten scalars keep their line count, so every later line
number in error messages is the one in the source.

Why over 400 lines: substituting values safely into YAML text needs a walk over libyaml's
tokens, the declared parameters' types and defaults, and located problems for all of it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from .._exceptions import FluxError, ManifestError, Problem
from ._checker import Checker, kind_of
from ._graph import suggest
from ._llm_spec import template_positions
from ._located import Located, Path, format_path, load_located
from ._resolve import suggestable_names

#: ``{{name}}``, with optional spaces inside the braces.
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
#: The types a ``params:`` entry may declare.
PARAM_TYPES = ("str", "int", "float", "bool", "list", "dict", "any")
PARAM_KEYS = ("type", "default", "description")
_NO_DEFAULT = object()
_Scanner: type = yaml.SafeLoader  # the pure scanner: token spans as character indexes


@dataclass(frozen=True)
class Param:
    """One declared run parameter (an entry of a manifest's ``params:``)."""

    #: The name used as ``{{name}}``.
    name: str
    #: One of ``PARAM_TYPES``; ``any`` accepts every value.
    type: str = "any"
    #: The value used when none is passed; absent means the parameter is required.
    default: Any = _NO_DEFAULT
    #: What the parameter means (shown by nobody yet; for the reader of the manifest).
    description: str | None = None

    @property
    def required(self) -> bool:
        return self.default is _NO_DEFAULT


def parse_param(item: str) -> tuple[str, Any]:
    """``KEY=VALUE`` from a command line, the value typed by YAML's rules for a scalar.

    ``n=3`` is the int 3, ``x=abc`` the string ``'abc'``, ``on=true`` a bool, ``x=`` the
    empty string. A value starting with ``[`` or ``{`` is a YAML flow list or mapping;
    any other value is one scalar, so ``'x=a: b'`` is the text ``'a: b'``.

    Raises:
        FluxError: not ``KEY=VALUE``, or a list/mapping that is not valid YAML.
    """
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise FluxError(f"--param expects KEY=VALUE (KEY a name like limit), got '{item}'")
    if not raw.strip():
        return key, ""
    flow = raw.lstrip()[:1] in ("[", "{")
    try:
        value = load_located(raw, f"--param {key}").data  # YAML's safe rules, bounded
    except ManifestError as exc:
        if flow:
            raise FluxError(f"--param {key}: not a valid YAML list or mapping: {exc}") from None
        return key, raw
    if isinstance(value, list | dict) and not flow:
        return key, raw  # block YAML in a value is text, never structure
    if not isinstance(value, str | int | float | bool | list | dict) and value is not None:
        return key, raw  # a date or the like: keep what was typed
    return key, value


def parse_params(items: list[str]) -> dict[str, Any]:
    """Several ``KEY=VALUE`` items (the last of a repeated key wins)."""
    return dict(parse_param(item) for item in items)


def fill_text(
    text: str,
    params: Mapping[str, Any] | None = None,
    *,
    lookup: Mapping[str, Any] | None = None,
    source: str | None = None,
) -> str:
    """``text`` with every ``{{name}}`` filled, after checking the ``params:`` section.

    Args:
        text: the manifest's YAML text.
        params: explicit values; they win over everything. When the manifest declares
            ``params:``, each must be declared there.
        lookup: a fallback source of values (a notebook's variables), consulted only for
            names the manifest uses or declares, after ``params`` and before defaults.
        source: the file or cell name for error messages.

    Raises:
        ManifestError: an unfilled ``{{name}}`` (kind ``unfilled_param``), a bad
            ``params:`` entry, a passed parameter nobody uses or declares
            (``unknown_param``), a value of the wrong type or one that cannot be written
            as YAML (``bad_param``); every problem with its line.
    """
    params = dict(params or {})
    holes = list(PLACEHOLDER.finditer(text))
    if not holes and not params and "params" not in text:
        return text  # the common case: nothing to do, nothing parsed twice
    return _Filler(text, holes, source).fill(params, lookup or {})


class _Filler:
    def __init__(self, text: str, holes: list[re.Match[str]], source: str | None) -> None:
        self.text, self.holes, self.source = text, holes, source
        self.marker = next(m for m in _markers() if m not in text)
        # each placeholder becomes a plain word of the same length: the masked text
        # parses, and every position in it is the position in the source
        parts, pos = [], 0
        for i, h in enumerate(holes):
            parts += [text[pos : h.start()], self._sentinel(i, h.end() - h.start())]
            pos = h.end()
        self.masked = "".join([*parts, text[pos:]])
        self.problems: list[Problem] = []
        self.misfits: set[str] = set()  # values of the wrong type (already a problem)
        self.misplaced: set[str] = set()  # in an anchor, tag or alias (already a problem)

    def _sentinel(self, i: int, length: int) -> str:
        word = f"{self.marker}{i}"
        if len(word) > length:  # thousands of one-letter placeholders: no room for an index
            raise FluxError("too many {{...}} placeholders in one manifest (over 1000)")
        return word.ljust(length, "x")

    def problem(
        self, kind: str, path: str, message: str, at: tuple[Any, Any], **facts: Any
    ) -> None:
        self.problems.append(Problem(kind, path, message, at[0], at[1], **facts))

    def fill(self, params: dict[str, Any], lookup: Mapping[str, Any]) -> str:
        doc = load_located(self.masked, self.source)
        declared = self._declared(doc)
        in_scalars = self._locate()
        # an LLM prompt's {{name}} is the step's input, filled when it runs (_llm_spec.py)
        prompts = template_positions(doc)
        for i, tok in list(in_scalars.items()):
            if (tok.start_mark.line + 1, tok.start_mark.column + 1) in prompts:
                del in_scalars[i]
        used = [self.holes[i].group(1) for i in sorted(in_scalars)]
        values = self._values(doc, declared, params, lookup, used)
        for i in sorted(in_scalars):
            name = self.holes[i].group(1)
            if declared is not None and name not in declared:
                self._undeclared(i, declared)
            elif name not in values and name not in self.misfits:
                self._unfilled(i, declared, params, lookup)
        if self.problems:
            raise ManifestError(self.problems, self.source)
        out = self._rewrite(in_scalars, values)
        if self.problems:
            raise ManifestError(self.problems, self.source)
        return out

    # -------------------------------------------------------------- params: section
    def _declared(self, doc: Located) -> dict[str, Param] | None:
        data = doc.data
        if not isinstance(data, dict) or "params" not in data:
            return None
        c = Checker(doc)
        raw = data["params"]
        out: dict[str, Param] = {}
        if raw is None:
            return out
        if not isinstance(raw, dict):
            c.add(
                "wrong_type",
                ("params",),
                f"params must be a mapping of name: default (or name: {{type: ..., "
                f"default: ...}}), found {kind_of(raw)}",
                expected="a mapping",
                found=raw,
            )
        for name, spec in (raw if isinstance(raw, dict) else {}).items():
            p = self._param(c, str(name), spec, ("params", str(name)))
            if p is not None:
                out[p.name] = p
        if self.marker in repr(raw):
            c.add("bad_param", ("params",), "params: cannot use {{...}}; write plain values")
        self.problems += c.problems
        return out

    def _param(self, c: Checker, name: str, spec: Any, path: Path) -> Param | None:
        if not name.isidentifier():
            c.add(
                "bad_param",
                path,
                f"param name '{name}' is not a name ({{{{{name}}}}} could never use it); "
                "use letters, digits and _",
                key=True,
                found=name,
            )
            return None
        if not isinstance(spec, dict):
            return Param(name, _type_of(spec), spec)
        m = c.mapping(spec, path, PARAM_KEYS, f"param '{name}'")
        typ = m.get("type", "any" if "default" not in m else _type_of(m["default"]))
        if typ not in PARAM_TYPES:
            hint = suggest(str(typ), list(PARAM_TYPES))
            c.add(
                "bad_param",
                (*path, "type"),
                f"unknown type '{typ}' for param '{name}'"
                + (f" (did you mean '{hint}'?)" if hint else "")
                + f"; types: {', '.join(PARAM_TYPES)}",
                expected=", ".join(PARAM_TYPES),
                found=typ,
                suggestion=hint,
            )
            return None
        description = m.get("description")
        p = Param(name, typ, m.get("default", _NO_DEFAULT), description)
        if not p.required:
            ok, _ = _typed(p, p.default)
            if not ok:
                c.add(
                    "bad_param",
                    (*path, "default"),
                    f"the default of param '{name}' is {kind_of(p.default)}, not a {typ}",
                    expected=typ,
                    found=p.default,
                )
                return None
        return p

    # -------------------------------------------------------------- values
    def _values(
        self,
        doc: Located,
        declared: dict[str, Param] | None,
        params: dict[str, Any],
        lookup: Mapping[str, Any],
        used: list[str],
    ) -> dict[str, Any]:
        at_params = doc.at(("params",), key=True)
        for name in params:
            if declared is not None and name not in declared:
                hint = suggest(name, list(declared))
                self.problem(
                    "unknown_param",
                    "params",
                    f"param '{name}' is not declared in params:"
                    + (f" (did you mean '{hint}'?)" if hint else "")
                    + (f"; declared: {', '.join(declared)}" if declared else "")
                    + "; declare it there, or do not pass it",
                    at_params,
                    found=name,
                    suggestion=hint,
                )
            elif declared is None and name not in used and name not in self.misplaced:
                hint = suggest(name, list(dict.fromkeys(used)))
                self.problem(
                    "unknown_param",
                    "",
                    f"param '{name}' fills nothing: the manifest has no {{{{{name}}}}}"
                    + (f" (did you mean '{hint}'?)" if hint else ""),
                    (None, None),
                    found=name,
                    suggestion=hint,
                )
        values: dict[str, Any] = {}
        names = list(declared) if declared is not None else list(dict.fromkeys(used))
        for name in names:
            p = (declared or {}).get(name)
            if name in params:
                value = params[name]
            elif name in lookup:
                value = lookup[name]
            elif p is not None and not p.required:
                value = p.default
            else:
                continue
            if p is not None:
                ok, value = _typed(p, value)
                if not ok:
                    self.problem(
                        "bad_param",
                        f"params.{name}",
                        f"param '{name}' is declared {p.type}, but the value given is "
                        f"{kind_of(value)}"
                        + (" (quote a number to pass it as text)" if p.type == "str" else ""),
                        doc.at(("params", name), key=True),
                        expected=p.type,
                        found=value,
                    )
                    self.misfits.add(name)
                    continue
            values[name] = value
        return values

    def _undeclared(self, i: int, declared: dict[str, Param]) -> None:
        name = self.holes[i].group(1)
        hint = suggest(name, list(declared))
        self.problem(
            "undeclared_param",
            "",
            f"{{{{{name}}}}} is not declared under params:"
            + (f" (did you mean '{hint}'?)" if hint else "")
            + f"; a manifest with params: declares every parameter it uses (add {name}: "
            "DEFAULT, or {type: str} for a required one)",
            _line_col(self.text, self.holes[i].start()),
            found=name,
            suggestion=hint,
        )

    def _unfilled(
        self,
        i: int,
        declared: dict[str, Param] | None,
        params: dict[str, Any],
        lookup: Mapping[str, Any],
    ) -> None:
        name = self.holes[i].group(1)
        known = [*(declared or {}), *params, *suggestable_names(lookup)]
        hint = suggest(name, [k for k in dict.fromkeys(known) if k != name])
        p = (declared or {}).get(name)
        how = (
            f"param '{name}' is declared without a default: pass it (params={{'{name}': "
            f"...}}, --param {name}=VALUE)"
            if p is not None
            else f"pass it (params={{'{name}': ...}}, --param {name}=VALUE) or declare "
            f"it with a default under params:"
        )
        self.problem(
            "unfilled_param",
            "",
            f"{{{{{name}}}}} is not filled"
            + (f" (did you mean '{hint}'?)" if hint else "")
            + f"; {how}",
            _line_col(self.text, self.holes[i].start()),
            found=name,
            suggestion=hint,
        )

    # -------------------------------------------------------------- tokens
    def _locate(self) -> dict[int, yaml.ScalarToken]:
        """Which scalar token holds each placeholder; placeholders in comments are left
        out, those in anchors, tags or aliases are problems."""
        starts = [h.start() for h in self.holes]
        found: dict[int, yaml.ScalarToken] = {}
        if not starts:
            return found
        k = 0
        for tok in yaml.scan(self.masked, Loader=_Scanner):
            s, e = tok.start_mark.index, tok.end_mark.index
            while k < len(starts) and starts[k] < s:
                k += 1  # before this token, after the last: a comment
            j = k
            while j < len(starts) and starts[j] < e:
                if isinstance(tok, yaml.ScalarToken):
                    found[j] = tok
                else:
                    name = self.holes[j].group(1)
                    self.misplaced.add(name)
                    self.problem(
                        "bad_param",
                        "",
                        f"{{{{{name}}}}} can only stand in a value or a key, not in a YAML "
                        f"{type(tok).__name__.removesuffix('Token').lower()}",
                        _line_col(self.text, starts[j]),
                        found=name,
                    )
                j += 1
            k = j
        return found

    def _rewrite(self, in_scalars: dict[int, yaml.ScalarToken], values: dict[str, Any]) -> str:
        by_token: dict[int, list[int]] = {}
        for i, tok in in_scalars.items():
            by_token.setdefault(id(tok), []).append(i)
        out, pos = [], 0
        for ids in sorted(by_token.values(), key=min):
            tok = in_scalars[ids[0]]
            s, e = tok.start_mark.index, tok.end_mark.index
            try:
                rendered = self._scalar(tok, sorted(ids), values)
            except _Unwritable as exc:
                self.problem("bad_param", "", str(exc), _line_col(self.text, exc.at))
                continue
            out += [self.text[pos:s], _keep_lines(rendered, self.text[s:e], self.text, s)]
            pos = e
        out.append(self.text[pos:])
        return "".join(out)

    def _scalar(self, tok: yaml.ScalarToken, ids: list[int], values: dict[str, Any]) -> str:
        value: str = tok.value
        if tok.plain and len(ids) == 1 and value == self._sentinel_of(ids[0]):
            return _render(values[self.holes[ids[0]].group(1)], self.holes[ids[0]])
        pieces, pos = [], 0
        for i in ids:
            word = self._sentinel_of(i)
            at = value.find(word, pos)
            if at < 0:  # an escape in the string made the marker; should not happen
                raise _Unwritable("a {{...}} here cannot be filled", self.holes[i].start())
            pieces += [value[pos:at], _text(values[self.holes[i].group(1)], self.holes[i])]
            pos = at + len(word)
        joined = "".join([*pieces, value[pos:]])
        if tok.plain:  # typed as plain text would be: 1{{n}} with n=5 is 15
            tag = yaml.resolver.Resolver().resolve(yaml.ScalarNode, joined, (True, False))
            if tag != "tag:yaml.org,2002:str" and "\n" not in joined:
                return joined if joined else "null"
        return _quote(joined)

    def _sentinel_of(self, i: int) -> str:
        h = self.holes[i]
        return self._sentinel(i, h.end() - h.start())


def _markers() -> list[str]:
    letters = "QZXJKVWY"
    return [a + b for a in letters for b in letters] + ["QZXJ" + a for a in letters]


def _line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _type_of(value: Any) -> str:
    for t, py in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if isinstance(value, py):
            return t
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return "any"


def _typed(p: Param, value: Any) -> tuple[bool, Any]:
    """Whether ``value`` fits ``p``'s type, and the value as the type has it (an int for
    a float parameter becomes a float)."""
    t = p.type
    if t == "any":
        return True, value
    if t == "float" and isinstance(value, int) and not isinstance(value, bool):
        return True, float(value)
    if t == "int":
        return isinstance(value, int) and not isinstance(value, bool), value
    py = {"str": str, "float": float, "bool": bool, "list": list | tuple, "dict": dict}[t]
    return isinstance(value, py), value


class _Unwritable(FluxError):
    def __init__(self, message: str, at: int) -> None:
        super().__init__(message)
        self.at = at


def _render(value: Any, hole: re.Match[str]) -> str:
    """``value`` as one YAML flow value: text double-quoted and escaped."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_render(v, hole) for v in value) + "]"
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            if not isinstance(k, str | int | bool | float) and k is not None:
                raise _Unwritable(_unwritable_message(hole, k), hole.start())
            items.append(f"{_render(k, hole)}: {_render(v, hole)}")
        return "{" + ", ".join(items) + "}"
    raise _Unwritable(_unwritable_message(hole, value), hole.start())


def _text(value: Any, hole: re.Match[str]) -> str:
    """``value`` spliced into a longer string."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | dict):
        raise _Unwritable(
            f"{{{{{hole.group(1)}}}}} is {kind_of(value)}, which cannot be part of a longer "
            "string; put it alone as the value",
            hole.start(),
        )
    return _render(value, hole)


def _unwritable_message(hole: re.Match[str], value: Any) -> str:
    return (
        f"{{{{{hole.group(1)}}}}} is a {type(value).__name__}; a param value is text, a "
        "number, true/false, null, or a list or mapping of those (pass str(value) for text)"
    )


def _float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    r = repr(value)
    if "e" in r and "." not in r.split("e")[0]:  # YAML 1.1 floats need a dot: 1.0e+20
        mantissa, exp = r.split("e")
        r = f"{mantissa}.0e{exp}"
    return r


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}
_ESCAPES.update({"\x85": "\\N", "\u2028": "\\L", "\u2029": "\\P", "\ufeff": "\\uFEFF"})


def _printable(o: int) -> bool:
    return (
        0x20 <= o <= 0x7E
        or 0xA0 <= o <= 0xD7FF
        or 0xE000 <= o <= 0xFFFD
        or 0x10000 <= o <= 0x10FFFF
    )


def _quote(text: str) -> str:
    """``text`` as a one-line YAML double-quoted scalar (readable where it can be)."""
    out = ['"']
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
            continue
        o = ord(ch)
        if _printable(o):
            out.append(ch)
        elif o <= 0xFF:
            out.append(f"\\x{o:02X}")
        elif o <= 0xFFFF:
            out.append(f"\\u{o:04X}")
        else:
            out.append(f"\\U{o:08X}")
    out.append('"')
    return "".join(out)


def _keep_lines(rendered: str, original: str, text: str, start: int) -> str:
    """``rendered`` taking as many lines as ``original`` did, so later lines keep their
    numbers: a double-quoted scalar continues over escaped line breaks (which add
    nothing to the value), indented like the lines they replace."""
    breaks = original.count("\n")
    if not breaks:
        return rendered
    core = original.rstrip(" \t\n")
    tail = original[len(core) :]  # a block scalar's trailing newlines stay as they were
    inner = core.count("\n")
    if not inner or not rendered.startswith('"'):
        return rendered + tail
    line_start = text.rfind("\n", 0, start) + 1
    first_indent = len(text[line_start:start]) - len(text[line_start:start].lstrip(" "))
    pads = []
    for line in core.split("\n")[1:]:
        ws = line[: len(line) - len(line.lstrip(" \t"))]
        pads.append(ws if ws.strip(" ") == "" and ws else " " * (first_indent + 1))
    body = rendered[:-1]
    return body + "".join(f"\\\n{p}" for p in pads) + '"' + tail


def fill_mapping(
    manifest: Mapping[str, Any], params: Mapping[str, Any], source: str | None = None
) -> dict[str, Any]:
    """A dict manifest with ``"{{name}}"`` filled in its strings: a string that is just
    ``{{name}}`` becomes the value itself, a longer one gets its text."""
    used: set[str] = set()

    def walk(v: Any, path: Path) -> Any:
        if isinstance(v, dict):
            return {k: walk(x, (*path, str(k))) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x, (*path, i)) for i, x in enumerate(v)]
        if not isinstance(v, str):
            return v
        whole = PLACEHOLDER.fullmatch(v.strip())
        if whole is not None:
            return value_of(whole, path)
        return PLACEHOLDER.sub(lambda m: _text(value_of(m, path), m), v)

    def value_of(m: re.Match[str], path: Path) -> Any:
        name = m.group(1)
        used.add(name)
        if name not in params:
            hint = suggest(name, list(params))
            raise ManifestError(
                [
                    Problem(
                        "unfilled_param",
                        format_path(path),
                        f"{{{{{name}}}}} is not filled"
                        + (f" (did you mean '{hint}'?)" if hint else "")
                        + f"; pass params={{'{name}': ...}}",
                        found=name,
                        suggestion=hint,
                    )
                ],
                source or "<dict>",
            )
        return params[name]

    try:
        out = walk(dict(manifest), ())
    except _Unwritable as exc:
        raise ManifestError([Problem("bad_param", "", str(exc))], source or "<dict>") from None
    extra = [n for n in params if n not in used]
    if extra:
        raise ManifestError(
            [
                Problem(
                    "unknown_param",
                    "",
                    f"param '{n}' fills nothing: the manifest has no {{{{{n}}}}}",
                    found=n,
                    suggestion=suggest(n, sorted(used)),
                )
                for n in extra
            ],
            source or "<dict>",
        )
    return out


def declared_params(text: str, source: str | None = None) -> dict[str, Param] | None:
    """The ``params:`` a manifest's text declares (None: it has no ``params:`` section).

    Raises:
        ManifestError: the text or its ``params:`` section is invalid.
    """
    filler = _Filler(text, list(PLACEHOLDER.finditer(text)), source)
    return filler._declared(load_located(filler.masked, source))

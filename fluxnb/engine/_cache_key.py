"""Code versions and cache keys: what a step's output depends on, as a fingerprint.

A step's **code version** is a hash of its function's normalised source (the AST, so
comments never count, with every docstring removed; line numbers are not part of it)
together with the versions of the functions it calls that are defined in the notebook or
the same package (globals it names that are plain Python functions, followed to any depth
with cycles cut). Functions of other packages do not count: pin them with ``cache_version:``.

A step's **cache key** hashes its :class:`Fingerprint`: that code version, the step's
``cache_version:``, the digests of its parameters, the recorded output digests of the
steps upstream, the manifest settings that change how it is called, and content hashes of
its ``cache_inputs:`` files. Two keys are equal exactly when all of these are equal, and a
fingerprint kept with each recorded attempt says *what* changed when a key differs.

Versions are memoised per function object (and checked against its ``__code__``), so a
step whose code is unchanged costs a few dictionary lookups.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import glob
import hashlib
import inspect
import json
import os
import textwrap
import types
import weakref
from dataclasses import dataclass, field
from typing import Any

#: fn -> (its code object, the hash of its own code, the global names it uses)
_OWN: weakref.WeakKeyDictionary[Any, tuple[Any, str, tuple[str, ...]]] = weakref.WeakKeyDictionary()
#: How deep calls are followed (a helper of a helper of ...).
MAX_DEPTH = 8


def _sha(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()[:32]


def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]


def _source_hash(fn: Any) -> str | None:
    """The hash of ``fn``'s normalised source, or None when its source cannot be read."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    _strip_docstrings(tree)
    return _sha(ast.dump(tree, include_attributes=False))


def _code_hash(code: types.CodeType, doc: str | None) -> str:
    """A fallback for functions without source: their bytecode and constants, the
    docstring left out (line numbers are not part of it)."""
    h = hashlib.sha256(code.co_code)
    consts = list(code.co_consts)
    if consts and (consts[0] is None or consts[0] == doc):  # the docstring's slot
        consts = consts[1:]
    for c in consts:
        if isinstance(c, types.CodeType):
            h.update(_code_hash(c, None).encode())
        else:
            h.update(repr(c).encode(errors="replace"))
    h.update(" ".join(code.co_names).encode())
    h.update(" ".join(code.co_varnames).encode())
    return h.hexdigest()[:32]


def _global_names(code: types.CodeType) -> tuple[str, ...]:
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names.update(_global_names(c))
    return tuple(sorted(names))


def own_version(fn: Any) -> tuple[str, tuple[str, ...]]:
    """``(hash of fn's own code, global names its code uses)``, memoised per function."""
    code = getattr(fn, "__code__", None)
    hit = _OWN.get(fn) if code is not None else None
    if hit is not None and hit[0] is code:
        return hit[1], hit[2]
    own = _source_hash(fn)
    if code is None:  # a callable object, a builtin: its type's source, else its name
        own = own or _source_hash(type(fn)) or _sha(repr(type(fn)))
        return own, ()
    own = own or _code_hash(code, getattr(fn, "__doc__", None))
    names = _global_names(code)
    with contextlib.suppress(TypeError):  # not weak-referenceable: not memoised
        _OWN[fn] = (code, own, names)
    return own, names


def _is_helper(value: Any, module: str | None) -> bool:
    """A plain function of the notebook (``__main__``) or of ``module``'s package."""
    if type(value) is not types.FunctionType:
        return False
    vm = value.__module__
    if vm in (module, "__main__"):
        return True
    return bool(vm and module and vm.split(".")[0] == module.split(".")[0])


def label(fn: Any) -> str:
    """How a reason names a function: ``clean()``."""
    return f"{getattr(fn, '__qualname__', None) or getattr(fn, '__name__', repr(fn))}()"


class Unfingerprintable(Exception):
    """Something a step's behaviour depends on cannot be hashed (it does not pickle)."""


#: Global values that join the key by value: what a notebook cell typically sets.
_SCALARS = (int, float, str, bool, bytes, type(None), complex)


def _value(v: Any, what: str) -> str:
    """A value as it joins the key: its repr when short (a reason can show it), else the
    digest of its recorded form."""
    if type(v) in _SCALARS:
        text = repr(v)
        if len(text) <= 60:
            return text
    from ..store._outputs import encode

    fmt, _, _, digest, _ = encode(v)
    if fmt == "unpicklable" or digest is None:
        raise Unfingerprintable(f"{what} cannot be fingerprinted (it does not pickle)")
    return f"<{type(v).__name__} {digest[:12]}>"


def _unwrap(fn: Any, state: dict[str, str]) -> Any:
    """The plain function behind ``fn``; what else its behaviour depends on (a partial's
    arguments, a bound method's object, a callable object's state) goes into ``state``."""
    for _ in range(10):
        if isinstance(fn, functools.partial):
            state[f"partial arguments of {label(fn.func)}"] = _value(
                (fn.args, fn.keywords), "a partial's arguments"
            )
            fn = fn.func
        elif isinstance(fn, types.MethodType):
            state[f"object bound to {label(fn.__func__)}"] = _value(fn.__self__, "its object")
            fn = fn.__func__
        elif hasattr(fn, "__wrapped__"):
            fn = fn.__wrapped__
        else:
            break
    if not isinstance(fn, types.FunctionType | types.BuiltinFunctionType) and callable(fn):
        state[f"callable object {type(fn).__qualname__}"] = _value(fn, "its callable object")
        call = inspect.getattr_static(type(fn), "__call__", None)
        if isinstance(call, types.FunctionType):
            return call
    return fn


def code_versions(fn: Any) -> tuple[str, dict[str, str], dict[str, str]]:
    """``(fn's own code hash, {helper label: its own code hash}, {what: value})`` for
    every helper ``fn`` reaches through the globals its code names (at most MAX_DEPTH calls
    deep) or its closure; the values are the scalar globals those functions read, their
    closures' other values, and a partial's, bound method's or callable object's state.

    Raises:
        Unfingerprintable: one of those values does not pickle.
    """
    state: dict[str, str] = {}
    fn = _unwrap(fn, state)
    own, names = own_version(fn)
    calls: dict[str, str] = {}
    seen = {id(fn)}
    todo = [(fn, names, 0)]
    while todo:
        f, fnames, depth = todo.pop()
        g = getattr(f, "__globals__", None) or {}
        module = getattr(f, "__module__", None)
        found = []
        for name in fnames:
            v = g.get(name, _ABSENT)
            if name.startswith("__"):  # __name__, __file__: the module's, not a setting
                continue
            if type(v) in _SCALARS:
                state[f"global {name}"] = _value(v, f"global {name}")
            elif v is not _ABSENT and _is_helper(v, module):
                found.append(v)
        freevars = f.__code__.co_freevars if hasattr(f, "__code__") else ()  # builtins: none
        for var, cell in zip(freevars, getattr(f, "__closure__", None) or (), strict=False):
            try:
                v = cell.cell_contents
            except ValueError:  # an empty cell: not bound yet
                continue
            if type(v) is types.FunctionType:
                found.append(v)
            else:
                state[f"closure {var} of {label(f)}"] = _value(v, f"closure {var}")
        if depth >= MAX_DEPTH:
            continue
        for v in found:
            if id(v) in seen:
                continue
            seen.add(id(v))
            h, vnames = own_version(v)
            calls[label(v)] = h
            todo.append((v, vnames, depth + 1))
    return own, dict(sorted(calls.items())), dict(sorted(state.items()))


_ABSENT = object()


# ---------------------------------------------------------------------- files
#: (path, mtime_ns, size) -> content hash: a file is read again only when it changed.
_FILES: dict[tuple[str, int, int], str] = {}


def files_hash(pattern: str, root: str | None = None) -> str:
    """A hash of the names and contents of the files ``pattern`` matches (relative to
    ``root``, else the current directory); a glob matching nothing hashes as empty."""
    base = root or os.getcwd()
    full = pattern if os.path.isabs(pattern) else os.path.join(base, pattern)
    h = hashlib.sha256()
    for path in sorted(glob.glob(full, recursive=True)):
        if not os.path.isfile(path):
            continue
        st = os.stat(path)
        k = (path, st.st_mtime_ns, st.st_size)
        digest = _FILES.get(k)
        if digest is None:
            fh = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    fh.update(chunk)
            digest = _FILES[k] = fh.hexdigest()
        h.update(os.path.relpath(path, base).encode() + b"\0" + digest.encode())
    return h.hexdigest()[:32]


# ---------------------------------------------------------------------- keys
@dataclass
class Fingerprint:
    """Everything a step's cache key is made of; kept with each recorded attempt so a
    later run can say what changed."""

    #: The hash of the step function's own normalised code, and its label.
    code: str
    fn: str
    #: Helper label -> hash of its own code.
    calls: dict[str, str] = field(default_factory=dict)
    #: Values the code reads besides its arguments (scalar globals, closures, a partial's
    #: arguments, a bound object): what -> its repr when short, else a digest.
    state: dict[str, str] = field(default_factory=dict)
    #: ``cache_version:``.
    version: str | None = None
    #: Parameter name -> digest of its value; and a short repr of it, for reasons.
    params: dict[str, str] = field(default_factory=dict)
    shown: dict[str, str] = field(default_factory=dict)
    #: Upstream step id -> the digest of its recorded output.
    inputs: dict[str, str] = field(default_factory=dict)
    #: ``cache_inputs:`` glob -> hash of the files it matches.
    files: dict[str, str] = field(default_factory=dict)
    #: Manifest settings that change how the step is called.
    manifest: dict[str, Any] = field(default_factory=dict)

    def key(self) -> str:
        """The cache key: equal fingerprints (reprs of parameters aside) give equal keys.
        Hashed from the repr of sorted items: every part is text, a bool or a list of
        text, so the repr is canonical, and it costs a third of ``json.dumps``."""
        parts = (
            "v1",
            self.code,
            sorted(self.calls.items()),
            sorted(self.state.items()),
            self.version,
            sorted(self.params.items()),
            sorted(self.inputs.items()),
            sorted(self.files.items()),
            sorted(self.manifest.items()),
        )
        return _sha(repr(parts))

    def to_json(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> Fingerprint | None:
        if not text:
            return None
        try:
            data = json.loads(text)
            return cls(**data)
        except (TypeError, ValueError):
            return None


def reasons(new: Fingerprint, old: Fingerprint | None) -> list[str]:
    """What changed from ``old`` to ``new``, for people: ``code changed: clean()``,
    ``input changed: load``, ``param threshold 0.5 → 0.6``."""
    if old is None:
        return ["never recorded before"]
    out = []
    if new.code != old.code:
        out.append(f"code changed: {new.fn}")
    for name in sorted(set(new.calls) | set(old.calls)):
        a, b = old.calls.get(name), new.calls.get(name)
        if a != b:
            what = "now calls" if a is None else "no longer calls" if b is None else "changed"
            out.append(f"code changed: {name} ({what}, called by {new.fn})")
    for name in sorted(set(new.state) | set(old.state)):
        a, b = old.state.get(name, "(none)"), new.state.get(name, "(none)")
        if a != b:
            out.append(f"{name} {a} → {b}")
    if new.version != old.version:
        out.append(f"cache_version {old.version} → {new.version}")
    for name in sorted(set(new.params) | set(old.params)):
        if new.params.get(name) != old.params.get(name):
            a, b = old.shown.get(name, "(none)"), new.shown.get(name, "(none)")
            out.append(f"param {name} {a} → {b}")
    for name in sorted(set(new.inputs) | set(old.inputs)):
        if new.inputs.get(name) != old.inputs.get(name):
            out.append(f"input changed: {name}")
    for pattern in sorted(set(new.files) | set(old.files)):
        if new.files.get(pattern) != old.files.get(pattern):
            out.append(f"file changed: {pattern}")
    if new.manifest != old.manifest:
        out.append("manifest settings changed")
    return out or ["no recorded output with this key"]


def shown(value: Any, limit: int = 40) -> str:
    """A short repr of a parameter's value for a reason."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"

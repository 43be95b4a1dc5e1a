"""Guards: a small, safe expression language for Petri-net transitions. Never ``eval``.

A guard is parsed with Python's ``ast`` module and checked against a whitelist when the
manifest is loaded; evaluating it walks the tree. What is allowed:

- names ``token`` (the token taken from the transition's first input place) and ``tokens``
  (every input place's token, by place id: ``tokens.review`` or ``tokens["review"]``);
- ``token.field`` and ``token["field"]`` (on dicts: keys; on objects: attributes not starting
  with ``_``), indexing with constants;
- numbers, strings, ``True``/``False``/``None``, lists and tuples of them;
- ``+ - * / // %``, unary ``-`` and ``not``; ``and``/``or``; comparisons ``== != < <= > >=
  in``/``not in`` (chains too);
- calls of ``len``, ``abs``, ``min``, ``max``, ``round`` only.

Hostile guards are refused, not run (docs/manifest.md, "Limits"): a guard has at most
:data:`MAX_LENGTH` characters and nests at most :data:`MAX_DEPTH` deep (checked when the
manifest is loaded); ``token["_x"]`` is refused like ``token._x``; one evaluation takes at most
:data:`MAX_STEPS` steps and may build no value over :data:`MAX_VALUE` (characters of a
string, items of a list or tuple, bits of a number) and at most
:data:`MAX_TOTAL` in all, so ``"a" * 10**9`` or ``"%999999999d" % 1`` fails fast with a
GuardError.

>>> Guard("token.words > 100 and token['lang'] in ['en', 'de']")({"words": 120, "lang": "en"})
True
"""

from __future__ import annotations

import ast
import operator
import re
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from .._exceptions import FluxError
from ._guard_code import Code, compile_guard, guard_code

_FUNCS: dict[str, Callable[..., Any]] = {
    "len": len,
    "abs": abs,
    "min": min,
    "max": max,
    "round": round,
}
_BIN: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_CMP: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_NAMES = ("token", "tokens")

#: The longest guard text, in characters.
MAX_LENGTH = 10_000
#: How deeply a guard's expression may nest (``not not ...``, ``((...))``, ``1+1+...``).
MAX_DEPTH = 50
#: Evaluation steps (expression nodes visited) per evaluation.
MAX_STEPS = 10_000
#: The largest string (characters), list or tuple (items) or whole number (bits) one
#: operation may build.
MAX_VALUE = 1_000_000
#: The sum of the sizes of everything one evaluation builds.
MAX_TOTAL = 10_000_000

#: A ``%`` conversion: its flags, width and precision (``*`` takes them from the values).
_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


class GuardSyntaxError(FluxError):
    """A guard uses something outside the guard language (``.column`` is 1-based)."""

    def __init__(self, guard: str, message: str, column: int | None) -> None:
        self.guard = guard
        self.column = column
        self.reason = message
        where = f" (column {column})" if column else ""
        super().__init__(f"guard {guard!r}{where}: {message}")


class GuardError(FluxError):
    """A guard could not be evaluated on a token (a missing field, a type mismatch)."""


class Guard:
    """A checked guard expression; call it with the token (and the tokens by place)."""

    def __init__(self, text: str) -> None:
        self.text = text
        if len(text) > MAX_LENGTH:
            raise GuardSyntaxError(
                text[:60] + "...",
                f"a guard may have at most {MAX_LENGTH:,} characters, this one has "
                f"{len(text):,} (use a named callable for complex conditions)",
                None,
            )
        try:
            with warnings.catch_warnings():  # "1if": Python warns on stderr; we refuse or not
                warnings.simplefilter("ignore", SyntaxWarning)
                tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise GuardSyntaxError(text, f"not an expression: {exc.msg}", exc.offset) from None
        except (RecursionError, MemoryError, ValueError) as exc:  # "not " * 5000, NUL bytes
            why = "it nests too deeply" if not isinstance(exc, ValueError) else str(exc)
            raise GuardSyntaxError(text, f"not an expression: {why}", None) from None
        _check(tree.body, text, 0)
        self._tree = tree.body
        # compiled once to a Python function that falls back to the interpreter below
        # whenever it cannot answer exactly like it (errors, budgets): _guard_code
        self._fast = compile_guard(self._tree, text, _field, self._interpret, MAX_STEPS)
        #: Whether the guard reads ``tokens`` (an engine can skip building the view if not).
        self.uses_tokens = any(
            isinstance(n, ast.Name) and n.id == "tokens" for n in ast.walk(self._tree)
        )

    def code(self, prefix: str = "") -> Code | None:
        """The guard as a Python expression to inline in generated code (``_guard_code``),
        or None when it is only interpreted."""
        return guard_code(self._tree, _field, MAX_STEPS, prefix)

    @property
    def function(self) -> Callable[[Any, Any], bool]:
        """The guard as a plain function ``(token, tokens) -> bool`` (compiled when it can
        be): what an engine calls in its inner loop."""
        return self._interpret if self._fast is None else self._fast

    def __call__(self, token: Any, tokens: Mapping[str, Any] | None = None) -> bool:
        fast = self._fast
        return self._interpret(token, tokens) if fast is None else fast(token, tokens)

    def _interpret(self, token: Any, tokens: Mapping[str, Any] | None = None) -> bool:
        env = {"token": token, "tokens": _Fields(tokens or {})}
        try:
            return bool(_Evaluation(env).eval(self._tree))
        except GuardError:
            raise
        except Exception as exc:
            raise GuardError(
                f"guard {self.text!r} failed on {token!r}: {type(exc).__name__}: {exc}"
            ) from None

    def __repr__(self) -> str:
        return f"Guard({self.text!r})"


class _Fields:
    """``tokens.review`` as well as ``tokens['review']``."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data

    def __getitem__(self, key: str) -> Any:
        return self.data[key]


def _check(node: ast.AST, text: str, depth: int) -> None:
    def bad(what: str) -> GuardSyntaxError:
        return GuardSyntaxError(text, what, getattr(node, "col_offset", -1) + 1 or None)

    if depth > MAX_DEPTH:
        raise bad(f"the expression nests more than {MAX_DEPTH} levels deep")
    depth += 1
    match node:
        case ast.Constant(value=const) if const is None or isinstance(
            const, bool | int | float | str
        ):
            return
        case ast.Constant():
            raise bad("only numbers, strings, True, False and None are allowed as constants")
        case ast.Name(id=name):
            if name not in _NAMES:
                raise bad(f"unknown name '{name}': a guard can use 'token' and 'tokens'")
        case ast.Attribute(value=value, attr=attr):
            if attr.startswith("_"):
                raise bad(f"'{attr}': fields starting with '_' are not allowed")
            _check(value, text, depth)
        case ast.Subscript(value=value, slice=index):
            if isinstance(index, ast.Constant) and _private(key := index.value):
                raise bad(f"'{key!s}': fields starting with '_' are not allowed")
            _check(value, text, depth)
            _check(index, text, depth)
        case ast.List(elts=items) | ast.Tuple(elts=items):
            for item in items:
                _check(item, text, depth)
        case ast.BoolOp(values=operands):
            for operand_ in operands:
                _check(operand_, text, depth)
        case ast.UnaryOp(op=unary, operand=operand):
            if not isinstance(unary, ast.Not | ast.USub | ast.UAdd):
                raise bad(f"the operator {type(unary).__name__} is not allowed")
            _check(operand, text, depth)
        case ast.BinOp(left=left, op=binary, right=right):
            if type(binary) not in _BIN:
                raise bad(f"the operator {type(binary).__name__} is not allowed")
            _check(left, text, depth)
            _check(right, text, depth)
        case ast.Compare(left=first, ops=comparisons, comparators=rights):
            for comparison in comparisons:
                if type(comparison) not in _CMP:
                    raise bad(f"the comparison {type(comparison).__name__} is not allowed")
            _check(first, text, depth)
            for r in rights:
                _check(r, text, depth)
        case ast.Call(func=ast.Name(id=fname), args=args, keywords=[]):
            if fname not in _FUNCS:
                raise bad(f"calling '{fname}' is not allowed: only {', '.join(_FUNCS)}")
            for a in args:
                _check(a, text, depth)
        case ast.Call():
            raise bad(f"only calls of {', '.join(_FUNCS)} (without keywords) are allowed")
        case _:
            raise bad(f"{type(node).__name__} is not part of the guard language")


def _private(key: Any) -> bool:
    return isinstance(key, str) and key.startswith("_")


def _field(obj: Any, name: str) -> Any:
    if _private(name):  # token["_" + "x"]: computed, so only refusable now
        raise GuardError(f"'{name}': fields starting with '_' are not allowed")
    if isinstance(obj, _Fields | Mapping):
        try:
            return obj[name]
        except KeyError:
            raise GuardError(f"the token has no field '{name}'") from None
    return getattr(obj, name)


def _size(value: Any) -> int:
    """What a value costs against the budgets: characters, items, or bits of a number."""
    if isinstance(value, str | list | tuple):
        return len(value)
    if isinstance(value, int):
        return value.bit_length()
    return 1


class _Evaluation:
    """One evaluation of a guard, with its step count and allocation budget."""

    def __init__(self, env: dict[str, Any]) -> None:
        self.env = env
        self.steps = 0
        self.total = 0

    def charge(self, size: int, what: str) -> None:
        if size > MAX_VALUE:
            raise GuardError(
                f"{what} would build a value of size {size:,}; a guard may build at most "
                f"{MAX_VALUE:,} (characters, items or bits)"
            )
        self.total += size
        if self.total > MAX_TOTAL:
            raise GuardError(
                f"the guard built more than {MAX_TOTAL:,} (characters, items or bits) in all"
            )

    def binary(self, op: type, a: Any, b: Any) -> Any:
        if op is ast.Mult:  # "a" * 10**9 is refused before it is built
            if isinstance(a, int) and isinstance(b, str | list | tuple):
                a, b = b, a
            if isinstance(a, str | list | tuple) and isinstance(b, int):
                self.charge(len(a) * max(b, 0), "repeating a sequence")
            elif isinstance(a, int) and isinstance(b, int):
                self.charge(_size(a) + _size(b), "multiplying")
        elif op is ast.Add and type(a) is type(b) and isinstance(a, str | list | tuple):
            self.charge(len(a) + len(b), "joining")
        elif op is ast.Mod and isinstance(a, str):
            self.charge(self.formatted_size(a, b), "% formatting")
        result = _BIN[op](a, b)
        self.charge(_size(result), "the operator")
        return result

    def formatted_size(self, template: str, values: Any) -> int:
        """An upper bound of what the widths and precisions of ``template % values`` add."""
        numbers = [v for v in (values if isinstance(values, tuple) else (values,))]
        extra = 0
        for m in _PERCENT.finditer(template):
            for part in m.groups():
                if part == "*":  # the width comes from the values: count the largest one
                    extra += max((abs(v) for v in numbers if isinstance(v, int)), default=0)
                elif part:
                    extra += int(part)
        return len(template) + extra

    def eval(self, node: ast.AST) -> Any:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise GuardError(f"the guard took more than {MAX_STEPS:,} steps")
        match node:
            case ast.Constant(value=const):
                return const
            case ast.Name(id=name):
                return self.env[name]
            case ast.Attribute(value=value, attr=attr):
                return _field(self.eval(value), attr)
            case ast.Subscript(value=value, slice=index):
                target, key = self.eval(value), self.eval(index)
                return _field(target, key) if isinstance(key, str) else target[key]
            case ast.List(elts=items):
                return [self.eval(i) for i in items]
            case ast.Tuple(elts=items):
                return tuple(self.eval(i) for i in items)
            case ast.BoolOp(op=ast.And(), values=conjuncts):
                result: Any = True
                for c in conjuncts:
                    result = self.eval(c)
                    if not result:
                        return result
                return result
            case ast.BoolOp(values=disjuncts):  # or
                result = False
                for d in disjuncts:
                    result = self.eval(d)
                    if result:
                        return result
                return result
            case ast.UnaryOp(op=ast.Not(), operand=operand):
                return not self.eval(operand)
            case ast.UnaryOp(op=ast.USub(), operand=operand):
                return -self.eval(operand)
            case ast.UnaryOp(operand=operand):
                return +self.eval(operand)
            case ast.BinOp(left=left, op=binary, right=right):
                return self.binary(type(binary), self.eval(left), self.eval(right))
            case ast.Compare(left=first, ops=comparisons, comparators=rights):
                a = self.eval(first)
                for comparison, r in zip(comparisons, rights, strict=True):
                    b = self.eval(r)
                    if not _CMP[type(comparison)](a, b):
                        return False
                    a = b
                return True
            case ast.Call(func=ast.Name(id="round"), args=[number, digits]):
                n, places = self.eval(number), self.eval(digits)
                if isinstance(places, int) and abs(places) > 400:  # round(1, -10**9): 10**10**9
                    raise GuardError(f"round() to {places} places is out of range (at most 400)")
                return round(n, places)
            case ast.Call(func=ast.Name(id=fname), args=args):
                return _FUNCS[fname](*(self.eval(a) for a in args))
        raise GuardError(f"cannot evaluate {type(node).__name__}")  # unreachable after _check

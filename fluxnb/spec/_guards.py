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

>>> Guard("token.words > 100 and token['lang'] in ['en', 'de']")({"words": 120, "lang": "en"})
True
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

from .._exceptions import FluxError

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
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise GuardSyntaxError(text, f"not an expression: {exc.msg}", exc.offset) from None
        _check(tree.body, text)
        self._tree = tree.body

    def __call__(self, token: Any, tokens: Mapping[str, Any] | None = None) -> bool:
        env = {"token": token, "tokens": _Fields(tokens or {})}
        try:
            return bool(_eval(self._tree, env))
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


def _check(node: ast.AST, text: str) -> None:
    def bad(what: str) -> GuardSyntaxError:
        return GuardSyntaxError(text, what, getattr(node, "col_offset", -1) + 1 or None)

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
            _check(value, text)
        case ast.Subscript(value=value, slice=index):
            _check(value, text)
            _check(index, text)
        case ast.List(elts=items) | ast.Tuple(elts=items):
            for item in items:
                _check(item, text)
        case ast.BoolOp(values=operands):
            for operand_ in operands:
                _check(operand_, text)
        case ast.UnaryOp(op=unary, operand=operand):
            if not isinstance(unary, ast.Not | ast.USub | ast.UAdd):
                raise bad(f"the operator {type(unary).__name__} is not allowed")
            _check(operand, text)
        case ast.BinOp(left=left, op=binary, right=right):
            if type(binary) not in _BIN:
                raise bad(f"the operator {type(binary).__name__} is not allowed")
            _check(left, text)
            _check(right, text)
        case ast.Compare(left=first, ops=comparisons, comparators=rights):
            for comparison in comparisons:
                if type(comparison) not in _CMP:
                    raise bad(f"the comparison {type(comparison).__name__} is not allowed")
            _check(first, text)
            for r in rights:
                _check(r, text)
        case ast.Call(func=ast.Name(id=fname), args=args, keywords=[]):
            if fname not in _FUNCS:
                raise bad(f"calling '{fname}' is not allowed: only {', '.join(_FUNCS)}")
            for a in args:
                _check(a, text)
        case ast.Call():
            raise bad(f"only calls of {', '.join(_FUNCS)} (without keywords) are allowed")
        case _:
            raise bad(f"{type(node).__name__} is not part of the guard language")


def _field(obj: Any, name: str) -> Any:
    if isinstance(obj, _Fields | Mapping):
        try:
            return obj[name]
        except KeyError:
            raise GuardError(f"the token has no field '{name}'") from None
    return getattr(obj, name)


def _eval(node: ast.AST, env: dict[str, Any]) -> Any:
    match node:
        case ast.Constant(value=const):
            return const
        case ast.Name(id=name):
            return env[name]
        case ast.Attribute(value=value, attr=attr):
            return _field(_eval(value, env), attr)
        case ast.Subscript(value=value, slice=index):
            target, key = _eval(value, env), _eval(index, env)
            return _field(target, key) if isinstance(key, str) else target[key]
        case ast.List(elts=items):
            return [_eval(i, env) for i in items]
        case ast.Tuple(elts=items):
            return tuple(_eval(i, env) for i in items)
        case ast.BoolOp(op=ast.And(), values=conjuncts):
            result: Any = True
            for c in conjuncts:
                result = _eval(c, env)
                if not result:
                    return result
            return result
        case ast.BoolOp(values=disjuncts):  # or
            result = False
            for d in disjuncts:
                result = _eval(d, env)
                if result:
                    return result
            return result
        case ast.UnaryOp(op=ast.Not(), operand=operand):
            return not _eval(operand, env)
        case ast.UnaryOp(op=ast.USub(), operand=operand):
            return -_eval(operand, env)
        case ast.UnaryOp(operand=operand):
            return +_eval(operand, env)
        case ast.BinOp(left=left, op=binary, right=right):
            return _BIN[type(binary)](_eval(left, env), _eval(right, env))
        case ast.Compare(left=first, ops=comparisons, comparators=rights):
            a = _eval(first, env)
            for comparison, r in zip(comparisons, rights, strict=True):
                b = _eval(r, env)
                if not _CMP[type(comparison)](a, b):
                    return False
                a = b
            return True
        case ast.Call(func=ast.Name(id=fname), args=args):
            return _FUNCS[fname](*(_eval(a, env) for a in args))
    raise GuardError(f"cannot evaluate {type(node).__name__}")  # unreachable after _check

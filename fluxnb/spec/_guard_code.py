"""A checked guard compiled once to a Python function: the same answers, no tree walk.

``Guard`` (``_guards``) interprets its expression tree with budgets (steps, value sizes).
This module turns the same, already-checked tree into the source of one function that
evaluates it with Python's own operators, and runs the interpreter only when the fast
function cannot answer exactly like it would:

- any exception on the fast path (a missing field, a type mismatch, a division by zero)
  re-evaluates the guard with the interpreter, which raises its ``GuardError`` (or answers);
- arithmetic runs inline only on numbers (``int`` of at most 64 bits, ``float``, ``bool``),
  whose results cannot reach the interpreter's size budgets; anything else (joining strings,
  ``%`` formatting, big numbers) goes to the interpreter;
- guards with more nodes than the step budget, or that use ``tokens`` other than as
  ``tokens.place`` / ``tokens["place"]``, are not compiled at all.

The source is generated from the checked tree, never from the guard's text: names are
``token``/``tokens``, attributes are identifiers, and constants are bound by reference, so
nothing of the text reaches ``compile`` except through those.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

Fast = Callable[[Any, Any], bool]

_BINOPS: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("_add", operator.add),
    ast.Sub: ("_sub", operator.sub),
    ast.Mult: ("_mul", operator.mul),
    ast.Div: ("_div", operator.truediv),
    ast.FloorDiv: ("_floordiv", operator.floordiv),
    ast.Mod: ("_mod", operator.mod),
}
_CMPS: dict[type, str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
}
_NUMBERS = (int, float, bool)


class _Slow(Exception):
    """The fast path cannot answer exactly: ask the interpreter."""


def _numeric(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def run(a: Any, b: Any) -> Any:
        ta, tb = type(a), type(b)
        if (ta is float or ta is bool or (ta is int and -(2**64) < a < 2**64)) and (
            tb is float or tb is bool or (tb is int and -(2**64) < b < 2**64)
        ):
            return op(a, b)
        raise _Slow

    return run


def _round(n: Any, places: Any) -> Any:
    if isinstance(places, int) and abs(places) > 400:
        raise _Slow
    return round(n, places)


def nodes(tree: ast.AST) -> int:
    return sum(1 for _ in ast.walk(tree))


class _Writer:
    def __init__(self, field: Callable[[Any, str], Any], prefix: str) -> None:
        self.prefix = prefix
        self.scope: dict[str, Any] = {
            "__builtins__": {},
            "Exception": Exception,
            "dict": dict,
            "type": type,
            "_field": field,
            "_item": lambda t, k: field(t, k) if isinstance(k, str) else t[k],
            "_round": _round,
            "len": len,
            "abs": abs,
            "min": min,
            "max": max,
            "round": round,
        }
        for name, op in _BINOPS.values():
            self.scope[name] = _numeric(op)
        self.temps = 0

    def const(self, value: Any) -> str:
        if value is None or isinstance(value, bool | int | str):
            return repr(value)
        if isinstance(value, float) and math.isfinite(value):
            return repr(value)
        name = f"_{self.prefix}k{len(self.scope)}"
        self.scope[name] = value
        return name

    def temp(self) -> str:
        self.temps += 1
        return f"_{self.prefix}v{self.temps}"

    def field(self, target: str, key: str) -> str:
        # dicts inline (the common case), everything else exactly as the interpreter does
        v = self.temp()
        return f"({v}[{key}] if type({v} := {target}) is dict else _field({v}, {key}))"

    def expr(self, node: ast.AST, test: bool = False) -> str:
        """Python source of ``node``; ``test``: only its truth is used (an ``if``), so a
        comparison need not be made a bool first."""
        match node:
            case ast.Constant(value=value):
                return self.const(value)
            case ast.Name(id="token"):
                return "token"
            case ast.Attribute(value=value, attr=attr) if attr.isidentifier():
                return self.field(self.target(value), repr(attr))
            case ast.Subscript(value=value, slice=ast.Constant(value=str() as key)):
                return self.field(self.target(value), self.const(key))
            case ast.Subscript(value=value, slice=ast.Constant(value=key)):
                return f"({self.expr(value)})[{self.const(key)}]"
            case ast.Subscript(value=value, slice=index):
                return f"_item({self.expr(value)}, {self.expr(index)})"
            case ast.List(elts=items):
                return "[" + ", ".join(self.expr(i) for i in items) + "]"
            case ast.Tuple(elts=items):
                return "(" + "".join(self.expr(i) + ", " for i in items) + ")"
            case ast.BoolOp(op=ast.And(), values=values):
                return "(" + " and ".join(self.expr(v, test) for v in values) + ")"
            case ast.BoolOp(values=values):
                return "(" + " or ".join(self.expr(v, test) for v in values) + ")"
            case ast.UnaryOp(op=ast.Not(), operand=operand):
                return f"(not {self.expr(operand, True)})"
            case ast.UnaryOp(op=ast.USub(), operand=operand):
                return f"(-{self.expr(operand)})"
            case ast.UnaryOp(op=ast.UAdd(), operand=operand):
                return f"(+{self.expr(operand)})"
            case ast.BinOp(left=left, op=op, right=right) if type(op) in _BINOPS:
                return f"{_BINOPS[type(op)][0]}({self.expr(left)}, {self.expr(right)})"
            case ast.Compare(left=first, ops=ops, comparators=rights):
                parts = [self.expr(first)]
                for cmp, r in zip(ops, rights, strict=True):
                    parts += [_CMPS[type(cmp)], self.expr(r)]
                if test:
                    return f"({' '.join(parts)})"
                return f"(True if ({' '.join(parts)}) else False)"
            case ast.Call(func=ast.Name(id="round"), args=[number, digits], keywords=[]):
                return f"_round({self.expr(number)}, {self.expr(digits)})"
            case ast.Call(func=ast.Name(id=fname), args=args, keywords=[]) if fname in (
                "len",
                "abs",
                "min",
                "max",
                "round",
            ):
                return f"{fname}({', '.join(self.expr(a) for a in args)})"
        raise _Slow  # not compiled: the interpreter answers for this guard

    def target(self, node: ast.AST) -> str:
        """What ``.field`` / ``["field"]`` reads from: ``tokens`` only here."""
        if isinstance(node, ast.Name) and node.id == "tokens":
            return "tokens"
        return self.expr(node)


class Code:
    """A guard as a Python expression over the names ``token`` and ``tokens``, with the
    names it needs (``scope``); true exactly when the interpreter would answer True, as long
    as it raises nothing (on any exception, ask the interpreter)."""

    __slots__ = ("scope", "source")

    def __init__(self, source: str, scope: dict[str, Any]) -> None:
        self.source = source
        self.scope = scope


def guard_code(
    tree: ast.AST, field: Callable[[Any, str], Any], max_steps: int, prefix: str = ""
) -> Code | None:
    """The expression of a checked guard tree, or None when it is not compiled. ``prefix``
    keeps its helper names apart from other guards' in one scope."""
    if nodes(tree) > max_steps:
        return None
    writer = _Writer(field, prefix)
    try:
        body = writer.expr(tree, True)
    except _Slow:
        return None
    return Code(body, writer.scope)


def compile_guard(
    tree: ast.AST,
    name: str,
    field: Callable[[Any, str], Any],
    slow: Fast,
    max_steps: int,
) -> Fast | None:
    """The fast function of a checked guard tree, or None when it is not compiled.

    ``field`` reads a field as the interpreter does; ``slow`` is the interpreter, called
    whenever the fast path raises (so errors and budgets stay the interpreter's).
    """
    code = guard_code(tree, field, max_steps)
    if code is None:
        return None
    scope = code.scope
    scope["_slow"] = slow
    source = (
        "def guard(token, tokens=None):\n"
        "    try:\n"
        f"        return True if {code.source} else False\n"
        "    except Exception:\n"
        "        return _slow(token, tokens)\n"
    )
    exec(compile(source, f"<guard {name}>", "exec"), scope)
    fast = scope["guard"]
    fast.source = source
    return fast  # type: ignore[no-any-return]

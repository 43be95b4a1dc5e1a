"""Activation policies: when a step with inputs runs, and on which of the waiting items.

A step downstream of a streaming step (a generator) runs once per item by default. Its
``activation:`` says otherwise (docs/streams.md maps them to Routilux's policies):

- ``all`` (default): one item from each input, matched in arrival order;
- ``any``: as soon as any input has an item; the step gets the inputs that have one;
- ``{batch: N, partial: false}``: N items from each input per run (a list per input);
  ``partial: true`` also runs on what is left once the upstream steps are done;
- ``{window: 2s}``: at most once per interval, with everything that arrived meanwhile;
- ``{custom: module:function}``: a Python predicate over the waiting items that returns
  which to take (only where the manifest's callables may come from; recorded by name).

``all``, ``any`` and ``batch`` are net structure (arcs, weights, inhibitors and
priorities: ``spec/_stream_net.py``); ``partial``, ``window`` and ``custom`` are rules the
net engine applies to one transition (``engine/_net_stream.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["all", "any", "batch", "window", "custom"]
KINDS: tuple[str, ...] = ("all", "any", "batch", "window", "custom")
#: ``any`` becomes one transition per non-empty subset of the inputs (2**n - 1).
MAX_ANY_INPUTS = 6
#: Items waiting for a step fed by a stream when neither it nor the router says.
DEFAULT_CAPACITY = 1024


@dataclass(frozen=True)
class Activation:
    """An activation policy (see the module docstring)."""

    kind: Kind = "all"
    #: ``batch``: items per input per run.
    size: int = 1
    #: ``batch``: run on a last, smaller batch once the upstream steps are done.
    partial: bool = False
    #: ``window``: seconds between two runs.
    every: float = 0.0
    #: ``custom``: the predicate's reference (``module:function``) as written.
    custom: str | None = None
    #: ``custom``: the predicate itself, when given in Python.
    fn: Callable[..., Any] | None = None

    @property
    def default(self) -> bool:
        return self.kind == "all"

    def to_value(self) -> Any:
        """The manifest form (what ``parse_activation`` reads back)."""
        from ._durations import format_duration

        if self.kind in ("all", "any"):
            return self.kind
        if self.kind == "batch":
            return {"batch": self.size, **({"partial": True} if self.partial else {})}
        if self.kind == "window":
            return {"window": format_duration(self.every)}
        ref = self.custom
        if ref is None and self.fn is not None:
            ref = f"{getattr(self.fn, '__module__', '?')}:{getattr(self.fn, '__qualname__', '?')}"
        return {"custom": ref}


ALL = Activation()


def parse_activation(value: Any) -> Activation:
    """``all`` | ``any`` | ``{batch: N, partial: bool}`` | ``{window: duration}`` |
    ``{custom: module:function}`` (or a callable, from Python) → Activation.

    Raises:
        ValueError: saying what is wrong and what is accepted.
    """
    from ._durations import parse_duration

    if value is None:
        return ALL
    if isinstance(value, Activation):
        return value
    if isinstance(value, str):
        if value in ("all", "any"):
            return Activation(value)  # type: ignore[arg-type]
        raise ValueError(
            f"activation {value!r} is not a policy: write all, any, {{batch: N}}, "
            "{window: 2s} or {custom: module:function}"
        )
    if callable(value):
        return Activation("custom", fn=value, custom=_reference(value))
    if not isinstance(value, Mapping) or not value:
        raise ValueError(
            "activation must be all, any, {batch: N, partial: false}, {window: 2s} or "
            f"{{custom: module:function}}, found {type(value).__name__}"
        )
    keys = set(value)
    if "batch" in keys:
        extra = keys - {"batch", "partial"}
        if extra:
            raise ValueError(f"activation batch takes 'partial' only, found {sorted(extra)}")
        n, partial = value["batch"], value.get("partial", False)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"activation batch must be a whole number ≥ 1, found {n!r}")
        if not isinstance(partial, bool):
            raise ValueError(f"activation partial must be true or false, found {partial!r}")
        return Activation("batch", size=n, partial=partial)
    if keys == {"window"}:
        every = parse_duration(value["window"])
        if every <= 0:
            raise ValueError("activation window must be longer than 0s")
        return Activation("window", every=every)
    if keys == {"custom"}:
        ref = value["custom"]
        if callable(ref):
            return Activation("custom", fn=ref, custom=_reference(ref))
        if not isinstance(ref, str) or not ref.strip():
            raise ValueError("activation custom names a Python function: {custom: module:function}")
        return Activation("custom", custom=ref.strip())
    raise ValueError(
        f"activation {dict(value)!r} is not a policy: write all, any, {{batch: N}}, "
        "{window: 2s} or {custom: module:function}"
    )


def _reference(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', None) or '?'}:{getattr(fn, '__qualname__', repr(fn))}"


__all__ = ["ALL", "DEFAULT_CAPACITY", "KINDS", "MAX_ANY_INPUTS", "Activation", "parse_activation"]

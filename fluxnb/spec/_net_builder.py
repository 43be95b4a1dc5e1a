"""Petri nets written in Python: ``Net.build`` and ``@net.transition``.

>>> net = Net.build("order", places={"new": [{"amount": 30}], "paid": 0})
>>> @net.transition(inputs=["new"], outputs=["paid"], guard="token.amount > 0")
... def pay(new):
...     return {**new, "paid": True}
>>> net.to_net().transitions[0].run
'pay'

Every call is checked at once by the manifest's own reader (``_net_manifest``), so a
builder reports the same problem kinds as a ``net:`` manifest (``unknown_place``,
``duplicate_id``, ``bad_guard``, ...), located at the Python line that made the mistake.
Actions are kept as function objects (``Transition.fn``), so a run needs no namespace; the
manifest names them ``module:function`` when that imports back to the same function, else
by name (then ``fluxnb.run(manifest, globals())`` finds them, as for any manifest).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any, overload

from .._exceptions import ManifestError
from .._plural import plural
from ._checker import Checker
from ._located import Located, Path
from ._net import Net, NetSource, Transition
from ._net_manifest import (
    CHOICES,
    _arcs,
    _breaker_dict,
    _retry_dict,
    read_place,
    read_transition,
)
from ._options import CircuitBreakerSettings, OnError, RetryPolicy, RouterSettings
from ._resolve import import_reference

__all__ = ["NetBuilder"]

#: Arcs as the builder takes them: one place, places (weight 1 each), or {place: weight}.
Arcs = str | Iterable[str] | Mapping[str, int] | None


@dataclass(frozen=True)
class _Where:
    """The Python source line a builder call came from (where its problems are reported)."""

    file: str | None
    line: int | None
    column: int | None

    @classmethod
    def caller(cls, depth: int) -> _Where:
        """The frame ``depth`` calls above the one calling this (1: its caller)."""
        try:
            frame = sys._getframe(depth + 1)
        except ValueError:  # pragma: no cover - a shallower stack than asked for
            return cls(None, None, None)
        # the call's own column (what inspect.getframeinfo finds, without its file lookups)
        at = next(islice(frame.f_code.co_positions(), frame.f_lasti // 2, None), None)
        column = None if at is None or at[2] is None else at[2] + 1
        return cls(frame.f_code.co_filename, frame.f_lineno, column)

    def checker(self) -> Checker:
        positions: dict[Path, tuple[int, int]] = {}
        if self.line is not None:
            positions[()] = (self.line, self.column or 1)
        return Checker(Located({}, self.file, positions))


class NetBuilder(NetSource):
    """A Petri net written in Python: made by ``Net.build(name, places={...})``.

    Add places with :meth:`place` (or ``places=``), transitions with ``@net.transition``
    (the decorated function is the action; the id defaults to its name) or
    ``net.transition("id", ...)`` (no action). Every call is checked at once, with the
    manifest's messages. ``fluxnb.run``, ``interactive``, ``analyze``, ``write_pnml`` and
    ``net_manifest`` take the builder itself, or the frozen :class:`Net` of
    :meth:`to_net`.

    >>> net = Net.build("relay", places={"inbox": 2, "outbox": 0}, final={"outbox": 2})
    >>> net.transition("move", inputs="inbox", outputs="outbox")
    'move'
    >>> net
    <NetBuilder 'relay': 2 places, 1 transition>

    Args:
        name: the net's name (recorded with its runs).
        places: ``{place: tokens}``: a count of black tokens, or a list of token data.
        final: the marking at which a run is complete, ``{place: tokens}`` or a list of
            places (one token each); checked when the net is made (``to_net``).
        choice: how conflicts are resolved: ``priority`` (default) or ``random``.
        max_firings: firings after which an automatic run stops.
        router: run-wide settings (retry, on_error, default_timeout, tenant, ...).

    Raises:
        ManifestError: a place's tokens are neither a count >= 0 nor a list, or
            ``choice``/``max_firings`` is not valid.
    """

    def __init__(
        self,
        name: str = "net",
        places: Mapping[str, int | list[Any]] | None = None,
        *,
        final: Mapping[str, int] | Iterable[str] | None = None,
        choice: str = "priority",
        max_firings: int | None = None,
        router: RouterSettings | None = None,
    ) -> None:
        where = _Where.caller(1)
        if not isinstance(name, str) or not name.strip():
            raise TypeError(f"a net's name is a non-empty string, not {name!r}")
        if router is not None and not isinstance(router, RouterSettings):
            raise TypeError(f"router= takes a RouterSettings, not {router!r}")
        c = where.checker()
        c.choice(CHOICES)(choice, ("net", "choice"))
        if max_firings is not None:
            c.integer(1)(max_firings, ("net", "max_firings"))
        _raise(c, where)
        self.name = name
        self.choice = choice
        self.max_firings = max_firings
        self.router = router or RouterSettings()
        self.final = final
        self._where = where  # where Net.build was called: problems with `final` point here
        self._places: dict[str, tuple[int, list[Any] | None]] = {}
        self._transitions: list[Transition] = []
        self._index: dict[str, int] = {}  # place name -> index, kept as places are added
        self._ids: set[str] = set()  # transition ids so far
        self._made: Net | None = None
        self._made_key: tuple[Any, ...] = ()
        for pid, tokens in (places or {}).items():
            self._add_place(pid, tokens, where)

    # ------------------------------------------------------------------ building
    def place(self, name: str, tokens: int | list[Any] = 0) -> str:
        """Add a place with ``tokens`` (a count, or a list of token data); returns its name,
        so ``paid = net.place("paid")`` can be used in ``inputs=``/``outputs=``.

        Raises:
            ManifestError: the place exists already (``duplicate_id``) or ``tokens`` is
                neither a count >= 0 nor a list (``wrong_type``).
        """
        self._add_place(name, tokens, _Where.caller(1))
        return name

    @overload
    def transition(self, fn: Callable[..., Any], /, **options: Any) -> Callable[..., Any]: ...
    @overload
    def transition(self, id: str, /, **options: Any) -> str: ...
    @overload
    def transition(
        self, fn: None = None, /, **options: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]: ...

    def transition(
        self, fn_or_id: Callable[..., Any] | str | None = None, /, **options: Any
    ) -> Any:
        """Add a transition: as a decorator (the function is its action), or by id.

        ``@net.transition(inputs=["new"], outputs=["paid"])`` over ``def pay(new): ...``
        adds transition ``pay`` (``id=`` names it otherwise) and returns the function
        unchanged. ``net.transition("ship", inputs=..., outputs=...)`` adds one without an
        action (or with ``run="module:function"``) and returns its id.

        Options (as in a ``net:`` manifest, docs/petri.md):
            id: the transition id (default: the function's name).
            inputs, outputs, inhibitors: a place, a list of places, or ``{place: weight}``.
            guard: an expression in the guard language (``"token.amount > 10"``).
            run: the action's reference when no function is given (``module:function``).
            priority: higher fires first when transitions compete for tokens.
            retry: a RetryPolicy, a number of attempts, or the manifest's mapping.
            timeout: seconds, or a duration such as ``"2s"``.
            on_error: ``stop`` | ``continue`` | ``skip`` | ``retry``, or an OnError.
            default: the produced tokens' data when ``on_error="skip"`` tolerates a failure.
            external: fires only when asked (``run.fire``).
            circuit_breaker: a CircuitBreakerSettings, or the manifest's mapping.
            executor: ``local`` or ``dask``.

        Raises:
            ManifestError: an unknown place (``unknown_place``, with "did you mean"), a
                used id (``duplicate_id``), a guard that does not parse (``bad_guard``),
                an unknown option (``unknown_key``), or a bad value.
        """
        where = _Where.caller(1)
        if isinstance(fn_or_id, str):
            self._add_transition(fn_or_id, None, options, where)
            return fn_or_id
        if fn_or_id is not None:
            self._add_transition(None, fn_or_id, options, where)
            return fn_or_id

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self._add_transition(None, fn, options, where)
            return fn

        return register

    # ------------------------------------------------------------------ reading
    @property
    def places(self) -> tuple[str, ...]:
        """Place names, in the order they were added."""
        return tuple(self._places)

    @property
    def transitions(self) -> tuple[Transition, ...]:
        """The transitions added so far (each with its action as ``fn``, if any)."""
        return tuple(self._transitions)

    def to_net(self) -> Net:
        """The :class:`Net` built so far (made again only after a change).

        Raises:
            ManifestError: ``final`` names an unknown place (reported at ``Net.build``),
                or the net has no transitions yet.
        """
        # name, final, choice, max_firings and router are plain attributes: a change to
        # one of them makes the net again, as adding a place or a transition does
        key = (self.name, repr(self.final), self.choice, self.max_firings, self.router)
        if self._made is None or key != self._made_key:
            self._made, self._made_key = self._make(), key
        # an action's reference is decided now, not when it was decorated: its module was
        # still being imported then, so `module:function` could not be checked
        ts = tuple(
            t if t.fn is None else replace(t, run=reference(t.fn, t.run or t.id))
            for t in self._transitions
        )
        if any(a.run != b.run for a, b in zip(ts, self._made.transitions, strict=True)):
            self._made = replace(self._made, transitions=ts)
        return self._made

    def to_yaml(self) -> str:
        """The net's manifest as YAML; ``fluxnb.load`` of it gives an equal net."""
        from ._net_manifest import net_text

        return net_text(self.to_net())

    def __repr__(self) -> str:
        return (
            f"<NetBuilder {self.name!r}: {plural(len(self._places), 'place')}, "
            f"{plural(len(self._transitions), 'transition')}>"
        )

    # ------------------------------------------------------------------ internals
    def _add_place(self, pid: Any, tokens: Any, where: _Where) -> None:
        c = where.checker()
        path: Path = ("net", "places", str(pid))
        if not isinstance(pid, str) or not pid.strip():
            c.string(pid, path)
        elif pid in self._places:
            c.add("duplicate_id", path, f"place '{pid}' is added twice", found=pid)
        else:
            read = read_place(c, pid, tokens, path)
            if read is not None:
                self._index[pid] = len(self._places)
                self._places[pid] = read
                self._made = None
        _raise(c, where)

    def _add_transition(
        self,
        tid: str | None,
        fn: Callable[..., Any] | None,
        options: dict[str, Any],
        where: _Where,
    ) -> None:
        c = where.checker()
        i = len(self._transitions)
        tp: Path = ("net", "transitions", i)
        if fn is not None and not callable(fn):
            raise TypeError(f"@net.transition decorates a function, not {fn!r}")
        entry = _manifest_entry(options)
        if "id" not in entry:
            name = tid if tid is not None else getattr(fn, "__name__", None)
            if name is None or name == "<lambda>":
                raise TypeError("this action has no name: give the transition an id= ")
            entry["id"] = name
        elif tid is not None:
            raise TypeError(f"transition '{tid}' is named twice: as an argument and as id=")
        if fn is not None:
            if "run" in entry:
                raise TypeError(
                    f"transition '{entry['id']}' has a function: it is its action (run= is "
                    "for a transition without one)"
                )
            name = getattr(fn, "__name__", None)
            # a manifest names the action; a lambda's "<lambda>" names nothing: use the id
            entry["run"] = name if isinstance(name, str) and name.isidentifier() else entry["id"]
        name = entry.get("id")
        known = name in self._ids if isinstance(name, str) else True
        t = read_transition(c, entry, tp, self._index, self._ids)
        if c.problems:
            if not known:  # a refused transition leaves no trace, not even its id
                self._ids.discard(name)
            c.problems[:] = [
                replace(p, message=f"transition '{name}': {p.message}")
                if isinstance(name, str)
                else p
                for p in c.problems
            ]
        _raise(c, where)
        assert t is not None
        self._transitions.append(t if fn is None else replace(t, fn=fn))
        self._made = None

    def _make(self) -> Net:
        index = self._index
        c = self._where.checker()
        final: dict[int, int] = {}
        if self.final is not None:
            raw = self.final if isinstance(self.final, Mapping | str) else list(self.final)
            for arc in _arcs(c, raw, ("net", "final"), index, "final"):
                final[arc.place] = arc.weight
        if not self._places:
            c.add("missing_key", ("net", "places"), "a net needs places: net.place(name)")
        if not self._transitions:
            c.add(
                "missing_key",
                ("net", "transitions"),
                "a net needs transitions: @net.transition(inputs=..., outputs=...)",
            )
        _raise(c, self._where)
        return Net(
            self.name,
            tuple(self._places),
            tuple(n for n, _ in self._places.values()),
            tuple(self._transitions),
            final,
            tokens={k: list(d) for k, (_, d) in enumerate(self._places.values()) if d is not None},
            max_firings=self.max_firings,
            choice=self.choice,
            router=self.router,
        )


def _raise(c: Checker, where: _Where) -> None:
    if c.problems:
        raise ManifestError(c.problems, where.file)


def _manifest_entry(options: dict[str, Any]) -> dict[str, Any]:
    """``transition``'s options as a ``net.transitions`` entry (what the manifest reader
    checks): typed option records become their mappings; an unknown option is left in, so
    the reader reports it as an unknown key with "did you mean"."""
    return {
        key: _entry_value(key, value)
        for key, value in options.items()
        if value is not None and not (key == "external" and value is False)
    }


def _entry_value(key: str, value: Any) -> Any:
    if key in ("inputs", "outputs", "inhibitors"):
        if isinstance(value, Mapping):
            return dict(value)
        if not isinstance(value, str | list) and isinstance(value, Iterable):
            return list(value)  # a tuple or a set of places
    elif key == "retry":
        if isinstance(value, RetryPolicy):
            return _retry_dict(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return {"max_attempts": value}
    elif key == "on_error" and isinstance(value, OnError):
        return {"strategy": value.strategy, "fallback": value.fallback}
    elif key == "circuit_breaker" and isinstance(value, CircuitBreakerSettings):
        return _breaker_dict(value)
    return value


def reference(fn: Callable[..., Any], name: str) -> str:
    """How a manifest names ``fn``: ``module:qualname`` when that imports back to ``fn``
    (not for ``__main__``, a notebook's own functions), else ``name``."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        return name
    ref = f"{module}:{qualname}"
    if module not in sys.modules:  # never import a module just to name a function
        return name
    try:
        return ref if import_reference(ref) is fn else name
    except LookupError:
        return name


# Net.build is the builder (a class attribute, set here: see Net.build's comment).
Net.build = NetBuilder

"""Streams on the net engine: generator actions, bounded places, activation rules.

A stream net (``spec/_stream_net.py``) is an ordinary coloured net with four additions,
all kept here so the token game in ``_net_run`` only calls in at a few seams:

- **generator actions**: an action whose function is a generator (sync or async) runs as
  one attempt that puts a token on its output places for every item it yields (sync
  generators advance in a worker thread, an item at a time); once it has emitted an item
  it is not retried (a retry would emit the items again), and its result is its items;
- **capacities**: a place holds at most ``net.capacity[p]`` items, counting those its
  consumers are still working on and the outputs of firings still running (reserved
  when they start): a transition that would overfill one is not enabled, and a
  generator **pauses** before the item that would (it awaits, nothing is buffered)
  until a consumer has finished with an item — so memory is bounded by the capacities,
  and so is each consumer's concurrency;
- **read arcs** (``Transition.reads``): the action gets the head token of the place, which
  stays (a one-shot step's output seen by every item);
- **activation rules** the arcs cannot say: ``batch`` passes lists, ``partial`` runs the
  last short batch once the net is otherwise quiet, ``window`` fires at most once per
  interval with every waiting item (a timer wakes the game), ``custom`` asks a Python
  predicate which of the waiting items to take.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._exceptions import Problem, ResolutionError, RunError
from ..spec import Binding, Net
from ..spec._resolve import lookup_callable
from ..spec._stream_net import is_streaming

if TYPE_CHECKING:
    from ._net_run import NetEngine, _Flight
    from ._net_tokens import Token

_END = object()
#: The argument a generator action's driver gets its emitter under (never a user's).
EMIT = "_fluxnb_emit"


def is_stream_net(net: Net) -> bool:
    return bool(net.keep or net.capacity) or any(
        t.reads or t.activation is not None for t in net.transitions
    )


def stream_binding(b: Binding) -> Binding:
    """``b`` with its generator function wrapped in a driver coroutine that hands every
    item to the engine's emitter (awaiting it only when a place it feeds is full)."""
    fn = b.fn
    if inspect.isasyncgenfunction(inspect.unwrap(_base(fn))):

        async def drive_async(**kw: Any) -> int:
            emit = kw.pop(EMIT)
            agen = fn(**kw)
            n = 0
            try:
                async for item in agen:
                    await emit(item)
                    n += 1
            finally:
                await agen.aclose()
            return n

        return Binding(drive_async, b.passed | {EMIT}, b.wants_ctx, True)

    async def drive_sync(**kw: Any) -> int:
        emit = kw.pop(EMIT)
        gen = fn(**kw)  # a generator function runs nothing until next()
        loop = asyncio.get_running_loop()
        n = 0
        try:
            while True:
                item = await loop.run_in_executor(None, next, gen, _END)
                if item is _END:
                    return n
                await emit(item)
                n += 1
        finally:
            # still running in its thread (a cancelled run): it ends there
            with contextlib.suppress(ValueError):
                gen.close()

    return Binding(drive_sync, b.passed | {EMIT}, b.wants_ctx, True)


def _base(fn: Any) -> Any:
    import functools

    while isinstance(fn, functools.partial):
        fn = fn.func
    return fn


def predicates(net: Net, namespace: Mapping[str, Any] | None) -> list[Callable[..., Any] | None]:
    """The ``custom`` activation predicates by transition, looked up like actions."""
    out: list[Callable[..., Any] | None] = []
    problems = []
    for i, t in enumerate(net.transitions):
        act = t.activation
        if act is None or act.kind != "custom":
            out.append(None)
            continue
        fn = act.fn
        if fn is None:
            try:
                fn = lookup_callable(
                    act.custom or "",
                    f"activation of '{t.step or t.id}'",
                    namespace,
                    "write 'activation: {custom: module:function}'",
                )
            except LookupError as exc:
                problems.append(
                    Problem("unresolved_callable", f"net.transitions[{i}].activation", str(exc))
                )
        out.append(fn)
    if problems:
        raise ResolutionError(problems, net.name)
    return out


class StreamState:
    """The stream side of one NetEngine run (see the module docstring)."""

    def __init__(self, engine: NetEngine, preds: list[Callable[..., Any] | None]) -> None:
        self.engine = engine
        net = engine.net
        n = len(net.transitions)
        self.capacity = net.capacity
        #: per place: room held by running firings (outputs to come, inputs in work)
        self.reserved = [0] * len(net.places)
        self.waiters: dict[int, list[asyncio.Future[None]]] = {}
        #: capped output places (place, capacity) per transition
        self.capped = [
            [(a.place, net.capacity[a.place]) for a in t.outputs if a.place in net.capacity]
            for t in net.transitions
        ]
        self.streaming = [b is not None and EMIT in b.passed for b in engine.plan.bindings]
        self.special = [
            bool(t.reads or t.activation is not None or self.capped[i])
            for i, t in enumerate(net.transitions)
        ]
        self.listy = [
            t.activation is not None and t.activation.kind in ("batch", "window", "custom")
            for t in net.transitions
        ]
        self.preds = preds
        self.next_due = [0.0] * n
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        #: how often each transition's generator paused on a full place
        self.pauses = [0] * n
        self.paused = 0  # generators waiting for room now
        #: peak tokens seen in each capped place (backpressure, observable)
        self.peak = dict.fromkeys(net.capacity, 0)
        self.keep = net.keep
        self.items: dict[str, Any] = {sid: [] for sid, k in net.keep.items() if k == "all"}
        self.dropped = 0  # items dropped by on_error skip/continue
        # per transition, what bind and kwargs need, worked out once: a per-item step of a
        # chain (arcs of weight 1, nothing else) takes the short way
        self.plain = [
            tuple(a.place for a in t.inputs)
            if not (t.inhibitors or t.reads or t.activation or self.streaming[i])
            and all(a.weight == 1 for a in t.inputs)
            else None
            for i, t in enumerate(net.transitions)
        ]
        passed = [b.passed if b is not None else frozenset() for b in engine.plan.bindings]
        self.args = [
            tuple(_name(net, a) if _name(net, a) in passed[i] else None for a in t.inputs)
            for i, t in enumerate(net.transitions)
        ]
        self.read_args = [
            tuple((a.place, _name(net, a)) for a in t.reads if _name(net, a) in passed[i])
            for i, t in enumerate(net.transitions)
        ]

    # ------------------------------------------------------------ enabling
    def bind(self, ti: int) -> list[tuple[int, list[Token]]] | None:
        e = self.engine
        places = e.places
        plain = self.plain[ti]
        if plain is not None:
            for p in plain:
                if not places[p]:
                    return None
            reserved = self.reserved
            for p, cap in self.capped[ti]:
                if len(places[p]) + reserved[p] >= cap:
                    return None
            return [(p, [places[p][0]]) for p in plain]
        t = e.net.transitions[ti]
        for a in t.inhibitors:
            if len(places[a.place]) >= a.weight:
                return None
        for a in t.reads:
            if not places[a.place]:
                return None
        if not self.streaming[ti]:
            reserved = self.reserved
            for p, cap in self.capped[ti]:
                if len(places[p]) + reserved[p] >= cap:
                    return None
        act = t.activation
        kind = act.kind if act is not None else "all"
        if kind == "window":
            if not any(places[a.place] for a in t.inputs):
                return None
            now = time.monotonic()
            due = self.next_due[ti]
            if now < due:
                self._arm(due)
                return None
            return [(a.place, list(places[a.place])) for a in t.inputs]
        if kind == "custom":
            return self._custom(ti)
        for a in t.inputs:
            if len(places[a.place]) < a.weight:
                return None
        return [(a.place, _head(places[a.place], a.weight)) for a in t.inputs]

    def _custom(self, ti: int) -> list[tuple[int, list[Token]]] | None:
        e = self.engine
        t = e.net.transitions[ti]
        places = e.places
        if not any(places[a.place] for a in t.inputs):
            return None
        waiting = {_name(e.net, a): [tok.data for tok in places[a.place]] for a in t.inputs}
        pred = self.preds[ti]
        assert pred is not None
        try:
            chosen = pred(waiting)
        except Exception as exc:
            raise RunError(
                f"the activation predicate of step '{t.step or t.id}' raised "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if not chosen:
            return None
        if not isinstance(chosen, Mapping):
            raise RunError(
                f"the activation predicate of step '{t.step or t.id}' returned "
                f"{type(chosen).__name__}; it returns None (wait) or a mapping of input name "
                "to how many items to take (an int) or which (a list of indices)"
            )
        taken = []
        for a in t.inputs:
            q = places[a.place]
            pick = chosen.get(_name(e.net, a), 0)
            if isinstance(pick, bool) or not isinstance(pick, int | list | tuple):
                raise RunError(
                    f"the activation predicate of step '{t.step or t.id}' chose {pick!r} for "
                    f"'{_name(e.net, a)}': give an int (the first n) or a list of indices"
                )
            idx = range(min(pick, len(q))) if isinstance(pick, int) else pick
            try:
                toks = [q[i] for i in sorted(set(idx))]
            except (IndexError, TypeError):
                raise RunError(
                    f"the activation predicate of step '{t.step or t.id}' chose items "
                    f"{pick!r} of '{_name(e.net, a)}', which holds {len(q)}"
                ) from None
            taken.append((a.place, toks))
        return taken if any(toks for _, toks in taken) else None

    def _arm(self, at: float) -> None:
        if self.timer is not None and self.timer_at <= at:
            return
        if self.timer is not None:
            self.timer.cancel()
        loop = self.engine._loop
        assert loop is not None
        self.timer_at = at
        self.timer = loop.call_at(loop.time() + max(0.0, at - time.monotonic()), self._ring)

    def _ring(self) -> None:
        self.timer = None
        self.engine.poke()

    # ------------------------------------------------------------ firing
    def fired(self, f: _Flight) -> None:
        """``f`` started: it holds room for its outputs and for the items it took."""
        ti = f.ti
        act = self.engine.net.transitions[ti].activation
        if act is not None and act.kind == "window":
            self.next_due[ti] = time.monotonic() + act.every
        reserved, capacity = self.reserved, self.capacity
        held = False
        if not self.streaming[ti]:
            for p, _ in self.capped[ti]:
                reserved[p] += 1
                held = True
        for p, toks in f.taken:
            if p in capacity:
                reserved[p] += len(toks)
                held = True
        f.reserved = held

    def release(self, f: _Flight) -> None:
        """``f`` ended (it produced, failed, or gave its tokens back): its room is free."""
        if not f.reserved:
            return
        f.reserved = False
        reserved, capacity = self.reserved, self.capacity
        if not self.streaming[f.ti]:
            for p, _ in self.capped[f.ti]:
                reserved[p] -= 1
                if p in self.waiters:
                    self._wake(p)
        for p, toks in f.taken:
            if p in capacity:
                reserved[p] -= len(toks)
                if p in self.waiters:
                    self._wake(p)

    def took(self, p: int) -> None:
        """Tokens left place ``p`` (room moves to the firing that took them until it ends)."""

    def _wake(self, p: int) -> None:
        futs = self.waiters.pop(p, None)
        for fut in futs or ():
            if not fut.done():
                fut.set_result(None)

    def kwargs(self, f: _Flight) -> dict[str, Any]:
        ti = f.ti
        kw: dict[str, Any] = {}
        if self.listy[ti]:
            for name, (_, toks) in zip(self.args[ti], f.taken, strict=True):
                if name is not None:
                    kw[name] = [x.data for x in toks]
        else:
            for name, (_, toks) in zip(self.args[ti], f.taken, strict=True):
                if name is not None:
                    kw[name] = toks[0].data
        if self.read_args[ti]:
            places = self.engine.places
            for p, name in self.read_args[ti]:
                kw[name] = places[p][0].data
        if self.streaming[ti]:
            kw[EMIT] = self.emitter(f)
        return kw

    def emitter(self, f: _Flight) -> Callable[[Any], Any]:
        e = self.engine
        capped = self.capped[f.ti]
        places, reserved = e.places, self.reserved
        step = e.net.transitions[f.ti].step or e._ids[f.ti]
        keep = self.items.get(step)
        peak = self.peak

        async def emit(item: Any) -> None:
            for p, cap in capped:
                while len(places[p]) + reserved[p] >= cap:
                    fut = e._loop.create_future()  # type: ignore[union-attr]
                    self.waiters.setdefault(p, []).append(fut)
                    self.pauses[f.ti] += 1
                    self.paused += 1
                    e.poke()  # the game may find it is stuck
                    try:
                        await fut
                    finally:
                        self.paused -= 1
            f.retryable = False
            e._produce(f, item)
            for p, _ in capped:
                peak[p] = max(peak[p], len(places[p]))
            if keep is not None:
                keep.append((len(keep), item))
            else:
                e.outputs[step] = item
            e.poke()

        return emit

    def collected(self, f: _Flight, value: Any) -> None:
        """A consumer's firing succeeded with ``value``: keep it as the step's item."""
        step = self.engine.net.transitions[f.ti].step
        if step is None or self.streaming[f.ti]:
            return
        keep = self.items.get(step)
        if keep is not None:
            keep.append((f.firing.seq, value))

    def result(self, step: str) -> Any:
        """A stream step's result: its items in the order its firings started (the order
        of the items it consumed: concurrent firings may end in another), or its last
        one (``keep: last``), or a one-shot step's output."""
        if step in self.items:
            return [v for _, v in sorted(self.items[step], key=_first)]
        return self.engine.outputs.get(step)

    # ------------------------------------------------------------ quiet net
    def flush(self) -> bool:
        """The net is quiet (nothing enabled, nothing running): fire one ``partial``
        batch (what is left, fewer than N), in conflict order. True if one fired."""
        e = self.engine
        for ti in e.plan.order:
            t = e.net.transitions[ti]
            act = t.activation
            if act is None or not act.partial or ti in e._blocked:
                continue
            if any(not e.places[a.place] for a in t.inputs) or any(
                not e.places[a.place] for a in t.reads
            ):
                continue
            e.fire(ti, [(a.place, list(e.places[a.place])) for a in t.inputs])
            return True
        return False

    def stuck(self) -> str | None:
        """Why the run can never go on, when every running action is a paused generator
        and nothing else can happen (a consumer that will never take a token)."""
        e = self.engine
        a = e.attempts
        if not self.paused or self.paused < len(a.running) or a.due or a.waiting:
            return None
        if self.timer is not None:
            return None
        full = [e.net.places[p] for p in self.waiters]
        return (
            f"deadlock: a streaming step is paused because {', '.join(full)} "
            f"{'is' if len(full) == 1 else 'are'} full and no step can take from "
            f"{'it' if len(full) == 1 else 'them'} (an input it also needs never came)"
        )


def _first(pair: tuple[int, Any]) -> int:
    return pair[0]


def _name(net: Net, a: Any) -> str:
    return a.label or net.places[a.place]


def _head(q: Any, n: int) -> list[Token]:
    return [q[0]] if n == 1 else [q[i] for i in range(n)]


def is_generator_action(fn: Any) -> bool:
    return fn is not None and is_streaming(fn)


__all__ = [
    "EMIT",
    "StreamState",
    "is_generator_action",
    "is_stream_net",
    "predicates",
    "stream_binding",
]

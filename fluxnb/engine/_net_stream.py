"""Streams on the net engine: generator actions, bounded places, activation rules.

A stream net (``spec/_stream_net.py``) is an ordinary coloured net with four additions,
all kept here so the token game in ``_net_run`` only calls in at a few seams:

- **generator actions**: an action whose function is a generator (sync or async) runs as
  one attempt that puts a token on its output places for every item it yields (sync
  generators advance in a worker thread, an item at a time); once it has emitted an item
  it is not retried (a retry would emit the items again); the step's result is its items,
  its ``events`` row records how many;
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
import concurrent.futures
import contextlib
import functools
import inspect
import time
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._exceptions import Problem, ResolutionError
from ..spec import Binding, Net
from ..spec._resolve import lookup_callable
from ..spec._stream_net import callee
from ..store._recorder import NO_OUTPUT
from ._net_tokens import Token, head

if TYPE_CHECKING:
    from ._net_run import NetEngine, _Flight

_END = object()


class _Closed(Exception):
    """Raised in a paused generator's ``yield`` when no step can ever take its items."""


#: The argument a generator action's driver gets its emitter under (never a user's).
EMIT = "_fluxnb_emit"


def is_stream_net(net: Net) -> bool:
    return bool(net.keep or net.capacity) or any(
        t.reads or t.activation is not None for t in net.transitions
    )


def stream_binding(b: Binding) -> Binding:
    """``b`` with its generator function wrapped in a driver coroutine that hands every
    item to the engine's emitter (awaiting only when a place it feeds is full: the emitter
    then returns a future to wait on before the item is handed again)."""
    fn = b.fn
    if inspect.isasyncgenfunction(callee(fn)):

        async def drive_async(**kw: Any) -> int:
            emit = kw.pop(EMIT)
            agen = fn(**kw)
            n = 0
            try:
                async for item in agen:
                    while (paused := emit(item)) is not None:
                        await paused
                    n += 1
            except _Closed:  # nothing can ever take its items: it ends here
                pass
            finally:
                await agen.aclose()
            return n

        return Binding(drive_async, b.passed | {EMIT}, b.wants_ctx, True)

    async def drive_sync(**kw: Any) -> int:
        emit = kw.pop(EMIT)
        gen = fn(**kw)  # a generator function runs nothing until next()
        n = 0
        pending: concurrent.futures.Future[Any] | None = None
        try:
            while True:
                pending = _threads().submit(next, gen, _END)
                item = await asyncio.wrap_future(pending)
                pending = None
                if item is _END:
                    return n
                try:
                    while (paused := emit(item)) is not None:
                        await paused
                except _Closed:  # nothing can ever take its items: it ends here
                    return n
                n += 1
        finally:
            if pending is not None and not pending.done():
                # cancelled while next() runs in its thread: close the generator there once
                # that item is made (its finally blocks run now, not at garbage collection)
                pending.add_done_callback(lambda _f: _close(gen))
            else:
                _close(gen)

    return Binding(drive_sync, b.passed | {EMIT}, b.wants_ctx, True)


@functools.cache
def _threads() -> concurrent.futures.ThreadPoolExecutor:
    """The threads sync generators advance in (one ``next()`` at a time each)."""
    return concurrent.futures.ThreadPoolExecutor(32, thread_name_prefix="fluxnb-stream")


def _close(gen: Any) -> None:
    with contextlib.suppress(Exception):  # its own cleanup error: the run has ended already
        gen.close()


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
            bool(t.reads or t.activation is not None or t.by_item or self.capped[i])
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
        #: peak tokens seen in each capped place (backpressure, observable)
        self.peak = dict.fromkeys(net.capacity, 0)
        #: (firing number, value) of each step kept whole (``keep: all``)
        self.items: dict[str, list[tuple[int, Any]]] = {
            sid: [] for sid, k in net.keep.items() if k == "all"
        }
        #: the firing number of each other step's current output (the last item by order)
        self.last_seq: dict[str, int] = {}
        self.closed: list[str] = []  # places whose generator was ended early (``stuck``)
        # item keys, kept only when some step joins inputs by the item they came from: a
        # token's key is (generator, its index there), carried along 1:1 per-item steps
        self.joins = [t.by_item for t in net.transitions]
        self.keyed = any(self.joins)
        self.key: dict[int, Any] = {}  # token id -> its item's key
        self.one_to_one = [
            not self.streaming[i] and t.activation is None and t.priority == 0 and t.per_item
            for i, t in enumerate(net.transitions)
        ]
        join_places = {a.place for t in net.transitions if t.by_item for a in t.inputs}
        #: per place a join reads: its tokens by item key
        self.by_key: dict[int, dict[Any, Token]] = {p: {} for p in join_places}
        # per transition, what bind and kwargs need, worked out once: a per-item step of a
        # chain (arcs of weight 1, nothing else) takes the short way
        #: the last transition fired, when firing it again cannot take a token another
        #: transition competes for (a stream step, not one of an ``any`` group): the game
        #: tries it first, so a step with many items waiting does not rescan the net
        self.last: int | None = None
        self.solo = [
            t.step is not None and not t.inhibitors and not t.external and t.priority == 0
            for t in net.transitions
        ]
        self.plain = [
            tuple(a.place for a in t.inputs)
            if not (t.inhibitors or t.reads or t.activation or t.by_item or self.streaming[i])
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
        if self.joins[ti]:
            return self._join(ti)
        for a in t.inhibitors:
            if len(places[a.place]) >= a.weight:
                return None
        for a in t.reads:
            if not places[a.place]:
                return None
        if not self.streaming[ti] and not self._room(ti):
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
        return [(a.place, head(places[a.place], a.weight)) for a in t.inputs]

    def _room(self, ti: int) -> bool:
        places, reserved = self.engine.places, self.reserved
        return all(len(places[p]) + reserved[p] < cap for p, cap in self.capped[ti])

    def _join(self, ti: int) -> list[tuple[int, list[Token]]] | None:
        """Inputs matched by the item they come from (a diamond: each item meets itself)."""
        e = self.engine
        t = e.net.transitions[ti]
        places = e.places
        for a in t.reads:
            if not places[a.place]:
                return None
        if not self._room(ti):
            return None
        first, rest = t.inputs[0], t.inputs[1:]
        key = self.key
        for tok in places[first.place]:
            k = key.get(tok.id)
            partners = [self.by_key[a.place].get(k) for a in rest]
            if k is not None and all(x is not None for x in partners):
                return [(first.place, [tok])] + [
                    (a.place, [x]) for a, x in zip(rest, partners, strict=True) if x is not None
                ]
        return None

    def _custom(self, ti: int) -> list[tuple[int, list[Token]]] | None:
        e = self.engine
        t = e.net.transitions[ti]
        places = e.places
        if not any(places[a.place] for a in t.inputs):
            return None
        waiting = {_name(e.net, a): [tok.data for tok in places[a.place]] for a in t.inputs}
        pred = self.preds[ti]
        assert pred is not None
        step = t.step or t.id
        try:
            chosen = pred(waiting)
        except Exception as exc:  # the run stops, as for a guard that cannot be evaluated
            return self._refuse(f"the activation predicate of step '{step}' raised "
                                f"{type(exc).__name__}: {exc}")  # fmt: skip
        if not chosen:
            return None
        if not isinstance(chosen, Mapping):
            return self._refuse(
                f"the activation predicate of step '{step}' returned "
                f"{type(chosen).__name__}; it returns None (wait) or a mapping of input name "
                "to how many items to take (an int) or which (a list of indices)"
            )
        unknown = set(chosen) - set(waiting)
        if unknown:
            return self._refuse(
                f"the activation predicate of step '{step}' chose from "
                f"{', '.join(repr(u) for u in sorted(map(str, unknown)))}, which "
                f"{'is' if len(unknown) == 1 else 'are'} not among its inputs "
                f"({', '.join(waiting)})"
            )
        taken = []
        for a in t.inputs:
            q = places[a.place]
            name = _name(e.net, a)
            pick = chosen.get(name, 0)
            if isinstance(pick, int) and not isinstance(pick, bool) and pick >= 0:
                idx: Any = range(min(pick, len(q)))
            elif isinstance(pick, list | tuple) and all(
                isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(q) for i in pick
            ):
                idx = sorted(set(pick))
            else:
                return self._refuse(
                    f"the activation predicate of step '{step}' chose {pick!r} from "
                    f"'{name}', which holds {len(q)}: give a count (an int ≥ 0) or a list of "
                    "indices of waiting items"
                )
            taken.append((a.place, [q[i] for i in idx]))
        return taken if any(toks for _, toks in taken) else None

    def _refuse(self, reason: str) -> list[tuple[int, list[Token]]] | None:
        """A rule of the run's own code failed: the run stops (failed), with the reason;
        nothing is enabled."""
        e = self.engine
        e.failures += 1
        e.stop(reason, "failed")
        return None

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
        self.last = ti if self.solo[ti] else None
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

    def took(self, taken: list[tuple[int, list[Token]]]) -> None:
        """Tokens left their places (their room moves to the firing until it ends)."""
        if self.keyed:
            for p, toks in taken:
                index = self.by_key.get(p)
                if index is not None:
                    for tok in toks:
                        index.pop(self.key.get(tok.id), None)

    def gave_back(self, taken: list[tuple[int, list[Token]]]) -> None:
        if self.keyed:
            for p, toks in taken:
                index = self.by_key.get(p)
                if index is not None:
                    for tok in toks:
                        index[self.key.get(tok.id)] = tok

    def _keyed(self, tokens: list[Token], k: Any) -> None:
        """New tokens of item ``k``: their key, and the join indexes they are in."""
        key, places = self.key, self.engine.places
        for tok in tokens:
            key[tok.id] = k
        for p, index in self.by_key.items():
            q = places[p]
            if q and q[-1] in tokens:
                index[k] = q[-1]

    def forget(self, f: _Flight) -> None:
        """The tokens ``f`` consumed are gone for good: their item keys too (the key table
        holds only tokens still waiting or in work, so it is bounded like the places)."""
        if self.keyed:
            key = self.key
            for tok in f.firing.consumed:
                key.pop(tok.id, None)

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

    def emitter(self, f: _Flight) -> Callable[[Any], asyncio.Future[None] | None]:
        """What a generator's driver hands each item to: it puts the item's tokens on the
        output places and returns None; or, when a place it feeds is full, it puts nothing
        and returns a future to await before handing the same item again (a pause)."""
        e = self.engine
        ti = f.ti
        capped = self.capped[ti]
        places, reserved, waiters, peak = e.places, self.reserved, self.waiters, self.peak
        step = e._ids[ti]  # a stream net's transitions are named by step
        keep = self.items.get(step)
        outputs = e.outputs
        keyed = self.keyed
        seq = f.seq
        consumed = f.firing.consumed
        parent = consumed[0]._trail if consumed else None
        # the common shape, one token per output place and no item keys, is made here
        # (``_produce`` inline)
        simple = not keyed and all(w == 1 for _, _, w in e._outs[ti])
        outs = [(p, name) for p, name, _ in e._outs[ti]]
        tname = e.net.transitions[ti].id
        perf = time.perf_counter_ns
        count = 0

        def emit(item: Any) -> asyncio.Future[None] | None:
            nonlocal count
            for p, cap in capped:
                if len(places[p]) + reserved[p] >= cap:
                    fut: asyncio.Future[None] = e._loop.create_future()  # type: ignore[union-attr]
                    waiters.setdefault(p, []).append(fut)
                    self.pauses[ti] += 1
                    e.poke()  # the game may find it is stuck
                    return fut
            f.retryable = False
            if simple:
                at = perf()
                for p, name in outs:
                    e._tid += 1
                    places[p].append(Token(item, e._tid, (tname, seq, name, at, parent)))
            else:
                produced = e._produce(f, item)
                if keyed:
                    self._keyed(produced, (ti, seq, count))
            count += 1
            for p, _ in capped:
                peak[p] = max(peak[p], len(places[p]))
            if keep is not None:
                keep.append((count, item))
            else:
                outputs[step] = item
            w = e._wake  # e.poke(), inline: the game runs the items' consumers
            if w is not None and not w.done():
                w.set_result(None)
            return None

        return emit

    def completed(self, f: _Flight, value: Any, output: Any, status: str) -> None:
        """A firing ended with ``output`` (``value``: its tokens' data). A generator's items
        went out as it yielded them (its row records how many); another step's tokens carry
        its output — None too: a step's None is its result, not its input passed on —
        with the item key of what it took when it is 1:1, and the output is kept as the
        step's item (its last by firing order with ``keep: last``)."""
        e = self.engine
        ti = f.ti
        self.release(f)
        firing = f.firing
        if self.streaming[ti]:
            firing.produced = []
            return
        produced = firing.produced = e._produce(f, value)
        if self.keyed and produced:
            consumed = firing.consumed
            k = self.key.get(consumed[0].id) if self.one_to_one[ti] and consumed else None
            self._keyed(produced, k if k is not None else (ti, firing.seq))
        self.forget(f)
        if status == "skipped":  # on_error: skip — its default stands for its output
            output = value
        elif status != "succeeded" or output is NO_OUTPUT:
            return
        step = e._ids[ti]
        keep = self.items.get(step)
        if keep is not None:
            keep.append((firing.seq, output))
        elif firing.seq >= self.last_seq.get(step, -1):
            self.last_seq[step] = firing.seq
            e.outputs[step] = output

    def result(self, step: str) -> Any:
        """A stream step's result: its items in the order its firings started (the order
        of the items it consumed: concurrent firings may end in another), or its last
        one (``keep: last``), or a one-shot step's output."""
        if step in self.items:
            return [v for _, v in sorted(self.items[step], key=_first)]
        return self.engine.outputs.get(step)

    def leftovers(self) -> str | None:
        """Items still waiting when the run ended (no step took them), in words."""
        e = self.engine
        left = [(e.net.places[p], len(e.places[p])) for p in self.capacity if e.places[p]]
        if not left:
            return None
        n = sum(k for _, k in left)
        where = ", ".join(f"{k} in '{name}'" for name, k in left)
        why = (
            f"{n} item{'s' if n != 1 else ''} {'were' if n != 1 else 'was'} never taken "
            f"({where}): what they wait to be matched with never came"
        )
        if self.closed:
            why += (
                "; the generator feeding "
                + ", ".join(f"'{p}'" for p in dict.fromkeys(self.closed))
                + " was ended early, as nothing could take its items"
            )
        warnings.warn(f"run {e.run_id}: {why}", RuntimeWarning, stacklevel=2)
        return why

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
            # what is left, at most a batch per input (a longer input flushes again)
            e.fire(
                ti,
                [
                    (a.place, head(e.places[a.place], min(a.weight, len(e.places[a.place]))))
                    for a in t.inputs
                ],
            )
            return True
        return False

    def stuck(self) -> bool:
        """When every running action is a generator paused on a full place and nothing
        else can happen (its items wait for an input that never comes), end those
        generators where they are: their ``yield`` raises inside the driver, which closes
        them, and the run ends with the items left over (``leftovers``). True if it did."""
        a = self.engine.attempts
        # generators still waiting for room (one woken up but not yet resumed is not)
        paused = [x for futs in self.waiters.values() for x in futs if not x.done()]
        if not paused or len(paused) < len(a.running) or a.due or a.waiting or self.timer:
            return False
        self.closed.extend(self.engine.net.places[p] for p in self.waiters)
        for p in list(self.waiters):
            for fut in self.waiters.pop(p):
                if not fut.done():
                    fut.set_exception(_Closed())
        return True


def _first(pair: tuple[int, Any]) -> int:
    return pair[0]


def _name(net: Net, a: Any) -> str:
    return a.label or net.places[a.place]


__all__ = [
    "EMIT",
    "StreamState",
    "is_stream_net",
    "predicates",
    "stream_binding",
]

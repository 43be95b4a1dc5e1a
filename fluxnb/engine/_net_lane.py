"""The per-item lane of a stream net: a chain step's firings without the general machinery.

Most firings of a stream are a per-item step taking one item and passing its result on,
with an ``async def`` that returns without suspending. The general path builds a Firing, an
attempt, an executor start (context, stand-in task) and the runner's bookkeeping for each;
this lane fires such a step again and again in one loop while it is enabled: it takes the
head item, calls the function, puts a token with its history on each output place, keeps
the item as the step's result and, with a store, writes the same ``events`` row. So results,
the firing order (``seq``), token ids and histories, capacities (a paused producer is woken
as before) and rows are the general path's.

The call runs on a *trampoline*, one generator per step that ``yield from``s each call: a
call that returns hands its value over without raising StopIteration (a third of a call's
cost otherwise). Each call still starts from a copy of the run's context, with a stand-in as
``asyncio.current_task()`` (as the executor's inline start does): the next call gets the
same one only when nothing kept it (no reference, no weak reference: task-local state of
one item never reaches the next).

From the firing where a call stops being simple, it goes the general way:

- the call raises: the firing becomes a general one (Firing, attempt) and the attempt
  runner's ``fail`` decides (retry per item, skip, continue, stop), as if it had started
  there;
- the call suspends: the firing becomes a general one whose attempt waits on a task that
  continues the call where it stopped, and the function is marked as one that suspends,
  exactly as the executor does: its next calls start as tasks on the general path.

A step qualifies (``Lane.ok``) when it is a per-item step of a workflow's stream net with
one input, output arcs of weight 1, no guard, activation rule, join or read, an ``async
def`` without ``ctx``, on the local executor, with no timeout and no circuit breaker, in a
run that keeps no firing list (not interactive) and has no final marking. Item keys (for
the joins of a diamond) go on as in the general path.
"""

from __future__ import annotations

import contextvars
import inspect
import time
import types
from asyncio import tasks as _tasks  # current_task() bookkeeping, as the executor's inline start
from collections.abc import Generator, Sequence
from sys import getrefcount
from typing import TYPE_CHECKING, Any, cast
from weakref import getweakrefcount

from ..spec._stream_net import callee
from ._executor import Box, Executor, LocalExecutor, StandIn, continue_in_task, suspend_key
from ._net_tokens import Runs, Token

if TYPE_CHECKING:
    from ._net_run import NetEngine

#: What the trampoline yields once a call has returned (its value is in the cell).
_DONE = object()
#: Off: every firing goes the general way (tests run both ways and compare).
ENABLED = True


@types.coroutine
def _trampoline(fn: Any, cell: list[Any], positional: bool) -> Generator[Any, Any, Any]:
    """Call ``fn(**x)`` (``fn(x)`` when ``positional``) for every ``x`` sent in; yield
    ``_DONE`` once the call returned, its value in ``cell[0]``. A call that suspends yields
    what it awaits out through here; once it is handed to a task (``cell[1]`` set), the
    trampoline returns its value."""
    x = yield _DONE
    while True:
        value = yield from (fn(x) if positional else fn(**x))
        if cell[1]:
            return value
        cell[0] = value
        x = yield _DONE


def _by_position(fn: Any, arg: str | None) -> bool:
    """Whether ``fn(x)`` binds ``x`` exactly as ``fn(**{arg: x})`` does (a plain function
    whose first parameter is ``arg``): then the lane calls it so, without a dict."""
    code = getattr(fn, "__code__", None)
    return (
        type(fn) is types.FunctionType
        and code is not None
        and arg is not None
        and code.co_posonlyargcount == 0
        and code.co_argcount >= 1
        and code.co_varnames[0] == arg
    )


class Lane:
    """The lane of one NetEngine run (see the module docstring)."""

    def __init__(self, engine: NetEngine, executors: Sequence[Executor]) -> None:
        self.engine = engine
        net, plan, st = engine.net, engine.plan, engine.streams
        assert st is not None
        self.st = st
        n = len(net.transitions)
        #: per transition: it takes the lane
        self.ok = [False] * n
        self.fns: list[Any] = [None] * n
        #: per transition: the executor's set of functions seen to suspend, and how it
        #: knows the transition's function
        self.suspends: list[set[Any]] = [set()] * n
        self.keys: list[Any] = [None] * n
        self.args: list[str | None] = [None] * n
        self.ins = [0] * n
        #: output places and their names, per transition
        self.outs: list[tuple[tuple[int, str], ...]] = [()] * n
        #: places whose paused producers a firing may wake (capped outputs, capped input)
        self.wakes: list[tuple[int, ...]] = [()] * n
        self.tramps: list[Any] = [None] * n
        #: per transition: its function is called with its item by position (no dict)
        self.positional = [False] * n
        self.cells: list[list[Any]] = [[None, False] for _ in range(n)]
        self.context = contextvars.copy_context()
        self.stand_in: StandIn | None = None
        #: firings started here (the rest went the general way)
        self.fired = 0
        if not ENABLED or engine.firings is not None or engine._finals:
            return
        for ti, t in enumerate(net.transitions):
            binding = plan.bindings[ti]
            ex = executors[ti]
            plain = st.plain[ti]
            if (
                binding is None
                or not binding.is_async
                or binding.wants_ctx
                or not inspect.iscoroutinefunction(callee(binding.fn))
                or type(ex) is not LocalExecutor
                or plain is None
                or len(plain) != 1
                or not st.solo[ti]
                or not t.per_item
                or t.guard is not None
                or t.timeout is not None
                or plan.timeouts[ti] is not None
                or t.circuit_breaker is not None
                or any(a.weight != 1 for a in t.outputs)
            ):
                continue
            self.ok[ti] = True
            self.fns[ti] = binding.fn
            self.suspends[ti] = ex.suspends
            self.keys[ti] = suspend_key(binding.fn)
            self.ins[ti] = plain[0]
            self.args[ti] = st.args[ti][0]
            self.positional[ti] = _by_position(binding.fn, self.args[ti])
            self.outs[ti] = tuple((a.place, net.places[a.place]) for a in t.outputs)
            self.wakes[ti] = tuple(p for p, _ in st.capped[ti]) + (
                (plain[0],) if plain[0] in st.capacity else ()
            )

    @classmethod
    def of(cls, engine: NetEngine, executors: Sequence[Executor]) -> Lane | None:
        """The lane of ``engine``'s run, if it is a workflow's stream with a step for it."""
        if engine.streams is None or not engine.net.keep:
            return None
        lane = cls(engine, executors)
        return lane if any(lane.ok) else None

    def open(self) -> None:
        """The run's context (what every call starts from a copy of), as the executor's."""
        self.context = contextvars.copy_context()

    def run(self, ti: int, budget: int) -> int:
        """Fire ``ti`` while it is enabled, at most ``budget`` times; how many firings it
        started (0: its function suspends, it goes the general way)."""
        if self.keys[ti] in self.suspends[ti]:
            return 0
        k = self._room(ti, budget)
        if k <= 0:
            return 0
        loop = self.engine._loop
        assert loop is not None
        if self.stand_in is None:
            self.stand_in = StandIn(Box())
        current = _tasks.current_task(loop)
        if current is not None:
            _tasks._leave_task(loop, current)
        # the calls' current_task(), as for the executor's inline start (one for the whole
        # batch while no call keeps it: one that does, or suspends, leaves it behind)
        _tasks._enter_task(loop, self.stand_in)  # type: ignore[arg-type]
        try:
            n, end = self._fire(ti, k)
        finally:
            _tasks._leave_task(loop, self.stand_in)  # type: ignore[arg-type]
            if current is not None:
                _tasks._enter_task(loop, current)
        self.st.last = ti
        if end is not None:
            self._general(ti, *end)
            n += 1
        return n

    def _room(self, ti: int, budget: int) -> int:
        """How many firings of ``ti`` can start now. Nothing but the lane's loop changes
        the places it touches until that loop ends (every call there is inline)."""
        e, st = self.engine, self.st
        places, reserved = e.places, st.reserved
        k = min(budget, e.limit - e.started, len(places[self.ins[ti]]))
        for p, cap in st.capped[ti]:
            k = min(k, cap - len(places[p]) - reserved[p])
        return k

    def _fire(self, ti: int, k: int) -> tuple[int, tuple[Any, ...] | None]:  # noqa: PLR0915 (per item)
        """Fire ``ti`` ``k`` times, fewer if a call raises or suspends: how many firings
        returned, and what ``_general`` needs for the call that stopped the loop (its item
        is still at the head of its place)."""
        e, st = self.engine, self.st
        cell, send, places, tname = (
            self.cells[ti],
            self._trampoline(ti).send,
            e.places,
            e.net.transitions[ti].id,
        )
        head = places[self.ins[ti]]
        popleft = head.popleft
        arg, positional = self.args[ti], self.positional[ti]
        waiters, wakes, outs, keyed = st.waiters, self.wakes[ti], self.outs[ti], st.keyed
        quiet, row, keep = e.attempts.quiet, e.attempts.row, st.items.get(e._ids[ti])
        base, perf, refs, weakrefs = (
            self.context,
            time.perf_counter_ns,
            getrefcount,
            getweakrefcount,
        )
        seq, tid, stand_in = e.seq, e._tid, cast(StandIn, self.stand_in)  # run() made it
        held = refs(stand_in)  # while no call keeps its current task
        value: Any = None
        t0 = n = 0
        try:
            while n < k:
                tok = head[0]  # it leaves its place once its call has returned
                x = tok.data if positional else ({arg: tok.data} if arg is not None else {})
                t0, cx = (0 if quiet else perf()), base.copy()
                try:
                    yielded = cx.run(send, x)
                except (KeyboardInterrupt, SystemExit) as exc:
                    self.tramps[ti] = None
                    if stand_in.callbacks:  # added to "its task": due, as on any end
                        stand_in.ended_inline(None, exc)
                    raise
                except BaseException as exc:  # a step's own exception never escapes
                    if stand_in.callbacks:  # added to "its task": due now
                        stand_in.ended_inline(None, exc)
                    return n, (t0, cx, exc, None)
                if yielded is not _DONE:  # it suspended: a task continues it
                    return n, (t0, cx, None, yielded)
                if (
                    refs(stand_in) != held
                    or weakrefs(stand_in)
                    or stand_in.pending
                    or stand_in.callbacks
                ):
                    # the call kept its current task, cancelled it and returned before an
                    # await (which ends it as it returned), or gave it done-callbacks (due
                    # now): the next call gets a stand-in of its own
                    if stand_in.callbacks:
                        stand_in.ended_inline(cell[0], None)
                    stand_in = self._renew()
                    held = refs(stand_in)
                popleft()
                seq += 1
                n += 1
                # a history's clock, as _produce reads it
                value, at, parent = cell[0], perf(), tok._trail
                for p, pname in outs:
                    tid += 1
                    places[p].append(Token(value, tid, (tname, seq, pname, at, parent)))
                if keyed:  # its tokens carry on the key of the item it took (a join waits)
                    self._key(ti, seq, tok)
                if keep is not None:
                    keep.append((seq, value))
                if waiters:  # a paused producer: room was freed
                    for p in wakes:
                        if p in waiters:
                            st._wake(p)
                if not quiet:
                    row(ti, seq, 1, t0, 0.0, "succeeded", True, None, value)
            return n, None
        finally:
            if seq > e.seq:  # the firings e.seq + 1 .. seq returned
                self._returned(ti, e.seq + 1, seq, value)
            e.seq, e._tid, e.started = seq, tid, e.started + n
            self.fired += n

    def _renew(self) -> StandIn:
        """A new stand-in as the current task, for the next calls (the last one was kept
        by a call, which may tell it from the next call's, as on the general path)."""
        loop = self.engine._loop
        assert loop is not None
        _tasks._leave_task(loop, self.stand_in)  # type: ignore[arg-type]
        stand_in = self.stand_in = StandIn(Box())
        _tasks._enter_task(loop, stand_in)  # type: ignore[arg-type]
        return stand_in

    def _key(self, ti: int, seq: int, tok: Token) -> None:
        """The item key of ``tok``, which firing ``seq`` of ``ti`` took, goes on to the
        tokens it just made (what ``StreamState.completed`` and ``forget`` do for a 1:1
        step)."""
        st, places = self.st, self.engine.places
        k = st.key.pop(tok.id, None)
        st._keyed([places[p][-1] for p, _ in self.outs[ti]], k if k is not None else (ti, seq))

    def _returned(self, ti: int, first: int, last: int, value: Any) -> None:
        """What the firings ``first..last`` of ``ti``, which returned, leave behind, once
        for all: the firing sequence, and the step's last item (``value``, of firing
        ``last``) unless it keeps all of them."""
        e = self.engine
        sequence = e.sequence
        assert isinstance(sequence, Runs)
        sequence.add(ti, last - first + 1)
        step = e._ids[ti]
        if step not in self.st.items:
            self.st.last_seq[step] = last
            e.outputs[step] = value

    def _trampoline(self, ti: int) -> Any:
        tramp = self.tramps[ti]
        if tramp is None:
            cell = self.cells[ti]
            cell[1] = False
            tramp = self.tramps[ti] = _trampoline(self.fns[ti], cell, self.positional[ti])
            tramp.send(None)
        return tramp

    def _general(
        self, ti: int, t0: int, cx: Any, error: BaseException | None, yielded: Any
    ) -> None:
        """The call on the head item of ``ti``'s input failed (the runner decides what
        follows) or suspended (its attempt waits on a task that continues the call): its
        firing is a general one from here, started as the game starts any, its attempt as
        the runner would have started it."""
        e = self.engine
        p = self.ins[ti]
        f = e.fire(ti, [(p, [e.places[p][0]])], start=False)
        f.t0 = t0
        runner = e.attempts
        if error is not None:
            self.tramps[ti] = None  # the exception ended it
            self.stand_in = None  # the call may have kept it (in its traceback too)
            runner.fail(f, error)
            return
        # as the executor does for a call whose first segment suspended: the function
        # starts as a task from now on, and this call goes on in one, in its own context
        self.suspends[ti].add(self.keys[ti])
        tramp, cell = self.tramps[ti], self.cells[ti]
        cell[1] = True  # the trampoline now returns this call's value (it ends there)
        self.tramps[ti] = None
        self.cells[ti] = [None, False]
        stand_in = self.stand_in
        assert stand_in is not None and e._loop is not None
        self.stand_in = None
        task = continue_in_task(e._loop, tramp, yielded, cx, stand_in)
        runner.adopt(f, task, stand_in.box)  # as its start does a call that suspended


__all__ = ["Lane"]

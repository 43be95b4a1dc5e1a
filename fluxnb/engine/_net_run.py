"""Running a Petri net: the coloured token game, with actions run like workflow steps.

Firing a transition consumes its input tokens at once; a transition without an action
produces its output tokens in the same instant (no task, no await), one with an action
produces them when the action returns. So transitions that do not compete for tokens run
their actions concurrently, and competing ones are decided when they start: by priority,
then declared order (or a seeded choice among the highest priority, ``choice: random``).
Retries, timeouts and ``on_error`` are the workflow's; every firing is one trace event
(``events.seq`` is the firing number, ``events.step`` the transition id).

Nothing is lost on failure: the tokens of a firing that fails for good (``stop``,
``continue``) or is cancelled go back to the places they came from.

The attempts themselves (executor, timeout, breaker, retry, ctx, trace row) run on the shared
``_attempts.AttemptRunner``; this module keeps what is a net's own: enabling with guards,
inhibitors and priorities, token identity and history, interactive firing, and the compiled
game for black-token nets. Why it is one module over 400 lines: those parts share the engine's
token queues and would only pass them back and forth if split.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import random
import sys
import time
from array import array
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .._exceptions import Problem, ResolutionError, RunError
from .._plural import plural
from ..spec import Binding, Guard, GuardError, Net, OnError, RetryPolicy
from ..spec._net import transition_names
from ..spec._resolve import _signature, lookup_callable
from ..spec._stream_net import is_streaming
from ..store._recorder import NO_OUTPUT, NullRecorder, Recorder, RunRecord, record_end
from ._attempts import Attempt, AttemptRunner
from ._breaker import BREAKERS
from ._executor import Executor, LocalExecutor, close_all, open_all
from ._net_choices import same_choices
from ._net_game import DEAD, GUARD_FAILED, LIMIT, compile_coloured, compile_game, conflict_order
from ._net_lane import Lane
from ._net_stream import (
    StreamState,
    is_stream_net,
    predicates,
    stream_binding,
)
from ._net_tokens import Firing, NetResult, Runs, Token, head
from ._states import RunStatus

#: Firings of an automatic run when neither the call nor the net says (cycles are legal,
#: so a run needs a bound; raise it with ``max_firings=`` or ``net.max_firings``).
DEFAULT_MAX_FIRINGS = 100_000
#: Arguments an action can take besides its input places' names.
ACTION_ARGS = ("token", "tokens", "data", "ctx")
_STOP = OnError()
_RETRY_DEFAULT = RetryPolicy(max_attempts=3)
_CHUNK = 65_536  # firings of the compiled game between two turns of the event loop
_BUDGET = 1_000  # firings of the general engine between two turns of the event loop


#: A plain run's action that ended reports, and starts the next firings, from inside its
#: own task (``poke``; its Firing is not completed: ``_made``). Off: the run's own task is
#: woken for every end, as before (kept as a switch: the tests compare both ways).
INLINE_ENDS = True


class NotEnabled(RunError):
    """``fire`` named a transition that cannot fire in the current marking."""


# ---------------------------------------------------------------------- plan
@dataclass(frozen=True)
class NetPlan:
    net: Net
    bindings: tuple[Binding | None, ...]
    guards: tuple[Guard | None, ...]
    retries: tuple[RetryPolicy | None, ...]
    timeouts: tuple[float | None, ...]
    on_error: tuple[OnError, ...]
    order: tuple[int, ...]
    #: ``custom`` activation predicates by transition (stream nets only).
    preds: tuple[Callable[..., Any] | None, ...] = ()


def plan_net(net: Net, namespace: Mapping[str, Any] | None) -> NetPlan:
    """Find and check every action; ResolutionError naming each one that cannot run."""
    router = net.router
    problems: list[Problem] = []
    bindings: list[Binding | None] = []
    for i, t in enumerate(net.transitions):
        if t.run is None:
            bindings.append(None)
            continue
        path = f"net.transitions[{i}].run"
        fn = t.fn  # a net built in Python carries its actions (as a workflow's steps do)
        try:
            if fn is None:
                fn = lookup_callable(
                    t.run, f"transition '{t.id}'", namespace, "write 'run: module:function'"
                )
        except LookupError as exc:
            problems.append(Problem("unresolved_callable", path, str(exc), found=t.run))
            bindings.append(None)
            continue
        try:
            binding = _bind_action(net, i, fn)
            bindings.append(stream_binding(binding) if is_streaming(fn) else binding)
        except TypeError as exc:
            problems.append(Problem("bad_signature", path, f"transition '{t.id}': {exc}"))
            bindings.append(None)
    if problems:
        raise ResolutionError(problems, net.name)
    retries, on_error = [], []
    for t in net.transitions:
        strategy = t.on_error or router.on_error or _STOP
        policy = t.retry or router.retry
        if policy is None and strategy.strategy == "retry":
            policy = _RETRY_DEFAULT
        retries.append(policy)
        on_error.append(strategy)
    return NetPlan(
        net,
        tuple(bindings),
        tuple(None if t.guard is None else Guard(t.guard) for t in net.transitions),
        tuple(retries),
        tuple(t.timeout or router.default_timeout for t in net.transitions),
        tuple(on_error),
        tuple(conflict_order(net)),
        tuple(predicates(net, namespace)) if is_stream_net(net) else (),
    )


def _bind_action(net: Net, ti: int, fn: Callable[..., Any]) -> Binding:
    """Which arguments the action takes: input places by name, token, tokens, data, ctx."""
    sig = _signature(fn)
    if not sig.known:
        return Binding(fn, frozenset(), False, sig.is_async)
    t = net.transitions[ti]
    inputs = {a.label or net.places[a.place] for a in (*t.inputs, *t.reads)}
    # a workflow step run as a stream takes its inputs and ctx, as it would in a DAG
    offered = inputs | ({"ctx"} if net.keep else set(ACTION_ARGS))
    if sig.positional_only_required:
        raise TypeError(f"{sig.text} has positional-only parameters without defaults")
    missing = [n for n in sig.required if n not in offered]
    if missing:
        raise TypeError(
            f"{sig.text} needs {', '.join(repr(m) for m in missing)}; an action takes its "
            f"input places by name ({', '.join(sorted(inputs)) or 'none'}), token, tokens, "
            "data and ctx"
        )
    passed = frozenset(n for n in offered if n in sig.named or sig.var_kw)
    return Binding(fn, passed, "ctx" in sig.named, sig.is_async)


# ---------------------------------------------------------------------- engine
#: A plain firing's ``_Flight.taken`` until asked for (never, when it succeeds): one list
#: object, told apart by identity, never filled.
_LAZY: list[tuple[int, list[Token]]] = []


class _Flight(Attempt):
    """A firing whose action has not finished (running, or waiting for its retry): an
    attempt of the shared runner, with the firing and the tokens it took."""

    __slots__ = ("data", "firing", "reserved", "retryable", "taken")

    def __init__(
        self,
        ti: int,
        firing: Firing,
        taken: list[tuple[int, list[Token]]],
        data: Any,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(ti, firing.seq, firing.seq, 1, 0, {} if kwargs is None else kwargs, 0.0)
        self.data = data  # what fire(data=) gave
        self.firing = firing
        #: (place, tokens) in input-arc order; ``_LAZY`` for a plain firing (a token from
        #: each of its transition's places, made when asked: ``NetEngine.taken``)
        self.taken = taken
        self.reserved = False  # holds room in capped output places (streams)
        self.retryable = True


class NetEngine:
    """One run of a net: automatic (``advance``) and by hand (``fire``, ``put``)."""

    #: The run's local executor and context, set by ``open`` (see ``_shared``).
    _local: LocalExecutor | None = None
    _context: contextvars.Context | None = None
    #: advance() of a plain run waits: an action's end starts the next firings itself
    #: (``poke``), in the ended action's task, as a DAG step's end does
    _inline = False
    _pumping = False  # a pump runs: an end inside it (an eager task) only wakes advance()
    _raised: Exception | None = None  # what an inline pump raised, for advance() to raise

    def __init__(
        self,
        plan: NetPlan,
        *,
        run_id: str,
        recorder: Recorder | None = None,
        executor: Executor | None = None,
        executors: Mapping[str, Executor] | None = None,
        default_executor: str | None = None,
        seed: int = 0,
        max_firings: int | None = None,
        keep_firings: bool = False,
    ) -> None:
        self.plan = plan
        net = self.net = plan.net
        self.run_id = run_id
        self.recorder: Recorder = recorder or NullRecorder()
        # executors by name: the local one, the run's extra ones (Dask), a caller's own
        self.executors: dict[str, Executor] = {"local": LocalExecutor(), **(executors or {})}
        if executor is not None:
            self.executors[executor.name] = executor
        default = default_executor or (executor.name if executor is not None else "local")
        names = [t.executor or default for t in net.transitions]
        missing = set(names) - set(self.executors)
        if missing:
            raise RunError(f"no executor named {', '.join(sorted(missing))} for this run")
        self.executor = self.executors[default]
        self.seed = seed
        #: streams, capacities, read arcs and activation rules (None: a plain net)
        self.streams: StreamState | None = None
        # a workflow run as a stream ends when its sources are exhausted: no firing bound
        self.limit = (
            max_firings or net.max_firings or (sys.maxsize if net.keep else DEFAULT_MAX_FIRINGS)
        )
        # a stream net's transitions are named by step (``any`` is one per subset)
        self._ids = tuple((t.step or t.id) if net.keep else t.id for t in net.transitions)
        self._automatic = [ti for ti in plan.order if not net.transitions[ti].external]
        self._simple = [
            None
            if t.inhibitors or t.guard is not None or any(a.weight != 1 for a in t.inputs)
            else tuple(a.place for a in t.inputs)
            for t in net.transitions
        ]
        if is_stream_net(net):
            st = self.streams = StreamState(self, list(plan.preds))
            self._simple = [None if st.special[i] else s for i, s in enumerate(self._simple)]
        self._finals = [
            [final.get(p, 0) for p in range(len(net.places))] for final in net.final_markings()
        ]
        self._pindex = {p: i for i, p in enumerate(net.places)}
        self._outs = [
            tuple((a.place, net.places[a.place], a.weight) for a in t.outputs)
            for t in net.transitions
        ]
        self._tid = 0
        self.places: list[deque[Token]] = []
        for p, n in enumerate(net.initial):
            data = net.tokens.get(p) or [None] * n
            self.places.append(deque(self._token(d) for d in data))
        self.seq = 0  # firings and puts started
        self.started = 0  # firings started (max_firings counts these)
        self.puts = 0  # tokens put by hand
        #: transition indices, in completion order (a stream's, in runs: memory stays flat)
        self.sequence: array[int] | Runs = (
            Runs() if self.streams is not None and net.keep and not keep_firings else array("i")
        )
        self.outputs: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self.firings: list[Firing] | None = [] if keep_firings else None
        self._blocked: set[int] = set()
        self._rng = random.Random(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Future[None] | None = None
        self._limit_pool = net.router.worker_pool_size
        self.stopping = False
        self.ending: str | None = None
        self.reason: str | None = None
        self.failures = 0
        self._opened = False
        #: Runs each action's attempts: executor, timeout, breaker, retry, ctx, trace row.
        self.attempts = AttemptRunner(
            self,
            run_id=run_id,
            workflow=net.name,
            ids=self._ids,
            bindings=plan.bindings,
            executors=[self.executors[name] for name in names],
            timeouts=plan.timeouts,
            retries=plan.retries,
            breakers=[
                None if t.circuit_breaker is None else BREAKERS.get(t.id, t.circuit_breaker)
                for t in net.transitions
            ],
            recorder=self.recorder,
            seed=seed,
            word="step" if net.keep else "transition",
        )
        self._plain_setup()
        #: a stream's per-item steps fired without the general machinery (``_net_lane``)
        self._lane = Lane.of(self, [self.executors[name] for name in names])

    def _plain_setup(self) -> None:
        """The runner's tables the engine reads on its hot paths, and the plain path's."""
        net, attempts = self.net, self.attempts
        self._flying = attempts.running
        self._wall0, self._perf0 = attempts.wall0, attempts.perf0
        self._tnames = tuple(t.id for t in net.transitions)
        # a plain firing (see ``_pump_plain``) makes its _Flight only when its action does
        # not end inside the call: the runner asks for it then
        attempts.make = self._flight
        self._pending: tuple[tuple[int, ...], list[Token]] = ((), [])
        #: a run whose automatic firings take the plain path: no streams, firings not
        #: kept; per transition, how its action's arguments are made
        self._plain: list[tuple[int, tuple[str, ...], frozenset[str]] | None] | None = None
        if self.streams is None and self.firings is None:
            self._plain = [
                None if s is None or b is None else _recipe(net, s, b.passed)
                for s, b in zip(self._simple, self.plan.bindings, strict=True)
            ]

    # ------------------------------------------------------------ small helpers
    def _token(self, data: Any, trail: tuple[Any, ...] | None = None) -> Token:
        self._tid += 1
        return Token(data, self._tid, trail)

    def _now(self) -> int:
        return self._wall0 + (time.perf_counter_ns() - self._perf0) // 1000

    @property
    def marking(self) -> dict[str, int]:
        return {p: len(q) for p, q in zip(self.net.places, self.places, strict=True)}

    @property
    def busy(self) -> bool:
        return self.attempts.busy

    def is_final(self) -> bool:
        finals = self._finals
        if not finals:  # most nets: checked before every firing, so kept cheap
            return False
        counts = [len(q) for q in self.places]
        return any(counts == final for final in finals)

    def open(self) -> None:
        if self._opened:
            return
        self._loop = self.attempts.loop = asyncio.get_running_loop()
        self.attempts.set_host()
        open_all(self.executors.values(), self._loop, self._limit_pool)
        self._opened = True  # only now: aclose() closes what this run opened, nothing else
        local = self.executors.get("local")
        self._local = local if isinstance(local, LocalExecutor) else None
        self._context = contextvars.copy_context()  # the run's own (see _shared)
        if self._lane is not None:
            self._lane.open()

    async def aclose(self) -> None:
        """Close the executors ``open`` opened (none: a run on the compiled game, or one
        whose open failed — a shared LocalExecutor would lose another run's count)."""
        if not self._opened:
            return
        self._opened = False
        await close_all(self.executors.values())

    # ------------------------------------------------------------ enabling
    def _bind(self, ti: int) -> list[tuple[int, list[Token]]] | None:
        """The tokens ``ti`` would consume now, or None if it is not enabled."""
        places = self.places
        simple = self._simple[ti]
        if simple is not None:  # arcs of weight 1, no inhibitor, no guard: the heads
            for p in simple:
                if not places[p]:
                    return None
            return [(p, [places[p][0]]) for p in simple]
        st = self.streams
        if st is not None and st.special[ti]:
            return st.bind(ti)
        t = self.net.transitions[ti]
        for a in t.inhibitors:
            if len(places[a.place]) >= a.weight:
                return None
        for a in t.inputs:
            if len(places[a.place]) < a.weight:
                return None
        guard = self.plan.guards[ti]
        if guard is None:
            return [(a.place, head(places[a.place], a.weight)) for a in t.inputs]
        if not t.inputs:
            return [] if guard(None, {}) else None
        first = t.inputs[0]
        rest = [(a.place, head(places[a.place], a.weight)) for a in t.inputs[1:]]
        q = places[first.place]
        for start in range(len(q) - first.weight + 1):
            cand = [q[i] for i in range(start, start + first.weight)]
            taken = [(first.place, cand), *rest]
            view = self._view(taken)
            if guard(cand[0].data, view):
                return taken
        return None

    def _view(self, taken: list[tuple[int, list[Token]]]) -> dict[str, Any]:
        places = self.net.places
        return {
            places[p]: (ts[0].data if len(ts) == 1 else [x.data for x in ts]) for p, ts in taken
        }

    def enabled(self, *, automatic: bool = False) -> list[str]:
        """Transition ids that could fire now, in conflict order."""
        out = []
        for ti in self.plan.order:
            if automatic and (self.net.transitions[ti].external or ti in self._blocked):
                continue
            try:
                if self._bind(ti) is not None:
                    out.append(self._ids[ti])
            except GuardError:  # cannot say yes: fire() says why
                continue
        return out

    def why_not(self, ti: int) -> str:
        t, places, names = self.net.transitions[ti], self.places, self.net.places
        for a in t.inputs:
            if len(places[a.place]) < a.weight:
                return (
                    f"place '{names[a.place]}' holds {plural(len(places[a.place]), 'token')}, "
                    f"it needs {a.weight}"
                )
        for a in t.inhibitors:
            if len(places[a.place]) >= a.weight:
                n = plural(len(places[a.place]), "token")
                return f"inhibitor place '{names[a.place]}' holds {n}"
        if t.guard is not None:
            return f"its guard {t.guard!r} holds for none of the tokens"
        return "it is blocked after a failure (on_error: continue)"

    def _pick(self, external: bool = False) -> tuple[int, list[tuple[int, list[Token]]]] | None:
        """What fires next by the net's choice rule; ``external``: those count too (a
        person stepping through the game plays the outside world)."""
        net, blocked = self.net, self._blocked
        st = self.streams
        last = None if st is None else st.last
        if last is not None and last not in blocked:  # a stream step with more items waiting
            taken = self._bind(last)
            if taken is not None:
                return last, taken
        if net.choice != "random":
            bind = self._bind
            # conflict order, external transitions left out unless asked for
            for ti in self.plan.order if external else self._automatic:
                if blocked and ti in blocked:
                    continue
                taken = bind(ti)
                if taken is not None:
                    return ti, taken
            return None
        best: list[tuple[int, list[tuple[int, list[Token]]]]] = []
        level = None
        for ti in self.plan.order:
            t = net.transitions[ti]
            if level is not None and t.priority < level:
                break
            if ti in blocked or (t.external and not external):
                continue
            taken = self._bind(ti)
            if taken is not None:
                level = t.priority
                best.append((ti, taken))
        return self._rng.choice(best) if best else None

    # ------------------------------------------------------------ firing
    def _take(self, taken: list[tuple[int, list[Token]]]) -> list[Token]:
        consumed = []
        for p, toks in taken:
            q = self.places[p]
            for tok in toks:
                if q and q[0] is tok:
                    q.popleft()
                else:
                    q.remove(tok)
                consumed.append(tok)
        if self.streams is not None:
            self.streams.took(taken)
        return consumed

    def _give_back(self, f: _Flight) -> None:
        """Tokens of a firing that did not complete go back where they were: token ids
        grow with arrival, so sorting by id restores each place's order."""
        if self.streams is not None:
            self.streams.release(f)
            self.streams.gave_back(f.taken)
        for p, toks in self.taken(f):
            q = self.places[p]
            q.extend(toks)
            if len(q) > len(toks):
                self.places[p] = deque(sorted(q, key=_token_id))

    def fire(
        self, ti: int, taken: list[tuple[int, list[Token]]], data: Any = None, start: bool = True
    ) -> _Flight:
        """Start one firing (a transition without an action completes at once). ``start``
        False: its action's attempt is the caller's to run (the lane's call that stopped)."""
        self.seq += 1
        self.started += 1
        consumed = self._take(taken)
        now = self._wall0 + (time.perf_counter_ns() - self._perf0) // 1000  # _now(), inline
        firing = Firing(self.seq, self._ids[ti], "running", 1, consumed, started_us=now)
        f = _Flight(ti, firing, taken, data)
        if self.firings is not None:
            self.firings.append(firing)
        if self.streams is not None:
            self.streams.fired(f)
        if self.plan.bindings[ti] is None:
            value = data if data is not None else (consumed[0].data if consumed else None)
            f.t0 = time.perf_counter_ns()
            try:
                self._complete(f, value, NO_OUTPUT)
            except Exception as exc:  # its row refused: it fails, the run stops (``lost``)
                self.attempts.untaken(f, exc)
            return f
        f.kwargs = self._kwargs(f)
        if start:
            self._start(f)
        return f

    def _kwargs(self, f: _Flight) -> dict[str, Any]:
        if self.streams is not None:
            return self.streams.kwargs(f)
        binding = self.plan.bindings[f.ti]
        assert binding is not None
        passed = binding.passed
        kw: dict[str, Any] = {}
        view = self._view(self.taken(f))
        for name, value in view.items():
            if name in passed:
                kw[name] = value
        if "token" in passed:
            kw["token"] = f.firing.consumed[0].data if f.firing.consumed else None
        if "tokens" in passed:
            kw["tokens"] = view
        if "data" in passed:
            kw["data"] = f.data
        return kw  # ctx is the runner's: one per attempt

    def _start(self, f: _Flight) -> None:
        self.attempts.start(f.ti, f.seq, f.key, f.attempt, 0, f.kwargs, f.delay, f)

    # ------------------------------------------------------------ outcomes
    def succeeded(
        self,
        ti: int,
        seq: int,
        attempt: int,
        t0: int,
        delay: float,
        value: Any,
        worker: str | None,
        a: Attempt | None,
    ) -> None:
        if a is None:  # a plain firing whose action ended inside its call
            self._made(ti, seq, attempt, t0, delay, value, worker, self._pending[1])
            return
        assert isinstance(a, _Flight)
        if self._plain is not None and INLINE_ENDS:  # one that suspended: no Firing kept
            self._made(ti, seq, attempt, t0, delay, value, worker, a.firing.consumed)
            a.firing.status = "succeeded"
            return
        a.t0 = t0
        self._complete(a, value, value, worker=worker)

    def _made(
        self,
        ti: int,
        seq: int,
        attempt: int,
        t0: int,
        delay: float,
        value: Any,
        worker: str | None,
        consumed: list[Token],
    ) -> None:
        """``_complete`` of a plain run's firing, whose Firing is not kept (or was never
        made): the same tokens, output, sequence entry and row."""
        attempts = self.attempts
        if not attempts.quiet:  # first: a refused row leaves no tokens made (see lost)
            attempts.succeeded_row(ti, seq, attempt, t0, delay, value, worker)
        data = value
        if data is None and consumed:
            data = consumed[0].data
        parent = consumed[0]._trail if consumed else None
        at = time.perf_counter_ns()  # as in _produce
        places, tname, tid = self.places, self._tnames[ti], self._tid
        for p, name, weight in self._outs[ti]:
            move = (tname, seq, name, at, parent)
            q = places[p]
            for _ in range(weight):
                tid += 1
                q.append(Token(data, tid, move))
        self._tid = tid
        self.outputs[self._ids[ti]] = value
        self.sequence.append(ti)

    def retrying(self, a: Attempt) -> None:
        assert isinstance(a, _Flight)
        a.firing.attempts = a.attempt

    def _produce(self, f: _Flight, data: Any) -> list[Token]:
        """Tokens with ``data`` on the output places of ``f``'s transition; their history
        goes on from that of the first token ``f`` took."""
        consumed, seq = f.firing.consumed, f.firing.seq
        parent = consumed[0]._trail if consumed else None
        at = time.perf_counter_ns()  # a history's clock (Token.history makes it wall time)
        produced = []
        places, tname = self.places, self.net.transitions[f.ti].id
        for p, name, weight in self._outs[f.ti]:
            move = (tname, seq, name, at, parent)
            q = places[p]
            for _ in range(weight):
                self._tid += 1  # _token(), inline
                tok = Token(data, self._tid, move)
                q.append(tok)
                produced.append(tok)
        return produced

    def _complete(
        self,
        f: _Flight,
        value: Any,
        output: Any,
        status: str = "succeeded",
        exc: BaseException | None = None,
        worker: str | None = None,
    ) -> None:
        firing = f.firing
        st = self.streams
        if st is not None:  # a step's result and its tokens' item keys are the stream's
            st.completed(f, value, output, status)
        else:
            # the row first: one the recorder refuses leaves no tokens made (``lost``
            # gives the firing's tokens back while it is still running)
            self._row(f, status, True, exc, output, worker)
            if value is None:
                value = f.data
                if value is None and firing.consumed:
                    value = firing.consumed[0].data
            firing.produced = self._produce(f, value)
            if output is not NO_OUTPUT:
                self.outputs[firing.transition] = output
        if output is not NO_OUTPUT:
            firing.output = output
        firing.status, firing.attempts = status, f.attempt
        firing.ended_us = self._now()
        self.sequence.append(f.ti)
        if st is not None:
            self._row(f, status, True, exc, output, worker)

    def _row(
        self,
        f: _Flight,
        status: str,
        final: bool,
        exc: BaseException | None,
        output: Any = NO_OUTPUT,
        worker: str | None = None,
    ) -> None:
        self.attempts.row(f.ti, f.seq, f.attempt, f.t0, f.delay, status, final, exc, output, worker)

    def failed(self, a: Attempt, exc: BaseException) -> None:
        """An action failed for good: the transition's error strategy decides."""
        assert isinstance(a, _Flight)
        f, ti = a, a.ti
        firing = f.firing
        firing.error = f"{type(exc).__name__}: {exc}"
        self.errors[firing.transition] = firing.error
        strategy = self.plan.on_error[ti].final
        if (
            self.streams is not None
            and self.net.transitions[ti].per_item
            and strategy in ("skip", "continue")
            and not self.stopping
        ):  # this item is dropped; the next ones go on
            self.streams.release(f)
            self.streams.forget(f)
            status = "skipped" if strategy == "skip" else "failed"
            self.failures += strategy == "continue"
            self._row(f, status, True, exc)
            firing.status, firing.attempts, firing.ended_us = status, f.attempt, self._now()
            return
        if strategy == "skip" and not self.stopping:
            self._complete(f, self.net.transitions[ti].default, None, "skipped", exc)
            return
        self.failures += 1
        self._row(f, "failed", True, exc)
        firing.status, firing.attempts, firing.ended_us = "failed", f.attempt, self._now()
        self._give_back(f)
        if strategy == "continue" and not self.stopping:
            self._blocked.add(ti)
            return
        self.stop(
            f"step '{firing.transition}' failed (firing #{firing.seq}: {firing.error}), "
            "so the run stopped (on_error: stop)"
            if self.net.keep
            else f"transition '{firing.transition}' failed (firing #{firing.seq}: "
            f"{firing.error}), so the run stopped (on_error: stop); its tokens went back to "
            "its input places",
            "failed",
        )

    def lost(self, a: Attempt, exc: BaseException) -> None:
        assert isinstance(a, _Flight)
        firing = a.firing
        firing.error = f"{type(exc).__name__}: {exc}"
        self.errors[firing.transition] = firing.error
        self.failures += 1
        self.attempts.lost_row(a, exc)
        if firing.status == "running":  # produced nothing yet: its tokens go back
            self._give_back(a)
        firing.status, firing.attempts, firing.ended_us = "failed", a.attempt, self._now()
        self.stop(f"{exc}, so the run stopped", "failed")

    def cancelled(self, a: Attempt) -> None:
        assert isinstance(a, _Flight)
        try:
            self._row(a, "cancelled", True, None)
        except Exception as exc:  # refused: dropped, named in the run's reason; the
            self.attempts.side_error(exc)  # tokens still go back
        a.firing.status, a.firing.ended_us = "cancelled", self._now()
        self._give_back(a)

    def halt(self, reason: str) -> None:
        self.stop(reason, "cancelled")

    def stop(self, reason: str, ending: str) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.ending, self.reason = ending, reason
        self.attempts.stop()
        self.poke()

    def poke(self) -> None:
        """Something ended (an action's task, a backoff wait, a stop): in a plain run that
        advance() waits on, start what can start now, in this very turn of the loop (the
        next firing may run in the ended action's task: the executor's hand-over), and wake
        advance() only when the run may be over or the pump needs a turn of the loop."""
        w = self._wake
        if w is None or w.done():
            return
        if not self._inline or self._pumping or self.stopping:
            w.set_result(None)
            return
        self._pumping = True
        more = True  # if the pump raises, advance() is woken (it raises what it kept)
        try:
            self._shared()
            more = self._pump_plain()  # _inline: a plain run
        except Exception as exc:  # fluxnb's own (a refused row of an action-less firing):
            self._raised = exc  # advance() raises it, as when its own pump raised it
        finally:  # (an action's KeyboardInterrupt at its first line halted the run and
            # goes on to the caller, through this task)
            self._pumping = False
            if (more or self.stopping or not self.attempts.busy) and not w.done():
                w.set_result(None)

    def _guard_failed(self, exc: GuardError) -> None:
        self.failures += 1
        self.stop(f"a guard could not be evaluated: {exc}", "failed")

    # ------------------------------------------------------------ plain firings
    def _flight(
        self,
        ti: int,
        seq: int,
        key: int,
        attempt: int,
        base: int,
        kwargs: dict[str, Any],
        delay: float,
    ) -> _Flight:
        """The _Flight of the plain firing being started, made when the runner needs an
        attempt object (its action failed, or did not end inside the call)."""
        consumed = self._pending[1]
        firing = Firing(seq, self._ids[ti], "running", attempt, consumed, started_us=self._now())
        return _Flight(ti, firing, _LAZY, None, kwargs)

    def taken(self, f: _Flight) -> list[tuple[int, list[Token]]]:
        """What ``f`` took: (place, tokens) in input-arc order."""
        if f.taken is _LAZY:  # a plain firing: a token from each of its places
            simple = self._simple[f.ti]
            assert simple is not None
            f.taken = [(p, [tok]) for p, tok in zip(simple, f.firing.consumed, strict=True)]
        return f.taken

    def _plain_kwargs(
        self, ti: int, names: tuple[str, ...], passed: frozenset[str], consumed: list[Token]
    ) -> dict[str, Any]:
        """``_kwargs`` of a plain firing: its input places by name, token, tokens, data."""
        view = {name: tok.data for name, tok in zip(names, consumed, strict=True)}
        kw = {name: value for name, value in view.items() if name in passed}
        if "token" in passed:
            kw["token"] = consumed[0].data if consumed else None
        if "tokens" in passed:
            kw["tokens"] = view
        if "data" in passed:
            kw["data"] = None
        return kw

    def _shared(self) -> None:
        """A local executor shared with other runs starts this run's actions from copies
        of this run's own context: said before each pump."""
        local = self._local
        if local is not None and local.shared:
            local.serve_context(self._context)  # type: ignore[arg-type]

    def _pump_plain(self) -> bool:  # noqa: PLR0915 - a hot loop: each call saved is per firing
        """``_pump`` of a plain run (no streams, firings not kept): the pick (``choice:
        random`` asks ``_pick``), the take and the call in one loop; a firing whose action
        ends inside its call makes no Firing or _Flight (``_flight``, ``succeeded``)."""
        budget = _BUDGET
        pool = self._limit_pool
        attempts = self.attempts
        due, flying, start = attempts.due, self._flying, attempts.start
        simple, plain, order = self._simple, self._plain, self._automatic
        assert plain is not None
        blocked, finals, limit = self._blocked, self._finals, self.limit
        by_order = self.net.choice != "random"
        while not self.stopping:
            if pool is not None and len(flying) >= pool:
                return False
            if due:
                f = due.popleft()
                assert isinstance(f, _Flight)
                self._start(f)
            else:
                if finals and not attempts.busy and self.is_final():
                    return False
                places = self.places
                taken = None
                try:
                    if not by_order:  # a seeded draw among the highest priority
                        picked = self._pick()
                        if picked is None:
                            return False
                        ti, taken = picked
                        s = simple[ti]
                    else:
                        for ti in order:  # _pick(), inline
                            if blocked and ti in blocked:
                                continue
                            s = simple[ti]
                            if s is None:
                                taken = self._bind(ti)
                                if taken is not None:
                                    break
                            else:
                                for p in s:
                                    if not places[p]:
                                        break
                                else:
                                    break
                        else:
                            return False
                except GuardError as exc:
                    self._guard_failed(exc)
                    return False
                if self.started >= limit:
                    return False
                recipe = plain[ti]
                if s is None:  # a guard, an inhibitor or a weight: what _bind took
                    assert taken is not None
                    self.fire(ti, taken)
                elif recipe is None:  # no action: it completes at once
                    self.fire(ti, [(p, [places[p][0]]) for p in s])
                else:
                    self.seq = seq = self.seq + 1
                    self.started += 1
                    kind, names, passed = recipe
                    if kind == 1:  # one input, takes it, token, tokens and data (``**kw``)
                        tok = places[s[0]].popleft()
                        consumed = [tok]
                        d = tok.data
                        name = names[0]
                        kw = {name: d, "token": d, "tokens": {name: d}, "data": None}
                    else:
                        consumed = [places[p].popleft() for p in s]
                        if kind == 2:  # input places by name only
                            kw = {
                                n: t.data
                                for n, t in zip(names, consumed, strict=True)
                                if n in passed
                            }
                        else:
                            kw = self._plain_kwargs(ti, names, passed, consumed)
                    self._pending = (s, consumed)
                    start(ti, seq, seq, 1, 0, kw, 0.0, None)
            budget -= 1
            if not budget:
                return True
        return False

    # ------------------------------------------------------------ running
    def _pump(self) -> bool:
        """Start what can start; True when it stopped early to give the loop a turn."""
        self._shared()
        if self._plain is not None:
            return self._pump_plain()
        budget = _BUDGET
        pool = self._limit_pool
        while not self.stopping:
            if pool is not None and len(self._flying) >= pool:
                return False
            if self.attempts.due:
                f = self.attempts.due.popleft()
                assert isinstance(f, _Flight)
                self._start(f)
            else:
                if self._finals and not self.busy and self.is_final():
                    return False
                try:
                    picked = self._pick()
                except GuardError as exc:
                    self._guard_failed(exc)
                    return False
                if picked is None:
                    return False
                if self.started >= self.limit:
                    return False
                lane = self._lane
                if lane is not None and lane.ok[picked[0]]:
                    fired = lane.run(picked[0], budget)
                    if fired:  # a run of firings of one per-item step
                        budget -= fired
                        if budget <= 0:
                            return True
                        continue
                self.fire(*picked)
            budget -= 1
            if not budget:
                return True
        return False

    async def advance(self) -> None:
        """Fire automatic transitions until nothing more can happen now."""
        self.open()
        loop = self._loop
        assert loop is not None
        inline = self._plain is not None and INLINE_ENDS
        try:
            while True:
                self._pumping = True
                try:
                    more = self._pump()
                finally:
                    self._pumping = False
                if more:
                    await asyncio.sleep(0)
                    continue
                st = self.streams
                if st is not None and not self.stopping:
                    if not self.busy:  # quiet: a last partial batch, a window's timer, or done
                        if st.flush():
                            continue
                        if st.timer is None:
                            break
                    elif st.stuck():  # paused generators nothing can drain: ended early
                        continue
                elif not self.busy or (self.stopping and not self._flying):
                    break
                await self._sleep(loop, inline)
        except asyncio.CancelledError:
            self.stop("the run was cancelled", "cancelled")
            while self._flying:  # let cancelled actions record where they stopped
                await asyncio.wait([f.fut for f in self._flying])
            raise
        finally:
            self._settle()

    async def _sleep(self, loop: asyncio.AbstractEventLoop, inline: bool) -> None:
        """advance() waits to be woken (an end, a stop); ``inline``: meanwhile an end
        starts the next firings itself (``poke``), and what that raised is raised here."""
        self._wake = loop.create_future()
        self._inline = inline
        try:
            await self._wake
        finally:
            self._inline = False
            self._wake = None
        raised = self._raised
        if raised is not None:
            self._raised = None
            try:
                raise raised
            finally:
                raised = None

    def _settle(self) -> None:
        """Retries that will never start: their tokens go back."""
        for f in self.attempts.take_unstarted():
            self.cancelled(f)

    async def fire_one(self, tid: str, data: Any = None) -> Firing:
        """Fire ``tid`` now (interactive mode) and wait for its action."""
        self.open()
        if self.stopping:
            raise RunError(f"the run has ended ({self.ending}): {self.reason}")
        if tid not in self._ids:
            raise NotEnabled(
                f"net '{self.net.name}' has no transition '{tid}' (it has {', '.join(self._ids)})"
            )
        ti = self._ids.index(tid)
        try:
            taken = self._bind(ti)
        except GuardError as exc:
            raise NotEnabled(f"transition '{tid}': {exc}") from None
        if taken is None:
            raise NotEnabled(f"transition '{tid}' is not enabled: {self.why_not(ti)}")
        assert self._loop is not None
        f = self.fire(ti, taken, data)
        try:
            while f.firing.status == "running":  # its action runs (or waits for a retry)
                self._pump_due()
                self._wake = self._loop.create_future()
                await self._wake
                self._wake = None
        except asyncio.CancelledError:
            self.stop("the run was cancelled", "cancelled")
            while self._flying:
                await asyncio.wait([x.fut for x in self._flying])
            self._settle()
            raise
        return f.firing

    def _pump_due(self) -> None:
        due = self.attempts.due
        while due and not self.stopping:
            f = due.popleft()
            assert isinstance(f, _Flight)
            self._start(f)

    def put(self, place: str, data: Any = None) -> Token:
        """Add a token to ``place`` (an external event), recorded as ``put:<place>``."""
        if place not in self._pindex:
            raise RunError(
                f"net '{self.net.name}' has no place '{place}' "
                f"(it has {', '.join(self.net.places)})"
            )
        if self.stopping:
            raise RunError(f"the run has ended ({self.ending}): {self.reason}")
        self.seq += 1
        self.puts += 1
        at = self._now()
        tok = self._token(data, (None, self.seq, place, time.perf_counter_ns(), None))
        self.places[self._pindex[place]].append(tok)
        firing = Firing(self.seq, f"put:{place}", "succeeded", 0, [], [tok], data, None, at, at)
        if self.firings is not None:
            self.firings.append(firing)
        row = (self.run_id, self.seq, firing.transition, 0, "succeeded", True, at, at, 0.0)
        self.recorder.event((*row, 0.0, None, None, None, None, None, data))
        return tok

    def snapshot(self) -> tuple[Any, ...]:
        """What ``restore`` needs to put the game back as it is now (interactive runs)."""
        assert self.firings is not None, "snapshots need keep_firings=True"
        return (
            len(self.firings),
            [list(q) for q in self.places],
            len(self.sequence),
            dict(self.outputs),
            dict(self.errors),
            set(self._blocked),
        )

    def restore(self, snap: tuple[Any, ...]) -> str:
        """Undo every firing and put since ``snap``: tokens, outputs and the firing list
        are as they were; recorded as one ``back:<first undone>`` event (the trace keeps
        the undone firings: they happened). Returns what was undone's first id."""
        assert self.firings is not None
        n, places, seq_len, outputs, errors, blocked = snap
        undone = self.firings[n].transition if len(self.firings) > n else "nothing"
        del self.firings[n:]
        self.places = [deque(q) for q in places]
        assert isinstance(self.sequence, array)  # an interactive run keeps its firings
        del self.sequence[seq_len:]
        self.outputs, self.errors, self._blocked = outputs, errors, blocked
        self.seq += 1
        at = self._now()
        row = (self.run_id, self.seq, f"back:{undone}", 0, "succeeded", True, at, at, 0.0)
        self.recorder.event((*row, 0.0, None, None, None, None, None, None))
        return undone

    def conclude(self, *, closed: bool = False) -> tuple[RunStatus, str, str | None]:
        """The run's status, ending and reason, from where the token game stopped."""
        if self.ending == "cancelled":
            return RunStatus.CANCELLED, "cancelled", self.reason
        if self.ending == "failed":
            return RunStatus.FAILED, "failed", self.reason
        if self.is_final():
            return self._tolerated(RunStatus.SUCCEEDED, "final", None)
        final = self.net.final_markings()
        marking = ", ".join(f"{p}={n}" for p, n in self.marking.items() if n) or "no tokens"
        if self.started >= self.limit and self.enabled(automatic=True):
            loop = None
            if not self.puts:
                end = [len(q) for q in self.places]
                loop = same_choices(self.net, end, self.sequence, self._blocked)
            return (
                RunStatus.FAILED,
                "max_firings",
                f"stopped after max_firings={self.limit:,} firings without reaching "
                f"{'the final marking' if final else 'a dead marking'} "
                f"(marking: {marking}); "
                + (f"{loop}; or " if loop else "")
                + "raise max_firings (run argument or net.max_firings) if the net needs more",
            )
        if closed:
            if final:
                return (
                    RunStatus.CANCELLED,
                    "closed",
                    f"closed before the final marking (marking: {marking})",
                )
            return self._tolerated(RunStatus.SUCCEEDED, "closed", None)
        if final:
            waiting = [
                self._ids[ti]
                for ti in range(len(self._ids))
                if self.net.transitions[ti].external and self._bind(ti) is not None
            ]
            why = (
                f"; only external transitions are enabled ({', '.join(waiting)}): fire them "
                "with fluxnb.interactive(...)"
                if waiting
                else ""
            )
            return (
                RunStatus.FAILED,
                "dead",
                f"deadlock: no transition can fire and the marking ({marking}) is not the "
                f"final marking{why}",
            )
        return self._tolerated(RunStatus.SUCCEEDED, "dead", None)

    def _tolerated(
        self, status: RunStatus, ending: str, reason: str | None
    ) -> tuple[RunStatus, str, str | None]:
        if self.failures:
            blocked = ", ".join(self._ids[ti] for ti in sorted(self._blocked))
            return (
                RunStatus.FAILED,
                ending,
                f"{plural(self.failures, 'firing')} failed"
                + (f"; blocked transitions: {blocked}" if blocked else "")
                + " (on_error: continue)",
            )
        if self.streams is not None and status is RunStatus.SUCCEEDED and reason is None:
            reason = self.streams.leftovers()  # items no step took (they are not lost silently)
        return status, ending, reason

    def result(
        self,
        record: RunRecord,
        status: RunStatus,
        ending: str,
        reason: str | None,
        *,
        black: bool = False,
    ) -> NetResult:
        """Record the end of the run and build its result (``black``: the places hold
        interchangeable tokens, which the result makes on demand)."""
        reason = self.attempts.with_refused(reason)  # rows no firing's own end: it ended
        ended = self._now()
        recording_error = record_end(
            self.recorder,
            RunRecord(
                **{
                    **record.__dict__,
                    "status": status.value,
                    "ended_at": ended,
                    "error": None if status is RunStatus.SUCCEEDED else f"{ending}: {reason}",
                }
            ),
        )
        result = NetResult(
            run_id=self.run_id,
            net=self.net.name,
            status=status,
            ending=ending,
            reason=reason,
            marking=self.marking,
            tokens=None
            if black
            else {p: list(q) for p, q in zip(self.net.places, self.places, strict=True)},
            sequence=self.sequence,
            ids=self._ids,
            outputs=self.outputs
            if self.streams is None or not self.net.keep
            else {step: self.streams.result(step) for step in self.net.keep},
            errors=self.errors,
            names=transition_names(self.net),
            started_us=record.started_at,
            duration=(ended - record.started_at) / 1e6,
            store=self.recorder.location,
            namespace=record.namespace,
            tenant=record.tenant,
        )
        result.recording_error = recording_error
        return result


def _token_id(t: Token) -> int:
    return t.id


def _recipe(
    net: Net, simple: tuple[int, ...], passed: frozenset[str]
) -> tuple[int, tuple[str, ...], frozenset[str]]:
    """How a plain firing makes its action's arguments (as ``NetEngine._kwargs`` does):
    1, one input place and every argument (an action taking ``**kwargs``); 2, input places
    by name only; 0, anything else."""
    names = tuple(net.places[p] for p in simple)
    if len(names) == 1 and passed >= {names[0], "token", "tokens", "data"}:
        return 1, names, passed
    if not passed & {"token", "tokens", "data"}:
        return 2, names, passed
    return 0, names, passed


# ---------------------------------------------------------------------- compiled runs
async def play_compiled(
    net: Net, *, run_id: str, recorder: Recorder, limit: int
) -> tuple[list[int], array, int]:
    """The compiled token game of a black-token net: (marking, sequence, why)."""
    game = compile_game(net)
    marking = list(net.initial)
    log = array("i", bytes(4 * min(_CHUNK, limit)))
    sequence = array("i")
    why = DEAD
    record = not isinstance(recorder, NullRecorder)
    ids = tuple(t.id for t in net.transitions)
    tail = (None, None, None, None, None, NO_OUTPUT)
    while len(sequence) < limit:
        k, why = game(marking, min(len(log), limit - len(sequence)), log)
        if record:
            at = time.time_ns() // 1000
            base = len(sequence)
            event = recorder.event
            for i in range(k):
                t = ids[log[i]]
                event((run_id, base + i + 1, t, 1, "succeeded", True, at, at, 0.0, 0.0, *tail))
        sequence.frombytes(memoryview(log)[:k].tobytes())
        if why != 0:
            break
        await asyncio.sleep(0)  # the loop (a kernel) stays responsive; Ctrl-C lands here
    return marking, sequence, why


async def play_coloured(engine: NetEngine) -> int:
    """The compiled coloured game (token data and guards, no actions) on ``engine``'s places:
    fires until final, dead, a failed guard or the engine's limit, recording each firing;
    leaves ``engine`` as the general engine would (places, sequence, token ids, ending).
    Returns why it stopped (``_net_game``: LIMIT, DEAD, FINAL, GUARD_FAILED)."""
    net, plan, recorder = engine.net, engine.plan, engine.recorder
    game = compile_coloured(net, plan.guards, time.perf_counter_ns)
    places = [deque((t.data, t.id, t._trail) for t in q) for q in engine.places]
    state: list[Any] = [engine.seq, engine._tid, None]
    limit = engine.limit - engine.started
    log = array("i", bytes(4 * max(1, min(_CHUNK, limit))))
    sequence = engine.sequence
    assert isinstance(sequence, array)  # a net without actions: not a stream's
    record = not isinstance(recorder, NullRecorder)
    ids, run_id = engine._ids, engine.run_id
    tail = (None, None, None, None, None, NO_OUTPUT)
    why = DEAD
    while True:
        base = state[0]
        # a firing allocates a token and a link of its history that stay alive (tuples in
        # a growing chain): with the cyclic GC on, its collections walk that chain again
        # and again (GC on: 1.1M firings/s, off: 1.8M/s). Paused for one chunk at a time.
        collecting = gc.isenabled()
        gc.disable()
        try:
            k, why = game(places, state, min(len(log), limit - len(sequence)), log)
        finally:
            if collecting:
                gc.enable()
        if record:
            at = time.time_ns() // 1000
            event = recorder.event
            for i in range(k):
                event(
                    (
                        run_id,
                        base + i + 1,
                        ids[log[i]],
                        1,
                        "succeeded",
                        True,
                        at,
                        at,
                        0.0,
                        0.0,
                        *tail,
                    )
                )
        sequence.frombytes(memoryview(log)[:k].tobytes())
        if why != LIMIT or len(sequence) >= limit:
            break
        await asyncio.sleep(0)  # the loop (a kernel) stays responsive; Ctrl-C lands here
    engine.places = [deque(Token(*t) for t in q) for q in places]
    engine.seq, engine._tid = state[0], state[1]
    engine.started += len(sequence)
    if why == GUARD_FAILED:
        engine._guard_failed(state[2])
    return why


__all__ = ["NetEngine", "NetPlan", "NotEnabled", "plan_net", "play_coloured", "play_compiled"]

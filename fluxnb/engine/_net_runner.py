"""Entry points that run a net: automatic (``run``/``arun``) and ``interactive``."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from .._exceptions import RunError
from .._session import Action
from ..spec import GuardError, Net
from ..spec._net_manifest import load_net, net_text
from ..store._recorder import NullRecorder, Recorder, RunRecord
from ._executor import Executor
from ._net_game import FINAL, coloured_compilable, compilable
from ._net_run import NetEngine, NetPlan, NotEnabled, plan_net, play_coloured, play_compiled
from ._net_tokens import Firing, NetResult, Token
from ._setup import (
    DEFAULT,
    _check_new_id,
    admit,
    executors_for,
    new_run_id,
    recorder_for,
    run_record,
)
from ._states import RunStatus

T = TypeVar("T")


def _record(
    net: Net, run_id: str, recorder: Recorder, tenant: str | None, scope: str | None, seed: int
) -> RunRecord:
    text = None if isinstance(recorder, NullRecorder) else net_text(net)
    return run_record(
        net.name,
        len(net.transitions),
        run_id,
        time.time_ns() // 1000,
        scope or net.router.namespace,
        tenant or net.router.tenant,
        text,
        seed,
    )


def _executors(
    net: Net, plan: NetPlan, executor: Executor | str | None
) -> tuple[str, dict[str, Executor]]:
    """The run's default executor name and the instances its transitions need."""
    return executors_for(
        executor,
        net.router.executor,
        [t.executor for t in net.transitions],
        plan.bindings,
        [t.id for t in net.transitions],
        net.name,
        "net.transitions[{}].run",
        "transition",
    )


async def arun_net(
    net: Net,
    namespace: Mapping[str, Any] | None,
    *,
    recorder: Recorder,
    run_id: str,
    tenant: str | None = None,
    run_namespace: str | None = None,
    seed: int = 0,
    max_firings: int | None = None,
    executor: Executor | str | None = None,
) -> NetResult:
    """Run ``net`` automatically to its final marking, a dead marking or max_firings
    (permission already checked by the caller: see ``_runner.admit``)."""
    plan = plan_net(net, namespace)  # every action found and checked before anything runs
    record = _record(net, run_id, recorder, tenant, run_namespace, seed)
    default, executors = _executors(net, plan, executor)
    engine = NetEngine(
        plan,
        run_id=run_id,
        recorder=recorder,
        executors=executors,
        default_executor=default,
        seed=seed,
        max_firings=max_firings,
    )
    recorder.run_started(record)
    if compilable(net):
        return await _run_compiled(net, engine, record, recorder)
    try:
        if coloured_compilable(net):
            await play_coloured(engine)  # the same game as advance(), compiled
        else:
            await engine.advance()
    except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
        # (an interrupt: an action's first line raised it, the run is halted)
        engine.result(record, RunStatus.CANCELLED, "cancelled", "the run was cancelled")
        raise
    except Exception as exc:  # fluxnb's own fault: the run is still recorded as ended
        engine.result(record, RunStatus.FAILED, "failed", f"{type(exc).__name__}: {exc}")
        raise
    finally:
        await engine.aclose()
    return engine.result(record, *engine.conclude())


async def _run_compiled(
    net: Net, engine: NetEngine, record: RunRecord, recorder: Recorder
) -> NetResult:
    t0 = time.perf_counter()
    try:
        marking, sequence, why = await play_compiled(
            net, run_id=engine.run_id, recorder=recorder, limit=engine.limit
        )
    except asyncio.CancelledError:
        engine.result(record, RunStatus.CANCELLED, "cancelled", "the run was cancelled")
        raise
    black = Token(None, 0)  # interchangeable: one object stands for every token
    engine.places = [deque([black]) * n for n in marking]
    engine.sequence = sequence
    engine.started = len(sequence)
    status, ending, reason = engine.conclude()
    if why == FINAL:
        status, ending, reason = RunStatus.SUCCEEDED, "final", None
    result = engine.result(record, status, ending, reason, black=True)
    result.duration = time.perf_counter() - t0
    return result


# ---------------------------------------------------------------------- interactive
class NetRun:
    """A net run driven by hand and by its own automatic transitions.

    ``enabled()`` lists what can fire; ``fire(t, data=...)`` fires a transition (a human
    decision, an external event) and waits for its action; ``put(place, data)`` adds a
    token. After each, automatic transitions (those not marked ``external``) fire until
    nothing more can happen, unless ``auto=False``. ``close()`` ends the run and records
    it. Every firing and put is a trace event.
    """

    def __init__(self, engine: NetEngine, record: RunRecord, *, auto: bool) -> None:
        self._engine = engine
        self._record = record
        self.auto = auto
        self.run_id = engine.run_id
        self.result: NetResult | None = None
        self._undo: list[tuple[Any, ...]] = []  # the game before each fire / step / put
        from ._loop import _LoopThread

        self._lt = _LoopThread.get()
        if auto:
            self._call(engine.advance())

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self._lt.thread:
            coro.close()
            raise RunError("an interactive net run cannot be driven from its own loop")
        fut = asyncio.run_coroutine_threadsafe(coro, self._lt.loop)
        try:
            return fut.result()
        except KeyboardInterrupt:
            fut.cancel()
            raise

    def _check_open(self) -> None:
        if self.result is not None:
            raise RunError(f"net run {self.run_id} is closed ({self.result.ending})")

    @property
    def net(self) -> Net:
        return self._engine.net

    @property
    def marking(self) -> dict[str, int]:
        """Tokens per place now."""
        return self._engine.marking

    def tokens(self, place: str | None = None) -> Any:
        """The tokens in ``place`` (a list), or of every place (a dict)."""
        e = self._engine
        by_place = {p: list(q) for p, q in zip(e.net.places, e.places, strict=True)}
        if place is None:
            return by_place
        if place not in by_place:
            raise KeyError(f"net '{e.net.name}' has no place '{place}'")
        return by_place[place]

    def enabled(self) -> list[str]:
        """Transitions that can fire now (external ones included), in conflict order."""
        return self._engine.enabled()

    @property
    def firings(self) -> list[Firing]:
        """Every firing and put so far, in order."""
        return list(self._engine.firings or [])

    @property
    def status(self) -> str:
        if self.result is not None:
            return self.result.status.value
        e = self._engine
        if e.stopping:
            return e.ending or "failed"
        if e.is_final():
            return "final"
        return "waiting" if not e.enabled(automatic=True) else "running"

    def fire(self, transition: str, data: Any = None) -> Firing:
        """Fire ``transition`` now; raises NotEnabled (saying why) if it cannot fire."""
        self._check_open()

        async def go() -> Firing:
            firing = await self._engine.fire_one(transition, data)
            if self.auto and not self._engine.stopping:
                await self._engine.advance()
            return firing

        return self._undoable(go())

    def _undoable(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` (a fire or a put); if it fired or put anything, ``back`` can undo it."""
        snap = self._engine.snapshot()
        try:
            return self._call(coro)
        finally:
            if len(self._engine.firings or ()) > snap[0]:
                self._undo.append(snap)

    def step(self) -> Firing | None:
        """Fire the one transition the net's choice rule picks among the enabled ones
        (external ones too: whoever steps plays the outside world): ``choice: priority``
        the highest priority, then the first declared; ``choice: random`` a pick among the
        highest priority, seeded by the run's seed. None when nothing can fire."""
        self._check_open()
        try:
            picked = self._engine._pick(external=True)
        except GuardError as exc:
            raise NotEnabled(f"cannot choose what fires next: {exc}") from None
        if picked is None:
            return None
        return self.fire(self._engine._ids[picked[0]])

    def back(self) -> str:
        """Undo the last ``fire``, ``step`` or ``put`` (with the automatic firings that
        followed it): the marking and tokens are as they were before it. The actions it
        ran are not undone (their effects are theirs); the trace keeps the firing and
        records a ``back:<transition>`` event. Returns the id of what was undone."""
        self._check_open()
        if not self._undo:
            raise RunError(f"net run {self.run_id}: nothing to go back over (no firing yet)")
        if self._engine.stopping:
            raise RunError(f"the run has ended ({self._engine.ending}): {self._engine.reason}")
        return self._engine.restore(self._undo.pop())

    def put(self, place: str, data: Any = None) -> Token:
        """Add a token with ``data`` to ``place`` (an external event)."""
        self._check_open()

        async def go() -> Token:
            token = self._engine.put(place, data)
            if self.auto:
                await self._engine.advance()
            return token

        return self._undoable(go())

    def advance(self) -> NetRun:
        """Fire automatic transitions until nothing more can happen (``auto=False``)."""
        self._check_open()
        self._call(self._engine.advance())
        return self

    def close(self) -> NetResult:
        """End the run and record how it ended; returns its NetResult."""
        if self.result is not None:
            return self.result
        e = self._engine

        async def go() -> NetResult:
            await e.aclose()
            return e.result(self._record, *e.conclude(closed=True))

        self.result = self._call(go())
        return self.result

    def __enter__(self) -> NetRun:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def history(self) -> Any:
        """Every firing as a DataFrame: seq, transition, status, attempts, tokens in/out."""
        import pandas as pd

        from ..store._frames import nulls_as_none

        frame = pd.DataFrame(
            [
                {
                    "seq": f.seq,
                    "transition": f.transition,
                    "status": f.status,
                    "attempts": f.attempts,
                    "consumed": [t.id for t in f.consumed],
                    "produced": [t.id for t in f.produced],
                    "output": f.output,
                    "error": f.error,
                }
                for f in self.firings
            ],
            columns=[
                "seq",
                "transition",
                "status",
                "attempts",
                "consumed",
                "produced",
                "output",
                "error",
            ],
        )
        return nulls_as_none(frame)

    def __repr__(self) -> str:
        marked = ", ".join(f"{p}={n}" for p, n in self.marking.items() if n) or "no tokens"
        return (
            f"<NetRun {self.run_id} '{self.net.name}' {self.status}: {marked}; "
            f"enabled: {', '.join(self.enabled()) or 'none'}>"
        )

    def _repr_html_(self) -> str:
        from .._html import net_run_html

        return net_run_html(self)


def interactive(
    manifest: Any,
    namespace: Mapping[str, Any] | None = None,
    *,
    store: Any = DEFAULT,
    tenant: str | None = None,
    seed: int = 0,
    auto: bool | None = None,
    max_firings: int | None = None,
    run_id: str | None = None,
) -> NetRun:
    """Open a net run driven by hand: ``run.enabled()``, ``run.fire(t, data=)``,
    ``run.put(place, data)``, ``run.marking``, ``run.tokens(place)``, ``run.close()``.

    Args:
        manifest: a net manifest (YAML text, a path, a dict), a ``Net`` or PNML file.
        namespace: where actions (``run:``) are looked up by name (e.g. ``globals()``).
        store: where the trace goes (as for ``fluxnb.run``; by default the usual store).
        auto: fire automatic transitions after every fire/put (and at the start). Default:
            yes for a net, no for the state-machine form, which is driven from outside
            (Circuit Breaker's semantics: a transition moves the token when asked).
        max_firings: bound on automatic firings (default 100,000).
    """
    net = load_net(manifest) if not isinstance(manifest, Net) else manifest
    if auto is None:
        auto = not net.machine
    tenant, scope = admit(Action.RUN, net.name, net.router, store, tenant)
    _check_new_id(run_id, store)
    plan = plan_net(net, namespace)
    recorder = recorder_for(store)
    rid = run_id or new_run_id()
    record = _record(net, rid, recorder, tenant, scope, seed)
    engine = NetEngine(
        plan,
        run_id=rid,
        recorder=recorder,
        seed=seed,
        max_firings=max_firings,
        keep_firings=True,
    )
    recorder.run_started(record)
    return NetRun(engine, record, auto=auto)


__all__ = ["NetRun", "NotEnabled", "arun_net", "interactive"]

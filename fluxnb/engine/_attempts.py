"""The one attempt runner, shared by both token games (DAG steps and net transitions).

A game decides *what* fires and what an outcome does to its tokens and states; this module
runs *one attempt* of an action and reports how it ended. It owns everything around the
call: the executor (inline first, threads, Dask), the timeout (and a half-open breaker's
probe timeout), the circuit breaker, ``ctx`` with its metering sink, retry with backoff and
error filters (the next attempt waits here until it is due), the trace row, and
cancellation. Neither game arms a timer or touches a future itself.

The game supplies an :class:`Outcomes` object: ``succeeded`` (the value, and where it ran),
``retrying`` (an attempt failed and another follows), ``failed`` (for good: the game's
error strategy decides), ``cancelled`` (the run stopped while it ran) and ``poke`` (wake
the game's loop). The hot path allocates nothing for an attempt that finishes inline: an
:class:`Attempt` object exists only for one that waits on a future or fails.

Why over 400 lines: one idea, an attempt's lifecycle (start, report, fail and retry, record,
cancel); split, its hot path would pay for calls between modules.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from functools import partial
from itertools import repeat
from operator import attrgetter, is_not
from typing import Any, Protocol

from .._exceptions import CircuitOpenError
from ..spec import Binding, RetryPolicy, format_duration
from ..store._recorder import NO_OUTPUT, NullRecorder, Recorder
from ._breaker import CircuitBreaker, CircuitChange
from ._context import StepContext, meter_sink
from ._executor import Executor, LocalExecutor
from ._tracebacks import user_traceback

_WANTS_CTX = attrgetter("wants_ctx")


class Attempt:
    """One attempt that did not finish inline: it waits on a future, or for its retry.

    ``ti`` the transition, ``seq`` its event's logical number, ``key`` what seeds its
    backoff jitter, ``attempt`` its number, ``base`` the attempts recorded before this run
    (a resume continues the numbering), ``kwargs`` the call's arguments without ``ctx``.
    """

    __slots__ = (
        "attempt",
        "base",
        "box",
        "delay",
        "fut",
        "key",
        "kwargs",
        "probe",
        "seq",
        "t0",
        "ti",
        "timed_out",
        "timer",
    )

    #: False once a retry would repeat what the attempt already did (a stream that has
    #: emitted items): its failure is then final. A game's attempt class may make it a slot.
    retryable = True

    def __init__(
        self,
        ti: int,
        seq: int,
        key: int,
        attempt: int,
        base: int,
        kwargs: dict[str, Any],
        delay: float,
    ) -> None:
        self.ti = ti
        self.seq = seq
        self.key = key
        self.attempt = attempt
        self.base = base
        self.kwargs = kwargs
        self.delay = delay
        self.fut: Any = None
        self.timer: asyncio.TimerHandle | None = None
        self.timed_out = False
        self.t0 = 0
        self.probe = False
        self.box: Any = None  # the executor's report box of the task running it, if any


class Outcomes(Protocol):
    """What a game does with the outcome of an attempt (see the module's docstring)."""

    #: True once the run is stopping: no retry starts, a cancelled call is ``cancelled``.
    stopping: bool

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
    ) -> None: ...

    def retrying(self, a: Attempt) -> None: ...

    def failed(self, a: Attempt, exc: BaseException) -> None: ...

    def lost(self, a: Attempt, exc: BaseException) -> None:
        """How ``a`` ended could not be recorded (``exc`` says why): it fails, whatever its
        ``on_error``, and the run stops; its row is written if the recorder takes it."""

    def cancelled(self, a: Attempt) -> None: ...

    def halt(self, reason: str) -> None:
        """Stop the run now: a step raised KeyboardInterrupt or SystemExit at its first
        line (after an await, asyncio cancels the run the same way)."""

    def poke(self) -> None: ...


class AttemptRunner:
    """Runs the attempts of one run's actions (per-transition tables, indexed by ``ti``)."""

    def __init__(
        self,
        game: Outcomes,
        *,
        run_id: str,
        workflow: str,
        ids: Sequence[str],
        bindings: Sequence[Binding | None],
        executors: Sequence[Executor],
        timeouts: Sequence[float | None],
        retries: Sequence[RetryPolicy | None],
        breakers: Sequence[CircuitBreaker | None],
        recorder: Recorder,
        seed: int,
        word: str = "step",
    ) -> None:
        self.game = game
        self.run_id = run_id
        self.workflow = workflow
        self.ids = ids
        self.bindings = bindings
        self.execs = executors
        n = len(executors)
        one = executors[0] if n else None
        if n and executors.count(one) == n and all(map(is_not, bindings, repeat(None))):
            # one executor, an action everywhere (most runs): the tables made in C, not a
            # Python loop per action at every run
            #: Executors that report a task's end from inside it (LocalExecutor).
            self.starters = [getattr(one, "start_reporting", None)] * n
            self.exec_names: list[str | None] = [one.name] * n  # type: ignore[union-attr]
            self.wants_ctx = list(map(_WANTS_CTX, bindings))
            #: Executors that can say where a call ran (Dask); the local one never can.
            self.placed = [type(one) is not LocalExecutor] * n
        else:
            starters = {id(ex): getattr(ex, "start_reporting", None) for ex in set(executors)}
            self.starters = [starters[id(ex)] for ex in executors]
            self.exec_names = [
                None if b is None else ex.name for b, ex in zip(bindings, executors, strict=True)
            ]
            self.wants_ctx = [b is not None and b.wants_ctx for b in bindings]
            self.placed = [type(ex) is not LocalExecutor for ex in executors]
        self.timeouts = timeouts
        self.retries = retries
        self.breakers = breakers
        self.recorder = recorder
        #: A run without a store records nothing: skip building its rows at all.
        self.quiet = type(recorder) is NullRecorder
        self.seed = seed
        self.word = word
        #: Attempts waiting on a future, in start order.
        self.running: dict[Attempt, None] = {}
        #: Retries waiting for their backoff delay, and retries due now.
        self.waiting: dict[Attempt, asyncio.TimerHandle] = {}
        self.due: deque[Attempt] = deque()
        self.loop: asyncio.AbstractEventLoop | None = None
        #: How a step's task reports its end through its box (``_from_box``), bound once,
        #: not once per attempt.
        self.report = self._from_box
        #: Makes the runner's attempt objects (a game may set its own subclass).
        self.make: Callable[..., Attempt] = Attempt
        #: The first row the recorder refused that was no attempt's own end (``side``).
        self.refused: Exception | None = None
        #: The task running the game (``set_host``): a step cancelled while it is being
        #: cancelled was cancelled with the run, not from inside.
        self.host: asyncio.Task[Any] | None = None
        #: Its ``cancelling()`` when the run started (a caller may have swallowed a cancel
        #: without ``uncancel()``: only a cancel since then is the run's).
        self.calm = 0
        self.reset_clock()

    # ------------------------------------------------------------------ clock
    def reset_clock(self) -> None:
        """One clock: wall time is derived from perf_counter_ns and this anchor."""
        self.wall0 = time.time_ns() // 1000
        self.perf0 = time.perf_counter_ns()

    def wall(self, perf_ns: int) -> int:
        return self.wall0 + (perf_ns - self.perf0) // 1000

    @property
    def busy(self) -> bool:
        return bool(self.running or self.waiting or self.due)

    # ------------------------------------------------------------------ starting
    def start(
        self,
        ti: int,
        seq: int,
        key: int,
        attempt: int,
        base: int,
        kwargs: dict[str, Any],
        delay: float,
        a: Attempt | None = None,
    ) -> None:
        """Run one attempt of ``ti``'s action; its outcome reaches the game (inline, or
        when its future ends). ``a``: the attempt object of a retry (or the game's own)."""
        t0 = time.perf_counter_ns()
        breaker = self.breakers[ti]
        probe = False
        if breaker is not None:
            try:
                probe, changes = breaker.acquire()
            except CircuitOpenError as exc:  # the action is not called
                a = a or self.make(ti, seq, key, attempt, base, kwargs, delay)
                a.t0, a.probe = t0, False
                self.fail(a, exc)
                return
            if changes:
                self.circuit(changes, ti)
        call_kwargs = self._with_ctx(ti, seq, attempt, kwargs) if self.wants_ctx[ti] else kwargs
        binding = self.bindings[ti]
        assert binding is not None
        box = None
        try:
            starter = self.starters[ti]
            if starter is not None:
                done, value, box = starter(binding, call_kwargs)
            else:
                done, value = self.execs[ti].start(binding, call_kwargs)
        except (KeyboardInterrupt, SystemExit) as exc:  # recorded as after an await, then on
            self.interrupted(a or self.make(ti, seq, key, attempt, base, kwargs, delay), t0, exc)
            raise
        except BaseException as exc:  # a step's own exception never escapes
            a = a or self.make(ti, seq, key, attempt, base, kwargs, delay)
            a.t0, a.probe = t0, probe
            self.fail(a, exc)
            return
        if done:
            if breaker is not None:
                self._breaker_success(breaker, probe, ti)
            try:
                self.game.succeeded(ti, seq, attempt, t0, delay, value, None, a)
            except Exception as exc:  # the game could not take it (its row was refused)
                a = a or self.make(ti, seq, key, attempt, base, kwargs, delay)
                a.t0, a.probe = t0, probe
                self.untaken(a, exc)
            return
        a = a or self.make(ti, seq, key, attempt, base, kwargs, delay)
        a.t0, a.probe = t0, probe
        self.adopt(a, value, box)
        timeout = self.timeouts[ti] if breaker is None else self.limit(a)
        if timeout is not None:
            assert self.loop is not None
            spent = (time.perf_counter_ns() - t0) / 1e9
            a.timer = self.loop.call_later(max(0.0, timeout - spent), self._on_timeout, a)

    def set_host(self) -> None:
        """The current task runs the game (see ``host``)."""
        host = self.host = asyncio.current_task()
        self.calm = host.cancelling() if host is not None else 0

    def interrupted(self, a: Attempt, t0: int, exc: BaseException) -> None:
        """``a`` raised KeyboardInterrupt or SystemExit at its first line: the run stops
        (no ``on_error`` tolerates it) and the attempt is recorded failed with it, as when
        it came after an await; the caller re-raises it."""
        a.t0 = t0
        self.game.halt("the run was cancelled")
        self.fail(a, exc)

    def adopt(self, a: Attempt, fut: Any, box: Any = None) -> None:
        """``a`` (its ``t0`` and ``probe`` set) is running on ``fut``: its end reaches the
        game when ``fut`` ends, or, given the executor's ``box``, when the step's task
        reports from inside (no done-callback turn of the loop). The timeout is the
        caller's to arm."""
        a.fut, a.box = fut, box
        self.running[a] = None
        if box is not None and not fut.done():
            box.report, box.token = self.report, a
        else:  # no box, or a task that already ended (an eager task factory ran it whole)
            fut.add_done_callback(partial(self._on_done, a))

    def _with_ctx(self, ti: int, seq: int, attempt: int, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments with a ``ctx`` for this attempt (its metering sink too)."""
        tid = self.ids[ti]
        sink = meter_sink(self.recorder, tid, attempt, seq)
        return {**kwargs, "ctx": StepContext.make(self.run_id, self.workflow, tid, attempt, sink)}

    def limit(self, a: Attempt) -> float | None:
        """The attempt's time limit: its timeout, or a probe's shorter probe timeout."""
        timeout = self.timeouts[a.ti]
        breaker = self.breakers[a.ti]
        if a.probe and breaker is not None and breaker.settings.probe_timeout is not None:
            pt = breaker.settings.probe_timeout
            timeout = pt if timeout is None else min(timeout, pt)
        return timeout

    def _on_timeout(self, a: Attempt) -> None:
        if a in self.running and not a.fut.done():
            a.timed_out = True
            self._cancel(a)

    def _cancel(self, a: Attempt) -> None:
        """Cancel a running call. Its end is reported as usual; a done-callback makes sure
        of it even for a task cancelled before it ever ran (its code then never reports)."""
        a.fut.cancel()
        a.fut.add_done_callback(partial(self._on_done, a))

    def _from_box(self, box: Any, value: Any, error: BaseException | None, cancelled: bool) -> None:
        """A task's report of its end. One from an earlier attempt's task is dropped: a retry
        reuses the attempt object, and the current attempt's task has another box."""
        a = box.token
        # the task's frame holds its box: without this, task -> box -> attempt -> task is a
        # reference cycle per step, freed only by the cyclic collector (issue 22)
        box.token = None
        if a is None or a.box is not box:
            return
        ti = a.ti
        try:
            placed = self.placed[ti]
            if error is None and a.timer is None and self.breakers[ti] is None and not placed:
                # the common end, inlined (once per step): no timer, breaker or placement
                if a not in self.running:
                    return
                del self.running[a]
                self.game.succeeded(ti, a.seq, a.attempt, a.t0, a.delay, value, None, a)
            elif not self._reported(a, value, error, cancelled):
                return
        except Exception as exc:  # the game could not take the outcome
            self.untaken(a, exc)
        self.game.poke()

    def untaken(self, a: Attempt, exc: Exception) -> None:
        """The game could not take how ``a`` ended (its recorder raised on the row, say):
        the attempt fails with that error for good and the run stops (what is not recorded
        is lost, so nothing more runs), and the game's loop is woken, so the run ends with
        a reason instead of waiting for ever for a report that was lost."""
        self.running.pop(a, None)
        what = f"{self.word} '{self.ids[a.ti]}'"
        why = RuntimeError(f"fluxnb could not record how {what} ended: {type(exc).__name__}: {exc}")
        self.game.lost(a, why)

    def lost_row(self, a: Attempt, exc: BaseException) -> None:
        """``lost``'s row: written if the recorder takes it, else dropped (it refused the
        row of how the attempt ended, and may refuse this one for the same reason)."""
        with suppress(Exception):  # the run's reason says what could not be recorded
            self.row(a.ti, a.seq, a.attempt, a.t0, a.delay, "failed", True, exc)

    def _on_done(self, a: Attempt, fut: Any) -> None:
        if a not in self.running or fut is not a.fut:
            return  # reported already, or an earlier attempt's future (a retry reuses ``a``)
        try:
            if fut.cancelled():
                taken = self._reported(a, None, asyncio.CancelledError(), True)
            else:
                error = fut.exception()
                value = None if error is not None else fut.result()
                taken = self._reported(a, value, error, False)
            if not taken:
                return
        except Exception as exc:  # the game could not take the outcome
            self.untaken(a, exc)
        self.game.poke()

    def _reported(
        self, a: Attempt, value: Any, error: BaseException | None, cancelled: bool
    ) -> bool:
        """How a call that did not finish inline ended: its value, its error, or cancelled.
        False when it was reported already (the caller then has nothing to wake)."""
        if a not in self.running:
            return False
        del self.running[a]
        if a.timer is not None:
            a.timer.cancel()
        ti = a.ti
        if a.timed_out:
            binding = self.bindings[ti]
            how = (
                "it was cancelled"
                if binding is not None and binding.is_async
                else "its thread cannot be stopped and was abandoned"
            )
            limit = format_duration(self.limit(a) or 0.0)
            what = f"{self.word} '{self.ids[ti]}'"
            self.fail(a, TimeoutError(f"{what} exceeded its timeout of {limit}; {how}"))
        elif cancelled:
            host = self.host
            if self.game.stopping or (host is not None and host.cancelling() > self.calm):
                # the run stops, or its own task is being cancelled (asyncio.run cancels
                # every task after a KeyboardInterrupt, steps' first): not from inside
                self._cancelled(a)
            else:
                self.fail(a, asyncio.CancelledError(f"the {self.word} was cancelled from inside"))
        elif error is None:
            breaker = self.breakers[ti]
            if breaker is not None:
                self._breaker_success(breaker, a.probe, ti)
            worker = self.execs[ti].placement(a.fut) if self.placed[ti] else None
            self.game.succeeded(ti, a.seq, a.attempt, a.t0, a.delay, value, worker, a)
        else:
            self.fail(a, error)
        return True

    # ------------------------------------------------------------------ failures
    def fail(self, a: Attempt, exc: BaseException) -> None:
        """An attempt failed: tell its breaker, then retry it (after its backoff) when its
        policy says so, else hand the failure to the game for good."""
        try:
            self._fail(a, exc)
        except Exception as again:  # the game could not take it (its row was refused)
            self.untaken(a, again)

    def _fail(self, a: Attempt, exc: BaseException) -> None:
        ti = a.ti
        breaker = self.breakers[ti]
        if breaker is not None and not isinstance(exc, CircuitOpenError):
            changes = breaker.failure(a.probe, f"{type(exc).__name__}: {exc}")
            if changes:
                self.circuit(changes, ti)
        policy = self.retries[ti]
        if (
            policy is not None
            and not self.game.stopping
            and a.attempt - a.base < policy.max_attempts
            and a.retryable
            and policy.retries(exc)
        ):
            self.row(ti, a.seq, a.attempt, a.t0, a.delay, "failed", False, exc)
            self.game.retrying(a)
            # jitter drawn per (seed, key, attempt), never from a shared stream whose order
            # would depend on which action happened to fail first
            rng = random.Random(f"{self.seed}:{a.key}:{a.attempt}")
            delay = policy.delay(a.attempt - a.base, rng)
            a.attempt += 1
            a.delay = delay
            a.fut = a.timer = None
            a.timed_out = a.probe = False
            if delay <= 0:
                self.due.append(a)
            else:
                assert self.loop is not None
                self.waiting[a] = self.loop.call_later(delay, self._retry_due, a)
            return
        self.game.failed(a, exc)

    def _retry_due(self, a: Attempt) -> None:
        if a in self.waiting:
            del self.waiting[a]
            self.due.append(a)
            self.game.poke()

    # ------------------------------------------------------------------ records
    def row(
        self,
        ti: int,
        seq: int,
        attempt: int,
        t0: int,
        delay: float,
        status: str,
        final: bool,
        exc: BaseException | None,
        output: Any = NO_OUTPUT,
        worker: str | None = None,
        t1: int | None = None,
    ) -> int:
        """One ``events`` row for an attempt that ran from ``t0`` (perf ns) until now;
        returns its end (perf ns)."""
        if t1 is None:
            t1 = time.perf_counter_ns()
        if self.quiet:
            return t1
        if exc is None:
            etype = emsg = etb = None
        else:
            etype, emsg, etb = type(exc).__name__, str(exc), user_traceback(exc)
        wall0, perf0 = self.wall0, self.perf0
        self.recorder.event(
            (
                self.run_id,
                seq,
                self.ids[ti],
                attempt,
                status,
                final,
                wall0 + (t0 - perf0) // 1000,
                wall0 + (t1 - perf0) // 1000,
                (t1 - t0) / 1e9,
                delay,
                etype,
                emsg,
                etb,
                self.exec_names[ti],
                worker,
                output,
            )
        )
        return t1

    def succeeded_row(
        self, ti: int, seq: int, attempt: int, t0: int, delay: float, value: Any, worker: Any
    ) -> int:
        """``row()`` of a final success, the row of most attempts (no status, error or
        end-time choices to make: ~2% of a recorded step); returns its end (perf ns)."""
        t1 = time.perf_counter_ns()
        wall0, perf0 = self.wall0, self.perf0
        self.recorder.event(
            (self.run_id, seq, self.ids[ti], attempt, "succeeded", True,
             wall0 + (t0 - perf0) // 1000, wall0 + (t1 - perf0) // 1000, (t1 - t0) / 1e9,
             delay, None, None, None, self.exec_names[ti], worker, value)
        )  # fmt: skip
        return t1

    def unstarted(self, ti: int, seq: int, attempt: int, status: str, delay: float) -> None:
        """The row of an attempt that never started (a retry the run's end overtook, a
        step that never ran): no times, no executor."""
        self.side(
            (self.run_id, seq, self.ids[ti], attempt, status, True, None, None, None,
             delay, None, None, None, None, None, NO_OUTPUT)
        )  # fmt: skip

    def side(self, row: tuple[Any, ...]) -> None:
        """A row that is no attempt's own end (a step that never started, one skipped
        because a step it needs failed): one the recorder refuses is dropped, and the
        first refusal is kept (``refused``) for the run's reason; nothing else fails."""
        try:
            self.recorder.event(row)
        except Exception as exc:
            self.side_error(exc)

    def with_refused(self, reason: str | None) -> str | None:
        """The run's reason, naming the first refused row that was no attempt's end."""
        refused = self.refused
        if refused is None:
            return reason
        lost = f"fluxnb could not record every row: {type(refused).__name__}: {refused}"
        return f"{reason}; {lost}" if reason else lost

    def side_error(self, exc: Exception) -> None:
        """The recorder refused something that is no attempt's end (a row, a timed
        flush): the first refusal is kept for the run's reason (``refused``)."""
        if self.refused is None:
            self.refused = exc

    def circuit(self, changes: list[CircuitChange], ti: int) -> None:
        """Record a breaker's changes: a row the recorder refuses is dropped and named in
        the run's reason (``side_error``); the attempt goes on (its tokens are taken)."""
        for c in changes:
            try:
                self.recorder.circuit_event(
                    (c.at_us, c.agent, c.old.value, c.new.value, c.reason, c.failures,
                     self.run_id, self.ids[ti])
                )  # fmt: skip
            except Exception as exc:
                self.side_error(exc)

    def _breaker_success(self, breaker: CircuitBreaker, probe: bool, ti: int) -> None:
        changes = breaker.success(probe)
        if changes:
            self.circuit(changes, ti)

    # ------------------------------------------------------------------ stopping
    def stop(self) -> None:
        """Cancel every running call (each reports ``cancelled``) and every backoff wait."""
        for a in list(self.running):
            self._cancel(a)
        for handle in self.waiting.values():
            handle.cancel()

    def _cancelled(self, a: Attempt) -> None:
        """An attempt ended by the run's stop: its breaker's probe slot is freed, the game
        records it cancelled."""
        breaker = self.breakers[a.ti]
        if breaker is not None:
            breaker.release(a.probe)
        self.game.cancelled(a)

    def cancel_running(self) -> None:
        """The run is over: every call still running (its end never reported) counts as
        cancelled."""
        left = list(self.running)
        self.running.clear()
        for a in left:
            self._cancelled(a)

    def take_unstarted(self) -> list[Attempt]:
        """Retries that will never start now (waiting or due), removed from the runner."""
        left = [*self.waiting, *self.due]
        for handle in self.waiting.values():
            handle.cancel()
        self.waiting.clear()
        self.due.clear()
        return left

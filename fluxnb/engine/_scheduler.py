"""The one scheduler: the token game of a net, with step actions run by an executor.

Enabling is tracked incrementally: each transition keeps a count of input arcs whose
place lacks tokens, updated only for the places a firing touches, so the cost of a
firing never depends on the size of the net. A transition starts the moment its count
reaches zero; there are no levels and no scans.

Why over 400 lines: the DAG game's hot path (pump, consume, produce, outcomes) shares per-run
tables through locals and attributes; split, each step would pay for calls between modules.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import warnings
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from heapq import heappop, heappush
from itertools import repeat
from operator import is_not
from typing import Any

from .._exceptions import RunError
from .._plural import plural
from ..store._recorder import NO_OUTPUT, NullRecorder, Recorder, RunRecord, record_end
from ._attempts import Attempt, AttemptRunner
from ._breaker import BREAKERS
from ._executor import Executor, LocalExecutor, close_all, open_all
from ._plan import Plan
from ._result import RunResult, StepError, StepResult
from ._states import (
    ALLOWED,
    CACHED,
    CANCELLED,
    FAILED,
    PENDING,
    RETRYING,
    RUNNING,
    SKIPPED,
    STEP_BY_CODE,
    SUCCEEDED,
    RunStatus,
    check_run_transition,
    illegal_step_transition,
)
from ._tracebacks import user_traceback

_INLINE_BUDGET = 1000  # steps started in one go before the event loop gets a turn
#: Plain steps start and end in the pump itself (``Scheduler._plain_steps``); off: every
#: step goes through ``_start`` and the runner (tests compare the two).
PLAIN = True


@dataclass(frozen=True)
class RunOptions:
    """Everything a scheduler needs besides the plan."""

    run_id: str
    workflow: str
    #: Seeds the random source of jittered backoff, so a run's delays are reproducible.
    seed: int = 0


class _Plain(Attempt):
    """A plain step's attempt (see ``Scheduler._plain_steps``), which is also the box its
    task reports through (``_executor.Box``'s attributes): one object a step, not two."""

    __slots__ = ("report", "started", "token")

    report: Any  # the scheduler's ``_ended`` while its task may report, else None
    started: bool
    token: Any  # the attempt itself, only while the runner takes a failed end


class Scheduler:
    """Runs one plan once: create, ``await run(record)``, read the RunResult."""

    def __init__(
        self,
        plan: Plan,
        options: RunOptions,
        *,
        recorder: Recorder | None = None,
        executor: Executor | None = None,
        executors: Mapping[str, Executor] | None = None,
        default_executor: str = "local",
    ) -> None:
        self.plan = plan
        self.opts = options
        self.recorder: Recorder = recorder or NullRecorder()
        self.executors: dict[str, Executor] = {
            "local": executor or LocalExecutor(),
            **(executors or {}),
        }
        # per step, but made in C when every step takes the default (most workflows): a
        # run's setup is paid again at every run, per step
        n = len(plan.ids)
        uniform = bool(n) and plan.executors.count(None) == n  # all take the default
        names = (default_executor,) if uniform else plan.executors
        missing = {name or default_executor for name in names} - set(self.executors)
        if missing:
            raise RunError(f"no executor named {', '.join(sorted(missing))} for this run")
        if uniform:
            self._execs = [self.executors[default_executor]] * n
        else:
            self._execs = [self.executors[name or default_executor] for name in names]
        self._limit = plan.router.worker_pool_size
        self._ids = plan.ids
        #: Per place (a dependency edge): the value of its one token, None before it is
        #: written and after it was taken (no list per edge, no count: see ``_consume``).
        self._tokens: list[Any] = [None] * len(plan.initial)
        self._missing = list(plan.initial_missing)
        #: Steps whose inputs are all there, a heap of their indices: they start in the
        #: canonical order (a workflow's steps have no priorities).
        self._ready: list[int] = list(plan.initial_ready)  # sorted: a heap already
        self.stopping = False
        self._pumping = False
        self._wake: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        n = len(self._ids)
        # compact from the start (a byte and 8 bytes a step, not a list of int objects),
        # so the result's copies of them are made with a memcpy
        self._state = bytearray([PENDING]) * n
        self._attempts = array("q", [0]) * n
        self._first = array("q", [0]) * n  # perf_counter_ns of the first start (0: never)
        self._last = array("q", [0]) * n
        self._errors: dict[int, StepError] = {}
        self._outputs: dict[int, Any] = {}
        self._reason: str | None = None
        self._tolerated = 0  # failures on_error: skip let through
        #: Optional recorder hook told when an attempt starts (live progress uses it).
        self._on_start = getattr(self.recorder, "attempt_started", None)
        self._tick: asyncio.TimerHandle | None = None
        self.status = RunStatus.RUNNING
        self.result: RunResult | None = None
        #: Runs each attempt: executor, timeout, breaker, retry, ctx, the trace row.
        self.attempts = AttemptRunner(
            self,
            run_id=options.run_id,
            workflow=options.workflow,
            ids=self._ids,
            bindings=plan.bindings,
            executors=self._execs,
            timeouts=plan.timeouts,
            retries=plan.retries,
            breakers=(
                [None] * n
                if plan.breakers.count(None) == n
                else [
                    None if b is None else BREAKERS.get(self._ids[i], b)
                    for i, b in enumerate(plan.breakers)
                ]
            ),
            recorder=self.recorder,
            seed=options.seed,
            word="step",
        )
        self._quiet = self.attempts.quiet
        self._running = self.attempts.running
        self._due = self.attempts.due
        #: Attempts recorded before this run started (resume): numbering continues.
        self._attempt_base = array("q", [0]) * n
        #: Outputs taken from a recording instead of calling the step (resume).
        self._preset: dict[int, Any] = {}
        #: Incremental runs: decides which steps a recorded output stands in for.
        self.cache: Any = None
        #: The run's local executor and context: an executor shared with other runs
        #: starts this run's steps from copies of this context (set by ``run``).
        self._local: LocalExecutor | None = None
        self._context: contextvars.Context | None = None
        #: Per step, whether it starts the plain way (``_plain_steps``); set by ``run``.
        self._plain: Sequence[bool] | None = None
        self._starters: Sequence[Any] = ()

    def _plain_steps(self) -> Sequence[bool] | None:
        """Per step, whether it is plain: its action runs on an executor whose task
        reports its own end (the local one), with no breaker, timeout or ``ctx``, in a
        run with no cache (incremental runs). A plain step is started and ended by the
        pump itself (``_pump_some``, ``_ended``): the same steps as ``_start`` and the
        runner's, without their frames (issue 22). None: no step is."""
        if not PLAIN or self.cache is not None:
            return None
        a = self.attempts
        self._starters = starters = a.starters
        n = len(starters)
        if (
            n
            and starters.count(starters[0]) == n
            and starters[0] is not None
            and not any(a.placed)
            and a.breakers.count(None) == n
            and a.timeouts.count(None) == n
            and not any(a.wants_ctx)
            and all(map(is_not, self.plan.bindings, repeat(None)))  # not `in`: no __eq__
        ):
            return [True] * n  # most runs: decided in C, not per step
        plain = [
            s is not None and not p and b is None and t is None and not c and bd is not None
            for s, p, b, t, c, bd in zip(
                starters,
                a.placed,
                a.breakers,
                a.timeouts,
                a.wants_ctx,
                self.plan.bindings,
                strict=True,
            )
        ]
        return plain if any(plain) else None

    def _wall(self, perf_ns: int) -> int:
        return self.attempts.wall(perf_ns)

    def preset(self, outputs: Mapping[str, Any], attempts: Mapping[str, int]) -> None:
        """Resume: take these steps' recorded outputs instead of calling them, and
        number new attempts after the ones already recorded."""
        index = {sid: ti for ti, sid in enumerate(self._ids)}
        for sid, n in attempts.items():
            if sid in index:
                self._attempt_base[index[sid]] = self._attempts[index[sid]] = n
        for sid, value in outputs.items():
            if sid in index:
                self._preset[index[sid]] = value

    # ------------------------------------------------------------------ lifecycle
    async def run(self, record: RunRecord) -> RunResult:
        """Run to the end; on cancellation, clean up, record, and re-raise."""
        loop = self._loop = self.attempts.loop = asyncio.get_running_loop()
        self.attempts.set_host()
        open_all(self.executors.values(), loop, self._limit)
        local = self.executors.get("local")
        self._local = local if isinstance(local, LocalExecutor) else None
        self._context = contextvars.copy_context()  # the run's own (see _pump_some)
        self.attempts.reset_clock()
        self._plain = self._plain_steps()
        try:  # a recorder refusing the run's first row: nothing ran, the caller is told
            self.recorder.run_started(record)
        except BaseException:
            await close_all(self.executors.values())
            raise
        interval = getattr(self.recorder, "flush_interval", None)
        if interval:
            self._tick = loop.call_later(interval, self._flush_tick, interval)
        cancelled = interrupted = False
        try:
            while True:
                more = self._pump()
                if self._finished():
                    break
                if more:
                    await asyncio.sleep(0)
                    continue
                self._wake = loop.create_future()
                await self._wake
                self._wake = None
        except asyncio.CancelledError:
            cancelled = True
            self._stop("the run was cancelled")
            while self._running:  # let cancelled steps record where they stopped
                await asyncio.wait([a.fut for a in self._running])
        except (KeyboardInterrupt, SystemExit):  # a step's first line raised it: recorded
            interrupted = True  # as a cancelled run, as when it came after an await
            self._stop("the run was cancelled")
            raise
        finally:
            if self._tick is not None:
                self._tick.cancel()
            await close_all(self.executors.values())
            if self.result is None:
                self.result = self._finish(record, cancelled=cancelled or interrupted)
        if cancelled:
            raise asyncio.CancelledError
        return self.result

    def _flush_tick(self, interval: float) -> None:
        try:
            self.recorder.flush()
        except Exception as exc:  # the rows wait for the next flush; the run's reason
            self.attempts.side_error(exc)  # names the first refusal
        assert self._loop is not None
        self._tick = self._loop.call_later(interval, self._flush_tick, interval)

    def _finished(self) -> bool:
        if self.attempts.busy:
            return False
        return self.stopping or not self._ready

    def poke(self) -> None:
        """Something ended (a step's task, a thread, a backoff wait, a stop): start what
        can start now, in this very turn of the loop, and wake the run's own task only when
        the run is over or the pump needs a turn of the loop."""
        if self._pumping:
            return  # the pump that is running will see it
        self._pumping = True
        try:
            more = self._pump_some()
        finally:
            self._pumping = False
        a = self.attempts  # _finished(), inlined: this runs once per step
        if more or (not (a.running or a.waiting or a.due) and (self.stopping or not self._ready)):
            w = self._wake
            if w is not None and not w.done():
                w.set_result(None)

    def _set(self, ti: int, new: int) -> None:
        old = self._state[ti]
        if not (ALLOWED[old] >> new) & 1:
            raise illegal_step_transition(self._ids[ti], old, new)
        self._state[ti] = new

    # ------------------------------------------------------------------ firing
    def _pump(self) -> bool:
        """Start what can start; True when it stopped early to give the loop a turn."""
        self._pumping = True
        try:
            return self._pump_some()
        finally:
            self._pumping = False

    def _pump_some(self) -> bool:  # noqa: PLR0915 (a plain step's start inlined: the hot path)
        local = self._local
        if local is not None and local.shared:  # shared with other runs: ours first
            local.serve_context(self._context)  # type: ignore[arg-type]
        budget = _INLINE_BUDGET
        limit = self._limit
        running, ready, due = self._running, self._ready, self._due
        state, plain, preset = self._state, self._plain, self._preset
        if plain is not None:  # what a plain step's start reads, read once a pump
            static, inputs, tokens = self.plan.static, self.plan.inputs, self._tokens
            bindings, starters, ended = self.plan.bindings, self._starters, self._ended
            bases, attempts, first = self._attempt_base, self._attempts, self._first
            on_start = self._on_start
        while not self.stopping:
            if limit is not None and len(running) >= limit:
                return False
            if due:
                a = due.popleft()
                self._start(a.ti, a.attempt, a.kwargs, a.delay, a)
            elif ready:
                ti = heappop(ready)
                if state[ti] != PENDING:
                    continue  # it was skipped (on_error: continue upstream)
                if ti in preset:  # resumed: its recorded output stands in for a call
                    self._consume(ti)
                    state[ti] = SUCCEEDED
                    self._outputs[ti] = value = preset[ti]
                    self._produce(ti, value)
                    continue
                if plain is None or not plain[ti]:
                    self._start(ti, self._attempt_base[ti] + 1, self._consume(ti), 0.0)
                else:  # _consume and _start, inlined for a plain step (see _plain_steps)
                    kwargs: dict[str, Any] = static[ti].copy()  # type: ignore[attr-defined]
                    for p, label in inputs[ti]:
                        if label is not None:
                            kwargs[label] = tokens[p]
                        tokens[p] = None
                    state[ti] = RUNNING  # PENDING -> RUNNING is always allowed
                    base = bases[ti]
                    attempts[ti] = attempt = base + 1
                    if on_start is not None:  # live progress
                        on_start = self._progress(ti, attempt)
                    a = _Plain(ti, ti + 1, ti, attempt, base, kwargs, 0.0)
                    a.report = a.token = None
                    a.started = False
                    first[ti] = a.t0 = t0 = time.perf_counter_ns()
                    try:
                        done, value, box = starters[ti](bindings[ti], kwargs, a)
                    except (KeyboardInterrupt, SystemExit) as exc:  # as the runner's start
                        self.attempts.interrupted(a, t0, exc)
                        raise
                    except BaseException as exc:  # a step's own exception never escapes
                        self.attempts.fail(a, exc)
                    else:
                        if done:
                            try:
                                self.succeeded(ti, ti + 1, attempt, t0, 0.0, value, None, None)
                            except Exception as exc:  # its row was refused (see untaken)
                                self.attempts.untaken(a, exc)
                        elif box is a and not value.done():
                            a.fut = value
                            running[a] = None
                            a.report = ended
                        else:  # a sync step's thread, or a task that ended as it was made
                            self.attempts.adopt(a, value, None)  # (an eager task factory)
            else:
                return False
            budget -= 1
            if not budget:
                return True
        return False

    def _ended(self, a: _Plain, value: Any, error: BaseException | None, cancelled: bool) -> None:
        """A plain step's task reports its end through its attempt, its box
        (``_from_box`` and ``succeeded``, inlined for the common end: it returned)."""
        a.report = None  # one report: a retry runs with a box of its own
        if error is not None or cancelled:  # the runner's way, with the box as it knows it
            a.box = a.token = a
            try:
                self.attempts.report(a, value, error, cancelled)
            finally:
                a.token = None
                if a.box is a:  # no cycle left behind
                    a.box = None
            return
        running = self._running
        if a not in running:
            return
        del running[a]
        ti = a.ti
        try:
            if self._quiet:
                self._last[ti] = time.perf_counter_ns()
            else:
                self._last[ti] = self.attempts.succeeded_row(
                    ti, a.seq, a.attempt, a.t0, 0.0, value, None
                )
            if self._state[ti] != RUNNING:
                raise illegal_step_transition(self._ids[ti], self._state[ti], SUCCEEDED)
            self._state[ti] = SUCCEEDED
            self._outputs[ti] = value
            tokens, consumers, missing = self._tokens, self.plan.consumers, self._missing
            for p in self.plan.outputs[ti]:
                tokens[p] = value
                c = consumers[p]
                if c >= 0:
                    left = missing[c] - 1
                    missing[c] = left
                    if not left:
                        heappush(self._ready, c)
        except Exception as exc:  # the game could not take the outcome
            self.attempts.untaken(a, exc)
        if self._pumping:  # poke(), inlined
            return
        more = False
        if self._ready or self._due:
            self._pumping = True
            try:
                more = self._pump_some()
            finally:
                self._pumping = False
        r = self.attempts
        if more or (not (r.running or r.waiting or r.due) and (self.stopping or not self._ready)):
            w = self._wake
            if w is not None and not w.done():
                w.set_result(None)

    def _consume(self, ti: int) -> dict[str, Any]:
        """Take ``ti``'s input tokens: its call's keyword arguments.

        The plan is a marked graph whose steps each fire once (``Plan.build``): a place is
        one dependency edge, written once by its producer and read once by ``ti``, so it
        holds its one token's value itself and needs no count; ``_missing`` says when a
        step's places are all marked."""
        # a dict or a mapping proxy, both copied to a dict (dict() of a proxy is 6x slower)
        kwargs: dict[str, Any] = self.plan.static[ti].copy()  # type: ignore[attr-defined]
        tokens = self._tokens
        for p, label in self.plan.inputs[ti]:
            if label is not None:
                kwargs[label] = tokens[p]
            tokens[p] = None  # the value is the call's now: the place does not keep it
        return kwargs

    def _produce(self, ti: int, value: Any) -> None:
        tokens, consumers, missing = self._tokens, self.plan.consumers, self._missing
        for p in self.plan.outputs[ti]:
            tokens[p] = value
            c = consumers[p]
            if c >= 0:  # not an end place
                left = missing[c] - 1
                missing[c] = left
                if not left:
                    heappush(self._ready, c)

    def _start(
        self, ti: int, attempt: int, kwargs: dict[str, Any], delay: float, a: Attempt | None = None
    ) -> None:
        if self.cache is not None and a is None:  # a recorded output may stand in
            hit = self.cache.lookup(ti, kwargs)
            if hit is not None:
                self._reused(ti, attempt, hit[0])
                return
        old = self._state[ti]
        if not (ALLOWED[old] >> RUNNING) & 1:
            raise illegal_step_transition(self._ids[ti], old, RUNNING)
        self._state[ti] = RUNNING
        self._attempts[ti] = attempt
        if self._on_start is not None:
            self._progress(ti, attempt)
        if not self._first[ti]:
            self._first[ti] = time.perf_counter_ns()
        if self.plan.bindings[ti] is None:  # a transition without an action: pure token game
            self.succeeded(ti, ti + 1, attempt, time.perf_counter_ns(), delay, None, None, None)
            return
        self.attempts.start(ti, ti + 1, ti, attempt, self._attempt_base[ti], kwargs, delay, a)

    def _progress(self, ti: int, attempt: int) -> Any:
        """Tell the live-progress hook an attempt starts; returns the hook, or None once it
        raised: progress is for show, so its error is a warning and it is not called again
        in this run (it never fails a step or loses the run)."""
        hook = self._on_start
        try:
            hook(self._ids[ti], attempt)  # type: ignore[misc]
        except Exception as exc:
            self._on_start = None
            warnings.warn(
                f"fluxnb: live progress stopped ({type(exc).__name__}: {exc}); the run goes on",
                RuntimeWarning,
                stacklevel=2,
            )
        return self._on_start

    def _reused(self, ti: int, attempt: int, value: Any) -> None:
        """A cache hit: the step is not called; its row says ``cached`` (no executor, so
        it is not metered as an execution) and carries the reused output."""
        self._set(ti, CACHED)
        self._attempts[ti] = attempt
        self._first[ti] = self._last[ti] = now = time.perf_counter_ns()
        at = self._wall(now)
        self.recorder.event(
            (self.opts.run_id, ti + 1, self._ids[ti], attempt, "cached", True, at, at, 0.0,
             0.0, None, None, None, None, None, value)
        )  # fmt: skip
        self._outputs[ti] = value
        self._produce(ti, value)

    # ------------------------------------------------------------------ outcomes
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
        if self._quiet:  # no store: nothing to record but when it ended
            self._last[ti] = time.perf_counter_ns()
        else:
            self._last[ti] = self.attempts.succeeded_row(ti, seq, attempt, t0, delay, value, worker)
        old = self._state[ti]
        if not (ALLOWED[old] >> SUCCEEDED) & 1:
            raise illegal_step_transition(self._ids[ti], old, SUCCEEDED)
        self._state[ti] = SUCCEEDED
        self._outputs[ti] = value
        self._produce(ti, value)

    def retrying(self, a: Attempt) -> None:
        self._last[a.ti] = time.perf_counter_ns()
        self._set(a.ti, RETRYING)

    def failed(self, a: Attempt, exc: BaseException) -> None:
        """An attempt failed for good: the step's error strategy decides."""
        ti = a.ti
        error = StepError(type(exc).__name__, str(exc), user_traceback(exc), a.attempt)
        self._errors[ti] = error
        strategy = self.plan.on_error[ti].final
        row = self.attempts.row
        if strategy == "skip" and not self.stopping:
            self._last[ti] = row(ti, a.seq, a.attempt, a.t0, a.delay, "skipped", True, exc)
            self._set(ti, SKIPPED)
            self._tolerated += 1
            self._outputs[ti] = value = self.plan.defaults[ti]
            self._produce(ti, value)
            return
        self._last[ti] = row(ti, a.seq, a.attempt, a.t0, a.delay, "failed", True, exc)
        self._set(ti, FAILED)
        if strategy == "continue" and not self.stopping:
            self._skip_downstream(ti)
            return
        self._stop(f"step '{self._ids[ti]}' failed, so the run stopped (on_error: stop)")

    def lost(self, a: Attempt, exc: BaseException) -> None:
        ti = a.ti
        self._errors[ti] = StepError(type(exc).__name__, str(exc), "", a.attempt)
        self.attempts.lost_row(a, exc)
        self._last[ti] = time.perf_counter_ns()
        if (ALLOWED[self._state[ti]] >> FAILED) & 1:
            self._state[ti] = FAILED
        self._stop(f"{exc}, so the run stopped")

    def cancelled(self, a: Attempt) -> None:
        self._last[a.ti] = self.attempts.row(
            a.ti, a.seq, a.attempt, a.t0, a.delay, "cancelled", True, None
        )
        self._set(a.ti, CANCELLED)

    def _skip_downstream(self, failed: int) -> None:
        """on_error: continue — every step that needs ``failed`` is recorded skipped."""
        plan, state = self.plan, self._state
        todo = [failed]
        while todo:
            ti = todo.pop()
            for p in plan.outputs[ti]:
                c = plan.consumers[p]
                if c >= 0 and state[c] == PENDING:
                    why = f"upstream step '{self._ids[failed]}' failed (on_error: continue)"
                    self.attempts.side(
                        (self.opts.run_id, c + 1, self._ids[c], 0, "skipped", True, None,
                         None, None, 0.0, None, why, None, None, None, NO_OUTPUT)
                    )  # fmt: skip
                    self._set(c, SKIPPED)
                    todo.append(c)

    def _never_started(self, ti: int, attempt: int, delay: float) -> None:
        self.attempts.unstarted(ti, ti + 1, attempt, "cancelled", delay)
        self._set(ti, CANCELLED)

    def halt(self, reason: str) -> None:
        self._stop(reason)

    def _stop(self, reason: str) -> None:
        if self.stopping:
            return
        self.stopping = True
        self._reason = reason
        self.attempts.stop()
        self.poke()

    def _finish(self, record: RunRecord, *, cancelled: bool) -> RunResult:
        """Record what never ran or never ended, close the run, build the result."""
        self.attempts.cancel_running()
        for a in self.attempts.take_unstarted():  # retries that never started
            self._never_started(a.ti, a.attempt, a.delay)
        state = self._state
        if PENDING in state or RETRYING in state:  # scanned in C first: most runs have none
            for ti, st in enumerate(state):
                if st in (PENDING, RETRYING):
                    self._never_started(ti, self._attempts[ti], 0.0)
        if cancelled:
            new = RunStatus.CANCELLED
        elif FAILED in self._state:
            new = RunStatus.FAILED
            if self._reason is None:
                failed = sum(1 for s in self._state if s == FAILED)
                skipped = sum(1 for s in self._state if s == SKIPPED) - self._tolerated
                were = "was" if skipped == 1 else "were"
                self._reason = (
                    f"{plural(failed, 'step')} failed and {plural(skipped, 'dependent step')} "
                    f"{were} skipped; independent steps finished (on_error: continue)"
                )
        elif state.count(SUCCEEDED) + state.count(SKIPPED) + state.count(CACHED) == len(state):
            new = RunStatus.SUCCEEDED
            if self._tolerated:
                self._reason = f"{plural(self._tolerated, 'failure')} tolerated (on_error: skip)"
        else:
            new = RunStatus.FAILED
            self._reason = self._reason or "the run reached a dead marking before finishing"
        # rows that were no step's own end: the run still ended, and says so
        self._reason = self.attempts.with_refused(self._reason)
        self.status = check_run_transition(self.status, new)
        end = time.perf_counter_ns()
        ended_us = self._wall(end)
        first_error = next((e for ti, e in self._errors.items() if self._state[ti] == FAILED), None)
        final = RunRecord(
            **{
                **record.__dict__,
                "status": self.status.value,
                "ended_at": ended_us,
                "error": f"{first_error.type}: {first_error.message}" if first_error else None,
            }
        )
        cache = self.cache.finish() if self.cache is not None else None
        recording_error = record_end(self.recorder, final)
        ids, order, outs = self._ids, self.plan.declared, self._outputs
        if order is ids and len(outs) == len(ids):  # every step's output, in declared order
            outputs = dict(zip(ids, map(outs.__getitem__, range(len(ids))), strict=True))
        else:
            by_id = {ids[ti]: v for ti, v in outs.items()}
            outputs = {sid: by_id[sid] for sid in order if sid in by_id}
        return RunResult(
            run_id=self.opts.run_id,
            workflow=self.opts.workflow,
            status=self.status,
            outputs=outputs,
            steps=partial(
                _step_results,
                self._ids,
                self.plan.declared,
                # compact copies: a result may live for the whole notebook session
                bytes(self._state),
                array("q", self._attempts),
                array("q", self._first),
                array("q", self._last),
                self._errors,
                self.attempts.wall0,
                self.attempts.perf0,
            ),
            started_us=record.started_at,
            ended_us=ended_us,
            duration=(end - self.attempts.perf0) / 1e9,
            namespace=record.namespace,
            tenant=record.tenant,
            store=self.recorder.location,
            reason=self._reason,
            recording_error=recording_error,
            cache=cache,
            callables=partial(_callables, ids, self.plan.bindings),  # made if debug() asks
        )


def _callables(ids: tuple[str, ...], bindings: Sequence[Any]) -> dict[str, Any]:
    """Each step's callable, by step id (what ``RunResult.debug`` calls)."""
    return {sid: b.fn for sid, b in zip(ids, bindings, strict=True) if b is not None}


def _step_results(
    ids: tuple[str, ...],
    declared: tuple[str, ...],
    state: Sequence[int],
    attempts: Sequence[int],
    first: Sequence[int],
    last: Sequence[int],
    errors: dict[int, StepError],
    wall0: int,
    perf0: int,
) -> dict[str, StepResult]:
    """Every step's StepResult, built when a result is first asked for its steps, from the
    run's own tables only: a result never keeps the scheduler (its plan, tokens, runner)
    alive."""
    index = {sid: ti for ti, sid in enumerate(ids)}
    out = {}
    for sid in declared:
        ti = index[sid]
        f, la = first[ti], last[ti]
        out[sid] = StepResult(
            step=sid,
            status=STEP_BY_CODE[state[ti]],
            attempts=attempts[ti],
            started_us=wall0 + (f - perf0) // 1000 if f else None,
            ended_us=wall0 + (la - perf0) // 1000 if f and la else None,
            error=errors.get(ti),
        )
    return out

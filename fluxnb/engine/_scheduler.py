"""The one scheduler: the token game of a net, with step actions run by an executor.

Enabling is tracked incrementally: each transition keeps a count of input arcs whose
place lacks tokens, updated only for the places a firing touches, so the cost of a
firing never depends on the size of the net. A transition starts the moment its count
reaches zero; there are no levels and no scans.
"""

from __future__ import annotations

import asyncio
import heapq
import random
import time
import traceback as tb_module
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from ..spec import Binding, Net, RouterSettings, Step, format_duration
from ..store._recorder import NullRecorder, Recorder, RunRecord
from ._context import StepContext
from ._executor import Executor, LocalExecutor
from ._result import RunResult, StepError, StepResult
from ._states import RunStatus, StepStatus, check_run_transition, check_step_transition

_ENGINE_DIR = str(Path(__file__).parent)
_INLINE_BUDGET = 1000  # steps finished inline before the loop gets a turn


@dataclass(frozen=True)
class RunOptions:
    """Everything a scheduler needs besides the net and the callables."""

    run_id: str
    workflow: str
    router: RouterSettings
    #: Seeds the random source of jittered backoff, so a run's delays are reproducible.
    seed: int = 0


class _Attempt:
    __slots__ = ("attempt", "delay", "fut", "kwargs", "t0", "ti", "timed_out", "timer", "wall0")

    def __init__(self, ti: int, attempt: int, kwargs: dict[str, Any], delay: float) -> None:
        self.ti = ti
        self.attempt = attempt
        self.kwargs = kwargs
        self.delay = delay
        self.fut: Any = None
        self.timer: asyncio.TimerHandle | None = None
        self.timed_out = False
        self.wall0 = 0
        self.t0 = 0.0


def _now_us() -> int:
    return time.time_ns() // 1000


def _user_traceback(exc: BaseException) -> str:
    """The traceback without the scheduler's own frames on top."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_ENGINE_DIR):
        tb = tb.tb_next
    return "".join(tb_module.format_exception(type(exc), exc, tb))


class Scheduler:
    """Runs one net once. Create, ``await run()``, read the RunResult."""

    def __init__(
        self,
        net: Net,
        steps: Mapping[str, Step],
        bindings: Mapping[str, Binding],
        options: RunOptions,
        *,
        recorder: Recorder | None = None,
        executor: Executor | None = None,
        declared_order: list[str] | None = None,
    ) -> None:
        self.net = net
        self.opts = options
        self.recorder: Recorder = recorder or NullRecorder()
        self.executor: Executor = executor or LocalExecutor()
        self._declared = declared_order or [t.step for t in net.transitions if t.step]
        router = options.router
        self._limit = router.worker_pool_size
        self._rng = random.Random(options.seed)
        ts = net.transitions
        self._ids = [t.step or t.id for t in ts]
        self._inputs = []
        self._outputs = [tuple((a.place, a.weight) for a in t.outputs) for t in ts]
        self._static: list[dict[str, Any]] = []
        self._binding: list[Binding | None] = []
        self._timeout: list[float | None] = []
        self._retry = []
        self._ctx: list[bool] = []
        for t in ts:
            step = steps.get(t.step) if t.step else None
            binding = bindings.get(t.step) if t.step else None
            passed = binding.passed if binding else frozenset()
            self._inputs.append(
                tuple(
                    (a.place, a.weight, a.label if a.label in passed else None) for a in t.inputs
                )
            )
            self._static.append(dict(step.with_) if step else {})
            self._binding.append(binding)
            self._timeout.append(
                (step.timeout if step and step.timeout is not None else router.default_timeout)
            )
            self._retry.append(step.retry if step else None)
            self._ctx.append(bool(binding and binding.wants_ctx))
        self._consumers = net.consumers()
        self._counts = list(net.initial)
        self._tokens: list[deque[Any]] = [deque([None] * n) for n in net.initial]
        self._missing = [
            sum(1 for p, w, _ in ins if self._counts[p] < w) for ins in self._inputs
        ]
        self._prio = [-t.priority for t in ts]
        self._ready: list[tuple[int, int]] = [
            (self._prio[i], i) for i, m in enumerate(self._missing) if m == 0
        ]
        heapq.heapify(self._ready)
        self._running: dict[_Attempt, None] = {}
        self._waiting: dict[_Attempt, asyncio.TimerHandle | None] = {}
        self._due: deque[_Attempt] = deque()
        self._stopping = False
        self._wake: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        n = len(ts)
        self._state = [StepStatus.PENDING] * n
        self._attempts = [0] * n
        self._first = [0] * n
        self._last = [0] * n
        self._errors: dict[int, StepError] = {}
        self._outputs_by_step: dict[str, Any] = {}
        self._reason: str | None = None
        self.status = RunStatus.RUNNING

    # ------------------------------------------------------------------ lifecycle
    async def run(self, record: RunRecord) -> RunResult:
        """Run to the end; on cancellation, clean up, record, and re-raise."""
        loop = self._loop = asyncio.get_running_loop()
        self.executor.open(loop, self._limit)
        self.recorder.run_started(record)
        started = time.perf_counter()
        cancelled = False
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
        finally:
            self.executor.close()
            if self.status is RunStatus.RUNNING:
                self.result = self._finish(record, started, cancelled=cancelled)
        if cancelled:
            raise asyncio.CancelledError
        return self.result

    def _finished(self) -> bool:
        if self._running or self._waiting or self._due:
            return False
        return self._stopping or not self._ready

    def _poke(self) -> None:
        w = self._wake
        if w is not None and not w.done():
            w.set_result(None)

    def _set(self, ti: int, new: StepStatus) -> None:
        self._state[ti] = check_step_transition(self._ids[ti], self._state[ti], new)

    # ------------------------------------------------------------------ firing
    def _pump(self) -> bool:
        """Start what can start; True when it stopped early to give the loop a turn."""
        budget = _INLINE_BUDGET
        limit = self._limit
        running = self._running
        while not self._stopping:
            if limit is not None and len(running) >= limit:
                return False
            if self._due:
                self._launch(self._due.popleft())
            elif self._ready:
                ti = heapq.heappop(self._ready)[1]
                if self._missing[ti]:  # a competing firing took the tokens meanwhile
                    continue
                self._launch(_Attempt(ti, 1, self._consume(ti), 0.0))
            else:
                return False
            budget -= 1
            if not budget:
                return True
        return False

    def _consume(self, ti: int) -> dict[str, Any]:
        kwargs = dict(self._static[ti])
        counts, tokens, consumers, missing = (
            self._counts,
            self._tokens,
            self._consumers,
            self._missing,
        )
        for p, w, label in self._inputs[ti]:
            before = counts[p]
            after = counts[p] = before - w
            q = tokens[p]
            if w == 1:
                data = q.popleft()
            else:
                data = [q.popleft() for _ in range(w)]
            if label is not None:
                kwargs[label] = data
            for c, wc in consumers[p]:
                if after < wc <= before:
                    missing[c] += 1
        return kwargs

    def _produce(self, ti: int, value: Any) -> None:
        counts, tokens, consumers, missing, ready = (
            self._counts,
            self._tokens,
            self._consumers,
            self._missing,
            self._ready,
        )
        for p, w in self._outputs[ti]:
            before = counts[p]
            after = counts[p] = before + w
            if w == 1:
                tokens[p].append(value)
            else:
                tokens[p].extend([value] * w)
            for c, wc in consumers[p]:
                if before < wc <= after:
                    missing[c] -= 1
                    if not missing[c]:
                        heapq.heappush(ready, (self._prio[c], c))

    def _launch(self, a: _Attempt) -> None:
        ti = a.ti
        binding = self._binding[ti]
        self._set(ti, StepStatus.RUNNING)
        self._attempts[ti] = a.attempt
        a.wall0 = _now_us()
        if a.attempt == 1:
            self._first[ti] = a.wall0
        a.t0 = time.perf_counter()
        if binding is None:  # a transition without an action: pure token game
            self._succeeded(a, None)
            return
        kwargs = a.kwargs
        if self._ctx[ti]:
            kwargs = {
                **kwargs,
                "ctx": StepContext.make(
                    self.opts.run_id, self.opts.workflow, self._ids[ti], a.attempt
                ),
            }
        try:
            done, value = self.executor.start(binding, kwargs)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # a step's own exception never escapes
            self._failed(a, exc)
            return
        if done:
            self._succeeded(a, value)
            return
        a.fut = value
        self._running[a] = None
        value.add_done_callback(partial(self._on_done, a))
        timeout = self._timeout[ti]
        if timeout is not None:
            assert self._loop is not None
            a.timer = self._loop.call_later(
                max(0.0, timeout - (time.perf_counter() - a.t0)), self._on_timeout, a
            )

    def _on_timeout(self, a: _Attempt) -> None:
        if a in self._running and not a.fut.done():
            a.timed_out = True
            a.fut.cancel()

    def _on_done(self, a: _Attempt, fut: Any) -> None:
        if a not in self._running:
            return
        del self._running[a]
        if a.timer is not None:
            a.timer.cancel()
        if a.timed_out:
            limit = format_duration(self._timeout[a.ti] or 0.0)
            how = "it was cancelled" if self._binding_async(a.ti) else (
                "its thread could not be stopped and was abandoned"
            )
            exc: BaseException = TimeoutError(
                f"step '{self._ids[a.ti]}' exceeded its timeout of {limit}; {how}"
            )
            self._failed(a, exc)
        elif fut.cancelled():
            if self._stopping:
                self._cancelled(a)
            else:
                self._failed(a, asyncio.CancelledError("the step was cancelled from inside"))
        else:
            error = fut.exception()
            if error is None:
                self._succeeded(a, fut.result())
            else:
                self._failed(a, error)
        self._poke()

    def _binding_async(self, ti: int) -> bool:
        b = self._binding[ti]
        return bool(b and b.is_async)

    # ------------------------------------------------------------------ outcomes
    def _row(self, a: _Attempt, status: str, final: bool, exc: BaseException | None) -> None:
        duration = time.perf_counter() - a.t0
        end = a.wall0 + int(duration * 1e6)
        self._last[a.ti] = end
        if exc is None:
            etype = emsg = etb = None
        else:
            etype, emsg, etb = type(exc).__name__, str(exc), _user_traceback(exc)
        self.recorder.event(
            (
                self.opts.run_id,
                a.ti + 1,
                self._ids[a.ti],
                a.attempt,
                status,
                final,
                a.wall0,
                end,
                duration,
                a.delay,
                etype,
                emsg,
                etb,
            )
        )

    def _succeeded(self, a: _Attempt, value: Any) -> None:
        ti = a.ti
        self._row(a, "succeeded", True, None)
        self._set(ti, StepStatus.SUCCEEDED)
        self._outputs_by_step[self._ids[ti]] = value
        self._produce(ti, value)

    def _failed(self, a: _Attempt, exc: BaseException) -> None:
        ti = a.ti
        policy = self._retry[ti]
        if (
            policy is not None
            and not self._stopping
            and a.attempt < policy.max_attempts
            and policy.retries(exc)
        ):
            self._row(a, "failed", False, exc)
            self._set(ti, StepStatus.RETRYING)
            delay = policy.delay(a.attempt, self._rng)
            nxt = _Attempt(ti, a.attempt + 1, a.kwargs, delay)
            if delay <= 0:
                self._due.append(nxt)
            else:
                assert self._loop is not None
                self._waiting[nxt] = self._loop.call_later(delay, self._retry_due, nxt)
            return
        self._row(a, "failed", True, exc)
        self._set(ti, StepStatus.FAILED)
        self._errors[ti] = StepError(
            type(exc).__name__, str(exc), _user_traceback(exc), a.attempt
        )
        self._stop(f"step '{self._ids[ti]}' failed, so the run stopped (on_error: stop)")

    def _retry_due(self, a: _Attempt) -> None:
        if a in self._waiting:
            del self._waiting[a]
            self._due.append(a)
            self._poke()

    def _cancelled(self, a: _Attempt) -> None:
        self._row(a, "cancelled", True, None)
        self._set(a.ti, StepStatus.CANCELLED)

    def _never_started(self, ti: int, attempt: int, delay: float) -> None:
        row = (self.opts.run_id, ti + 1, self._ids[ti], attempt, "cancelled", True)
        self.recorder.event((*row, None, None, None, delay, None, None, None))
        self._set(ti, StepStatus.CANCELLED)

    def _stop(self, reason: str) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._reason = reason
        for a in list(self._running):
            a.fut.cancel()
        for a, handle in list(self._waiting.items()):
            if handle is not None:
                handle.cancel()
        self._poke()

    def _finish(self, record: RunRecord, started: float, *, cancelled: bool) -> RunResult:
        """Record what never ran or never ended, close the run, build the result."""
        for a in list(self._running):
            self._cancelled(a)
        for a in [*self._waiting, *self._due]:  # retries that never started
            self._never_started(a.ti, a.attempt, a.delay)
        self._running.clear()
        self._waiting.clear()
        self._due.clear()
        never = (StepStatus.PENDING, StepStatus.RETRYING)
        for ti, state in enumerate(self._state):
            if state in never:
                self._never_started(ti, self._attempts[ti], 0.0)
        if cancelled:
            new = RunStatus.CANCELLED
        elif self._errors:
            new = RunStatus.FAILED
        elif all(s is StepStatus.SUCCEEDED for s in self._state):
            new = RunStatus.SUCCEEDED
        else:
            new = RunStatus.FAILED
            self._reason = self._reason or "the run reached a dead marking before finishing"
        self.status = check_run_transition(self.status, new)
        duration = time.perf_counter() - started
        ended_us = record.started_at + int(duration * 1e6)
        first_error = next(iter(self._errors.values()), None)
        final = RunRecord(
            **{
                **record.__dict__,
                "status": self.status.value,
                "ended_at": ended_us,
                "error": f"{first_error.type}: {first_error.message}" if first_error else None,
            }
        )
        self.recorder.run_finished(final)
        return self._result(record, ended_us, duration)

    def _result(self, record: RunRecord, ended_us: int, duration: float) -> RunResult:
        index = {sid: ti for ti, sid in enumerate(self._ids)}
        steps: dict[str, StepResult] = {}
        outputs: dict[str, Any] = {}
        for sid in self._declared:
            ti = index[sid]
            first, last = self._first[ti], self._last[ti]
            steps[sid] = StepResult(
                step=sid,
                status=self._state[ti],
                attempts=self._attempts[ti],
                started_at=_dt(first) if first else None,
                ended_at=_dt(last) if last and first else None,
                duration=(last - first) / 1e6 if first and last else None,
                error=self._errors.get(ti),
            )
            if sid in self._outputs_by_step:
                outputs[sid] = self._outputs_by_step[sid]
        return RunResult(
            run_id=self.opts.run_id,
            workflow=self.opts.workflow,
            status=self.status,
            outputs=outputs,
            steps=steps,
            started_at=_dt(record.started_at),
            ended_at=_dt(ended_us),
            duration=duration,
            namespace=record.namespace,
            tenant=record.tenant,
            store=self.recorder.location,
            reason=self._reason,
        )


def _dt(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, tz=UTC)

"""What a run returns: its status, every step's outcome, outputs in declared order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from itertools import repeat
from operator import is_
from typing import Any

from .._exceptions import ReplayError, StepFailed
from .._plural import plural
from ._states import RunStatus, StepStatus


@dataclass(frozen=True)
class StepError:
    """Why a step failed (its last attempt's error)."""

    type: str
    message: str
    traceback: str
    attempt: int

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


@dataclass(frozen=True)
class StepResult:
    """One step's outcome in a run."""

    step: str
    status: StepStatus
    #: Attempts made (0 if the step never started).
    attempts: int
    #: First attempt's start and last attempt's end, epoch microseconds (None: never ran).
    started_us: int | None = None
    ended_us: int | None = None
    error: StepError | None = None

    @property
    def started_at(self) -> datetime | None:
        return _dt(self.started_us)

    @property
    def ended_at(self) -> datetime | None:
        return _dt(self.ended_us)

    @property
    def duration(self) -> float | None:
        """Seconds from the first attempt's start to the last attempt's end."""
        if self.started_us is None or self.ended_us is None:
            return None
        return (self.ended_us - self.started_us) / 1e6


@dataclass(frozen=True)
class CacheDecision:
    """What an incremental run decided for one step, and why (``result.cache[step]``)."""

    step: str
    #: ``hit`` (a recorded output reused: status ``cached``), ``miss`` (it ran: no recorded
    #: output had its key), ``refresh`` (it ran: cache mode refresh) or ``off`` (not cached).
    decision: str
    #: Why, for people: ``code changed: clean()``, ``param threshold 0.5 → 0.6``, ...
    reason: str
    #: The step's cache key (None when it was not computed).
    key: str | None = None
    #: For a hit: the run whose output was reused.
    source_run_id: str | None = None


def _compact(callables: dict[str, Any]) -> Callable[[], dict[str, Any]] | dict[str, Any]:
    """A big run's step -> callable table, kept as the recipe to make it again when
    ``debug`` first needs it: the ids in a tuple and, when every step calls one function
    (a fan-out), that function once. A 100,000-step result keeps 8 bytes a step for it,
    not a dict entry's ~40."""
    if len(callables) < 1000:
        return callables
    ids = tuple(callables)
    first = callables[ids[0]]
    if all(map(is_, callables.values(), repeat(first))):
        return partial(dict.fromkeys, ids, first)
    return partial(_zipped, ids, tuple(callables.values()))


def _zipped(ids: tuple[str, ...], fns: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(ids, fns, strict=True))


def _dt(us: int | None) -> datetime | None:
    return None if us is None else datetime.fromtimestamp(us / 1e6, tz=UTC)


class RunResult:
    """The outcome of one run. ``result["step"]`` is a step's output.

    Attributes:
        run_id: the id under which the run is recorded.
        status: ``RunStatus.SUCCEEDED``, ``FAILED`` or ``CANCELLED``.
        outputs: outputs of the steps that succeeded, in the workflow's declared order.
        steps: every step's ``StepResult``, in declared order.
        errors: ``StepError`` of every step that failed.
        reason: why the run ended as it did, when that needs saying.
        recording_error: a ``RecordingFailed`` when the run's rows could not all be
            written to its store (a full disk); None when the trace is whole.
    """

    def __init__(
        self,
        *,
        run_id: str,
        workflow: str,
        status: RunStatus,
        outputs: dict[str, Any],
        steps: Callable[[], dict[str, StepResult]] | dict[str, StepResult],
        started_us: int,
        ended_us: int,
        duration: float,
        namespace: str | None = None,
        tenant: str | None = None,
        store: str | None = None,
        reason: str | None = None,
        callables: Callable[[], dict[str, Any]] | dict[str, Any] | None = None,
        recording_error: Any = None,
        cache: dict[str, CacheDecision] | None = None,
    ) -> None:
        self.run_id = run_id
        #: Incremental runs: each step's CacheDecision (None: caching was off).
        self.cache = cache
        self.recording_error = recording_error
        self.workflow = workflow
        self.status = status
        self.outputs = outputs
        self._steps = steps
        self.started_us = started_us
        self.ended_us = ended_us
        #: Wall-clock seconds of the whole run.
        self.duration = duration
        self.namespace = namespace
        self.tenant = tenant
        #: Where the trace was recorded (None: not recorded).
        self.store = store
        self.reason = reason
        self._fns = _compact(callables) if isinstance(callables, dict) else callables or {}

    @property
    def steps(self) -> dict[str, StepResult]:
        if callable(self._steps):  # built on first use: a 10,000-step run need not pay
            self._steps = self._steps()
        return self._steps

    @property
    def errors(self) -> dict[str, StepError]:
        return {s: r.error for s, r in self.steps.items() if r.error is not None}

    @property
    def started_at(self) -> datetime:
        return datetime.fromtimestamp(self.started_us / 1e6, tz=UTC)

    @property
    def ended_at(self) -> datetime:
        return datetime.fromtimestamp(self.ended_us / 1e6, tz=UTC)

    @property
    def ok(self) -> bool:
        return self.status is RunStatus.SUCCEEDED

    def __getitem__(self, step: str) -> Any:
        if step in self.outputs:
            return self.outputs[step]
        if step in self.steps:
            raise KeyError(f"step '{step}' has no output: it {self.steps[step].status.value}")
        raise KeyError(f"workflow '{self.workflow}' has no step '{step}'")

    def raise_for_status(self) -> RunResult:
        """Raise StepFailed for the first failed step; return self otherwise."""
        for sid, err in self.errors.items():
            if self.steps[sid].status is StepStatus.FAILED:
                raise StepFailed(self.run_id, sid, err.type, err.message)
        return self

    def to_frame(self) -> Any:
        """One row per step: status, attempts, duration, error (a pandas DataFrame)."""
        import pandas as pd

        from ..store._frames import nulls_as_none

        return nulls_as_none(
            pd.DataFrame(
                [
                    {
                        "step": r.step,
                        "status": r.status.value,
                        "attempts": r.attempts,
                        "duration_s": r.duration,
                        "error": str(r.error) if r.error else None,
                    }
                    for r in self.steps.values()
                ],
                columns=["step", "status", "attempts", "duration_s", "error"],
            )
        )

    def summary(self, max_rows: int = 50) -> str:
        """A plain-text table of the steps, with the run's status on top."""
        head = (
            f"run {self.run_id} · workflow '{self.workflow}' · {self.status.value} "
            f"in {self.duration:.3f}s"
        )
        rows = [("step", "status", "attempts", "duration", "error")]
        results = list(self.steps.values())
        for r in results[:max_rows]:
            dur = "" if r.duration is None else f"{r.duration * 1000:.1f}ms"
            err = str(r.error) if r.error else ""
            rows.append((r.step, r.status.value, str(r.attempts), dur, _clip(err, 60)))
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        out = [head, *(line.rstrip() for line in lines)]
        if len(results) > max_rows:
            more = plural(len(results) - max_rows, "more step")
            out.append(f"... {more} (result.to_frame() has all)")
        if self.reason:
            out.append(self.reason)
        if self.recording_error is not None:
            out.append(f"NOT RECORDED: {self.recording_error}")
        return "\n".join(out)

    def explain(self) -> str:
        """Why each step ran or was reused (incremental runs, docs/caching.md)::

        run 20261130-081502-9f3a1c · 1 of 2 steps reused
          load   cached  unchanged since run 20261130-081210-77b0e1
          clean  ran     code changed: clean()
        """
        if self.cache is None:
            return f"run {self.run_id}: caching was off, every step ran"
        rows = [
            (sid, _DECISION_WORDS.get(d.decision, d.decision), d.reason)
            for sid, d in self.cache.items()
        ]
        w0 = max(len(r[0]) for r in rows) if rows else 0
        w1 = max(len(r[1]) for r in rows) if rows else 0
        hits = sum(1 for d in self.cache.values() if d.decision == "hit")
        head = f"run {self.run_id} · {hits} of {plural(len(rows), 'step')} reused"
        return "\n".join([head, *(f"  {a.ljust(w0)}  {b.ljust(w1)}  {c}" for a, b, c in rows)])

    def _repr_html_(self) -> str:
        from .._html import result_html

        return result_html(self)

    def debug(self, step: str, namespace: dict[str, Any] | None = None) -> Any:
        """Put ``step``'s recorded inputs into ``namespace`` (in a notebook: the notebook's,
        by default) and return its callable, to call it by hand:
        ``fn = result.debug("score"); fn(**score_inputs)``.

        See :func:`fluxnb.debug`; needs the run to have been recorded in a store.
        """
        from ._history import debug

        if not self.store:
            raise ReplayError("this run was not recorded (store=None): nothing to debug")
        if callable(self._fns):  # built on first use, like steps
            self._fns = self._fns()
        return debug(self.run_id, step, namespace, store=self.store, fn=self._fns.get(step))

    def __repr__(self) -> str:
        # asyncio formats a finished task's result: keep this cheap for 10,000 steps
        return (
            f"<RunResult {self.run_id} '{self.workflow}' {self.status.value}: "
            f"{plural(len(self.outputs), 'output')}; {self.duration:.3f}s>"
        )


_DECISION_WORDS = {"hit": "cached", "miss": "ran", "refresh": "ran", "off": "ran"}


def _clip(text: str, n: int) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= n else text[: n - 1] + "…"

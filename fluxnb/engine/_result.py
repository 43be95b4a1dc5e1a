"""What a run returns: its status, every step's outcome, outputs in declared order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .._exceptions import StepFailed
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


@dataclass
class StepResult:
    """One step's outcome in a run."""

    step: str
    status: StepStatus = StepStatus.PENDING
    #: Attempts made (0 if the step never started).
    attempts: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None
    #: Seconds from the first attempt's start to the last attempt's end.
    duration: float | None = None
    error: StepError | None = None


@dataclass
class RunResult:
    """The outcome of one run. ``result["step"]`` is a step's output.

    >>> result.status, result.ok                       # doctest: +SKIP
    ('succeeded', True)
    """

    run_id: str
    workflow: str
    status: RunStatus
    #: Outputs of the steps that succeeded, in the workflow's declared order.
    outputs: dict[str, Any]
    #: Every step's outcome, in declared order.
    steps: dict[str, StepResult]
    started_at: datetime
    ended_at: datetime
    #: Wall-clock seconds of the whole run.
    duration: float
    namespace: str | None = None
    tenant: str | None = None
    #: Where the trace was recorded (None: not recorded).
    store: str | None = None
    #: A note on why the run ended the way it did (e.g. which step stopped it).
    reason: str | None = None
    errors: dict[str, StepError] = field(init=False)

    def __post_init__(self) -> None:
        self.errors = {s: r.error for s, r in self.steps.items() if r.error is not None}

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
        """Raise StepFailed for the first failed step; return self when the run succeeded."""
        for sid, err in self.errors.items():
            if self.steps[sid].status is StepStatus.FAILED:
                raise StepFailed(self.run_id, sid, err.type, err.message)
        return self

    def to_frame(self) -> Any:
        """One row per step: status, attempts, timings, error (a pandas DataFrame)."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "step": r.step,
                    "status": r.status.value,
                    "attempts": r.attempts,
                    "duration_s": r.duration,
                    "error": str(r.error) if r.error else None,
                }
                for r in self.steps.values()
            ]
        )

    def summary(self) -> str:
        """A plain-text table of the steps, with the run's status on top."""
        head = (
            f"run {self.run_id} · workflow '{self.workflow}' · {self.status.value} "
            f"in {self.duration:.3f}s"
        )
        rows = [("step", "status", "attempts", "duration", "error")]
        for r in self.steps.values():
            dur = "" if r.duration is None else f"{r.duration * 1000:.1f}ms"
            err = str(r.error) if r.error else ""
            rows.append((r.step, r.status.value, str(r.attempts), dur, _clip(err, 60)))
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        out = [head, *(line.rstrip() for line in lines)]
        if self.reason:
            out.append(self.reason)
        return "\n".join(out)

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for r in self.steps.values():
            counts[r.status.value] = counts.get(r.status.value, 0) + 1
        detail = ", ".join(f"{n} {s}" for s, n in counts.items())
        return (
            f"<RunResult {self.run_id} '{self.workflow}' {self.status.value}: {detail}; "
            f"{self.duration:.3f}s>"
        )


def _clip(text: str, n: int) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= n else text[: n - 1] + "…"

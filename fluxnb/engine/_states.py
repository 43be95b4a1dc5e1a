"""Lifecycles of a run and of a step, as enums with their legal transitions."""

from __future__ import annotations

from enum import Enum, StrEnum

from .._exceptions import RunError


class IllegalTransition(RunError):
    """A lifecycle was asked to move between two states that are not connected."""

    def __init__(self, what: str, old: Enum, new: Enum) -> None:
        self.old, self.new = old, new
        super().__init__(f"{what} cannot go from '{old.value}' to '{new.value}'")


class RunStatus(StrEnum):
    """What a run is doing, or how it ended."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: Its process ended without finishing it (killed, a restarted kernel, a crash); the
    #: store says so when it finds the process gone. ``fluxnb resume`` continues it.
    INTERRUPTED = "interrupted"

    @property
    def terminal(self) -> bool:
        return self is not RunStatus.RUNNING


class StepStatus(StrEnum):
    """Where one step of a run is."""

    PENDING = "pending"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    #: Not called: a recorded output with the same cache key stood in (docs/caching.md).
    CACHED = "cached"

    @property
    def terminal(self) -> bool:
        return self in _STEP_TERMINAL


_STEP_TERMINAL = frozenset(
    {
        StepStatus.SUCCEEDED,
        StepStatus.FAILED,
        StepStatus.CANCELLED,
        StepStatus.SKIPPED,
        StepStatus.CACHED,
    }
)

RUN_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.RUNNING: frozenset(
        {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.INTERRUPTED}
    ),
    RunStatus.SUCCEEDED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
    RunStatus.INTERRUPTED: frozenset(),
}

STEP_TRANSITIONS: dict[StepStatus, frozenset[StepStatus]] = {
    StepStatus.PENDING: frozenset(
        {StepStatus.RUNNING, StepStatus.CANCELLED, StepStatus.SKIPPED, StepStatus.CACHED}
    ),
    StepStatus.RUNNING: frozenset(
        {
            StepStatus.SUCCEEDED,
            StepStatus.FAILED,
            StepStatus.RETRYING,
            StepStatus.CANCELLED,
            StepStatus.SKIPPED,  # on_error: skip tolerated its failure
        }
    ),
    StepStatus.RETRYING: frozenset({StepStatus.RUNNING, StepStatus.CANCELLED}),
    StepStatus.SUCCEEDED: frozenset(),
    StepStatus.FAILED: frozenset(),
    StepStatus.CANCELLED: frozenset(),
    StepStatus.SKIPPED: frozenset(),
    StepStatus.CACHED: frozenset(),
}


def check_run_transition(old: RunStatus, new: RunStatus) -> RunStatus:
    if new not in RUN_TRANSITIONS[old]:
        raise IllegalTransition("a run", old, new)
    return new


def check_step_transition(step: str, old: StepStatus, new: StepStatus) -> StepStatus:
    if new not in STEP_TRANSITIONS[old]:
        raise IllegalTransition(f"step '{step}'", old, new)
    return new


# The scheduler's hot path keeps step states as small ints (an Enum member hashes in
# Python code); these are the same table as STEP_TRANSITIONS, as bit masks.
STEP_BY_CODE: tuple[StepStatus, ...] = tuple(StepStatus)
CODE = {s: i for i, s in enumerate(STEP_BY_CODE)}
(PENDING, RUNNING, RETRYING, SUCCEEDED, FAILED, CANCELLED, SKIPPED, CACHED) = (
    CODE[StepStatus.PENDING],
    CODE[StepStatus.RUNNING],
    CODE[StepStatus.RETRYING],
    CODE[StepStatus.SUCCEEDED],
    CODE[StepStatus.FAILED],
    CODE[StepStatus.CANCELLED],
    CODE[StepStatus.SKIPPED],
    CODE[StepStatus.CACHED],
)
ALLOWED: tuple[int, ...] = tuple(
    sum(1 << CODE[new] for new in STEP_TRANSITIONS[old]) for old in STEP_BY_CODE
)


def illegal_step_transition(step: str, old: int, new: int) -> IllegalTransition:
    return IllegalTransition(f"step '{step}'", STEP_BY_CODE[old], STEP_BY_CODE[new])

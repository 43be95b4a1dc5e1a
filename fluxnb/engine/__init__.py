"""Runs a Workflow: the scheduler, executors, results."""

from ._breaker import BREAKERS, Breakers, CircuitBreaker, CircuitState, breakers
from ._context import StepContext
from ._executor import Executor, LocalExecutor
from ._result import RunResult, StepError, StepResult
from ._runner import DEFAULT, arun, new_run_id, run
from ._scheduler import RunOptions, Scheduler
from ._states import RunStatus, StepStatus

__all__ = [
    "BREAKERS",
    "DEFAULT",
    "Breakers",
    "CircuitBreaker",
    "CircuitState",
    "Executor",
    "LocalExecutor",
    "RunOptions",
    "RunResult",
    "RunStatus",
    "Scheduler",
    "StepContext",
    "StepError",
    "StepResult",
    "StepStatus",
    "arun",
    "breakers",
    "new_run_id",
    "run",
]

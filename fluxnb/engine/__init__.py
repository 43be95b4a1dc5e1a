"""Runs a Workflow: the scheduler, executors, results."""

from ._breaker import BREAKERS, Breakers, CircuitBreaker, CircuitState, breakers
from ._context import StepContext
from ._executor import Executor, LocalExecutor
from ._handle import Run, start
from ._history import (
    DiffReport,
    ReplayReport,
    Trace,
    diff,
    export_trace,
    import_trace,
    load_trace,
    replay,
)
from ._net_run import NotEnabled
from ._net_runner import NetRun, interactive
from ._net_tokens import Firing, Move, NetResult, Token
from ._result import RunResult, StepError, StepResult
from ._runner import DEFAULT, aresume, arun, new_run_id, resume, run
from ._scheduler import RunOptions, Scheduler
from ._states import RunStatus, StepStatus

__all__ = [
    "BREAKERS",
    "DEFAULT",
    "Breakers",
    "CircuitBreaker",
    "CircuitState",
    "DiffReport",
    "Executor",
    "Firing",
    "LocalExecutor",
    "Move",
    "NetResult",
    "NetRun",
    "NotEnabled",
    "ReplayReport",
    "Run",
    "RunOptions",
    "RunResult",
    "RunStatus",
    "Scheduler",
    "StepContext",
    "StepError",
    "StepResult",
    "StepStatus",
    "Token",
    "Trace",
    "aresume",
    "arun",
    "breakers",
    "diff",
    "export_trace",
    "import_trace",
    "interactive",
    "load_trace",
    "new_run_id",
    "replay",
    "resume",
    "run",
    "start",
]

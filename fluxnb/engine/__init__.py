"""Runs a Workflow: the scheduler, executors, results."""

from ._breaker import BREAKERS, Breakers, CircuitBreaker, CircuitState, breakers
from ._compare import DiffReport, ReplayReport, diff, replay
from ._context import StepContext
from ._executor import Executor, LocalExecutor
from ._handle import Run, start
from ._history import Trace, export_trace, import_trace, load_trace
from ._net_run import NotEnabled
from ._net_runner import NetRun, interactive
from ._net_tokens import Firing, Move, NetResult, Token
from ._result import RunResult, StepError, StepResult
from ._resume import aresume, resume
from ._runner import arun, run
from ._scheduler import RunOptions, Scheduler
from ._setup import DEFAULT, new_run_id
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

"""Runs a Workflow: the scheduler, executors, results."""

from typing import TYPE_CHECKING

from .._lazy import lazy_names

#: Each name and the module that defines it, loaded on first use: a DAG run needs the
#: runner, not the net engine, replay, the history file format or the run handle.
_LAZY = {
    **dict.fromkeys(
        ("BREAKERS", "Breakers", "CircuitBreaker", "CircuitState", "breakers"),
        "fluxnb.engine._breaker",
    ),
    **dict.fromkeys(("DiffReport", "ReplayReport", "diff", "replay"), "fluxnb.engine._compare"),
    "StepContext": "fluxnb.engine._context",
    **dict.fromkeys(("Executor", "LocalExecutor"), "fluxnb.engine._executor"),
    **dict.fromkeys(("Run", "start"), "fluxnb.engine._handle"),
    **dict.fromkeys(
        ("Trace", "export_trace", "import_trace", "load_trace"), "fluxnb.engine._history"
    ),
    "NotEnabled": "fluxnb.engine._net_run",
    **dict.fromkeys(("NetRun", "interactive"), "fluxnb.engine._net_runner"),
    **dict.fromkeys(("Firing", "Move", "NetResult", "Token"), "fluxnb.engine._net_tokens"),
    **dict.fromkeys(("RunResult", "StepError", "StepResult"), "fluxnb.engine._result"),
    **dict.fromkeys(("aresume", "resume"), "fluxnb.engine._resume"),
    **dict.fromkeys(("arun", "run"), "fluxnb.engine._runner"),
    **dict.fromkeys(("RunOptions", "Scheduler"), "fluxnb.engine._scheduler"),
    **dict.fromkeys(("DEFAULT", "new_run_id"), "fluxnb.engine._setup"),
    **dict.fromkeys(("RunStatus", "StepStatus"), "fluxnb.engine._states"),
}

if TYPE_CHECKING:
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

__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)

"""What a workflow *is*: the manifest, the model, the Petri net it compiles to.

No I/O beyond parsing; never imports engine, store or notebook code at module level.
"""

from ._analysis import OMEGA, Analysis, AnalysisTimeout, StateBudgetExceeded, analyze
from ._durations import format_duration, parse_duration
from ._guards import Guard, GuardError, GuardSyntaxError
from ._manifest import load_workflow
from ._model import Step, Workflow
from ._net import Arc, Net, Transition, compile_dag
from ._net_builder import NetBuilder
from ._net_manifest import load_any, load_net, net_manifest
from ._options import (
    CircuitBreakerSettings,
    OnError,
    RbacSettings,
    RetryPolicy,
    RouterSettings,
)
from ._pnml import load_pnml_file, read_pnml, write_pnml
from ._resolve import Binding, bind_all, find_callables, resolve_callables

__all__ = [
    "OMEGA",
    "Analysis",
    "AnalysisTimeout",
    "Arc",
    "Binding",
    "CircuitBreakerSettings",
    "Guard",
    "GuardError",
    "GuardSyntaxError",
    "Net",
    "NetBuilder",
    "OnError",
    "RbacSettings",
    "RetryPolicy",
    "RouterSettings",
    "StateBudgetExceeded",
    "Step",
    "Transition",
    "Workflow",
    "analyze",
    "bind_all",
    "compile_dag",
    "find_callables",
    "format_duration",
    "load_any",
    "load_net",
    "load_pnml_file",
    "load_workflow",
    "net_manifest",
    "parse_duration",
    "read_pnml",
    "resolve_callables",
    "write_pnml",
]

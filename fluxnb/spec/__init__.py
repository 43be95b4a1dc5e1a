"""What a workflow *is*: the manifest, the model, the Petri net it compiles to.

No I/O beyond parsing; never imports engine, store or notebook code at module level.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_names
from . import _net_builder  # noqa: F401 - sets Net.build, which _net.Net cannot import

#: Each name and the module that defines it, loaded on first use: building a workflow needs
#: the model, not the reachability analysis or PNML's XML.
_LAZY = {
    **dict.fromkeys(
        ("OMEGA", "Analysis", "AnalysisTimeout", "StateBudgetExceeded", "analyze"),
        "fluxnb.spec._analysis",
    ),
    **dict.fromkeys(("format_duration", "parse_duration"), "fluxnb.spec._durations"),
    **dict.fromkeys(("Guard", "GuardError", "GuardSyntaxError"), "fluxnb.spec._guards"),
    "load_workflow": "fluxnb.spec._manifest",
    **dict.fromkeys(("Step", "Workflow"), "fluxnb.spec._model"),
    **dict.fromkeys(("Arc", "Net", "Transition", "compile_dag"), "fluxnb.spec._net"),
    "NetBuilder": "fluxnb.spec._net_builder",
    **dict.fromkeys(("load_any", "load_net", "net_manifest"), "fluxnb.spec._net_manifest"),
    **dict.fromkeys(
        ("CircuitBreakerSettings", "OnError", "RbacSettings", "RetryPolicy", "RouterSettings"),
        "fluxnb.spec._options",
    ),
    **dict.fromkeys(("load_pnml_file", "read_pnml", "write_pnml"), "fluxnb.spec._pnml"),
    **dict.fromkeys(
        ("Binding", "bind_all", "find_callables", "resolve_callables"), "fluxnb.spec._resolve"
    ),
}

if TYPE_CHECKING:
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

__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)

"""fluxnb: design, run and analyse DAG and Petri-net workflows in Jupyter.

>>> import fluxnb
>>> wf = fluxnb.load(\"\"\"
... pipeline:
...   - step: numbers
...   - step: total
...     depends_on: numbers
... \"\"\")
>>> fluxnb.run(wf, {"numbers": lambda: [1, 2], "total": sum}, store=None)   # doctest: +SKIP

Heavy dependencies (pandas, duckdb, pyarrow) are imported only when first needed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._exceptions import (
    BillingError,
    BudgetExceeded,
    CircuitOpenError,
    CycleError,
    FluxError,
    LLMError,
    ManifestError,
    PermissionDenied,
    Problem,
    QueryError,
    RecordingFailed,
    ReplayError,
    ResolutionError,
    RunError,
    StepFailed,
    StoreError,
    StoreLockedError,
    TriggerError,
    UntrustedOutput,
)
from ._session import Session
from .engine import (
    CircuitState,
    DiffReport,
    Firing,
    NetResult,
    NetRun,
    NotEnabled,
    ReplayReport,
    Run,
    RunResult,
    RunStatus,
    StepContext,
    StepError,
    StepResult,
    StepStatus,
    Token,
    aresume,
    arun,
    breakers,
    diff,
    export_trace,
    import_trace,
    interactive,
    replay,
    resume,
    run,
    start,
)
from .engine._history import debug
from .spec import (
    Analysis,
    AnalysisTimeout,
    CircuitBreakerSettings,
    Net,
    NetBuilder,
    OnError,
    RetryPolicy,
    RouterSettings,
    StateBudgetExceeded,
    Step,
    Workflow,
    read_pnml,
    write_pnml,
)
from .spec._activation import Activation
from .store import Store, sql, store, timeline, traces
from .store._audit import session

__version__ = "0.1.0"

#: Public names whose modules load on first use (billing pulls the rate-card reader and
#: Decimal machinery, metrics the SQL views' helpers): ``import fluxnb`` stays light.
_LAZY = {
    **dict.fromkeys(
        (
            "Invoice",
            "InvoiceState",
            "RateCard",
            "correct_usage",
            "create_tenant",
            "invoice",
            "issue_invoice",
            "rate_cards",
            "record_usage",
            "set_rate_card",
            "tenants",
            "usage",
            "void_invoice",
        ),
        "fluxnb.billing",
    ),
    "trigger": "fluxnb.triggers",  # the trigger service's module loads on first use
    "allm": "fluxnb.llms",  # LLM calls: the openai SDK loads only when one is made
    "llm": "fluxnb.llms",
}

if TYPE_CHECKING:  # what the lazy names are, for type checkers
    from . import billing, metrics, triggers
    from .billing import (
        Invoice,
        InvoiceState,
        RateCard,
        correct_usage,
        create_tenant,
        invoice,
        issue_invoice,
        rate_cards,
        record_usage,
        set_rate_card,
        tenants,
        usage,
        void_invoice,
    )
    from .llms import allm, llm
    from .server._client import remote
    from .triggers import trigger

__all__ = [
    "Activation",
    "Analysis",
    "AnalysisTimeout",
    "BillingError",
    "BudgetExceeded",
    "CircuitBreakerSettings",
    "CircuitOpenError",
    "CircuitState",
    "CycleError",
    "Designer",
    "DiffReport",
    "Firing",
    "FluxError",
    "Invoice",
    "InvoiceState",
    "LLMError",
    "ManifestError",
    "Net",
    "NetBuilder",
    "NetResult",
    "NetRun",
    "NotEnabled",
    "OnError",
    "PermissionDenied",
    "Problem",
    "QueryError",
    "RateCard",
    "RecordingFailed",
    "ReplayError",
    "ReplayReport",
    "ResolutionError",
    "RetryPolicy",
    "RouterSettings",
    "Run",
    "RunError",
    "RunResult",
    "RunStatus",
    "Session",
    "StateBudgetExceeded",
    "Step",
    "StepContext",
    "StepError",
    "StepFailed",
    "StepResult",
    "StepStatus",
    "Store",
    "StoreError",
    "StoreLockedError",
    "Token",
    "TriggerError",
    "UntrustedOutput",
    "Workflow",
    "__version__",
    "allm",
    "analyze",
    "aresume",
    "arun",
    "billing",
    "breakers",
    "correct_usage",
    "create_tenant",
    "debug",
    "diff",
    "export_trace",
    "import_trace",
    "interactive",
    "invoice",
    "issue_invoice",
    "llm",
    "load",
    "metrics",
    "rate_cards",
    "read_pnml",
    "record_usage",
    "remote",
    "replay",
    "resume",
    "run",
    "session",
    "set_rate_card",
    "sql",
    "start",
    "store",
    "tenants",
    "timeline",
    "traces",
    "trigger",
    "triggers",
    "usage",
    "void_invoice",
    "write_pnml",
]


def load(
    manifest: Any,
    namespace: Any = None,
    *,
    source: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> Workflow | Net:
    """A Workflow, or a Net for a Petri-net manifest (``net:``, the state-machine form,
    or PNML), from YAML text, a path, or a dict. With ``namespace``, every callable (step
    or transition action) is also looked up and checked now. ``params`` fill the
    manifest's ``{{name}}`` placeholders over its ``params:`` defaults.

    Raises:
        ManifestError: with the source, line and column of every problem found.
    """
    from ._session import Action
    from .spec._net_manifest import load_any
    from .store._audit import authorize

    obj = load_any(manifest, source=source, params=params)
    authorize(Action.VALIDATE, workflow=obj.name, rbac=obj.router.rbac)
    if namespace is not None:
        if isinstance(obj, Workflow):
            obj.validate(resolve=True, namespace=namespace)
        else:
            from .engine._net_run import plan_net

            plan_net(obj, namespace)
    return obj


def analyze(
    net: Any,
    *,
    max_states: int = 1_000_000,
    progress: bool | Callable[[int], None] | None = None,
    timeout: float | None = None,
) -> Analysis:
    """Analyse a Petri net: a ``Net`` or ``NetBuilder``, a net manifest (``net:`` or the
    state-machine form; YAML text, a ``.yaml`` path or a dict), PNML text, or a path to a
    ``.pnml`` file.

    Returns an :class:`Analysis` (``.to_json()`` gives the CLI's keys): boundedness and
    bound, reachable markings, deadlock (with ``.witness``), dead transitions, liveness,
    workflow-net recognition and soundness.

    ``progress``: None or True (default) shows a count of the markings found, updated in
    place, in a notebook or on a terminal once the analysis has taken over a second; False
    shows nothing; a callable is told the count instead (every 65,536 markings explored).

    ``timeout``: give up after this many seconds (None: no limit); ``max_states`` bounds the
    time too, as the search costs about the same per marking.

    Raises:
        ManifestError: the PNML cannot be read.
        StateBudgetExceeded: more than ``max_states`` markings.
        AnalysisTimeout: still running after ``timeout`` seconds (``.markings`` found by then).
    """
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
    ):
        raise ValueError(f"timeout= takes a number of seconds above 0, not {timeout!r}")
    from .spec import analyze as run_analysis
    from .spec._net import as_net
    from .spec._net_manifest import is_net_manifest, load_net

    net = as_net(net)  # a NetBuilder: the net built so far
    if (isinstance(net, dict) and is_net_manifest(net)) or (
        isinstance(net, str)
        and (
            net.rstrip().endswith((".yaml", ".yml"))
            or "\nnet:" in f"\n{net}"
            or "\nstates:" in f"\n{net}"
        )
    ):
        net = load_net(net)
    elif not isinstance(net, Net):
        net = read_pnml(net)
    if callable(progress):
        return run_analysis(net, max_states=max_states, progress=progress, timeout=timeout)
    if progress not in (None, True, False):
        raise TypeError(
            f"progress= takes None, True, False or a callable told the count, not {progress!r}"
        )
    if progress is False:
        return run_analysis(net, max_states=max_states, timeout=timeout)
    from ._progress_line import ProgressLine

    line = ProgressLine("analysing", "markings")
    try:
        result = run_analysis(net, max_states=max_states, progress=line, timeout=timeout)
    except BaseException:
        line.close()  # the error says what happened; the count line goes
        raise
    line.close(result.reachable_markings)
    return result


def __getattr__(name: str) -> Any:
    import importlib

    if name == "remote":  # the control plane's client: standard library HTTP, loaded on use
        from .server._client import remote

        return remote
    if name == "Designer":  # anywidget is imported only when a designer is made
        from .designer import Designer

        return Designer
    if name in ("billing", "metrics", "triggers"):
        return importlib.import_module(f"fluxnb.{name}")
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # found once
        return value
    raise AttributeError(f"module 'fluxnb' has no attribute {name!r}")


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """Jupyter Server's entry point (``jpserver_extensions = {"fluxnb": true}``): the
    control plane, ``fluxnb.server`` (imported only when a server loads it)."""
    from .server import _jupyter_server_extension_points as points

    return points()


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext fluxnb``: registers the notebook magics (imported only when called)."""
    from .notebook import load_ipython_extension as load_magics

    load_magics(ipython)

"""fluxnb: design, run and analyse DAG and Petri-net workflows in Jupyter.

>>> import fluxnb
>>> wf = fluxnb.load(\"\"\"
... pipeline:
...   - step: numbers
...   - step: total
...     depends_on: numbers
... \"\"\")
>>> fluxnb.run(wf, {"numbers": lambda: [1, 2], "total": sum}, store=None)   # doctest: +SKIP

``import fluxnb`` loads the exceptions alone; every other name (and its dependencies:
asyncio, PyYAML, pandas, duckdb, pyarrow) loads the first time it is touched.
"""

from __future__ import annotations

import importlib
import sys
import types
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
from ._lazy import lazy_names

__version__ = "0.1.0"

#: Every other public name, and the module that defines it: loaded on first use (PEP 562),
#: so ``import fluxnb`` costs the exceptions alone and ``fluxnb.run`` pays for the engine
#: the first time it is touched. ``tests/test_import_cost.py`` pins what the import loads.
_LAZY = {
    "Session": "fluxnb._session",
    **dict.fromkeys(("CircuitState", "breakers"), "fluxnb.engine._breaker"),
    **dict.fromkeys(("DiffReport", "ReplayReport", "diff", "replay"), "fluxnb.engine._compare"),
    "StepContext": "fluxnb.engine._context",
    **dict.fromkeys(("Run", "start"), "fluxnb.engine._handle"),
    **dict.fromkeys(("debug", "export_trace", "import_trace"), "fluxnb.engine._history"),
    "NotEnabled": "fluxnb.engine._net_run",
    **dict.fromkeys(("NetRun", "interactive"), "fluxnb.engine._net_runner"),
    **dict.fromkeys(("Firing", "NetResult", "Token"), "fluxnb.engine._net_tokens"),
    **dict.fromkeys(("RunResult", "StepError", "StepResult"), "fluxnb.engine._result"),
    **dict.fromkeys(("aresume", "resume"), "fluxnb.engine._resume"),
    **dict.fromkeys(("arun", "run"), "fluxnb.engine._runner"),
    **dict.fromkeys(("RunStatus", "StepStatus"), "fluxnb.engine._states"),
    "Activation": "fluxnb.spec._activation",
    **dict.fromkeys(
        ("Analysis", "AnalysisTimeout", "StateBudgetExceeded"), "fluxnb.spec._analysis"
    ),
    **dict.fromkeys(("Step", "Workflow"), "fluxnb.spec._model"),
    "Net": "fluxnb.spec._net",
    "NetBuilder": "fluxnb.spec._net_builder",
    **dict.fromkeys(
        ("CircuitBreakerSettings", "OnError", "RetryPolicy", "RouterSettings"),
        "fluxnb.spec._options",
    ),
    **dict.fromkeys(("read_pnml", "write_pnml"), "fluxnb.spec._pnml"),
    **dict.fromkeys(("Store", "sql", "traces"), "fluxnb.store"),
    "timeline": "fluxnb.store._timeline",
    "session": "fluxnb.store._audit",
    # billing pulls the rate-card reader and Decimal machinery
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
    "trigger": "fluxnb.triggers",
    **dict.fromkeys(("allm", "llm"), "fluxnb.llms"),  # the openai SDK loads only on a call
    "remote": "fluxnb.server._client",  # the control plane's client: standard library HTTP
    "Designer": "fluxnb.designer",  # anywidget is imported only when a designer is made
}

if TYPE_CHECKING:  # what the lazy names are, for type checkers
    from . import billing, metrics, triggers
    from ._session import Session
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
    from .designer import Designer
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
    from .llms import allm, llm
    from .server._client import remote
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

__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__, submodules=True)


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
    from .spec._model import Workflow
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
    from .spec._net import Net, as_net
    from .spec._net_manifest import is_net_manifest, load_net
    from .spec._pnml import read_pnml

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


class _Package(types.ModuleType):
    """fluxnb's module type, for one name: ``fluxnb.store`` is the ``fluxnb.store`` package,
    which is callable (``fluxnb.store(path)`` opens a store) — whether or not anything
    imported the package before (the import system sets a package's attribute to each
    subpackage it loads). A property answers both ways alike; assigning it is ignored."""

    @property
    def store(self) -> Callable[..., Any]:
        # not ``import fluxnb.store as``: that reads this very property
        return importlib.import_module(f"{__name__}.store")  # type: ignore[return-value]

    @store.setter
    def store(self, value: object) -> None:
        pass


sys.modules[__name__].__class__ = _Package


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """Jupyter Server's entry point (``jpserver_extensions = {"fluxnb": true}``): the
    control plane, ``fluxnb.server`` (imported only when a server loads it)."""
    from .server import _jupyter_server_extension_points as points

    return points()


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext fluxnb``: registers the notebook magics (imported only when called)."""
    from .notebook import load_ipython_extension as load_magics

    load_magics(ipython)

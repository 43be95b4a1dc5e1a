"""The public face: exact exported names, a light import, layers that point downward."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import fluxnb

from .conftest import ROOT, cli_env

PUBLIC = [
    "Analysis", "AnalysisTimeout", "BillingError", "CircuitBreakerSettings", "CircuitOpenError", "CircuitState",
    "CycleError", "Designer", "DiffReport", "Firing", "FluxError", "Invoice", "InvoiceState",
    "ManifestError", "Net", "NetResult", "NetRun", "NotEnabled", "OnError", "PermissionDenied",
    "Problem", "QueryError", "RateCard", "RecordingFailed", "ReplayError", "ReplayReport", "ResolutionError",
    "RetryPolicy", "RouterSettings", "Run", "RunError", "RunResult", "RunStatus", "Session", "StateBudgetExceeded",
    "Step", "StepContext", "StepError", "StepFailed", "StepResult", "StepStatus", "Store",
    "StoreError", "StoreLockedError", "Token", "UntrustedOutput", "Workflow", "__version__", "analyze", "aresume",
    "arun", "billing", "breakers", "correct_usage", "create_tenant", "debug", "diff",
    "export_trace", "import_trace", "interactive", "invoice", "issue_invoice", "load",
    "metrics", "rate_cards", "read_pnml", "record_usage", "replay", "resume", "run", "session",
    "set_rate_card", "sql", "start", "store", "tenants", "timeline", "traces", "usage",
    "void_invoice", "write_pnml",
]  # fmt: skip


def test_public_names_are_exactly_these() -> None:
    assert fluxnb.__all__ == PUBLIC
    assert sorted(fluxnb.__all__) == fluxnb.__all__
    for name in PUBLIC:
        assert hasattr(fluxnb, name), name


def test_exception_hierarchy() -> None:
    assert issubclass(fluxnb.CycleError, fluxnb.ManifestError)
    assert issubclass(fluxnb.ResolutionError, fluxnb.ManifestError)
    assert issubclass(fluxnb.ManifestError, fluxnb.FluxError)
    assert issubclass(fluxnb.StepFailed, fluxnb.RunError)
    assert issubclass(fluxnb.StoreLockedError, fluxnb.StoreError)
    assert issubclass(fluxnb.QueryError, fluxnb.StoreError)


def test_import_is_light() -> None:
    code = (
        "import sys, json, fluxnb; print(json.dumps(sorted(m for m in "
        "('pandas', 'duckdb', 'pyarrow', 'ipywidgets', 'IPython', 'networkx') "
        "if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), check=True
    )
    assert json.loads(out.stdout) == []


LAYERS = {"spec": 0, "store": 1, "engine": 2, "notebook": 3, "cli": 3}


def _module_level_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in tree.body:  # module level only: imports inside functions are deliberate
        if isinstance(node, ast.ImportFrom) and node.level >= 1 and node.module:
            found.append(node.module.split(".")[0] if node.level == 2 else "")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fluxnb."):
            found.append(node.module.split(".")[1])
    return [f for f in found if f]


def test_layers_point_downward() -> None:
    pkg = ROOT / "fluxnb"
    for layer, rank in LAYERS.items():
        for path in (pkg / layer).rglob("*.py"):
            for target in _module_level_imports(path):
                if target in LAYERS:
                    assert LAYERS[target] <= rank, f"{path.relative_to(ROOT)} imports {target}"


def test_core_never_imports_jupyter() -> None:
    for layer in ("spec", "store", "engine"):
        for path in (ROOT / "fluxnb" / layer).rglob("*.py"):
            text = path.read_text()
            for name in ("IPython", "ipywidgets", "ipykernel", "jupyter"):
                assert f"import {name}" not in text, f"{path} imports {name}"


def test_py_typed_ships() -> None:
    assert (ROOT / "fluxnb" / "py.typed").is_file()

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
    "Activation", "Analysis", "AnalysisTimeout", "BillingError", "BudgetExceeded", "CircuitBreakerSettings", "CircuitOpenError", "CircuitState",
    "CycleError", "Designer", "DiffReport", "Firing", "FluxError", "Invoice", "InvoiceState", "LLMError",
    "ManifestError", "Net", "NetBuilder", "NetResult", "NetRun", "NotEnabled", "OnError", "PermissionDenied",
    "Problem", "QueryError", "RateCard", "RecordingFailed", "ReplayError", "ReplayReport", "ResolutionError",
    "RetryPolicy", "RouterSettings", "Run", "RunError", "RunResult", "RunStatus", "Session", "StateBudgetExceeded",
    "Step", "StepContext", "StepError", "StepFailed", "StepResult", "StepStatus", "Store",
    "StoreError", "StoreLockedError", "Token", "TriggerError", "UntrustedOutput", "Workflow", "__version__", "allm", "analyze", "aresume",
    "arun", "billing", "breakers", "correct_usage", "create_tenant", "debug", "diff",
    "export_trace", "import_trace", "interactive", "invoice", "issue_invoice", "llm", "load",
    "metrics", "rate_cards", "read_pnml", "record_usage", "remote", "replay", "resume", "run", "session",
    "set_rate_card", "sql", "start", "store", "tenants", "timeline", "traces", "trigger", "triggers", "usage",
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


#: triggers sit between the engine and the faces: they start runs; the CLI and server use them
LAYERS = {"spec": 0, "store": 1, "engine": 2, "triggers": 2.5, "notebook": 3, "cli": 3, "server": 3}


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


def _sibling_imports(path: Path, folder: Path) -> set[str]:
    """Modules of ``folder`` that ``path`` imports, at any depth of the file (imports
    inside functions count: a circle made of them still ties the modules into one idea);
    imports under ``if TYPE_CHECKING:`` do not, as they never run."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for n in ast.walk(block)
    }
    names = {p.stem for p in folder.glob("*.py")} - {"__init__"}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only or not isinstance(node, ast.ImportFrom) or node.level != 1:
            continue
        if node.module is None:  # from . import _x
            found |= {a.name for a in node.names if a.name in names}
        elif node.module.split(".")[0] in names:
            found.add(node.module.split(".")[0])
    return found - {path.stem}


def _a_circle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return [*path[path.index(n) :], n]
            if n not in state and (found := visit(n)):
                return found
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_folder_has_an_import_circle() -> None:
    """Two modules that need each other are one idea, or need a third, lower one."""
    for folder in sorted({p.parent for p in (ROOT / "fluxnb").rglob("*.py")}):
        graph = {
            p.stem: _sibling_imports(p, folder) for p in folder.glob("*.py") if p.stem != "__init__"
        }
        circle = _a_circle(graph)
        assert circle is None, f"{folder.relative_to(ROOT)}: {' -> '.join(circle or [])}"


def test_the_circle_check_finds_a_circle() -> None:
    assert _a_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _a_circle({"a": {"b"}, "b": set()}) is None


def test_core_never_imports_jupyter() -> None:
    for layer in ("spec", "store", "engine"):
        for path in (ROOT / "fluxnb" / layer).rglob("*.py"):
            text = path.read_text()
            for name in ("IPython", "ipywidgets", "ipykernel", "jupyter"):
                assert f"import {name}" not in text, f"{path} imports {name}"


def test_py_typed_ships() -> None:
    assert (ROOT / "fluxnb" / "py.typed").is_file()


def test_the_package_imports_whole_without_the_optional_extras() -> None:
    """Without anywidget (the widgets extra), `from fluxnb import *` works and using the
    designer says what to install."""
    code = (
        "import sys; sys.modules['anywidget'] = None\n"
        "from fluxnb import *\n"
        "import fluxnb\n"
        "assert hasattr(fluxnb, 'Designer')\n"
        "try:\n    fluxnb.Designer()\nexcept ImportError as e:\n    print('ERR', e)\n"
        "try:\n    fluxnb.Designer.from_yaml('x')\nexcept ImportError as e:\n    print('ERR2', e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=cli_env(), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "ERR the designer needs anywidget: pip install 'fluxnb[widgets]'" in out.stdout
    assert "ERR2 the designer needs anywidget" in out.stdout

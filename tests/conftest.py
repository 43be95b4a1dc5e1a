from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
SAMPLES = sorted((DATA / "fluxroute").glob("*.yaml"))
#: The optional extra PNML corpus beside the checkout (CI has it; a fresh clone may not).
SHARED_PNML = ROOT.parent / "shared" / "data" / "pnml"


def pnml_files() -> list[Path]:
    """The PNML test nets: tests/data/pnml (always) and ../shared/data/pnml when present."""
    return sorted((DATA / "pnml").glob("*.pnml")) + sorted(SHARED_PNML.glob("*.pnml"))


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    return str(tmp_path / "store" / "fluxnb.duckdb")


@pytest.fixture(autouse=True)
def _no_default_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never write into the checkout: the default store lives in tmp_path."""
    monkeypatch.setenv("FLUXNB_STORE", str(tmp_path / "default" / "fluxnb.duckdb"))


@pytest.fixture(autouse=True)
def _fresh_session(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Every test starts as the unconfigured owner (admin, default tenant and namespace)."""
    from fluxnb import _session

    for name in ("FLUXNB_ROLE", "FLUXNB_TENANT", "FLUXNB_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    _session._acting.session = None
    yield
    _session._acting.session = None


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


FLUXNB = [sys.executable, "-m", "fluxnb"]


def shared_shell() -> Any:
    """The one IPython shell the tests share: started by whichever test asks first."""
    from IPython import get_ipython
    from IPython.testing.globalipapp import start_ipython

    return start_ipython() or get_ipython()


def refuse_events(st: Any, monkeypatch: pytest.MonkeyPatch, times: int | None = 1) -> list[int]:
    """Make the store ``st`` refuse its ``events`` writes with ENOSPC (a full disk) the first
    ``times`` times (None: every time); the sizes of the refused batches are listed in the
    list returned."""
    append = st.append
    refused: list[int] = []

    def refusing(table: str, rows: list[tuple[Any, ...]]) -> None:
        if table == "events" and (times is None or len(refused) < times):
            refused.append(len(rows))
            raise OSError(errno.ENOSPC, "No space left on device")
        append(table, rows)

    monkeypatch.setattr(st, "append", refusing)
    return refused

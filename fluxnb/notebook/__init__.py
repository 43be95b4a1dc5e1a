"""The notebook face: magics and widgets (thin; no engine logic)."""

from __future__ import annotations

from typing import Any


def load_ipython_extension(ipython: Any) -> None:
    """Register fluxnb's magics. The magics themselves arrive with the Jupyter feature."""
    raise NotImplementedError(
        "fluxnb's %%fluxroute and %%fluxsql magics are not in this version yet; "
        "use fluxnb.run(manifest, namespace=globals()) and fluxnb.sql(...) meanwhile"
    )

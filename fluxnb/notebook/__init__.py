"""The notebook face: magics and live display (thin; no engine logic)."""

from __future__ import annotations

from typing import Any


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext fluxnb``: register ``%%fluxroute``, ``%fluxsql``, ``%fluxtrace``,
    ``%fluxdebug``, ``%fluxsession``, ``%fluxdesign``."""
    from ._live import register
    from ._magics import FluxMagics

    ipython.register_magics(FluxMagics(ipython))
    register(ipython)  # a background run's badge changes when the run ends

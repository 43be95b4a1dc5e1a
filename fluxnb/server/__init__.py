"""The control plane: fluxnb's REST API as a Jupyter Server extension.

Installed with ``pip install "fluxnb[server]"``, it is enabled in every Jupyter Server
(JupyterLab, Notebook 7, ``fluxnb serve``) and answers under ``/fluxnb/api/v1/``. Jupyter
authenticates each request (its token, JupyterHub); ``c.FluxnbServer.roles`` maps the
Jupyter user (or a Hub group) to a fluxnb role and namespaces. See docs/server.md.

>>> # jupyter_server_config.py
>>> c.FluxnbServer.roles = {  # doctest: +SKIP
...     "alice": {"role": "operator", "namespaces": ["team-a"], "tenant": "acme"},
...     "group:auditors": {"role": "viewer", "namespaces": ["team-a", "team-b"]},
... }

Jupyter Server is imported only when the extension is loaded, so the worker processes
(which import ``fluxnb.server._worker``) start without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._background import Served, serve

if TYPE_CHECKING:
    from ._app import FluxnbServer

__all__ = ["FluxnbServer", "Served", "serve"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """What Jupyter Server loads: this package's ExtensionApp."""
    from ._app import FluxnbServer

    return [{"module": "fluxnb.server", "app": FluxnbServer}]


def __getattr__(name: str) -> Any:
    if name == "FluxnbServer":
        from ._app import FluxnbServer

        return FluxnbServer
    raise AttributeError(f"module 'fluxnb.server' has no attribute {name!r}")

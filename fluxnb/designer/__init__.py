"""The visual designer: draw a DAG or a Petri net in the notebook (anywidget + cytoscape.js).

``fluxnb.Designer`` needs ``pip install 'fluxnb[widgets]'`` (anywidget); the model
(``Design``) has no dependency and is what the tests of every edit use.
"""

from __future__ import annotations

from typing import Any

from ._model import DAG, NET, SCHEMA, Design, DesignError, Edge, Node

__all__ = ["DAG", "NET", "SCHEMA", "Design", "DesignError", "Designer", "Edge", "Node"]


def __getattr__(name: str) -> Any:
    if name == "Designer":  # anywidget (and ipywidgets) only when a designer is made
        try:
            from ._widget import Designer
        except ImportError as exc:
            return _missing(f"the designer needs anywidget: pip install 'fluxnb[widgets]' ({exc})")
        return Designer
    raise AttributeError(name)


def _missing(message: str) -> type:
    """``fluxnb.Designer`` without the widgets extra: the name exists (``from fluxnb import
    *`` and ``hasattr`` work), and using it in any way raises ImportError saying what to
    install."""

    class _Missing(type):
        def __getattr__(cls, attr: str) -> Any:
            if attr.startswith("__"):
                raise AttributeError(attr)
            raise ImportError(message)

        def __call__(cls, *args: Any, **kwargs: Any) -> Any:
            raise ImportError(message)

    return _Missing("Designer", (), {"__doc__": message})

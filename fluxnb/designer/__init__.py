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
            raise ImportError(
                f"the designer needs anywidget: pip install 'fluxnb[widgets]' ({exc})"
            ) from None
        return Designer
    raise AttributeError(name)

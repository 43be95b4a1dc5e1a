"""A background run's handle shown live: its badge changes when the run ends.

IPython shows an object once; a ``Run`` handle displayed as ``Out`` would say ``running``
for ever. ``%load_ext fluxnb`` registers :func:`show_run` for ``Run`` handles, so every
display of one (the ``%%fluxroute --background`` cell's result, ``handle`` on its own line,
``display(handle)``) gets a display id, and the run's end updates that display in place.
"""

from __future__ import annotations

from typing import Any


def _bundle(handle: Any) -> dict[str, str]:
    return {"text/html": handle._repr_html_(), "text/plain": repr(handle)}


def show_run(handle: Any) -> bool:
    """Display ``handle`` under a display id and update it when the run ends; True: shown."""
    from IPython.display import display

    shown = display(_bundle(handle), raw=True, display_id=True)
    if shown is not None and not handle.done():
        handle.add_done_callback(lambda h: shown.update(_bundle(h), raw=True))
    return True


def register(ipython: Any) -> None:
    """Show every ``Run`` handle through :func:`show_run` in this shell."""
    from ..engine._handle import Run

    formatter = getattr(
        getattr(ipython, "display_formatter", None), "ipython_display_formatter", None
    )
    if formatter is not None:
        formatter.for_type(Run, show_run)

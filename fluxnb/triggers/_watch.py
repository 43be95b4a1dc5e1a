"""Where a ``watch:`` trigger watches: in a server, only under the server's root folder.

A watch trigger makes the process that fires it create its folder and watch it. Whoever
may register a trigger in the control plane (an operator) must not make the server create
or watch folders elsewhere on its host (``/etc``, another user's home), so the server's
service resolves ``watch.path`` under its root and refuses one that leaves it (``..``, an
absolute path, a symbolic link out). A service of one's own process has no root: it
watches where its user says.
"""

from __future__ import annotations

import os

from .._exceptions import ManifestError, Problem
from ..spec._triggers import Trigger


def watch_folder(trigger: Trigger, root: str | None) -> str:
    """The folder ``trigger`` (a watch trigger) watches: its ``path``, relative to ``root``
    and refused (ManifestError, located at ``watch.path``) outside it; as given without a
    root.

    >>> from fluxnb.spec._triggers import read_trigger
    >>> t = read_trigger({"id": "in", "watch": {"path": "../etc"}}, source="<t>")
    >>> watch_folder(t, "/srv/lab")  # doctest: +SKIP
    ManifestError: <trigger in>: watch.path: '../etc' is outside the server's root ...
    """
    path = str(trigger.spec["path"])
    if root is None:
        return path
    base = os.path.realpath(root)
    full = os.path.realpath(os.path.join(base, path))
    if os.path.commonpath([base, full]) != base:
        problem = Problem(
            "outside_root",
            "watch.path",
            f"'{path}' is outside the server's root folder {base}: a server watches (and "
            "creates) folders under its root only; give a path relative to it",
            expected=f"a folder under {base}",
            found=path,
        )
        raise ManifestError([problem], f"<trigger {trigger.id}>")
    return full

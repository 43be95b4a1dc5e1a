"""Names of a package that load on first use (PEP 562), so importing it stays cheap.

A package lists each lazy name and the module that defines it, and hands the two functions
this module makes to Python as its own ``__getattr__`` and ``__dir__``::

    _LAZY = {"Workflow": "fluxnb.spec._model", ...}
    __getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)

A name is imported the first time it is touched and then kept in the package's namespace, so
later lookups cost what an eager import's would; ``dir()``, tab completion, ``hasattr``,
``from package import *`` and ``from package import name`` all see the lazy names. Type
checkers do not run ``__getattr__``: the package imports the same names under
``if TYPE_CHECKING:`` for them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_names(
    package: str, table: Mapping[str, str], public: Sequence[str], *, submodules: bool = False
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A ``__getattr__`` and a ``__dir__`` for ``package``: ``table`` maps each lazy name to
    the module that defines it; with ``submodules``, any other name is tried as one of the
    package's modules (``fluxnb.spec``) before the AttributeError."""

    def __getattr__(name: str) -> Any:
        namespace = vars(sys.modules[package])
        module = table.get(name)
        if module is not None:
            value = getattr(importlib.import_module(module), name)
        elif submodules and name.isidentifier() and not name.startswith("__"):
            try:
                value = importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as e:
                if e.name != f"{package}.{name}":
                    raise  # the module exists and lacks one of its own imports
                raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value  # found once
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *public})

    return __getattr__, __dir__

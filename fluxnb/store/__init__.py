"""Records and queries: the DuckDB schema, the recorder, segments, SQL."""

from __future__ import annotations

import sys
import types
from typing import Any

from ._recorder import EVENT_COLUMNS, MemoryRecorder, NullRecorder, Recorder, RunRecord
from ._store import MEMORY, Store, default_path, open_store
from ._timeline import Timeline, timeline

__all__ = [
    "EVENT_COLUMNS",
    "MEMORY",
    "MemoryRecorder",
    "NullRecorder",
    "Recorder",
    "RunRecord",
    "Store",
    "Timeline",
    "default_path",
    "open_store",
    "sql",
    "store",
    "timeline",
    "traces",
]


def store(path: str | None = None) -> Store:
    """The trace store at ``path`` (default: ``FLUXNB_STORE`` or ``.fluxnb/fluxnb.duckdb``)."""
    return open_store(path)


def sql(query: str, params: Any = None, *, store: str | Store | None = None) -> Any:
    """Run SQL on a store (default store unless given) and return a pandas DataFrame."""
    target = store if isinstance(store, Store) else open_store(store)
    return target.sql(query, params)


def traces(run_id: str | None = None, *, store: str | Store | None = None) -> Any:
    """The events of run ``run_id`` (all runs when None) as a pandas DataFrame."""
    target = store if isinstance(store, Store) else open_store(store)
    return target.traces(run_id)


class _CallablePackage(types.ModuleType):
    """``fluxnb.store`` is this package and also opens a store: ``fluxnb.store(path)`` calls
    :func:`store`, and ``import fluxnb.store as m`` gives the package (``m.Store``)."""

    def __call__(self, path: str | None = None) -> Store:
        """The trace store at ``path`` (default: ``FLUXNB_STORE`` or
        ``.fluxnb/fluxnb.duckdb``)."""
        return open_store(path)


sys.modules[__name__].__class__ = _CallablePackage

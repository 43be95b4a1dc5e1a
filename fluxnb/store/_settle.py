"""The fold that leaves the DuckDB file complete when a blocking run returns (``run``,
``resume``), so another program reading the file sees the whole run."""

from __future__ import annotations

import warnings
from typing import Any

from .._exceptions import RecordingFailed, StoreError
from ._store import MEMORY, Store

#: How long the end of a blocking run waits for a store file another program holds
#: before leaving its rows in segments for the next access.
SETTLE_LOCK_TIMEOUT = 1.0


def settle(result: Any) -> Any:
    """After a blocking run (``fluxnb.run``, ``resume``): fold its segments into the
    store file, so that other programs see it complete. A file another program holds
    leaves them waiting (the next access loads them); a file that cannot take them (a
    full disk) makes ``result.recording_error`` say so. Returns ``result``."""
    path = getattr(result, "store", None)
    if not path or path == MEMORY:
        return result
    try:
        Store(path, lock_timeout=SETTLE_LOCK_TIMEOUT).flush()
    except RecordingFailed as exc:
        if getattr(result, "recording_error", None) is None:
            err = RecordingFailed(
                exc.path,
                exc.reason,
                run_id=getattr(result, "run_id", None),
                errno=exc.errno,
                pending=exc.pending,
            )
            result.recording_error = err
            warnings.warn(str(err), RuntimeWarning, stacklevel=3)
    except StoreError:
        pass  # locked by another program, or not openable now: the segments wait
    return result

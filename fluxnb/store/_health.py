"""Is the store whole? ``Store.check()`` (``fluxnb store check`` / ``fluxnb doctor``), and
the fold that leaves the DuckDB file complete when a blocking run returns."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._exceptions import RecordingFailed, StoreError, StoreLockedError
from .._plural import plural
from ._quarantine import Quarantined, quarantined
from ._segments import pending_segments

if TYPE_CHECKING:
    from ._store import Store

#: How long the end of a blocking run waits for a store file another program holds
#: before leaving its rows in segments for the next access.
SETTLE_LOCK_TIMEOUT = 1.0


@dataclass
class StoreHealth:
    """What ``Store.check()`` found. ``healthy`` is true when nothing was set aside and
    the file opened and took every pending segment."""

    #: The store file.
    path: str
    #: Segment files set aside because they can never load (oldest first).
    quarantined: list[Quarantined] = field(default_factory=list)
    #: Segment files still waiting to be folded in after the check's own fold.
    pending: int = 0
    #: Why the file could not be opened or written, if it could not.
    error: str | None = None

    @property
    def healthy(self) -> bool:
        return not self.quarantined and self.error is None

    def __str__(self) -> str:
        lines = [f"store {self.path}: " + ("healthy" if self.healthy else "NOT healthy")]
        if self.error:
            lines.append(f"error: {self.error}")
        if self.pending:
            wait = "waits" if self.pending == 1 else "wait"
            lines.append(f"{plural(self.pending, 'segment file')} {wait} to be loaded")
        if self.quarantined:
            n = plural(len(self.quarantined), "segment file")
            lines.append(f"{n} set aside (their rows are missing from the store):")
            for q in self.quarantined:
                lines.append(
                    f"  {q.path}  {q.size} bytes  {q.when:%Y-%m-%d %H:%M:%S} UTC  {q.reason}"
                )
            lines.append(
                "Look at them, then delete them (or keep them for a bug report); "
                "the quarantine folder is never loaded."
            )
        return "\n".join(lines)


def check(store: Store) -> StoreHealth:
    """Open the store (which folds what waits, setting aside bad segments) and report."""
    health = StoreHealth(store.path)
    if store.in_memory:
        return health
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the report says it all
            store.flush()
    except StoreLockedError:
        raise
    except StoreError as exc:
        health.error = str(exc)
    health.quarantined = quarantined(store.segments_dir)
    health.pending = len(pending_segments(store.segments_dir))
    return health


def settle(result: Any) -> Any:
    """After a blocking run (``fluxnb.run``, ``resume``): fold its segments into the
    store file, so that other programs see it complete. A file another program holds
    leaves them waiting (the next access loads them); a file that cannot take them (a
    full disk) makes ``result.recording_error`` say so. Returns ``result``."""
    from ._store import MEMORY, Store

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

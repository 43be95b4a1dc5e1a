"""Is the store whole? ``Store.check()`` (``fluxnb store check`` / ``fluxnb doctor``)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .._exceptions import StoreError, StoreLockedError
from .._plural import plural
from ._quarantine import Quarantined, quarantined
from ._segments import pending_segments

if TYPE_CHECKING:
    from ._store import Store


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

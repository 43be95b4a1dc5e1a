"""Live events for ``GET /stream``: a bounded buffer with ids, so a client that
reconnects with ``Last-Event-ID`` gets what it missed (or is told it is gone)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from typing import Any


class Bus:
    """Events in order, each ``(id, namespace, event)``; ids are ``<boot>-<n>``, so an id
    of an earlier server process is recognised as such, not mistaken for one of this one.
    Publish on the event loop's thread only."""

    def __init__(self, size: int) -> None:
        self.boot = str(time.time_ns() // 1_000_000)
        self._events: deque[tuple[int, str | None, dict[str, Any]]] = deque(maxlen=size)
        self._count = itertools.count(1)
        self._changed = asyncio.Event()
        self.published = 0

    def publish(self, namespace: str | None, event: dict[str, Any]) -> None:
        n = next(self._count)
        self._events.append((n, namespace, {**event, "id": f"{self.boot}-{n}"}))
        self.published += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def after(
        self, last_id: str | None, readable: tuple[str, ...] | None
    ) -> tuple[list[dict[str, Any]], bool]:
        """(events after ``last_id`` that ``readable`` namespaces may see, whether some
        that the client has not seen are gone); no ``last_id``: nothing from before."""
        start, gap = self._position(last_id)
        out = [
            e
            for n, ns, e in self._events
            if n > start and (readable is None or (ns or "default") in readable)
        ]
        return out, gap

    def _position(self, last_id: str | None) -> tuple[int, bool]:
        newest = self._events[-1][0] if self._events else 0
        if not last_id:
            return newest, False
        boot, _, n = last_id.partition("-")
        if boot != self.boot or not n.isdigit():
            return 0, True  # another server's id: everything here is new to the client
        oldest = self._events[0][0] if self._events else newest + 1
        return int(n), int(n) + 1 < oldest

    async def wait(self, timeout: float) -> None:
        """Until something is published or ``timeout`` seconds pass."""
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)

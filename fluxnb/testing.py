"""Helpers to test your own workflows the way fluxnb tests itself.

>>> from fluxnb.testing import MemoryRecorder, flaky
>>> rec = MemoryRecorder()
>>> step = flaky(fails=2, then="ok")          # raises twice, then returns "ok"
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from .llms._fake import FakeLLMServer, reply
from .store._recorder import MemoryRecorder

__all__ = [
    "FakeLLMServer",
    "ManualClock",
    "MemoryRecorder",
    "failing",
    "flaky",
    "reply",
    "sleeping",
]


class ManualClock:
    """A monotonic clock that moves only when told: ``fluxnb.breakers().clock = clock``."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def flaky(
    fails: int, then: Any = None, exc: type[BaseException] = ConnectionError
) -> Callable[..., Any]:
    """A sync step that raises ``exc`` on its first ``fails`` calls, then returns ``then``.

    The count is kept on the function (``.calls``) and is thread-safe.
    """
    lock = threading.Lock()

    def step(**_: Any) -> Any:
        with lock:
            step.calls += 1  # type: ignore[attr-defined]
            n = step.calls  # type: ignore[attr-defined]
        if n <= fails:
            raise exc(f"injected failure {n} of {fails}")
        return then

    step.calls = 0  # type: ignore[attr-defined]
    return step


def failing(exc: BaseException | None = None) -> Callable[..., Any]:
    """A sync step that always raises ``exc`` (default: RuntimeError)."""

    def step(**_: Any) -> Any:
        raise exc or RuntimeError("injected failure")

    return step


def sleeping(seconds: float, then: Any = None) -> Callable[..., Any]:
    """An async step that sleeps ``seconds`` on the loop, then returns ``then``."""

    async def step(**_: Any) -> Any:
        await asyncio.sleep(seconds)
        return then

    return step

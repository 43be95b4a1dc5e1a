"""Circuit breakers: one per agent id, shared by every run in the process.

::

               failure_threshold consecutive failures
    CLOSED ──────────────────────────────────────────▶ OPEN ◀──────────────┐
      ▲                                                 │                  │
      │ probe succeeds                   reset_timeout  │                  │ probe fails, or
      │                                  has passed and │                  │ takes longer than
      └────────────── HALF_OPEN ◀──────── a call comes ─┘                  │ probe_timeout
                          └────────────────────────────────────────────────┘

While OPEN every call is short-circuited with ``CircuitOpenError`` (the step is not
called). HALF_OPEN lets exactly one probe through; other calls meanwhile are refused.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from .._exceptions import CircuitOpenError
from .._plural import plural
from ..spec import CircuitBreakerSettings
from ._states import IllegalTransition


class Clock(Protocol):
    def monotonic(self) -> float: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


CIRCUIT_TRANSITIONS: dict[CircuitState, frozenset[CircuitState]] = {
    CircuitState.CLOSED: frozenset({CircuitState.OPEN}),
    CircuitState.OPEN: frozenset({CircuitState.HALF_OPEN, CircuitState.CLOSED}),
    CircuitState.HALF_OPEN: frozenset({CircuitState.CLOSED, CircuitState.OPEN}),
}


@dataclass(frozen=True)
class CircuitChange:
    """One state change, as recorded in the ``circuit_events`` table."""

    agent: str
    old: CircuitState
    new: CircuitState
    reason: str
    failures: int
    at_us: int  # wall clock, epoch microseconds


class CircuitBreaker:
    """The breaker of one agent. Thread-safe; the clock is injectable for tests."""

    def __init__(
        self, agent: str, settings: CircuitBreakerSettings, clock: Clock | None = None
    ) -> None:
        self.agent = agent
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.state = CircuitState.CLOSED
        self.failures = 0  # consecutive
        self.opened_at = 0.0
        self.probing = False
        self._lock = threading.Lock()

    def _move(self, new: CircuitState, reason: str) -> CircuitChange:
        if new not in CIRCUIT_TRANSITIONS[self.state]:
            raise IllegalTransition(f"circuit of '{self.agent}'", self.state, new)
        change = CircuitChange(
            self.agent, self.state, new, reason, self.failures, time.time_ns() // 1000
        )
        self.state = new
        if new is CircuitState.OPEN:
            self.opened_at = self.clock.monotonic()
        return change

    def acquire(self) -> tuple[bool, list[CircuitChange]]:
        """Ask to call. Returns (is_probe, changes); raises CircuitOpenError when refused."""
        with self._lock:
            changes: list[CircuitChange] = []
            if self.state is CircuitState.OPEN:
                waited = self.clock.monotonic() - self.opened_at
                if waited < self.settings.reset_timeout:
                    raise CircuitOpenError(
                        self.agent, self.settings.reset_timeout - waited, self.failures
                    )
                changes.append(self._move(CircuitState.HALF_OPEN, "reset timeout passed"))
            if self.state is CircuitState.HALF_OPEN:
                if self.probing:
                    raise CircuitOpenError(self.agent, 0.0, self.failures)
                self.probing = True
                return True, changes
            return False, changes

    def success(self, probe: bool) -> list[CircuitChange]:
        with self._lock:
            self.failures = 0
            if probe:
                self.probing = False
                if self.state is CircuitState.HALF_OPEN:
                    return [self._move(CircuitState.CLOSED, "probe succeeded")]
            return []

    def failure(self, probe: bool, reason: str) -> list[CircuitChange]:
        with self._lock:
            self.failures += 1
            if probe:
                self.probing = False
                if self.state is CircuitState.HALF_OPEN:
                    return [self._move(CircuitState.OPEN, f"probe failed: {reason}")]
                return []
            if (
                self.state is CircuitState.CLOSED
                and self.failures >= self.settings.failure_threshold
            ):
                return [
                    self._move(CircuitState.OPEN, f"{self.failures} consecutive failures: {reason}")
                ]
            return []

    def release(self, probe: bool) -> None:
        """The call ended without an outcome (the run was cancelled): free the probe slot."""
        if probe:
            with self._lock:
                self.probing = False

    def reset(self) -> list[CircuitChange]:
        with self._lock:
            self.failures = 0
            self.probing = False
            if self.state is CircuitState.CLOSED:
                return []
            return [self._move(CircuitState.CLOSED, "reset by hand")]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            retry_in = None
            if self.state is CircuitState.OPEN:
                retry_in = max(
                    0.0, self.settings.reset_timeout - (self.clock.monotonic() - self.opened_at)
                )
            return {
                "agent": self.agent,
                "state": self.state.value,
                "consecutive_failures": self.failures,
                "failure_threshold": self.settings.failure_threshold,
                "reset_timeout_s": self.settings.reset_timeout,
                "probe_timeout_s": self.settings.probe_timeout,
                "probe_in_flight": self.probing,
                "probe_in_s": retry_in,
            }


class Breakers:
    """The process's circuit breakers by agent id: ``fluxnb.breakers()``."""

    def __init__(self) -> None:
        self._by_agent: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()
        self.clock: Clock = SystemClock()

    def get(self, agent: str, settings: CircuitBreakerSettings) -> CircuitBreaker:
        """The agent's breaker (created closed); newer settings replace older ones."""
        with self._lock:
            breaker = self._by_agent.get(agent)
            if breaker is None:
                breaker = self._by_agent[agent] = CircuitBreaker(agent, settings, self.clock)
            elif breaker.settings != settings:
                breaker.settings = settings
            return breaker

    def __getitem__(self, agent: str) -> CircuitBreaker:
        return self._by_agent[agent]

    def __contains__(self, agent: object) -> bool:
        return agent in self._by_agent

    def states(self) -> list[dict[str, Any]]:
        """Every breaker's state, as dicts (``frame()`` gives a DataFrame)."""
        with self._lock:
            breakers = list(self._by_agent.values())
        return [b.snapshot() for b in breakers]

    def frame(self) -> Any:
        import pandas as pd

        from ..store._frames import nulls_as_none

        return nulls_as_none(pd.DataFrame(self.states()))

    def reset(self, agent: str | None = None) -> list[CircuitChange]:
        """Close one agent's circuit, or all of them; returns the changes made."""
        with self._lock:
            targets = [self._by_agent[agent]] if agent else list(self._by_agent.values())
        return [c for b in targets for c in b.reset()]

    def clear(self) -> None:
        """Forget every breaker (tests; a fresh start)."""
        with self._lock:
            self._by_agent.clear()

    def _repr_html_(self) -> str:
        return self.frame().to_html(index=False)

    def __repr__(self) -> str:
        rows = [
            f"{s['agent']}: {s['state']} ({plural(s['consecutive_failures'], 'failure')})"
            for s in self.states()
        ]
        return "<Breakers " + ("; ".join(rows) or "none yet") + ">"


BREAKERS = Breakers()


def breakers() -> Breakers:
    """The process's circuit breakers: ``fluxnb.breakers().states()``, ``.reset(agent)``."""
    return BREAKERS

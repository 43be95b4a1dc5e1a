"""Typed option records: retry policy, circuit breaker, router settings, RBAC."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Literal

Backoff = Literal["none", "linear", "exponential", "exponential_jitter"]
BACKOFFS: tuple[str, ...] = ("none", "linear", "exponential", "exponential_jitter")
Strategy = Literal["stop", "continue", "skip", "retry"]
STRATEGIES: tuple[str, ...] = ("stop", "continue", "skip", "retry")


@dataclass(frozen=True)
class OnError:
    """What a run does when a step has failed for good (after its retries).

    - ``stop``: cancel the running steps, run nothing more; the run fails (default).
    - ``continue``: steps that depend on the failed one are recorded ``skipped``;
      independent branches finish; the run fails.
    - ``skip``: the failure is recorded, the step's output becomes its ``default``
      (None unless set), and downstream steps run; the run can still succeed.
    - ``retry``: retry by the step's policy (3 attempts if it has none), then ``fallback``.
    """

    strategy: Strategy = "stop"
    #: What ``retry`` falls back to once the attempts are spent.
    fallback: Literal["stop", "continue", "skip"] = "stop"

    @property
    def final(self) -> str:
        """The strategy applied once retries are spent."""
        return self.fallback if self.strategy == "retry" else self.strategy


@dataclass(frozen=True)
class RetryPolicy:
    """How often a failing step is tried again, and how long to wait in between.

    >>> RetryPolicy(max_attempts=3, backoff="linear", initial_delay=0.5).delay(2)
    1.0
    """

    #: Attempts in all, the first included (1 = no retry).
    max_attempts: int = 1
    #: The wait before attempt n+1: ``none`` (0), ``linear`` (initial*n),
    #: ``exponential`` (initial*2**(n-1)), ``exponential_jitter`` (uniform 0..exponential).
    backoff: Backoff = "exponential"
    #: Seconds; the base of every backoff shape.
    initial_delay: float = 0.1
    #: Seconds; no wait is longer than this.
    max_delay: float = 30.0
    #: Exception class names that are retried (matched along the class hierarchy);
    #: empty means every ``Exception``.
    retry_on: tuple[str, ...] = ()
    #: Exception class names that are never retried (checked first).
    no_retry_on: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Checked as the manifest checks them: a policy built in Python with a wrong field
        (``backoff=0.002``, ``max_attempts=0``, ``retry_on="TimeoutError"``) used to pass
        and misbehave only when a step failed."""
        n = self.max_attempts
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"RetryPolicy.max_attempts must be an int (attempts in all), not {n!r}")
        if n < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be 1 or more (1: no retry), not {n}")
        if self.backoff not in BACKOFFS:
            raise ValueError(
                f"RetryPolicy.backoff must be one of {', '.join(BACKOFFS)}, not {self.backoff!r}"
                " (seconds go in initial_delay)"
            )
        for name in ("initial_delay", "max_delay"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise TypeError(f"RetryPolicy.{name} must be seconds (a number), not {v!r}")
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"RetryPolicy.{name} must be 0 or more seconds, not {v!r}")
        for name in ("retry_on", "no_retry_on"):
            v = getattr(self, name)
            if isinstance(v, str) or not all(isinstance(x, str) for x in v):
                raise TypeError(
                    f"RetryPolicy.{name} must be a tuple of exception class names, not {v!r}"
                )
            if not isinstance(v, tuple):
                object.__setattr__(self, name, tuple(v))  # a list given: kept hashable

    def delay(self, failed_attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after attempt ``failed_attempt`` (1-based) failed."""
        n = failed_attempt
        if self.backoff == "none":
            return 0.0
        if self.backoff == "linear":
            d = self.initial_delay * n
        else:
            d = self.initial_delay * (2 ** (n - 1))
        d = min(d, self.max_delay)
        if self.backoff == "exponential_jitter":
            d = (rng or random).uniform(0.0, d)
        return d

    def retries(self, exc: BaseException) -> bool:
        """Whether ``exc`` may be retried under this policy."""
        names = {cls.__name__ for cls in type(exc).__mro__} | {
            f"{cls.__module__}.{cls.__qualname__}" for cls in type(exc).__mro__
        }
        if any(n in names for n in self.no_retry_on):
            return False
        if self.retry_on:
            return any(n in names for n in self.retry_on)
        return isinstance(exc, Exception)


@dataclass(frozen=True)
class CircuitBreakerSettings:
    """When an agent's circuit opens, and how it recovers (behaviour: resilience docs)."""

    #: Consecutive failures that open the circuit.
    failure_threshold: int = 5
    #: Seconds the circuit stays open before one half-open probe is let through.
    reset_timeout: float = 30.0
    #: Seconds a half-open probe may take before it counts as failed (None: no limit).
    probe_timeout: float | None = None


@dataclass(frozen=True)
class RbacSettings:
    """Roles allowed per action (parsed and validated; enforced by the tenants feature)."""

    run_roles: tuple[str, ...] = ()
    validate_roles: tuple[str, ...] = ()
    replay_roles: tuple[str, ...] = ()
    admin_roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class RouterSettings:
    """Run-wide settings: the manifest's ``router:`` section."""

    #: Steps running at once (None: no limit for async steps; sync steps share a
    #: thread pool of min(32, cpus + 4) threads).
    worker_pool_size: int | None = None
    #: Accepted for FluxRoute compatibility (a Go channel size); fluxnb needs no buffer.
    channel_buffer: int | None = None
    #: Seconds a step may take when its agent sets no ``timeout`` (None: no limit).
    default_timeout: float | None = None
    #: Namespace recorded with every run.
    namespace: str | None = None
    #: Tenant recorded with every run.
    tenant: str | None = None
    #: Role lists per action.
    rbac: RbacSettings = field(default_factory=RbacSettings)
    #: Retry policy of every step whose agent sets none.
    retry: RetryPolicy | None = None
    #: Error strategy of every step whose agent sets none (None: ``stop``).
    on_error: OnError | None = None
    #: Where steps run: ``local`` (default), ``dask`` (an on-demand LocalCluster), or
    #: ``dask://HOST:PORT`` (an existing Dask scheduler).
    executor: str | None = None
    #: Incremental runs: ``use`` (reuse recorded outputs whose cache key matches),
    #: ``refresh`` (run and record anew) or ``off``; None: off. See docs/caching.md.
    cache: str | None = None

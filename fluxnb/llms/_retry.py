"""fluxnb's retry policy for LLM calls: how long to wait, and what a failure means
(same candidate again, the next candidate, or fail now)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from ..spec import CircuitBreakerSettings, RetryPolicy
from ._stream import BadAnswer


@dataclass(frozen=True)
class LLMRetry:
    """How fluxnb retries one candidate and when it moves to the next."""

    #: Attempts per candidate, the first included.
    max_attempts: int = 3
    #: Seconds: the base of the exponential backoff (with full jitter).
    initial_delay: float = 0.5
    #: Seconds: no backoff wait is longer.
    max_delay: float = 8.0
    #: Seconds: a longer ``Retry-After`` moves to the next candidate instead of waiting.
    retry_after_cap: float = 30.0
    #: Seconds an HTTP attempt may wait for the server (connect, each read).
    timeout: float = 60.0
    #: The cooldown breaker of each (provider, model), shared by the process.
    breaker: CircuitBreakerSettings = field(
        default_factory=lambda: CircuitBreakerSettings(failure_threshold=5, reset_timeout=30.0)
    )

    def backoff(self, failed: int, rng: random.Random) -> float:
        policy = RetryPolicy(
            max_attempts=self.max_attempts,
            backoff="exponential_jitter",
            initial_delay=self.initial_delay,
            max_delay=self.max_delay,
        )
        return policy.delay(failed, rng)


def classify(exc: BaseException) -> tuple[str, int | None, float | None]:
    """``(what next, HTTP status, Retry-After seconds)``; what next is ``retry`` (same
    candidate), ``next`` (another candidate) or ``fail``."""
    import openai

    if isinstance(exc, BadAnswer | openai.APIResponseValidationError | json.JSONDecodeError):
        return "retry", 200, None  # an answer that is not one (a broken proxy, no choices)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        after = retry_after(exc.response.headers)
        if status in (408, 409, 429) or status >= 500:
            return "retry", status, after
        if status in (401, 403, 404) or _context_length(exc):
            return "next", status, after
        return "fail", status, after
    if isinstance(exc, openai.APIConnectionError | asyncio.TimeoutError | ConnectionError):
        return "retry", None, None  # APITimeoutError is an APIConnectionError
    if type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2"):
        return "retry", None, None  # a transport error the SDK did not wrap (mid-stream)
    return "fail", None, None


def _context_length(exc: Any) -> bool:
    code = str(getattr(exc, "code", "") or "")
    text = str(getattr(exc, "message", "") or exc).lower()
    return code == "context_length_exceeded" or "context length" in text or "context window" in text


def retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None

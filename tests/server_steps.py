"""Step callables the control-plane tests register by import (``tests.server_steps:NAME``):
the server and its worker processes resolve them as ``module:function``."""

from __future__ import annotations

import os
import time
from typing import Any


def numbers() -> list[int]:
    return [1, 2, 3]


def total(numbers: list[int]) -> int:
    return sum(numbers)


def noop(**_: Any) -> int:
    return 1


def slow(**_: Any) -> int:
    """Long enough to be cancelled or killed mid-run."""
    time.sleep(30)
    return 1


def wait_for_file(**_: Any) -> int:
    """Waits until the file named by FLUXNB_TEST_GATE exists (a step paused on purpose)."""
    gate = os.environ["FLUXNB_TEST_GATE"]
    deadline = time.monotonic() + 30
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.02)
    return 2


def boom(**_: Any) -> int:
    raise ValueError("boom")


def metered(ctx: Any, **_: Any) -> int:
    ctx.meter("api_calls", 5)
    return 5


def die(**_: Any) -> None:
    """Ends its process at once, as a segfault or kill -9 would."""
    os._exit(3)

"""A trigger service in a process of its own, for tests/test_triggers_processes.py:
``python -m tests.trigger_worker STORE SECONDS`` serves STORE's triggers for SECONDS."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from fluxnb.triggers import TriggerService


def noop() -> int:
    return os.getpid()


def linger() -> str:
    """Long the first time (the test kills the process meanwhile), quick when resumed."""
    mark = Path(os.environ["TRIGGER_TEST_DIR"]) / "started"
    with mark.open("a") as f:
        f.write(f"{os.getpid()}\n")
    if len(mark.read_text().split()) == 1:
        time.sleep(60)
    return "done"


async def serve(store: str, seconds: float) -> None:
    svc = TriggerService(store, poll=0.2, grace=30)
    await svc.start()
    await asyncio.sleep(seconds)
    await svc.stop(runs="wait")


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], float(sys.argv[2])))

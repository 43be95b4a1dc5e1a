"""What the engine's plain-path and hand-over tests share: the switches (``PLAIN``,
``HAND_OVER``), running a run on a fresh loop (bounded, counting the tasks it makes), what a
user sees of a RunResult and of a DuckDB store's events, small steps and a chain of them."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

import fluxnb
from fluxnb.engine import _executor, _scheduler
from fluxnb.testing import MemoryRecorder

#: (PLAIN, HAND_OVER): every way the engine can run a step today.
COMBOS = list(itertools.product((False, True), (False, True)))
BOUND = 10.0  # seconds: a run that takes longer has hung


@contextmanager
def engine(plain: bool | None = None, hand: bool = True) -> Iterator[list[int]]:
    """The plain path (None: as it is) and the hand-over on or off; yields a one-item list
    counting the steps that went through ``Scheduler._start`` (the runner's way) meanwhile."""
    old = _scheduler.PLAIN, _executor.HAND_OVER
    original = _scheduler.Scheduler._start
    starts = [0]

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        starts[0] += 1
        original(self, *args, **kwargs)

    if plain is not None:
        _scheduler.PLAIN = plain
    _executor.HAND_OVER = hand
    _scheduler.Scheduler._start = counting  # type: ignore[method-assign]
    try:
        yield starts
    finally:
        _scheduler.PLAIN, _executor.HAND_OVER = old
        _scheduler.Scheduler._start = original  # type: ignore[method-assign]


def bounded(go: Callable[[], Any], factory: Any = None) -> Any:
    """Await ``go()`` on a fresh loop (with ``factory`` as its task factory), bounded; no
    task of the run may be left behind once it returned. ``go()`` runs in the loop's main
    task (``asyncio.timeout``: on 3.11 ``wait_for`` would wrap it in a task of its own)."""

    async def main() -> Any:
        if factory is not None:
            asyncio.get_running_loop().set_task_factory(factory)
        async with asyncio.timeout(BOUND):
            result = await go()
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert left == [], f"tasks left behind by the run: {left}"
        return result

    return asyncio.run(main())


def counted(go: Callable[[], Any], cls: Any = asyncio.Task) -> tuple[Any, int]:
    """``bounded(go)`` on a loop whose task factory counts the tasks it makes (of ``cls``)."""
    made = [0]

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        made[0] += 1
        return cls(coro, loop=loop, **kwargs)

    return bounded(go, factory), made[0]


def view(result: Any) -> tuple[Any, ...]:
    """What a user reads off a RunResult, timings reduced to whether they are there."""
    steps = {
        sid: (
            s.status.value,
            s.attempts,
            None if s.error is None else (s.error.type, s.error.message),
            s.started_us is not None,
            s.ended_us is not None and (s.started_us is None or s.ended_us >= s.started_us),
        )
        for sid, s in result.steps.items()
    }
    return result.status.value, result.reason, steps, dict(result.outputs)


def events(store: Path | str, run_id: str | None = None) -> list[tuple[Any, ...]]:
    """The events rows in seq order, without the run's id, timings reduced to whether they are
    there."""
    where = "" if run_id is None else f"WHERE run_id = '{run_id}'"
    frame = fluxnb.store(str(store)).sql(
        "SELECT seq, step, attempt, status, final, error_type, error_message, executor, "
        "started_at IS NULL, ended_at IS NULL, duration_s IS NULL "
        f"FROM events {where} ORDER BY seq, attempt"
    )
    return [tuple(None if pd.isna(v) else v for v in row) for row in frame.itertuples(index=False)]


class Progress(MemoryRecorder):
    """A recorder with the live-progress hook the notebook and the designer use."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[tuple[str, int]] = []

    def attempt_started(self, step: str, attempt: int) -> None:
        """Note that ``step``'s attempt ``attempt`` started."""
        self.started.append((step, attempt))


async def sleepy(**kwargs: Any) -> int:
    """A step that suspends once: 1 + the int inputs it got."""
    await asyncio.sleep(0)
    return 1 + sum(v for v in kwargs.values() if isinstance(v, int))


async def quick(**kwargs: Any) -> int:
    """A step that ends at once (never suspends): 1 + the int inputs it got."""
    return 1 + sum(v for v in kwargs.values() if isinstance(v, int))


def chain(n: int, fn: Any = sleepy, prefix: str = "s", **add: Any) -> fluxnb.Workflow:
    """A chain ``{prefix}0 -> {prefix}1 -> ...`` of ``n`` steps ``fn`` (``add``: options)."""
    wf = fluxnb.Workflow()
    for i in range(n):
        wf.add(f"{prefix}{i}", fn, depends_on=[f"{prefix}{i - 1}"] if i else [], **add)
    return wf

"""What the stream lane's tests share: a stream workflow of a chain of steps, and a run's
events without what depends on timing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

import fluxnb


def chain(n: int, *steps: tuple[str, Callable[..., Any], dict[str, Any]]) -> fluxnb.Workflow:
    """A generator of ``n`` items feeding ``steps`` one after the other."""
    wf = fluxnb.Workflow("lane")

    async def src():  # type: ignore[no-untyped-def]
        for i in range(n):
            yield i

    wf.add("src", src)
    prev = "src"
    for name, fn, options in steps:
        wf.add(name, fn, depends_on=[prev], **options)
        prev = name
    return wf


def rows(store: fluxnb.Store, run_id: str) -> list[tuple[Any, ...]]:
    """The run's events without what depends on timing."""
    frame = store.sql(
        "SELECT seq, step, attempt, status, final, error_type, error_message FROM events "
        f"WHERE run_id = '{run_id}' ORDER BY seq, attempt"
    )
    return [tuple(None if pd.isna(v) else v for v in row) for row in frame.itertuples(index=False)]

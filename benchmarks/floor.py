"""The floor: a minimal in-degree-counting asyncio DAG scheduler (~30 lines).

One task per node, started the moment its last parent finishes. fluxnb is measured
against this in the same process; it is the cost of "asyncio plus nothing".
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

Dag = dict[str, list[str]]  # node -> its parents


async def run_floor(dag: Dag, fn: Callable[..., Awaitable[object]]) -> dict[str, object]:
    children: dict[str, list[str]] = {n: [] for n in dag}
    missing = {n: len(ps) for n, ps in dag.items()}
    for n, parents in dag.items():
        for p in parents:
            children[p].append(n)
    results: dict[str, object] = {}
    done = asyncio.get_running_loop().create_future()
    left = len(dag)
    tasks: set[asyncio.Task[None]] = set()  # asyncio keeps only weak references to tasks

    def start(n: str) -> None:
        task = asyncio.create_task(node(n))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def node(n: str) -> None:
        nonlocal left
        results[n] = await fn(**{p: results[p] for p in dag[n]})
        left -= 1
        for c in children[n]:
            missing[c] -= 1
            if missing[c] == 0:
                start(c)
        if left == 0:
            done.set_result(None)

    for n, m in missing.items():
        if m == 0:
            start(n)
    await done
    return results

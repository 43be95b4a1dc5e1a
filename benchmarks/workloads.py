"""The benchmark workloads, as plain DAGs (node -> parents) plus their step function."""

from __future__ import annotations

import asyncio
import random
from typing import Any

Dag = dict[str, list[str]]


async def noop(**_: Any) -> int:
    return 1


async def awaits(**_: Any) -> int:
    """A step that suspends once, as any step doing I/O does."""
    await asyncio.sleep(0)
    return 1


def make_sleeper(seconds: float):
    async def sleeper(**_: Any) -> int:
        await asyncio.sleep(seconds)
        return 1

    return sleeper


def wide(n: int) -> Dag:
    """1 -> n -> 1."""
    dag: Dag = {"src": []}
    for i in range(n):
        dag[f"w{i}"] = ["src"]
    dag["sink"] = [f"w{i}" for i in range(n)]
    return dag


def chain(n: int) -> Dag:
    return {f"c{i}": ([f"c{i - 1}"] if i else []) for i in range(n)}


def layered(n: int, layers: int = 100, seed: int = 7) -> Dag:
    """n nodes in ``layers`` layers; each node has 1-3 parents in the previous layer."""
    rng = random.Random(seed)
    per = n // layers
    dag: Dag = {}
    prev: list[str] = []
    for layer in range(layers):
        cur = [f"l{layer}_{i}" for i in range(per)]
        for node in cur:
            dag[node] = rng.sample(prev, min(len(prev), rng.randint(1, 3))) if prev else []
        prev = cur
    return dag


def independent(n: int) -> Dag:
    return {f"s{i}": [] for i in range(n)}


def to_workflow(name: str, dag: Dag, fn: Any, **router: Any):
    """The same DAG as a fluxnb Workflow whose every step calls ``fn``."""
    import fluxnb

    wf = fluxnb.Workflow(name, router=fluxnb.RouterSettings(**router))
    for node, parents in dag.items():
        wf.add(node, fn, depends_on=parents)
    return wf

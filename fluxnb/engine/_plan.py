"""A run plan: the per-transition tables the scheduler reads, built once per workflow.

Validation, signature checks and these tables cost far more than running a no-op step, so
they are cached per workflow and reused while the workflow is unchanged and its callables
resolve to the very same objects. The tables are those of the DAG's marked graph
(``spec.compile_dag``), built straight from the steps.
"""

from __future__ import annotations

import heapq
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..spec import (
    Binding,
    CircuitBreakerSettings,
    OnError,
    RetryPolicy,
    RouterSettings,
    Workflow,
    bind_all,
    find_callables,
)
from ..spec._stream_net import needs_streams

_STOP = OnError()
_RETRY_DEFAULT = RetryPolicy(max_attempts=3)


@dataclass(frozen=True)
class Plan:
    #: Tokens in each place at the start (start places of sources hold one).
    initial: tuple[int, ...]
    router: RouterSettings
    #: Transition index → step id (or transition id).
    ids: tuple[str, ...]
    #: Per transition: (place, weight, keyword or None) for each input arc.
    inputs: tuple[tuple[tuple[int, int, str | None], ...], ...]
    #: Per transition: (place, weight) for each output arc.
    outputs: tuple[tuple[tuple[int, int], ...], ...]
    static: tuple[Mapping[str, Any], ...]
    bindings: tuple[Binding | None, ...]
    timeouts: tuple[float | None, ...]
    retries: tuple[RetryPolicy | None, ...]
    wants_ctx: tuple[bool, ...]
    consumers: tuple[tuple[tuple[int, int], ...], ...]
    prio: tuple[int, ...]
    initial_missing: tuple[int, ...]
    initial_ready: tuple[tuple[int, int], ...]
    #: Step ids in the workflow's declared order (for results).
    declared: tuple[str, ...]
    #: Per transition: the error strategy, the output used by ``skip``, the breaker.
    on_error: tuple[OnError, ...] = ()
    defaults: tuple[Any, ...] = ()
    breakers: tuple[CircuitBreakerSettings | None, ...] = ()
    #: Per transition: the agent's executor name (None: the run's default).
    executors: tuple[str | None, ...] = ()
    #: A step streams (a generator): the workflow runs as a stream net
    #: (``_stream_runner``), not on this plan's game.
    streams: bool = False

    @classmethod
    def build(
        cls,
        wf: Workflow,
        bindings: Mapping[str, Binding],
    ) -> Plan:
        """The tables of ``wf``'s marked graph (``spec.compile_dag``'s net: transition i is
        the i-th step in canonical order, a place per dependency edge, a start place per
        source, an end place per sink), built straight from the steps: no Net, Arc or
        Transition objects, which made most of a big workflow's first run."""
        order = wf.order()
        steps = wf.steps
        router = wf.router
        deps_of = [tuple(dict.fromkeys(steps[sid].depends_on)) for sid in order]
        initial, inputs, outs, consumers = _marked_graph(order, deps_of, bindings)
        static, binds, timeouts, retries, ctx = [], [], [], [], []
        on_error, defaults, breakers, executors = [], [], [], []
        for sid in order:
            step = steps[sid]
            binding = bindings.get(sid)
            static.append(dict(step.with_))
            binds.append(binding)
            timeouts.append(step.timeout if step.timeout is not None else router.default_timeout)
            strategy = step.on_error or router.on_error or _STOP
            policy = step.retry or router.retry
            if strategy.strategy == "retry" and policy is None:
                policy = _RETRY_DEFAULT
            retries.append(policy)
            on_error.append(strategy)
            defaults.append(step.default)
            breakers.append(step.circuit_breaker)
            executors.append(step.executor)
            ctx.append(bool(binding and binding.wants_ctx))
        missing = tuple(len(d) for d in deps_of)
        prio = (0,) * len(order)
        ready = [(0, i) for i, m in enumerate(missing) if m == 0]
        heapq.heapify(ready)
        return cls(
            initial=tuple(initial),
            router=router,
            ids=tuple(order),
            inputs=tuple(inputs),
            outputs=tuple(tuple(o) for o in outs),
            static=tuple(static),
            bindings=tuple(binds),
            timeouts=tuple(timeouts),
            retries=tuple(retries),
            wants_ctx=tuple(ctx),
            consumers=tuple(consumers),
            prio=prio,
            initial_missing=missing,
            initial_ready=tuple(ready),
            declared=tuple(steps),
            on_error=tuple(on_error),
            defaults=tuple(defaults),
            breakers=tuple(breakers),
            executors=tuple(executors),
            streams=needs_streams(wf, {sid: b.fn for sid, b in bindings.items() if b}),
        )


def _marked_graph(
    order: list[str], deps_of: list[tuple[str, ...]], bindings: Mapping[str, Binding]
) -> tuple[
    list[int],
    list[tuple[tuple[int, int, str | None], ...]],
    list[list[tuple[int, int]]],
    list[tuple[tuple[int, int], ...]],
]:
    """Initial marking, input arcs (with the keyword each feeds), output arcs and each
    place's consumers of the DAG's marked graph, numbered as ``spec.compile_dag`` does."""
    index = {sid: ti for ti, sid in enumerate(order)}
    n = len(order)
    initial: list[int] = []
    consumers: list[tuple[tuple[int, int], ...]] = []
    inputs: list[tuple[tuple[int, int, str | None], ...]] = []
    outs: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for ti, deps in enumerate(deps_of):
        binding = bindings.get(order[ti])
        passed = binding.passed if binding else frozenset()
        if deps:
            arcs = []
            for dep in deps:
                p = len(initial)  # the place of the edge dep -> this step
                initial.append(0)
                consumers.append(((ti, 1),))
                outs[index[dep]].append((p, 1))
                arcs.append((p, 1, dep if dep in passed else None))
            inputs.append(tuple(arcs))
        else:
            p = len(initial)  # start place, one token
            initial.append(1)
            consumers.append(((ti, 1),))
            inputs.append(((p, 1, None),))
    for ti in range(n):
        if not outs[ti]:  # a sink: an end place
            outs[ti].append((len(initial), 1))
            initial.append(0)
            consumers.append(())
    return initial, inputs, outs, consumers


_cache: weakref.WeakKeyDictionary[Workflow, tuple[int, RouterSettings, tuple[Any, ...], Plan]] = (
    weakref.WeakKeyDictionary()
)


def plan_for(wf: Workflow, namespace: Mapping[str, Any] | None) -> Plan:
    """The plan to run ``wf`` with callables from ``namespace``; raises ManifestError."""
    wf.validate()
    fns = find_callables(wf, namespace)
    fn_tuple = tuple(fns.values())
    hit = _cache.get(wf)
    if (
        hit is not None
        and hit[0] == wf._version
        and hit[1] is wf.router
        and len(hit[2]) == len(fn_tuple)
        and all(a is b for a, b in zip(hit[2], fn_tuple, strict=True))
    ):
        return hit[3]
    bindings = bind_all(wf, fns)
    plan = Plan.build(wf, bindings)
    _cache[wf] = (wf._version, wf.router, fn_tuple, plan)
    return plan

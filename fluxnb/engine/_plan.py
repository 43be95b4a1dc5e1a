"""A run plan: the per-transition tables the scheduler reads, built once per workflow.

Validation, signature checks and these tables cost far more than running a no-op step, so
they are cached per workflow and reused while the workflow is unchanged and its callables
resolve to the very same objects. The tables are those of the DAG's marked graph
(``spec.compile_dag``), built straight from the steps.
"""

from __future__ import annotations

import heapq
import weakref
from array import array
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter, is_
from types import MappingProxyType
from typing import Any

from ..spec import (
    Binding,
    CircuitBreakerSettings,
    OnError,
    RetryPolicy,
    RouterSettings,
    Step,
    Workflow,
    bind_all,
    find_callables,
)
from ..spec._stream_net import needs_streams

_STOP = OnError()
_RETRY_DEFAULT = RetryPolicy(max_attempts=3)


@dataclass(frozen=True)
class Plan:
    #: Tokens in each place at the start (start places of sources hold one): 0 or 1, so
    #: bytes (one byte a place, not a pointer).
    initial: Sequence[int]
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
    consumers: tuple[tuple[tuple[int, int], ...], ...]
    #: Per transition: its priority among ready ones (all 0 in a DAG: bytes).
    prio: Sequence[int]
    #: Per transition: input places without a token at the start (bytes when all < 256).
    initial_missing: Sequence[int]
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
        Transition objects, which made most of a big workflow's first run.

        ``wf`` must be valid (``wf.validate()``, which also found the order). What repeats
        is shared, not copied per step (a wide fan-out of 100,000 steps would keep 100,000
        of each): the places feeding one transition share its consumer entry, steps without
        ``with:`` share one empty mapping, a column of settings nobody set is one tuple.
        """
        wf.order()  # the canonical order, kept by the workflow (validate() found it)
        assert wf._order is not None
        ids = wf._order[1]
        steps = wf.steps
        router = wf.router
        n = len(ids)
        declared = tuple(steps)
        if declared == ids:  # most workflows: one tuple for both
            declared = ids
        initial, inputs, outs, consumers, missing = _marked_graph(ids, steps, bindings)
        static: list[Mapping[str, Any]] = []
        binds, timeouts, retries = [], [], []
        on_error, defaults, breakers, executors = [], [], [], []
        fns: dict[int, Any] = {}  # each distinct callable once (is it a generator?)
        default_timeout = router.default_timeout
        for sid in ids:
            step = steps[sid]
            binding = bindings.get(sid)
            static.append(dict(step.with_) if step.with_ else _NO_STATIC)
            binds.append(binding)
            timeouts.append(step.timeout if step.timeout is not None else default_timeout)
            strategy = step.on_error or router.on_error or _STOP
            policy = step.retry or router.retry
            if strategy.strategy == "retry" and policy is None:
                policy = _RETRY_DEFAULT
            retries.append(policy)
            on_error.append(strategy)
            defaults.append(step.default)
            breakers.append(step.circuit_breaker)
            executors.append(step.executor)
            if binding is not None:
                fns.setdefault(id(binding.fn), (sid, binding.fn))
        ready = [(0, i) for i, m in enumerate(missing) if m == 0]
        heapq.heapify(ready)
        nones = (None,) * n

        def same(values: list[Any]) -> tuple[Any, ...]:
            """A table of settings nobody set is one shared tuple of Nones."""
            return nones if values.count(None) == n else tuple(values)

        return cls(
            initial=bytes(initial),
            router=router,
            ids=ids,
            inputs=inputs,
            outputs=outs,
            static=tuple(static),
            bindings=tuple(binds),
            timeouts=same(timeouts),
            retries=same(retries),
            consumers=consumers,
            prio=bytes(n),
            initial_missing=bytes(missing) if max(missing) < 256 else array("I", missing),
            initial_ready=tuple(ready),
            declared=declared,
            on_error=tuple(on_error),
            defaults=same(defaults),
            breakers=same(breakers),
            executors=same(executors),
            streams=needs_streams(wf, dict(fns.values())),
        )


Arcs = tuple[tuple[tuple[int, int, str | None], ...], ...]
OutArcs = tuple[tuple[tuple[int, int], ...], ...]


def _marked_graph(
    ids: tuple[str, ...], steps: Mapping[str, Step], bindings: Mapping[str, Binding]
) -> tuple[list[int], Arcs, OutArcs, tuple[tuple[tuple[int, int], ...], ...], list[int]]:
    """Initial marking, input arcs (with the keyword each feeds), output arcs, each
    place's consumers and each transition's missing tokens, numbered as
    ``spec.compile_dag`` does. Every ``(k, 1)`` pair is made once, whether it is a consumer
    ``(transition, weight)`` or an output arc ``(place, weight)``, and the places feeding
    one transition share its consumer entry."""
    index = {sid: ti for ti, sid in enumerate(ids)}
    places = sum(len(steps[sid].depends_on) or 1 for sid in ids) + len(ids)  # at most
    pairs = list(zip(range(places), repeat(1)))  # made in C
    pair = pairs.__getitem__

    initial: list[int] = []
    consumers: list[tuple[tuple[int, int], ...]] = []
    inputs: list[tuple[tuple[int, int, str | None], ...]] = []
    outs: list[list[tuple[int, int]]] = [[] for _ in ids]
    missing: list[int] = []
    for ti, sid in enumerate(ids):
        deps = steps[sid].depends_on  # validated: no repeats
        binding = bindings.get(sid)
        feeds = (pair(ti),)  # the consumer entry of every place this step takes from
        if deps:
            passed = binding.passed if binding else ()
            arcs = []
            for dep in deps:
                p = pair(len(initial))[0]  # the place of the edge dep -> this step
                initial.append(0)
                consumers.append(feeds)
                outs[index[dep]].append(pair(p))
                arcs.append((p, 1, dep if dep in passed else None))
            inputs.append(tuple(arcs))
        else:
            p = pair(len(initial))[0]  # start place, one token
            initial.append(1)
            consumers.append(feeds)
            inputs.append(((p, 1, None),))
        missing.append(len(deps))
    for out in outs:
        if not out:  # a sink: an end place
            out.append(pair(len(initial)))
            initial.append(0)
            consumers.append(())
    return initial, tuple(inputs), tuple(tuple(o) for o in outs), tuple(consumers), missing


#: The constant keyword arguments of every step without ``with:`` (read, never changed).
_NO_STATIC: Mapping[str, Any] = MappingProxyType({})


#: Each workflow's plan, with the version and router it was made for (its callables are
#: those of its bindings: they are checked against the namespace's at every run).
_cache: weakref.WeakKeyDictionary[Workflow, tuple[int, RouterSettings, Plan]] = (
    weakref.WeakKeyDictionary()
)


def plan_for(wf: Workflow, namespace: Mapping[str, Any] | None) -> Plan:
    """The plan to run ``wf`` with callables from ``namespace``; raises ManifestError."""
    wf.validate()
    fns = find_callables(wf, namespace)
    hit = _cache.get(wf)
    if hit is not None and hit[0] == wf._version and hit[1] is wf.router:
        plan = hit[2]
        with suppress(AttributeError):  # a step without a binding: plan anew
            if all(  # the very same callables (compared in C)
                map(is_, map(fns.__getitem__, plan.ids), map(attrgetter("fn"), plan.bindings))
            ):
                return plan
    plan = Plan.build(wf, bind_all(wf, fns))
    _cache[wf] = (wf._version, wf.router, plan)
    return plan

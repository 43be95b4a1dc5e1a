"""A run plan: the per-transition tables the scheduler reads, built once per workflow.

Validation, compilation to a net, signature checks and these tables cost far more than
running a no-op step, so they are cached per workflow and reused while the workflow is
unchanged and its callables resolve to the very same objects.
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
    Net,
    OnError,
    RetryPolicy,
    RouterSettings,
    Workflow,
    bind_all,
    find_callables,
)

_STOP = OnError()
_RETRY_DEFAULT = RetryPolicy(max_attempts=3)


@dataclass(frozen=True)
class Plan:
    net: Net
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

    @classmethod
    def build(
        cls,
        net: Net,
        steps: Mapping[str, Any],
        bindings: Mapping[str, Binding],
        router: RouterSettings,
        declared: list[str],
    ) -> Plan:
        inputs, static, binds, timeouts, retries, ctx = [], [], [], [], [], []
        on_error, defaults, breakers, executors = [], [], [], []
        for t in net.transitions:
            step = steps.get(t.step) if t.step else None
            binding = bindings.get(t.step) if t.step else None
            passed = binding.passed if binding else frozenset()
            inputs.append(
                tuple((a.place, a.weight, a.label if a.label in passed else None) for a in t.inputs)
            )
            static.append(dict(step.with_) if step else {})
            binds.append(binding)
            timeouts.append(
                step.timeout if step and step.timeout is not None else router.default_timeout
            )
            strategy = (step.on_error if step else None) or router.on_error or _STOP
            policy = (step.retry if step else None) or router.retry
            if strategy.strategy == "retry" and policy is None:
                policy = _RETRY_DEFAULT
            retries.append(policy)
            on_error.append(strategy)
            defaults.append(step.default if step else None)
            breakers.append(step.circuit_breaker if step else None)
            executors.append(step.executor if step else None)
            ctx.append(bool(binding and binding.wants_ctx))
        initial = net.initial
        missing = tuple(sum(1 for p, w, _ in ins if initial[p] < w) for ins in inputs)
        prio = tuple(-t.priority for t in net.transitions)
        ready = [(prio[i], i) for i, m in enumerate(missing) if m == 0]
        heapq.heapify(ready)
        return cls(
            net=net,
            router=router,
            ids=tuple(t.step or t.id for t in net.transitions),
            inputs=tuple(inputs),
            outputs=tuple(tuple((a.place, a.weight) for a in t.outputs) for t in net.transitions),
            static=tuple(static),
            bindings=tuple(binds),
            timeouts=tuple(timeouts),
            retries=tuple(retries),
            wants_ctx=tuple(ctx),
            consumers=tuple(tuple(c) for c in net.consumers()),
            prio=prio,
            initial_missing=missing,
            initial_ready=tuple(ready),
            declared=tuple(declared),
            on_error=tuple(on_error),
            defaults=tuple(defaults),
            breakers=tuple(breakers),
            executors=tuple(executors),
        )


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
    plan = Plan.build(wf._compiled_net(), wf.steps, bindings, wf.router, list(wf.steps))
    _cache[wf] = (wf._version, wf.router, fn_tuple, plan)
    return plan

"""A run plan: the per-transition tables the scheduler reads, built once per workflow.

Validation, signature checks and these tables cost far more than running a no-op step, so
they are cached per workflow and reused while the workflow is unchanged and its callables
resolve to the very same objects. The tables are those of the DAG's marked graph
(``spec.compile_dag``), built straight from the steps.
"""

from __future__ import annotations

import weakref
from array import array
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from itertools import chain, filterfalse, repeat
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
from ..spec._resolve import PassesAll
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
    #: Per transition: (place, keyword or None) for each input place (a marked graph:
    #: every arc's weight is 1; None: the dependency only orders).
    inputs: tuple[tuple[tuple[int, str | None], ...], ...]
    #: Per transition: its output places.
    outputs: tuple[tuple[int, ...], ...]
    static: tuple[Mapping[str, Any], ...]
    bindings: tuple[Binding | None, ...]
    timeouts: tuple[float | None, ...]
    retries: tuple[RetryPolicy | None, ...]
    #: Per place: the one transition that takes from it, -1 for an end place.
    consumers: tuple[int, ...]
    #: Per transition: input places without a token at the start (bytes when all < 256).
    initial_missing: Sequence[int]
    #: The transitions ready at the start, in order.
    initial_ready: tuple[int, ...]
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
        steps = wf._steps
        router = wf.router
        n = len(ids)
        declared = tuple(steps)
        if declared == ids:  # most workflows: one tuple for both
            declared = ids
        ordered = list(map(steps.__getitem__, ids))
        deps = list(map(_DEPS, ordered))
        binds = tuple(map(bindings.get, ids))
        initial, inputs, outs, consumers = _marked_graph(ids, deps, binds)
        missing = list(map(len, deps))
        # each table a column read in C; a column of settings nobody set is one shared
        # tuple of Nones, a column all alike one repeated value
        nones = (None,) * n

        def same(values: list[Any]) -> tuple[Any, ...]:
            return nones if values.count(None) == n else tuple(values)

        withs = list(map(_WITH, ordered))
        if any(withs):
            static = tuple(dict(w) if w else _NO_STATIC for w in withs)
        else:
            static = (_NO_STATIC,) * n
        timeouts = list(map(_TIMEOUT, ordered))
        if router.default_timeout is not None:
            timeouts = [router.default_timeout if t is None else t for t in timeouts]
        on_error, retries = _strategies(ordered, router, n)
        fns = list(map(_FN, filter(None, binds)))
        distinct = dict(zip(map(id, fns), fns, strict=True))  # is one of them a generator?
        ready = [i for i, m in enumerate(missing) if m == 0]  # sorted: a heap already
        return cls(
            initial=initial,
            router=router,
            ids=ids,
            inputs=inputs,
            outputs=outs,
            static=static,
            bindings=binds,
            timeouts=same(timeouts),
            retries=retries if retries.count(None) != n else nones,
            consumers=consumers,
            initial_missing=bytes(missing) if max(missing) < 256 else array("I", missing),
            initial_ready=tuple(ready),
            declared=declared,
            on_error=on_error,
            defaults=same(list(map(_DEFAULT, ordered))),
            breakers=same(list(map(_BREAKER, ordered))),
            executors=same(list(map(_EXECUTOR, ordered))),
            streams=needs_streams(wf, {f"{k}": f for k, f in distinct.items()}),
        )


_DEPS = attrgetter("depends_on")
_WITH = attrgetter("with_")
_TIMEOUT = attrgetter("timeout")
_DEFAULT = attrgetter("default")
_BREAKER = attrgetter("circuit_breaker")
_EXECUTOR = attrgetter("executor")
_FN = attrgetter("fn")


def _strategies(
    ordered: list[Step], router: RouterSettings, n: int
) -> tuple[tuple[OnError, ...], tuple[RetryPolicy | None, ...]]:
    """Each step's error strategy and retry policy (its own, else the router's; a
    ``retry`` strategy without a policy retries 3 times): two repeated values when no step
    sets its own (most workflows), without a look at each step."""
    own_errors = list(map(_ON_ERROR, ordered))
    own_retries = list(map(_RETRY, ordered))
    if own_errors.count(None) == n and own_retries.count(None) == n:
        strategy = router.on_error or _STOP
        policy = router.retry
        if strategy.strategy == "retry" and policy is None:
            policy = _RETRY_DEFAULT
        return (strategy,) * n, (policy,) * n
    on_error, retries = [], []
    for own, retry in zip(own_errors, own_retries, strict=True):
        strategy = own or router.on_error or _STOP
        policy = retry or router.retry
        if strategy.strategy == "retry" and policy is None:
            policy = _RETRY_DEFAULT
        on_error.append(strategy)
        retries.append(policy)
    return tuple(on_error), tuple(retries)


_ON_ERROR = attrgetter("on_error")
_RETRY = attrgetter("retry")


def _marked_graph(
    ids: tuple[str, ...], deps: list[tuple[str, ...]], bindings: tuple[Binding | None, ...]
) -> tuple[bytes, Inputs, Outputs, tuple[int, ...]]:
    """Initial marking, input arcs (with the keyword each feeds), output places and each
    place's consumer, numbered as ``spec.compile_dag`` does: step by step in canonical
    order, a place per dependency edge (or a start place, one token, for a source), then
    an end place per sink. Every arc of a marked graph has weight 1: an output arc is its
    place's number (one int object, shared with the consumer's input arc), an input arc a
    (place, keyword) pair (what the game reads fastest). A step with many dependencies (a
    fan-in) is made a column at a time with C iterators, not a Python loop per edge."""
    n = len(ids)
    index = dict(zip(ids, range(n), strict=True))
    producers = set(map(index.__getitem__, chain.from_iterable(deps)))
    sinks = list(filterfalse(producers.__contains__, range(n)))
    starts: list[int] = []  # the start places (one token each) of the sources
    consumers: list[int] = []
    inputs: list[tuple[tuple[int, str | None], ...]] = []
    outs: list[list[int]] = [[] for _ in ids]
    p = 0  # the next place
    for ti, (before, binding) in enumerate(zip(deps, bindings, strict=True)):
        k = len(before)
        if k == 1:
            dep = before[0]
            consumers.append(ti)
            outs[index[dep]].append(p)
            takes = type(binding) is PassesAll or _takes(binding, dep)
            inputs.append(((p, dep if takes else None),))
        elif not k:  # a source: its start place, one token
            starts.append(p)
            consumers.append(ti)
            inputs.append(((p, None),))
            k = 1
        else:
            places = tuple(range(p, p + k))
            consumers.extend(repeat(ti, k))
            any(map(list.append, map(outs.__getitem__, map(index.__getitem__, before)), places))
            if type(binding) is PassesAll:
                labels: Iterable[str | None] = before
            else:
                passed = binding.passed if binding is not None else ()
                labels = [d if d in passed else None for d in before]
            inputs.append(tuple(zip(places, labels, strict=True)))
        p += k
    ends = range(p, p + len(sinks))
    any(map(list.append, map(outs.__getitem__, sinks), ends))
    consumers.extend(repeat(-1, len(sinks)))
    initial = bytearray(p + len(sinks))
    for start in starts:
        initial[start] = 1
    return bytes(initial), tuple(inputs), tuple(map(tuple, outs)), tuple(consumers)


Inputs = tuple[tuple[tuple[int, str | None], ...], ...]
Outputs = tuple[tuple[int, ...], ...]


def _takes(binding: Binding | None, dep: str) -> bool:
    """Whether a step's callable takes dependency ``dep`` as a keyword."""
    return binding is not None and dep in binding.passed


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

"""A workflow with streaming steps, compiled to the coloured net that runs it.

A step whose function is a generator (sync or async) emits items; each item is a token
for the steps that depend on it, which run once per item unless their ``activation``
says otherwise. So such a workflow is not a one-shot marked graph but a net whose
transitions fire many times; this module writes that net and the net engine runs it:

- a step with no inputs: a transition with a start place holding one token;
- an edge ``u → s``: a place ``u->s`` whose tokens are passed to ``s`` as keyword ``u``,
  bounded by ``s``'s ``capacity`` (else the router's ``channel_buffer``, else 1,024): a
  producer pauses while a place it feeds is full (backpressure, not buffering);
- activation ``all``: one arc per input (one item of each, in arrival order);
  ``batch: N``: arcs of weight N (the step gets a list per input); ``any``: one
  transition per non-empty subset of the inputs, larger subsets first (priority), each
  with inhibitor arcs on the inputs it leaves out, so the step gets exactly the inputs
  that have an item; ``window``, ``custom`` and ``partial`` are rules of the one
  transition, applied by the engine (``engine/_net_stream.py``);
- the output of a one-shot step (nothing streams into it) is read, not consumed, by the
  item-driven steps that take it (a read arc): every item sees it.

A step's ``with:`` constants are bound to its function here (``functools.partial``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from itertools import combinations
from typing import TYPE_CHECKING, Any

from .._exceptions import ManifestError, Problem
from ._activation import DEFAULT_CAPACITY, MAX_ANY_INPUTS
from ._net import Arc, Net, Transition
from ._resolve import read_signature

if TYPE_CHECKING:
    from ._model import Step, Workflow


_GENERATOR_FLAGS = inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR


def is_streaming(fn: Any) -> bool:
    """Whether calling ``fn`` returns a generator (sync or async): a streaming step."""
    code = getattr(fn, "__code__", None)
    if code is not None and not hasattr(fn, "__wrapped__"):  # a plain function: its flags
        return bool(code.co_flags & _GENERATOR_FLAGS)
    fn = callee(fn)
    return inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn)


def callee(fn: Any) -> Any:
    """The function ``fn`` finally calls, through ``functools.partial`` and decorators that
    set ``__wrapped__`` (a step's ``with:`` constants are bound with a partial)."""
    while True:
        if isinstance(fn, functools.partial):
            fn = fn.func
        elif callable(fn) and hasattr(fn, "__wrapped__"):
            fn = inspect.unwrap(fn)
        else:
            return fn


def needs_streams(wf: Workflow, fns: Mapping[str, Callable[..., Any]]) -> bool:
    """Whether ``wf`` runs as a stream net: it has a generator step."""
    # (an activation or a capacity alone changes nothing: without a generator no step
    # gets items, and the workflow runs as a DAG)
    return any(is_streaming(fn) for fn in fns.values())


def compile_streams(wf: Workflow, fns: Mapping[str, Callable[..., Any]]) -> Net:
    """The net that runs ``wf`` with its streams (see the module docstring).

    Raises:
        ManifestError: a policy the steps cannot satisfy (``any`` over too many inputs or
            on a function that requires every input, a capacity below a batch size, a
            generator sent to Dask).
    """
    order = wf.order()
    steps = wf.steps
    problems: list[Problem] = []
    places: list[str] = []
    initial: list[int] = []
    capacity: dict[int, int] = {}
    edge: dict[tuple[str, str], int] = {}
    children: dict[str, list[str]] = {sid: [] for sid in order}
    index = {sid: i for i, sid in enumerate(wf._steps)}

    def where(sid: str, key: str) -> str:
        return f"pipeline[{index[sid]}].{key}"

    streamed = _item_driven(wf, fns)
    lineage = _lineage(wf, fns, streamed)
    for sid in order:
        cap = _capacity(wf, sid, where(sid, "capacity"), problems)
        for dep in dict.fromkeys(steps[sid].depends_on):
            edge[(dep, sid)] = _place(places, initial, f"{dep}->{sid}", 0)
            if streamed[dep]:
                capacity[edge[(dep, sid)]] = cap
            children[dep].append(sid)

    transitions: list[Transition] = []
    for sid in order:
        step = steps[sid]
        fn = _bound(step, fns.get(sid, step.fn), where(sid, "executor"), problems)
        deps = tuple(dict.fromkeys(step.depends_on))
        outputs = tuple(Arc(edge[(sid, c)]) for c in children[sid])
        common = _settings(step, fn, bool(deps))
        if not deps:
            start = _place(places, initial, f"start:{sid}", 1)
            transitions.append(Transition(sid, (Arc(start),), outputs, **common))
            continue
        act = step.activation if any(streamed[d] for d in deps) else None
        kind = act.kind if act is not None else "all"
        weight = act.size if act is not None and kind == "batch" else 1
        items = tuple(d for d in deps if streamed[d])
        if items:
            common["reads"] = tuple(Arc(edge[(d, sid)], 1, d) for d in deps if not streamed[d])
        else:  # a one-shot step: consumes its inputs once
            items, common["per_item"] = deps, False
        deps = items
        arcs = tuple(Arc(edge[(d, sid)], weight, d) for d in deps)
        if kind != "any":
            join = (
                act is None
                and len(deps) > 1
                and lineage[deps[0]] is not None
                and all(lineage[d] == lineage[deps[0]] for d in deps)
            )
            transitions.append(
                Transition(sid, arcs, outputs, activation=act, by_item=join, **common)
            )
            continue
        if (problem := _any_problem(sid, fn, deps, where(sid, "activation"))) is not None:
            problems.append(problem)
        else:
            transitions.extend(_any_transitions(sid, deps, arcs, outputs, common))
    if problems:
        raise ManifestError(problems, wf.source or wf.name)
    return Net(
        wf.name,
        tuple(places),
        tuple(initial),
        tuple(transitions),
        router=wf.router,
        capacity=capacity,
        keep={sid: steps[sid].keep if streamed[sid] else "one" for sid in order},
    )


def _place(places: list[str], initial: list[int], name: str, tokens: int) -> int:
    places.append(name)
    initial.append(tokens)
    return len(places) - 1


def _bound(step: Step, fn: Any, path: str, problems: list[Problem]) -> Any:
    """The step's function with its ``with:`` constants bound (a generator sent to Dask
    is a problem: its items feed this process's places)."""
    if fn is not None and step.with_:
        fn = functools.partial(fn, **step.with_)
    if step.executor == "dask" and fn is not None and is_streaming(fn):
        problems.append(
            Problem(
                "unsupported",
                path,
                f"step '{step.id}' is a generator (a stream) and streams run in this process: "
                "remove executor: dask (the steps that consume it can run on Dask)",
            )
        )
    return fn


def _settings(step: Step, fn: Any, per_item: bool) -> dict[str, Any]:
    """The fields every transition of ``step`` shares."""
    return {
        "step": step.id,
        "run": step.run or step.id,
        "fn": fn,
        "timeout": step.timeout,
        "retry": step.retry,
        "on_error": step.on_error,
        "default": step.default,
        "circuit_breaker": step.circuit_breaker,
        # a generator runs in this process (its items feed this process's places)
        "executor": "local" if fn is not None and is_streaming(fn) else step.executor,
        "per_item": per_item,
    }


def _capacity(wf: Workflow, sid: str, path: str, problems: list[Problem]) -> int:
    """Items that may wait for ``sid`` (a problem when a batch would never fit)."""
    step = wf.steps[sid]
    cap = step.capacity or wf.router.channel_buffer or DEFAULT_CAPACITY
    size = step.activation.size if step.activation is not None else 1
    if size > cap:
        problems.append(
            Problem(
                "bad_value",
                path,
                f"step '{sid}' takes batches of {size} but only {cap} items may wait for "
                f"it (capacity): raise capacity to at least {size}",
                found=cap,
            )
        )
    return cap


def _item_driven(wf: Workflow, fns: Mapping[str, Callable[..., Any]]) -> dict[str, bool]:
    """A step is item-driven when it streams or consumes a stream; the output of a
    one-shot step is read (not consumed) by the item-driven steps that take it."""
    steps = wf.steps
    streamed: dict[str, bool] = {}
    for sid in wf.order():
        fn = fns.get(sid, steps[sid].fn)
        streamed[sid] = (fn is not None and is_streaming(fn)) or any(
            streamed[d] for d in steps[sid].depends_on
        )
    return streamed


def _lineage(
    wf: Workflow, fns: Mapping[str, Callable[..., Any]], streamed: dict[str, bool]
) -> dict[str, str | None]:
    """The generator each step's items come from one for one (None: a one-shot step, or
    items made anew: a batch, a window, a custom pick, ``any``, a generator with inputs,
    or a join of different streams). Steps whose inputs share one are joined by item."""
    out: dict[str, str | None] = {}
    steps = wf.steps
    for sid in wf.order():
        step = steps[sid]
        fn = fns.get(sid, step.fn)
        items = [d for d in dict.fromkeys(step.depends_on) if streamed[d]]
        if fn is not None and is_streaming(fn):
            out[sid] = None if items else sid
        elif not items or (step.activation is not None and not step.activation.default):
            out[sid] = None
        else:
            first = out[items[0]]
            out[sid] = first if all(out[d] == first for d in items) else None
    return out


def _any_problem(sid: str, fn: Any, deps: tuple[str, ...], path: str) -> Problem | None:
    if len(deps) > MAX_ANY_INPUTS:
        return Problem(
            "bad_value",
            path,
            f"step '{sid}' has {len(deps)} inputs; activation any takes at most "
            f"{MAX_ANY_INPUTS} (it becomes one transition per subset of them)",
        )
    required = _required(fn, deps)
    if required:
        return Problem(
            "bad_signature",
            path,
            f"step '{sid}' runs with activation any, so it gets only the inputs that "
            f"have an item: give {', '.join(repr(r) for r in required)} a default "
            f"(e.g. {required[0]}=None)",
        )
    return None


def _any_transitions(
    sid: str,
    deps: tuple[str, ...],
    arcs: tuple[Arc, ...],
    outputs: tuple[Arc, ...],
    common: dict[str, Any],
) -> list[Transition]:
    """``any``: a transition per non-empty subset of the inputs, larger first, each
    inhibited by the inputs it leaves out (so it fires only with exactly those)."""
    out = []
    for k in range(len(arcs), 0, -1):
        for subset in combinations(range(len(arcs)), k):
            name = sid if k == len(arcs) else f"{sid}[{'+'.join(deps[i] for i in subset)}]"
            left_out = tuple(Arc(arcs[i].place) for i in range(len(arcs)) if i not in subset)
            out.append(
                Transition(
                    name,
                    tuple(arcs[i] for i in subset),
                    outputs,
                    priority=k,
                    inhibitors=left_out,
                    **common,
                )
            )
    return out


def _required(fn: Any, inputs: tuple[str, ...]) -> list[str]:
    """The inputs ``fn`` cannot be called without."""
    sig = read_signature(fn)
    if sig is None:
        return []
    params = sig.parameters
    return [n for n in inputs if n in params and params[n].default is inspect.Parameter.empty]


__all__ = ["compile_streams", "is_streaming", "needs_streams"]

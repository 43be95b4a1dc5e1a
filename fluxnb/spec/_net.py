"""Place/transition nets, and the compilation of a DAG into one (a marked graph).

A DAG is a Petri net where each step is a transition and each dependency edge a place
between two transitions; a source step gets an initial place with one token, a sink step
an end place. The scheduler only knows nets, so DAGs and nets share one engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ._activation import Activation
from ._options import CircuitBreakerSettings, OnError, RetryPolicy, RouterSettings

if TYPE_CHECKING:
    from ._model import Workflow
    from ._net_builder import NetBuilder


@dataclass(frozen=True, slots=True)
class Arc:
    """An arc between a place (by index) and a transition."""

    place: int
    weight: int = 1
    #: For input arcs: the keyword the consumed token's data is passed under.
    label: str | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    id: str
    inputs: tuple[Arc, ...]
    outputs: tuple[Arc, ...]
    #: The workflow step whose callable fires with this transition (None: no action).
    step: str | None = None
    #: Higher fires first when transitions compete for tokens.
    priority: int = 0
    #: Inhibitor arcs: the transition is enabled only while the place holds fewer tokens
    #: than the arc's weight (weight 1: the place must be empty).
    inhibitors: tuple[Arc, ...] = ()
    #: The action of a net manifest's transition (a callable reference), if any.
    run: str | None = None
    #: A guard in fluxnb's safe expression language (never eval-ed), if any.
    guard: str | None = None
    #: Seconds an action may take (None: the router's default_timeout, else no limit).
    timeout: float | None = None
    #: Retry policy of the action (None: the router's, else no retry).
    retry: RetryPolicy | None = None
    #: What a run does when the action has failed for good (None: the router's, else stop).
    on_error: OnError | None = None
    #: Data of the produced tokens when ``on_error: skip`` tolerates a failure.
    default: Any = None
    #: Fires only when asked (``run.fire``): a human decision or an external event.
    external: bool = False
    #: The action's circuit breaker (shared across runs by transition id), if any.
    circuit_breaker: CircuitBreakerSettings | None = None
    #: Where the action runs: ``local`` or ``dask`` (None: the run's executor).
    executor: str | None = None
    #: The action itself, when the net was built in Python (``run`` still names it, for
    #: the manifest); a run calls it without looking ``run`` up. Not part of equality.
    fn: Callable[..., Any] | None = field(default=None, compare=False, repr=False)
    #: A stream consumer's policy beyond arcs and weights: ``window``, ``custom`` and a
    #: ``batch`` with ``partial`` (docs/streams.md). None: the arcs say it all.
    activation: Activation | None = None
    #: Consumes a stream's items (a workflow step downstream of a generator): a firing
    #: that fails for good with ``on_error: skip`` or ``continue`` drops its item (no
    #: token, nothing blocked) and the next items go on.
    per_item: bool = False
    #: Read arcs: places whose head token the action gets (by the arc's label) without
    #: consuming it; the transition is enabled only while each holds one. A stream's
    #: consumer reads the output of a one-shot step this way, once per item.
    reads: tuple[Arc, ...] = ()
    #: Its inputs are matched by the stream item they come from, not by arrival order (a
    #: step that joins branches of one stream: each item meets itself).
    by_item: bool = False


@dataclass(frozen=True)
class Net:
    """A P/T net: places by index, their initial token counts, and transitions."""

    name: str
    places: tuple[str, ...]
    initial: tuple[int, ...]
    transitions: tuple[Transition, ...]
    #: Marking at which a run is complete (place index → tokens); empty: run to a dead marking.
    final: dict[int, int] = field(default_factory=dict)
    #: Display names of places and transitions by id (PNML ``<name>``); ids identify.
    names: dict[str, str] = field(default_factory=dict)
    #: Positions of places and transitions by id (PNML graphics), kept for the designer.
    positions: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: Data of the initial tokens, by place index, when a manifest gives it.
    tokens: dict[int, list[Any]] = field(default_factory=dict)
    #: Firings after which an automatic run stops (None: the runner's default).
    max_firings: int | None = None
    #: How conflicts are resolved: ``priority`` (then declared order) or ``random``
    #: (a seeded choice among the enabled transitions of the highest priority).
    choice: str = "priority"
    #: Run-wide settings (retry, on_error, default_timeout, namespace, tenant, ...).
    router: RouterSettings = field(default_factory=RouterSettings)
    #: The manifest text it was read from, if any (recorded with runs, for replay).
    text: str | None = field(default=None, compare=False, repr=False)
    #: Further markings at which a run is complete, besides ``final`` (a state machine's
    #: ``final:`` states, one marking each: one token in that state).
    also_final: tuple[dict[int, int], ...] = ()
    #: Read from the state-machine form: driven from outside, so an interactive run fires
    #: nothing by itself unless asked (``auto=True``).
    machine: bool = False
    #: Places that hold at most this many tokens (place index → capacity): a transition
    #: that would put a token in a full place waits, a streaming action pauses.
    capacity: dict[int, int] = field(default_factory=dict)
    #: Compiled from a workflow with streaming steps (``spec/_stream_net.py``): each
    #: step's result, by step id: ``all`` its items, the ``last`` one, or ``one`` (a
    #: one-shot step, nothing streams into it: its output).
    keep: dict[str, str] = field(default_factory=dict)

    #: ``Net.build(name, places={...})``: a :class:`NetBuilder`, to write the net in Python
    #: with ``@net.transition(...)``. Set by ``_net_builder`` (the builder reads its options
    #: with the manifest checker, which sits above this module).
    build: ClassVar[type[NetBuilder]]

    def final_markings(self) -> list[dict[int, int]]:
        """Every marking at which a run is complete: ``final`` (if any), then ``also_final``.
        Empty: the net declares none (a run goes on to a dead marking)."""
        return [m for m in (self.final, *self.also_final) if m]

    def consumers(self) -> list[list[tuple[int, int]]]:
        """For each place, the (transition index, arc weight) pairs that consume from it."""
        out: list[list[tuple[int, int]]] = [[] for _ in self.places]
        for ti, t in enumerate(self.transitions):
            for arc in t.inputs:
                out[arc.place].append((ti, arc.weight))
        return out

    @property
    def arc_count(self) -> int:
        return sum(len(t.inputs) + len(t.outputs) + len(t.inhibitors) for t in self.transitions)

    def place_index(self, place_id: str) -> int:
        return self.places.index(place_id)


class NetSource:
    """Something that makes a :class:`Net` when asked (the Python builder): the functions
    that take a Net (run, interactive, analyze, write_pnml, net_manifest) take one too."""

    def to_net(self) -> Net:
        raise NotImplementedError


def as_net(obj: Any) -> Any:
    """The Net of a :class:`NetSource`; anything else unchanged."""
    return obj.to_net() if isinstance(obj, NetSource) else obj


def transition_names(net: Net) -> dict[str, str]:
    """Display names (PNML ``<name>``) of the transitions that have one other than their id."""
    names = net.names
    return {t.id: names[t.id] for t in net.transitions if names.get(t.id, t.id) != t.id}


def label(tid: str, names: dict[str, str]) -> str:
    """``tid`` with its display name, if it has one: ``n16 (reinitiate request)``."""
    name = names.get(tid)
    return f"{tid} ({name})" if name and name != tid else tid


def compile_dag(wf: Workflow) -> Net:
    """The marked graph of ``wf``; transition i is the i-th step in canonical order."""
    order = wf.order()
    steps = wf.steps
    places: list[str] = []
    initial: list[int] = []
    edge_place: dict[tuple[str, str], int] = {}

    def new_place(name: str, tokens: int) -> int:
        places.append(name)
        initial.append(tokens)
        return len(places) - 1

    children: dict[str, list[str]] = {sid: [] for sid in order}
    for sid in order:
        for dep in dict.fromkeys(steps[sid].depends_on):
            edge_place[(dep, sid)] = new_place(f"{dep}->{sid}", 0)
            children[dep].append(sid)
    final: dict[int, int] = {}
    transitions = []
    for sid in order:
        deps = tuple(dict.fromkeys(steps[sid].depends_on))
        if deps:
            inputs = tuple(Arc(edge_place[(d, sid)], 1, d) for d in deps)
        else:
            inputs = (Arc(new_place(f"start:{sid}", 1)),)
        if children[sid]:
            outputs = tuple(Arc(edge_place[(sid, c)]) for c in children[sid])
        else:
            end = new_place(f"end:{sid}", 0)
            final[end] = 1
            outputs = (Arc(end),)
        transitions.append(Transition(sid, inputs, outputs, step=sid))
    return Net(wf.name, tuple(places), tuple(initial), tuple(transitions), final)

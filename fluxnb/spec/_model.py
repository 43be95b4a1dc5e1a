"""The workflow model: steps, their dependencies and settings, built in Python or loaded."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, overload

from .._plural import plural
from ._activation import Activation, parse_activation
from ._options import CircuitBreakerSettings, OnError, RetryPolicy, RouterSettings
from ._resolve import read_signature

if TYPE_CHECKING:
    from ._located import Located
    from ._net import Net

__all__ = ["STEP_ID", "Step", "Workflow"]


def _utf8(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (what every record of a run is)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


#: What a step id may look like: it becomes a keyword argument and a name in SQL results.
STEP_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")


@dataclass(frozen=True, slots=True)  # slots: a 100,000-step workflow keeps 100,000 of them
class Step:
    """One step of a DAG workflow: a callable, what it depends on, and how it runs."""

    #: Unique id; also the keyword its output is passed under to dependent steps.
    id: str
    #: The callable itself, when the workflow was built in Python or resolved.
    fn: Callable[..., Any] | None = None
    #: Where the callable comes from when ``fn`` is not set: a name in the namespace
    #: given to the loader, or ``module:attr``. None means "a callable named like the id".
    run: str | None = None
    #: Ids of the steps whose outputs this one needs.
    depends_on: tuple[str, ...] = ()
    #: Constant keyword arguments.
    with_: Mapping[str, Any] = field(default_factory=dict)
    #: Retries for this step (None: run once).
    retry: RetryPolicy | None = None
    #: Circuit breaker for this step's agent (None: none).
    circuit_breaker: CircuitBreakerSettings | None = None
    #: Seconds the step may take (None: the router's ``default_timeout``).
    timeout: float | None = None
    #: Free text shown in tables and the designer.
    description: str | None = None
    #: What to do when the step fails for good (None: the router's ``on_error``, else stop).
    on_error: OnError | None = None
    #: The step's output when ``on_error: skip`` tolerates its failure.
    default: Any = None
    #: ``local`` or ``dask`` (None: the run's executor).
    executor: str | None = None
    #: An LLM call as the step's body (``llm:`` in a manifest; an ``LLMSpec``): its
    #: inputs fill the prompt template. None: the step runs its callable.
    llm: Any = None
    #: Reuse a recorded output when nothing it depends on changed: ``use``, ``refresh``
    #: (run and record anew) or ``off`` (never: a non-deterministic step). None: the
    #: run's setting (``router.cache``, ``run(cache=...)``). See docs/caching.md.
    cache: str | None = None
    #: Bump it to force a re-run although the code looks unchanged (joins the cache key).
    cache_version: str | None = None
    #: Files the step reads (path globs): their contents join the cache key.
    cache_inputs: tuple[str, ...] = ()
    #: When the step runs on the items its inputs stream (None: ``all``, one of each).
    activation: Activation | None = None
    #: Items that may wait for this step before a streaming producer pauses (None: the
    #: router's ``channel_buffer``, else 1,024).
    capacity: int | None = None
    #: A streaming step's result: ``all`` its items (a list) or only the ``last``.
    keep: str = "all"

    @property
    def reference(self) -> str:
        """How the step's callable is named: ``run`` if set, else the step id."""
        return self.run or self.id


def _cache_options(
    cache: bool | str | None, version: str | int | None, inputs: str | Iterable[str]
) -> dict[str, Any]:
    """``Workflow.add``'s cache arguments as Step fields (``True`` is ``use``)."""
    mode = ("use" if cache else "off") if isinstance(cache, bool) else cache
    if mode not in (None, "use", "refresh", "off"):
        raise ValueError(f"cache must be True, False, 'use', 'refresh' or 'off', not {cache!r}")
    globs = (inputs,) if isinstance(inputs, str) else tuple(inputs)
    return {
        "cache": mode,
        "cache_version": None if version is None else str(version),
        "cache_inputs": globs,
    }


#: The ``with_`` of every step added without one: shared (a Step is frozen and nothing
#: writes into its ``with_``), so a big workflow does not keep an empty dict per step.
_NO_WITH: dict[str, Any] = {}

#: Workflows with more steps are recorded in the fast YAML form (see manifest_text).
FAST_YAML_STEPS = 200


class Workflow:
    """A DAG of steps. Build it in Python or load it from a manifest; both are the same.

    >>> wf = Workflow("demo")
    >>> @wf.step
    ... def numbers():
    ...     return [1, 2, 3]
    >>> @wf.step
    ... def total(numbers):
    ...     return sum(numbers)
    >>> wf.run(store=None).outputs["total"]
    6
    """

    def __init__(
        self,
        name: str = "workflow",
        *,
        router: RouterSettings | None = None,
        description: str | None = None,
    ) -> None:
        for what, text in (("name", name), ("description", description)):
            if isinstance(text, str) and not _utf8(text):
                raise ValueError(
                    f"the workflow's {what} {text!r} has a character UTF-8 cannot hold (a lone "
                    "surrogate, as text decoded with errors='surrogateescape' has): it could "
                    "not be recorded; decode it with errors='replace' first"
                )
        self.name = name
        self.router = router or RouterSettings()
        self.description = description
        self._steps: dict[str, Step] = {}
        self._infer: set[str] = set()  # steps whose depends_on come from their parameters
        self._last_deps: tuple[str, ...] = ()  # the last step's, shared by an equal next one
        #: Where the workflow came from (file path or cell name) and its text, if loaded.
        self.source: str | None = None
        self._text: tuple[int, str] | None = None  # the text, and the version it describes
        self._located: Located | None = None
        self._version = 0  # bumped by every change; caches below are keyed by it
        self._order: tuple[int, tuple[str, ...]] | None = None
        self._checked: int | None = None
        self._net: tuple[int, Net] | None = None
        self._yaml: tuple[int, str] | None = None
        #: Where the designer drew each step (``layout:`` in the manifest), by step id.
        self.layout: dict[str, tuple[float, float]] = {}
        #: What starts it from outside (``triggers:``, fired by the server: docs/triggers.md).
        self.triggers: tuple[Any, ...] = ()

    @property
    def text(self) -> str | None:
        """The manifest text the workflow was loaded from (None: built in Python)."""
        return None if self._text is None else self._text[1]

    @text.setter
    def text(self, value: str | None) -> None:
        # it describes the workflow as it is now: a step added later is not in it
        self._text = None if value is None else (self._version, value)

    # ------------------------------------------------------------------ building
    def add(
        self,
        id: str,
        fn: Callable[..., Any] | None = None,
        *,
        run: str | None = None,
        depends_on: str | Iterable[str] | None = None,
        with_: Mapping[str, Any] | None = None,
        retry: RetryPolicy | int | None = None,
        circuit_breaker: CircuitBreakerSettings | None = None,
        timeout: float | str | None = None,
        description: str | None = None,
        on_error: OnError | str | None = None,
        default: Any = None,
        executor: str | None = None,
        activation: Any = None,
        capacity: int | None = None,
        keep: str = "all",
        cache: bool | str | None = None,
        cache_version: str | int | None = None,
        cache_inputs: str | Iterable[str] = (),
    ) -> Step:
        """Add a step. ``depends_on=None`` with a callable means: the parameters of ``fn``
        that name other steps of this workflow (Hamilton style)."""
        from ._durations import parse_duration

        if not isinstance(id, str) or not STEP_ID.fullmatch(id):
            raise ValueError(
                f"{id!r} is not a valid step id: use letters, digits, '_' and '-', "
                "starting with a letter or '_'"
            )
        if id in self._steps:
            raise ValueError(f"Workflow '{self.name}' already has a step '{id}'")
        if isinstance(retry, bool) or not isinstance(retry, RetryPolicy | int | None):
            raise TypeError(f"retry must be a RetryPolicy or a number of attempts, not {retry!r}")
        policy = RetryPolicy(max_attempts=retry) if isinstance(retry, int) else retry
        act = None if activation is None else parse_activation(activation)
        if capacity is not None and (
            isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1
        ):
            raise ValueError(f"capacity must be a whole number ≥ 1, not {capacity!r}")
        if keep not in ("all", "last"):
            raise ValueError(f"keep must be 'all' or 'last', not {keep!r}")
        deps: tuple[str, ...]
        if depends_on is None:
            deps = ()
            if fn is not None:
                self._infer.add(id)
        else:
            # the ids of known steps as the very strings they are keyed by: a fan-in of
            # 100,000 names then keeps no second copy of each
            steps = self._steps
            names = (depends_on,) if isinstance(depends_on, str) else depends_on
            deps = tuple(steps[d].id if d in steps else d for d in names)
            if deps == self._last_deps:  # a fan-out built in a loop: one tuple for all
                deps = self._last_deps
            self._last_deps = deps
        step = Step(
            id=id,
            fn=fn,
            run=run,
            depends_on=deps,
            with_=dict(with_) if with_ else _NO_WITH,
            retry=policy,
            circuit_breaker=circuit_breaker,
            timeout=None if timeout is None else parse_duration(timeout),
            description=description,
            on_error=OnError(on_error) if isinstance(on_error, str) else on_error,  # type: ignore[arg-type]
            default=default,
            executor=executor,
            activation=None if act is None or act.default else act,
            capacity=capacity,
            keep=keep,
            **_cache_options(cache, cache_version, cache_inputs),
        )
        self._steps[id] = step
        self._version += 1
        return step

    @overload
    def step(self, fn: Callable[..., Any], /) -> Callable[..., Any]: ...
    @overload
    def step(
        self, fn: None = None, /, **options: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]: ...

    def step(self, fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
        """Decorator form of :meth:`add`: ``@wf.step`` or ``@wf.step(id=..., retry=3)``.

        The function is returned unchanged, so it stays callable by hand.
        """

        def register(f: Callable[..., Any]) -> Callable[..., Any]:
            opts = dict(options)
            step_id = opts.pop("id", None) or f.__name__
            self.add(step_id, f, **opts)
            return f

        return register(fn) if fn is not None else register

    def replace_step(self, id: str, **changes: Any) -> None:
        """Change fields of an existing step (used by resolution and the designer)."""
        self._steps[id] = replace(self._steps[id], **changes)
        self._version += 1

    # ------------------------------------------------------------------ reading
    @property
    def steps(self) -> Mapping[str, Step]:
        """Steps by id, in declared order (dependencies inferred from parameters filled in)."""
        self._infer_dependencies()
        return dict(self._steps)

    def __len__(self) -> int:
        return len(self._steps)

    def __contains__(self, step_id: object) -> bool:
        return step_id in self._steps

    def __repr__(self) -> str:
        return f"<Workflow {self.name!r}: {plural(len(self._steps), 'step')}>"

    def _repr_html_(self) -> str:
        from .._html import workflow_html

        return workflow_html(self)

    def _infer_dependencies(self) -> None:
        for sid in list(self._infer):
            step = self._steps[sid]
            sig = read_signature(step.fn)
            params = {} if sig is None else sig.parameters
            deps = tuple(p for p in params if p in self._steps and p != sid and p not in step.with_)
            self._steps[sid] = replace(step, depends_on=deps)
            self._infer.discard(sid)
            self._version += 1

    def position(self, path: tuple[str | int, ...]) -> tuple[int | None, int | None]:
        """Line and column of a manifest path, when the workflow was loaded from text."""
        return self._located.at(path) if self._located else (None, None)

    # ------------------------------------------------------------------ checking
    def validate(
        self, *, resolve: bool = False, namespace: Mapping[str, Any] | None = None
    ) -> Workflow:
        """Check the graph (unknown or self dependencies, cycles) and, with ``resolve``,
        that every step's callable exists and accepts its inputs. Returns ``self``.

        Raises:
            ManifestError: with every problem found (``CycleError`` for a cycle,
                ``ResolutionError`` for callables).
        """
        from ._graph import check_graph
        from ._resolve import resolve_callables

        self._infer_dependencies()
        if self._checked != self._version:
            # the check finds the canonical order on its way: order() needs no pass of its own
            self._order = (self._version, check_graph(self))
            self._checked = self._version
        if resolve:
            resolve_callables(self, namespace)
        return self

    def order(self) -> list[str]:
        """Step ids in the canonical topological order (declared order breaks ties).

        This order is the logical sequence of a run: event ``seq`` numbers follow it.
        """
        from ._graph import topological_order

        hit = self._order
        if hit is None or hit[0] != self._version:
            hit = self._order = (self._version, tuple(topological_order(self)))
        return list(hit[1])

    # ------------------------------------------------------------------ converting
    def to_dict(self) -> dict[str, Any]:
        """The manifest as plain data (what :meth:`to_yaml` writes)."""
        from ._manifest_write import workflow_to_dict

        self._infer_dependencies()
        return workflow_to_dict(self)

    def to_yaml(self) -> str:
        """The manifest as YAML; ``fluxnb.load(wf.to_yaml())`` gives the same workflow."""
        import yaml

        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        return yaml.dump(
            self.to_dict(),
            Dumper=dumper,
            sort_keys=False,
            default_flow_style=None,
            allow_unicode=True,
        )

    def manifest_text(self) -> str:
        """The text recorded with each run: the loaded text while the workflow is as loaded
        (a step added or replaced since is not in it), else :meth:`to_yaml` (cached).

        A workflow of more than FAST_YAML_STEPS steps is written as block keys with JSON
        values (still YAML, read back the same) straight from its steps
        (``_manifest_write.fast_manifest``): ~45x faster than PyYAML at 10,000 steps, so a
        first run of a big workflow built in Python does not spend its time writing it.
        """
        self._infer_dependencies()
        loaded = self._text
        if loaded is not None and loaded[0] == self._version:
            return loaded[1]
        if self._yaml is None or self._yaml[0] != self._version:
            text = None
            if len(self._steps) > FAST_YAML_STEPS:
                from ._manifest_write import fast_manifest

                text = fast_manifest(self)
            self._yaml = (self._version, text if text is not None else self.to_yaml())
        return self._yaml[1]

    def to_net(self) -> Net:
        """The Petri net this DAG compiles to (steps are transitions, edges places)."""
        from ._net import compile_dag

        self.validate()
        return compile_dag(self)

    def _compiled_net(self) -> Net:
        """``to_net()``, compiled once per version of the workflow."""
        self._infer_dependencies()
        if self._net is None or self._net[0] != self._version:
            self._net = (self._version, self.to_net())
        return self._net[1]

    def to_networkx(self) -> Any:
        """A ``networkx.DiGraph`` of the steps (an edge per dependency)."""
        import networkx as nx

        g = nx.DiGraph(name=self.name)
        for step in self.steps.values():
            g.add_node(step.id, run=step.reference)
            for dep in step.depends_on:
                g.add_edge(dep, step.id)
        return g

    # ------------------------------------------------------------------ running
    def run(self, namespace: Mapping[str, Any] | None = None, **options: Any) -> Any:
        """Run synchronously; same options as :func:`fluxnb.run`. Returns a ``RunResult``."""
        from ..engine import run  # the one upward import: a convenience, made on call

        return run(self, namespace=namespace, **options)

    async def arun(self, namespace: Mapping[str, Any] | None = None, **options: Any) -> Any:
        """Run on the current event loop; same options as :func:`fluxnb.arun`."""
        from ..engine import arun

        return await arun(self, namespace=namespace, **options)

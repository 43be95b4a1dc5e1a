"""Find each step's callable and check that it can take the step's inputs.

A step's callable is, in order: the function given in Python; else its ``run`` reference
(or its id) looked up in the namespace given to the loader; else ``run`` imported as
``module:attr`` (or ``module.attr``). Nothing is ever ``eval``-ed.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import inspect
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._exceptions import Problem, ResolutionError
from ._graph import suggest

if TYPE_CHECKING:
    from ._model import Step, Workflow


class Binding:
    """How a step's callable is called: which dependency outputs it takes, and ctx.

    Immutable; equal when its four fields are.

    >>> Binding(len, frozenset({"a"}), False, False).passed
    frozenset({'a'})
    """

    __slots__ = ("fn", "is_async", "passed", "wants_ctx")

    #: The callable.
    fn: Callable[..., Any]
    #: Dependency ids passed as keywords (the rest only order the steps).
    passed: frozenset[str]
    #: Whether the callable declares a ``ctx`` parameter.
    wants_ctx: bool
    #: Whether calling it returns a coroutine.
    is_async: bool

    def __init__(
        self, fn: Callable[..., Any], passed: frozenset[str], wants_ctx: bool, is_async: bool
    ) -> None:
        self._start(fn, wants_ctx, is_async)
        object.__setattr__(self, "passed", passed)

    def _start(self, fn: Callable[..., Any], wants_ctx: bool, is_async: bool) -> None:
        _set = object.__setattr__
        _set(self, "fn", fn)
        _set(self, "wants_ctx", wants_ctx)
        _set(self, "is_async", is_async)

    def _fields(self) -> tuple[Any, ...]:
        return (self.fn, self.passed, self.wants_ctx, self.is_async)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a Binding is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"a Binding is immutable: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Binding):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        fn, passed, ctx, is_async = self._fields()
        return f"Binding(fn={fn!r}, passed={passed!r}, wants_ctx={ctx!r}, is_async={is_async!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Binding, self._fields())


class PassesAll(Binding):
    """A Binding that passes every dependency of its step: it keeps the step's own
    ``depends_on`` tuple and makes ``passed`` from it when asked (rarely: caching, debug,
    streams), not a frozenset per step (216 bytes each: a chain of 100,000 steps whose
    callables take them all kept 100,000 sets). The game reads ``fn``, ``wants_ctx`` and
    ``is_async`` only; ``Binding.passed`` stays a plain attribute for the net engine."""

    __slots__ = ("_deps",)

    _deps: tuple[str, ...]

    def __init__(
        self, fn: Callable[..., Any], deps: tuple[str, ...], wants_ctx: bool, is_async: bool
    ) -> None:
        self._start(fn, wants_ctx, is_async)
        object.__setattr__(self, "_deps", deps)

    @property
    def passed(self) -> frozenset[str]:  # type: ignore[override]  # read-only, as Binding's is
        return frozenset(self._deps)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Binding, self._fields())


@dataclass(frozen=True)
class ImportPolicy:
    """Which modules ``module:attr`` references may be imported from (a control plane's
    ``c.FluxnbServer.allowed_modules``): importing a module runs its code, and calling
    what it holds runs anything (``subprocess:getoutput``).

    Example:
        >>> with allowed_imports(ImportPolicy(("mysteps",), "c.X.allowed")):
        ...     import_reference("os:getcwd")
        Traceback (most recent call last):
        LookupError: module 'os' (of 'os:getcwd') is not in c.X.allowed (allowed: mysteps); ...
    """

    #: Module names; each allows itself and its submodules (``"pkg"``: ``pkg.mod`` too).
    #: ``"*"`` allows every module. A ``__main__`` module is never allowed: importing one
    #: runs a program.
    allowed: tuple[str, ...]
    #: Where the list is set, for the message (e.g. ``c.FluxnbServer.allowed_modules``).
    setting: str

    def allows(self, module: str) -> bool:
        if module == "__main__" or module.endswith(".__main__"):
            return False
        return any(a in ("*", module) or module.startswith(a + ".") for a in self.allowed)

    def check(self, module: str, ref: str) -> None:
        if not self.allows(module):
            listed = ", ".join(self.allowed) or "nothing"
            raise LookupError(
                f"module '{module}' (of '{ref}') is not in {self.setting} (allowed: "
                f"{listed}); an admin of the server may add it there"
            )


_POLICY: contextvars.ContextVar[ImportPolicy | None] = contextvars.ContextVar(
    "fluxnb_import_policy", default=None
)


#: The policy where no ``allowed_imports`` block is in force (a thread that did not copy
#: its context, say): a control plane's worker process sets it for its whole life.
_PROCESS_POLICY: list[ImportPolicy | None] = [None]


def set_process_import_policy(policy: ImportPolicy | None) -> None:
    """Make ``policy`` the default of this whole process (for a process that only ever
    resolves for one control plane: its workers)."""
    _PROCESS_POLICY[0] = policy


@contextlib.contextmanager
def allowed_imports(policy: ImportPolicy | None) -> Iterator[None]:
    """Within the block (this context and tasks or copies made from it), references
    resolve only from the modules ``policy`` allows; None: the process's policy (any module
    unless ``set_process_import_policy`` said otherwise)."""
    token = _POLICY.set(policy)
    try:
        yield
    finally:
        _POLICY.reset(token)


def import_reference(ref: str) -> Any:
    """``pkg.mod:attr.sub`` or ``pkg.mod.attr`` → the object. Raises LookupError, also
    when importing the module fails in any way (SystemExit too: a module is not allowed
    to end the process that resolves it) or the import policy in force refuses it."""
    if ":" in ref:
        module_name, _, attr = ref.partition(":")
    elif "." in ref:
        module_name, _, attr = ref.rpartition(".")
    else:
        raise LookupError(f"'{ref}' is not a module:attr reference")
    policy = _POLICY.get() or _PROCESS_POLICY[0]
    if policy is not None:  # before importing: an import runs the module's code
        policy.check(module_name, ref)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise LookupError(f"cannot import module '{module_name}': {exc}") from None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit and the like: a refusal too
        raise LookupError(
            f"importing module '{module_name}' failed: {type(exc).__name__}: {exc}"
        ) from None
    for part in attr.split("."):
        if policy is not None and part.startswith("__"):  # __globals__, __class__, ...
            raise LookupError(f"'{ref}' names a dunder attribute '{part}', which is refused")
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise LookupError(f"module '{module_name}' has no attribute '{attr}'") from None
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a module's __getattr__ may raise anything
            raise LookupError(
                f"reading '{attr}' of module '{module_name}' failed: {type(exc).__name__}: {exc}"
            ) from None
        if policy is not None and inspect.ismodule(obj):  # pkg:os.system
            policy.check(obj.__name__, ref)
    if policy is not None and (inspect.isroutine(obj) or inspect.isclass(obj)):
        home = getattr(obj, "__module__", None)
        if isinstance(home, str):  # an allowed module's `from subprocess import getoutput`
            policy.check(home, ref)
    return obj


#: Names IPython puts into a notebook's namespace itself; never what a user misspelt.
IPYTHON_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "open"})


def suggestable_names(namespace: Mapping[str, Any] | None) -> list[str]:
    """The names of ``namespace`` a "did you mean" may offer: not private (``_x``, and so
    IPython's ``_``, ``__``, ``_i``, ``_i1``, ``_ih``, ``_oh``, ``_dh``, ``_1``), and not
    IPython's own ``In``, ``Out``, ``get_ipython``, ``exit``, ``quit``, ``open`` unless the
    notebook defined that name itself."""
    return [
        k
        for k, v in (namespace or {}).items()
        if isinstance(k, str)
        and not k.startswith("_")
        and not (k in IPYTHON_NAMES and getattr(v, "__module__", None) != "__main__")
    ]


class SearchedNamespace(dict):  # type: ignore[type-arg]  # a plain dict for lookups
    """A namespace that says where its names came from, for "no callable named" messages
    (the CLI's: the modules given with ``--import``, and the folders searched)."""

    def __init__(self, values: Mapping[str, Any], *, searched: str, how: str) -> None:
        super().__init__(values)
        #: Where the names were looked for, e.g. "the modules imported with --import steps".
        self.searched = searched
        #: What to do about a missing name, e.g. "pass --import MODULE".
        self.how = how


def find_callable(step: Step, namespace: Mapping[str, Any] | None) -> Callable[..., Any]:
    """The callable for ``step``; LookupError with a helpful message if there is none."""
    if step.fn is not None:
        return step.fn
    if step.llm is not None:  # the one upward import: only for a step that is an LLM call
        from ..llms._step import llm_step

        return llm_step(step)
    return lookup_callable(
        step.reference,
        f"step '{step.id}'",
        namespace,
        f"set 'run: module:function' on agent '{step.id}'",
    )


def lookup_callable(
    ref: str, owner: str, namespace: Mapping[str, Any] | None, fix: str
) -> Callable[..., Any]:
    """``ref`` looked up in ``namespace``, else imported as ``module:attr``; LookupError
    naming ``owner`` (e.g. "step 'fetch'"), with "did you mean" and ``fix`` if not found."""
    ns = namespace or {}
    if ref in ns:
        obj = ns[ref]
    elif ":" in ref or "." in ref:
        obj = import_reference(ref)
    else:
        names = [k for k in suggestable_names(ns) if callable(ns[k])]
        hint = suggest(ref, names)
        if isinstance(namespace, SearchedNamespace):
            where, how = f" in {namespace.searched}", namespace.how
        else:
            where = ""
            how = "define a function with that name" + (
                " in the notebook" if namespace is not None else " and pass its namespace"
            )
        raise LookupError(
            f"no callable named '{ref}' for {owner}{where}"
            + (f" (did you mean '{hint}'?)" if hint else "")
            + f"; {how}, or {fix}"
        )
    if not callable(obj):
        raise LookupError(f"'{ref}' for {owner} is a {type(obj).__name__}, not callable")
    return obj


@dataclass(frozen=True)
class _Signature:
    """What binding needs to know of a callable's signature (computed once per callable)."""

    text: str
    named: frozenset[str]
    var_kw: bool
    required: tuple[str, ...]
    positional_only_required: bool
    is_async: bool
    known: bool  # False: no signature could be read (some builtins)


def _signature(fn: Callable[..., Any]) -> _Signature:
    """What binding needs to know of ``fn``'s parameters; kept per function object while it
    lives (inspect.signature costs ~30 µs, and a designer re-checks every step per edit)."""
    try:
        return _SIGNATURES[fn]
    except Exception:  # not seen yet, not weakly referable / hashable, or its __eq__ raised
        pass
    found = _read_signature(fn)
    with contextlib.suppress(Exception):
        _SIGNATURES[fn] = found
    return found


_SIGNATURES: weakref.WeakKeyDictionary[Any, _Signature] = weakref.WeakKeyDictionary()


def read_signature(fn: Any) -> inspect.Signature | None:
    """``inspect.signature(fn)``, or None when there is none to read (some builtins).
    A callable object whose own ``__eq__`` raises (inspect compares it with ``type``)
    is read through its ``__call__``: its parameters are still its step's inputs."""
    try:
        return inspect.signature(fn)
    except Exception:
        if isinstance(fn, type) or inspect.isroutine(fn):
            return None  # a builtin without one (or a class whose metaclass raised)
        try:  # any error: numpy-like objects raise ValueError or TypeError from __eq__
            return inspect.signature(fn.__call__)
        except Exception:
            return None


def _read_signature(fn: Callable[..., Any]) -> _Signature:
    sig = read_signature(fn)
    if sig is None:
        return _Signature("(...)", frozenset(), False, (), False, _is_async(fn), False)
    params = sig.parameters
    named = frozenset(
        n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )
    required = tuple(
        n
        for n, p in params.items()
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )
    return _Signature(
        f"{_name(fn)}{sig}",
        named,
        any(p.kind is p.VAR_KEYWORD for p in params.values()),
        required,
        any(p.kind is p.POSITIONAL_ONLY and p.default is p.empty for p in params.values()),
        _is_async(fn),
        True,
    )


def bind(step: Step, fn: Callable[..., Any], sig: _Signature | None = None) -> Binding:
    """Check ``fn`` can take the step's inputs; TypeError with the reason if not.

    A dependency that is not a parameter of ``fn`` (and no ``**kwargs``) only orders
    the steps; a ``with`` key it cannot take, or a required parameter nothing fills,
    is an error.
    """
    sig = sig or _signature(fn)
    if not sig.known:
        return Binding(fn, frozenset(), False, sig.is_async)
    named, var_kw = sig.named, sig.var_kw
    deps, with_ = step.depends_on, step.with_
    wants_ctx = "ctx" in named and "ctx" not in deps and "ctx" not in with_
    extra = [k for k in with_ if k not in named] if with_ and not var_kw else ()
    if extra:
        raise TypeError(
            f"its 'with' passes {', '.join(repr(k) for k in extra)}, which "
            f"{sig.text} does not accept"
        )
    if sig.positional_only_required:
        raise TypeError(f"{sig.text} has positional-only parameters without defaults")
    every = var_kw or all(d in named for d in deps)  # passes every dependency
    passed = frozenset() if every else frozenset(d for d in deps if d in named)
    missing: list[str] = []
    if sig.required:  # (a step with many inputs and a **kwargs callable: none)
        have = (deps if len(deps) < 8 else frozenset(deps)) if every else passed
        missing = [
            n
            for n in sig.required
            if n not in have and n not in with_ and not (n == "ctx" and wants_ctx)
        ]
    if missing:
        raise TypeError(
            f"{sig.text} needs {', '.join(repr(m) for m in missing)}, which is neither "
            "a dependency (depends_on), a 'with' value, nor ctx"
        )
    if every and deps:  # keep the step's own tuple, not a set of it
        return PassesAll(fn, deps, wants_ctx, sig.is_async)
    return Binding(fn, passed, wants_ctx, sig.is_async)


def _is_async(fn: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - an async __call__ on an instance
    return call is not None and inspect.iscoroutinefunction(call)


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def find_callables(wf: Workflow, namespace: Mapping[str, Any] | None) -> dict[str, Any]:
    """The callable of every step, or one ResolutionError naming every step without one."""
    problems: list[Problem] = []
    fns: dict[str, Any] = {}
    for i, (sid, step) in enumerate(wf.steps.items()):
        try:
            fns[sid] = find_callable(step, namespace)
        except LookupError as exc:
            line, col = wf.position(_agent_path(wf, sid) or ("pipeline", i, "step"))
            problems.append(
                Problem(
                    "unresolved_callable",
                    f"pipeline[{i}].step",
                    str(exc),
                    line,
                    col,
                    expected="a callable",
                    found=step.reference,
                )
            )
    if problems:
        raise ResolutionError(problems, wf.source)
    return fns


def bind_all(wf: Workflow, fns: Mapping[str, Any]) -> dict[str, Binding]:
    """A Binding for every step, or one ResolutionError naming every signature misfit."""
    problems: list[Problem] = []
    bindings: dict[str, Binding] = {}
    sigs: dict[int, tuple[Any, _Signature]] = {}  # many steps often share one callable
    # ...and then often one Binding: steps with the same callable, inputs and with: keys
    # share it (a wide fan-out of 100,000 steps keeps one, not 100,000 with a set each)
    shared: dict[tuple[int, tuple[str, ...], tuple[str, ...]], Binding] = {}
    wf._infer_dependencies()
    last: tuple[Any, Any, Any, Binding | None] = (None, None, None, None)
    for i, (sid, step) in enumerate(wf._steps.items()):
        fn = fns[sid]
        deps, with_ = step.depends_on, step.with_
        if fn is last[0] and deps is last[1] and with_ is last[2]:  # a fan-out: as before
            bindings[sid] = last[3]  # type: ignore[assignment]  # set with last[0]
            continue
        if id(fn) not in sigs:
            sigs[id(fn)] = (fn, _signature(fn))
        key = (id(fn), deps, tuple(with_))
        try:
            binding = shared.get(key)
            if binding is None:
                binding = shared[key] = bind(step, fn, sigs[id(fn)][1])
            bindings[sid] = binding
            last = (fn, deps, with_, binding)
        except TypeError as exc:
            line, col = wf.position(("pipeline", i, "step"))
            problems.append(
                Problem("bad_signature", f"pipeline[{i}].step", f"step '{sid}': {exc}", line, col)
            )
    if problems:
        raise ResolutionError(problems, wf.source)
    return bindings


def resolve_callables(wf: Workflow, namespace: Mapping[str, Any] | None) -> dict[str, Binding]:
    """A Binding for every step, or a ResolutionError listing every step that has none."""
    return bind_all(wf, find_callables(wf, namespace))


def _agent_path(wf: Workflow, step_id: str) -> tuple[str | int, ...] | None:
    doc = wf._located
    if doc is None or not isinstance(doc.data, dict):
        return None
    for i, agent in enumerate(doc.data.get("agents") or []):
        if isinstance(agent, dict) and agent.get("id") == step_id:
            return ("agents", i, "run") if "run" in agent else ("agents", i, "id")
    return None

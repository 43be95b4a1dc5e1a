"""``%%fluxroute``, ``%fluxsql`` / ``%%fluxsql``, ``%fluxtrace`` and ``%fluxdebug``.

Thin: each magic parses its options, calls the public Python API, and displays the outcome.
Errors a user makes are a short red message pointing at the cell line (IPython's
UsageError), never a traceback wall.

Why over 400 lines: IPython registers one Magics class holding every magic; each magic is
argument parsing plus a call into the public API (the logic lives there).
"""

from __future__ import annotations

import asyncio
import re
import signal
import threading
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import (
    Magics,
    cell_magic,
    line_cell_magic,
    line_magic,
    magics_class,
    no_var_expand,
)
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .._exceptions import FluxError, ManifestError
from .._html import error_html, manifest_error_text
from .._plural import plural


def _in_kernel(shell: Any) -> bool:
    return getattr(shell, "kernel", None) is not None


def _may_validate(obj: Any) -> None:
    """The session's role may validate this manifest (its router.rbac.validate_roles)."""
    from .._session import Action
    from ..store._audit import authorize

    try:
        authorize(Action.VALIDATE, workflow=obj.name, rbac=obj.router.rbac)
    except FluxError as err:
        raise UsageError(str(err)) from None


class _Banner:
    """A red message: HTML in a notebook, plain text in a terminal."""

    def __init__(self, title: str, body: str) -> None:
        self.title, self.body = title, body

    def _repr_html_(self) -> str:
        return error_html(self.title, self.body)

    def __repr__(self) -> str:
        return f"{self.title}\n{self.body}"


def _show_error(title: str, body: str) -> None:
    from IPython.display import display

    display(_Banner(title, body))


class _Interrupts:
    """While background runs are in flight, an interrupt cancels them.

    In ipykernel, SIGINT is ignored while the kernel is idle and raises KeyboardInterrupt
    while a cell runs (it swaps handlers around each cell). fluxnb registers its handler as
    the one ipykernel restores after each cell, so the stop button pressed while the kernel
    is idle cancels the background runs; pressed while a cell runs, it interrupts that cell.
    In a terminal IPython, the handler is chained in front of the current one.
    """

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.runs: dict[str, Any] = {}  # workflow name -> Run handle
        self._lock = threading.Lock()
        self._chained: Any = None

    def add(self, name: str, handle: Any) -> None:
        with self._lock:
            self.runs[name] = handle
        kernel = getattr(self.shell, "kernel", None)
        if kernel is not None and hasattr(kernel, "saved_sigint_handler"):
            kernel.saved_sigint_handler = self._on_idle_sigint
        elif self._chained is None and threading.current_thread() is threading.main_thread():
            self._chained = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._on_sigint)

    def cancel_all(self) -> int:
        with self._lock:
            handles = [h for h in self.runs.values() if not h.done()]
        for h in handles:
            h.cancel()
        return len(handles)

    def _on_idle_sigint(self, signum: int, frame: Any) -> None:
        self.cancel_all()  # an idle kernel ignores SIGINT otherwise: nothing to interrupt

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self.cancel_all()
        previous = self._chained
        if callable(previous):
            previous(signum, frame)
        else:
            raise KeyboardInterrupt

    def prune(self) -> None:
        with self._lock:
            self.runs = {k: h for k, h in self.runs.items() if not h.done()}


@magics_class
class FluxMagics(Magics):
    """fluxnb's magics; ``%load_ext fluxnb`` registers them."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.background = _Interrupts(shell)
        self.last_run: Any = None

    def _expand(self, value: str | None) -> str | None:
        """``$name`` or ``{name}`` in an option of a magic that turns IPython's expansion
        off (``%fluxsql --store $S``); never a file literally named ``$S``."""
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\}", value or "")
        if m is None:
            if value is not None and value.startswith("$"):
                raise UsageError(
                    f"{value}: only a whole $name (a notebook variable) is expanded in an "
                    "option; set a variable to the path and write $name"
                )
            return value
        name = m.group(1) or m.group(2)
        if name not in self._ns:
            raise UsageError(f"{value} names no notebook variable")
        return str(self._ns[name])

    @property
    def _ns(self) -> dict[str, Any]:
        assert self.shell is not None
        return self.shell.user_ns  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ %%fluxroute
    @magic_arguments()
    @argument("name", nargs="?", help="the workflow's name (default: the manifest's)")
    @argument("-o", "--output", metavar="VAR", help="store the RunResult (or handle) in VAR")
    @argument("--validate", action="store_true", help="only validate the manifest")
    @argument("--tenant", help="record the run under this tenant")
    @argument("--namespace", help="record the run under this namespace")
    @argument("--store", metavar="PATH", help="the trace store (default: the default store)")
    @argument("--no-progress", action="store_true", help="no live progress display")
    @argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a value for {{KEY}} in the cell (YAML scalar; wins over notebook variables)",
    )
    @argument(
        "--background",
        action="store_true",
        help="start the run as a task on the kernel's loop and return a handle at once",
    )
    @argument("--executor", metavar="local|dask|dask://HOST:PORT", help="where steps run")
    @argument(
        "--cache",
        nargs="?",
        const="use",
        choices=["use", "refresh", "off"],
        help="incremental run: reuse the recorded output of every step whose code, inputs "
        "and params are unchanged (refresh: run all and record anew)",
    )
    @argument("--seed", type=int, default=0, help="seed for jittered backoff")
    @argument("--max-firings", type=int, help="nets: stop after this many firings")
    @argument(
        "--interactive",
        action="store_true",
        help="nets: open an interactive run (fire/put by hand) instead of running to the end",
    )
    @cell_magic
    def fluxroute(self, line: str, cell: str) -> Any:
        """Run the workflow in the cell body (a fluxnb manifest) with the notebook's functions."""
        from .. import engine, spec

        args = parse_argstring(self.fluxroute, line)
        ns = self._ns
        text = cell
        try:
            # {{name}}: --param over notebook variables over the cell's params: defaults
            loaded = spec.load_any(text, source="cell", params=_params(args.param), lookup=ns)
            if isinstance(loaded, spec.Net):
                return self._net_cell(loaded, args)
            wf = loaded
            if args.name:
                wf.name = args.name
            if args.namespace or args.executor:
                from dataclasses import replace

                wf.router = replace(
                    wf.router,
                    namespace=args.namespace or wf.router.namespace,
                    executor=args.executor or wf.router.executor,
                )
            wf.validate(resolve=True, namespace=ns)
        except ManifestError as err:
            raise UsageError("invalid workflow\n" + manifest_error_text(err, text, 2)) from None
        if args.validate:
            _may_validate(wf)
            print(f"ok: workflow '{wf.name}', {plural(len(wf), 'step')}: {' → '.join(wf.order())}")
            return None
        store: Any = engine.DEFAULT if args.store is None else args.store
        recorder = engine._setup.recorder_for(store)
        if not args.no_progress:
            from ._progress import NotebookProgress

            recorder = NotebookProgress(recorder, wf.order(), wf.name, _in_kernel(self.shell))
        self._replace_in_flight(wf.name)
        try:
            if args.background:
                here = _loop_running()
                handle = engine.start(
                    wf,
                    ns,
                    store=recorder,
                    tenant=args.tenant,
                    seed=args.seed,
                    here=here,
                    cache=args.cache,
                )
                self.background.add(wf.name, handle)
                if args.output:
                    ns[args.output] = handle
                return handle
            result = engine.run(
                wf, ns, store=recorder, tenant=args.tenant, seed=args.seed, cache=args.cache
            )
        except KeyboardInterrupt as exc:
            partial = getattr(exc, "run_result", None)
            if partial is not None:
                self._remember(partial, args.output)
                _show_error(
                    "interrupted",
                    f"run {partial.run_id} was cancelled; every row so far is recorded",
                )
                return partial
            raise
        except FluxError as err:
            raise UsageError(str(err)) from None
        self._remember(result, args.output)
        if not result.ok:
            self._failure_banner(result, args.output or "result")
        return result

    def _net_cell(self, net: Any, args: Any) -> Any:
        """``%%fluxroute`` with a Petri-net body: run it, or open an interactive run."""
        from dataclasses import replace

        from .. import engine

        ns = self._ns
        if args.background:
            raise UsageError(
                "--background is for workflows; drive a net by hand with --interactive, "
                "or run it in the background with asyncio.ensure_future(fluxnb.arun(...))"
            )
        if args.name:
            net = replace(net, name=args.name)
        if args.namespace:
            net = replace(net, router=replace(net.router, namespace=args.namespace))
        store: Any = engine.DEFAULT if args.store is None else args.store
        try:
            if args.validate:
                _may_validate(net)
                engine._net_run.plan_net(net, ns)
                print(
                    f"ok: net '{net.name}', {plural(len(net.places), 'place')}, "
                    f"{plural(len(net.transitions), 'transition')}"
                )
                return None
            if args.interactive:
                result = engine.interactive(
                    net,
                    ns,
                    store=store,
                    tenant=args.tenant,
                    seed=args.seed,
                    max_firings=args.max_firings,
                )
            else:
                result = engine.run(
                    net,
                    ns,
                    store=store,
                    tenant=args.tenant,
                    seed=args.seed,
                    executor=args.executor,
                    max_firings=args.max_firings,
                )
        except ManifestError as err:  # a missing or misfit action: found before any run
            raise UsageError("invalid net\n" + manifest_error_text(err, None)) from None
        except FluxError as err:
            raise UsageError(str(err)) from None
        self._remember(result, args.output)
        return result

    def _remember(self, result: Any, output: str | None) -> None:
        self.last_run = result
        if output:
            self._ns[output] = result

    def _replace_in_flight(self, name: str) -> None:
        self.background.prune()
        old = self.background.runs.get(name)
        if old is not None and not old.done():
            old.cancel()
            print(
                f"fluxnb: cancelled run {old.run_id} of '{name}', still in flight: "
                "this cell replaces it"
            )

    def _failure_banner(self, result: Any, var: str) -> None:
        from ..engine._states import StepStatus

        for sid, err in result.errors.items():
            step = result.steps[sid]
            if step.status is not StepStatus.FAILED:
                continue
            body = (
                f"step '{sid}' failed on attempt {err.attempt}: {err.type}: {err.message}\n"
                f"{result.reason or ''}\n\n{err.traceback.rstrip()}\n\n"
                f"debug it: fn = {var}.debug('{sid}', globals()); "
                f"fn(**{sid}_inputs)   (or %fluxdebug {result.run_id} {sid})"
            )
            _show_error(f"run {result.run_id} failed", body)
            break

    # ------------------------------------------------------------------ %fluxdesign
    @magic_arguments()
    @argument(
        "name",
        nargs="?",
        help="a notebook variable holding a Workflow, a Net, manifest text, or a Designer; "
        "or a .yaml / .pnml file (none: a new design)",
    )
    @argument("--net", action="store_true", help="a new design is a Petri net (default: a DAG)")
    @argument("-o", "--output", metavar="VAR", help="store the Designer in VAR")
    @argument("--store", metavar="PATH", help="where runs from the designer are recorded")
    @line_magic
    def fluxdesign(self, line: str) -> Any:
        """Open the visual designer on a workflow, a net or a manifest (or a new design)."""
        from ..designer._widget import Designer
        from ..engine import DEFAULT

        args = parse_argstring(self.fluxdesign, line)
        ns = self._ns
        store: Any = DEFAULT if args.store is None else self._expand(args.store)
        opts = {"namespace": ns, "store": store}
        try:
            target = ns.get(args.name, args.name) if args.name else None
            if target is None:
                d = Designer(mode="net" if args.net else "dag", **opts)
            elif isinstance(target, Designer):
                d = target
            elif isinstance(target, str) and target.rstrip().endswith(".pnml"):
                d = Designer.from_pnml(target, **opts)
            elif isinstance(target, str):
                d = Designer.from_yaml(target, **opts)
            else:
                d = Designer.from_workflow(target, **opts)
        except ManifestError as err:
            raise UsageError("cannot open the design\n" + manifest_error_text(err, None)) from None
        except FluxError as err:
            raise UsageError(str(err)) from None
        if args.output:
            ns[args.output] = d
        return d

    # ------------------------------------------------------------------ %fluxsession
    @magic_arguments()
    @argument("--role", choices=["viewer", "operator", "admin"], help="act in this role")
    @argument("--tenant", help="bill runs to this tenant by default")
    @argument("--namespace", help="act in this namespace")
    @line_magic
    def fluxsession(self, line: str) -> Any:
        """Show who is acting (role, tenant, namespace), or change it for this kernel."""
        from ..store._audit import session

        args = parse_argstring(self.fluxsession, line)
        try:
            return session(args.role, tenant=args.tenant, namespace=args.namespace)
        except FluxError as err:
            raise UsageError(str(err)) from None

    # ------------------------------------------------------------------ %fluxsql
    @magic_arguments()
    @argument("-o", "--output", metavar="VAR", help="store the DataFrame in VAR")
    @argument("--store", metavar="PATH", help="the store to query (default: the default store)")
    @argument("query", nargs="*", help="the SQL (line form)")
    @no_var_expand  # $name is a bound SQL parameter, never text IPython pastes in
    @line_cell_magic
    def fluxsql(self, line: str, cell: str | None = None) -> Any:
        """SQL on the trace store; ``$name`` binds the notebook variable ``name``,
        ``$name.attr`` its attribute (see ``_sql_params``)."""
        from ..store import open_store

        args = parse_argstring(self.fluxsql, line)
        query = cell if cell is not None else " ".join(args.query)
        if not query.strip():
            raise UsageError("%fluxsql needs a query, e.g. %fluxsql SELECT * FROM runs")
        from ._sql_params import bind_params, unbindable, unbindable_message

        query, params, exprs = bind_params(query, self._ns)
        try:
            frame = open_store(self._expand(args.store)).sql(query, params or None)
        except FluxError as err:
            bad = unbindable(params) if params else None
            if bad is not None:
                raise UsageError(unbindable_message(exprs[bad[0]], bad[1])) from None
            raise UsageError(str(err)) from None
        if args.output:
            self._ns[args.output] = frame
        return frame

    # ------------------------------------------------------------------ %fluxtrace
    @magic_arguments()
    @argument(
        "run", nargs="?", help="a run id (default: this notebook's last run, or the store's latest)"
    )
    @argument("--store", metavar="PATH")
    @line_magic
    def fluxtrace(self, line: str) -> Any:
        """A timeline of a run: one bar per attempt, coloured by status."""
        from ..store import timeline

        args = parse_argstring(self.fluxtrace, line)
        run = args.run or (self.last_run.run_id if self.last_run is not None else None)
        store = args.store or (
            self.last_run.store if self.last_run is not None and not args.run else None
        )
        try:
            return timeline(run, store=store)
        except FluxError as err:
            raise UsageError(str(err)) from None

    # ------------------------------------------------------------------ %fluxdebug
    @magic_arguments()
    @argument("run", help="the run id")
    @argument("step", help="the step to debug")
    @argument("--store", metavar="PATH")
    @argument(
        "--trust",
        action="store_true",
        help="unpickle recorded inputs this store did not sign (runs their code)",
    )
    @line_magic
    def fluxdebug(self, line: str) -> Any:
        """Put a step's recorded inputs into the notebook and return its callable."""
        from ..engine._history import debug

        args = parse_argstring(self.fluxdebug, line)
        try:
            fn = debug(args.run, args.step, self._ns, store=args.store, trust=args.trust)
        except (FluxError, LookupError) as err:
            raise UsageError(str(err)) from None
        return fn  # debug() said which inputs became variables and which were left alone


def _params(items: list[str]) -> dict[str, Any]:
    """``--param KEY=VALUE`` options, typed as YAML scalars (spec's parse_param)."""
    from ..spec._params import parse_params

    try:
        return parse_params(items)
    except FluxError as err:
        raise UsageError(str(err)) from None


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True

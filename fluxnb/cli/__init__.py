"""The ``fluxnb`` command: validate, run, sql, runs, replay, resume, diff, export, import,
analyze, rates, invoice, usage, metrics, scaffold, triggers, serve (run, runs, sql and
invoice also ``--remote URL``: on a control plane).

Every command takes ``--role`` and ``--namespace`` (else FLUXNB_ROLE / FLUXNB_NAMESPACE).

Exit codes: 0 success; 1 the run failed; 2 invalid input (manifest, SQL, arguments, rate
card); 3 the store is locked by another program; 4 permission denied (the session's role
may not do it); 5 ``analyze`` gave up (``--timeout`` or ``--max-states``); 6 the run's
rows could not be recorded (a full disk); 130 interrupted (the run is recorded cancelled).
``store check`` / ``doctor``: 1 when segments were set aside.

Why over 400 lines: the parser of every command and the small run / validate / analyze
handlers; bigger groups have their own modules (_history, _billing, _store_cmd, _scaffold).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._exceptions import (
    FluxError,
    ManifestError,
    PermissionDenied,
    RecordingFailed,
    StoreLockedError,
)
from .._plural import plural
from ._billing import BILLING_COMMANDS, add_billing_commands
from ._cache_cmd import CACHE_COMMANDS, add_cache_commands
from ._history import HISTORY_COMMANDS, add_history_commands
from ._remote_cmd import add_remote_commands, with_remote
from ._scaffold import SCAFFOLD_COMMANDS, add_scaffold_command
from ._store_cmd import STORE_COMMANDS, add_store_commands
from ._triggers_cmd import TRIGGER_COMMANDS, add_trigger_commands

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_LOCKED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_DENIED = 4
EXIT_GAVE_UP = 5  # analyze: past --timeout or --max-states, no answer
EXIT_NOT_RECORDED = 6  # the store could not take the run's rows (a full disk)


def _parser() -> argparse.ArgumentParser:  # noqa: PLR0915 (every command's parser, flat)
    p = argparse.ArgumentParser(
        prog="fluxnb",
        description="Design, run and analyse workflows; traces go to a DuckDB store.",
    )
    p.add_argument("--version", action="store_true", help="print fluxnb's version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def store_opt(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--store",
            metavar="PATH",
            help="the DuckDB store file (default: $FLUXNB_STORE or .fluxnb/fluxnb.duckdb)",
        )

    def import_opt(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--import",
            dest="imports",
            action="append",
            default=[],
            metavar="MODULE_OR_FILE",
            help="a module name or .py file whose functions are the step callables (repeatable)",
        )

    def param_opt(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--param",
            dest="params",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a value for {{KEY}} in the manifest, typed as YAML (n=3 is a number, "
            "x=abc text); wins over the manifest's params: defaults (repeatable)",
        )

    v = sub.add_parser("validate", help="check a manifest; exit 0 if valid, 2 if not")
    v.add_argument("file")
    import_opt(v)
    param_opt(v)
    v.add_argument(
        "--resolve", action="store_true", help="also check that every callable exists and fits"
    )

    r = sub.add_parser("run", help="run a manifest and print a summary")
    r.add_argument("file")
    store_opt(r)
    import_opt(r)
    param_opt(r)
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    r.add_argument("--tenant", help="record the run under this tenant")
    r.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the run's randomness: jittered backoff and, for nets, --choice random",
    )
    r.add_argument(
        "--executor",
        metavar="local|dask|dask://HOST:PORT",
        help="where steps run (default: the manifest's router.executor, else local)",
    )
    r.add_argument(
        "--max-firings",
        type=int,
        metavar="N",
        help="nets: stop after N firings (default: the net's max_firings, else 100000)",
    )
    r.add_argument(
        "--choice",
        choices=["priority", "random"],
        help="nets: how conflicts are resolved (default: the net's choice, else priority); "
        "random is seeded by --seed",
    )
    r.add_argument("--no-store", action="store_true", help="record nothing")
    r.add_argument(
        "--cache",
        nargs="?",
        const="use",
        choices=["use", "refresh", "off"],
        help="incremental run: reuse the recorded output of every step whose code, inputs "
        "and params are unchanged (--cache refresh: run all and record anew; default: the "
        "manifest's router.cache)",
    )
    r.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a live progress line on stderr (default: when stderr is a terminal)",
    )

    s = sub.add_parser("sql", help="run SQL on the store and print the result")
    s.add_argument("query", help="the SQL text, or - to read it from standard input")
    store_opt(s)
    s.add_argument("--json", action="store_true", help="print rows as JSON records")

    add_history_commands(sub, store_opt, import_opt)
    add_scaffold_command(sub)
    add_store_commands(sub, store_opt)
    add_trigger_commands(sub, store_opt)
    add_cache_commands(sub, store_opt)
    add_billing_commands(sub, store_opt)

    an = sub.add_parser(
        "analyze", help="analyse a Petri net (PNML or a net manifest): bounds, deadlocks, liveness"
    )
    an.add_argument("file", help="a .pnml file, or a .yaml net manifest")
    param_opt(an)
    an.add_argument("--json", action="store_true", help="print the answers as JSON")
    an.add_argument("--witness", action="store_true", help="also the firing sequence to a deadlock")
    an.add_argument(
        "--max-states",
        type=int,
        default=1_000_000,
        metavar="N",
        help="give up past N markings (default 1,000,000)",
    )
    an.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="give up after this many seconds (exit 5; default: no limit)",
    )

    rs = sub.add_parser("runs", help="list recent runs")
    store_opt(rs)
    rs.add_argument("--limit", type=int, default=20)
    rs.add_argument("--json", action="store_true", help="print rows as JSON records")
    add_remote_commands(sub, store_opt)
    for sp in {id(x): x for x in sub.choices.values()}.values():
        _session_opts(sp)
    sub.add_parser("version", help="print fluxnb's version")  # no --role: it reads nothing
    return p


def _version() -> str:
    """The installed distribution's version (what pip sees), else the package's own."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fluxnb")
    except PackageNotFoundError:  # run from a source tree that was never installed
        from .. import __version__

        return __version__


def _cmd_version(args: argparse.Namespace) -> int:
    print(f"fluxnb {_version()}")
    return EXIT_OK


def _session_opts(sp: argparse.ArgumentParser) -> None:
    groups = [a for a in sp._actions if isinstance(a, argparse._SubParsersAction)]
    if groups:  # rates set / list: the options go on the leaves only (argparse would let
        for group in groups:  # a leaf's default overwrite the parent's value)
            for leaf in group.choices.values():
                _session_opts(leaf)
        return
    sp.add_argument(
        "--role",
        choices=["viewer", "operator", "admin"],
        help="act in this role (default: $FLUXNB_ROLE, else admin)",
    )
    sp.add_argument(
        "--namespace",
        metavar="NAME",
        help="act in this namespace (default: $FLUXNB_NAMESPACE, else 'default')",
    )


def main(argv: Sequence[str] | None = None) -> int:
    import warnings

    _WARNED.clear()
    _NOTED.clear()
    formatter, warnings.formatwarning = warnings.formatwarning, _one_line_warning
    try:
        code = _main(argv)
    finally:
        warnings.formatwarning = formatter
    if argv is None and _abandoned_step_threads():
        # a timed-out or cancelled sync step's thread cannot be stopped, and Python would
        # wait for it at exit; everything is recorded and flushed, so leave now. Only as
        # the program (argv from sys.argv): main([...]) called in-process returns.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _one_line_warning(
    message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any
) -> str:
    """A warning as the command prints it: one line for people, without Python's source
    line (``fluxnb: the segment ... was set aside``), not ``.../_fold.py:101: ...``."""
    _WARNED.add(str(message))
    text = str(message).removeprefix("fluxnb: ").removeprefix("fluxnb ")
    kind = "warning" if category in (RuntimeWarning, UserWarning) else category.__name__
    return f"fluxnb: {kind}: {text}\n"


#: The warnings this command has printed (an error that repeats one is not printed again).
_WARNED: set[str] = set()


def _abandoned_step_threads() -> bool:
    return any(t.name.startswith("fluxnb-step") and t.is_alive() for t in threading.enumerate())


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:  # read only when asked: importlib.metadata costs ~30 ms
        return _cmd_version(args)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_INVALID
    try:
        with _session_of(args):
            code = int(_COMMANDS[args.command](args))
        _leave_complete(args)
        return code
    except PermissionDenied as exc:
        _error(str(exc))
        return EXIT_DENIED
    except ManifestError as exc:
        _error(str(exc))
        return EXIT_INVALID
    except StoreLockedError as exc:
        _error(str(exc))
        return EXIT_LOCKED
    except RecordingFailed as exc:
        _error(str(exc))
        return EXIT_NOT_RECORDED
    except FluxError as exc:
        _error(str(exc))
        return EXIT_INVALID
    except BrokenPipeError:  # `fluxnb sql ... | head`
        return EXIT_OK


def _session_of(args: argparse.Namespace) -> Any:
    """The session a command acts in: ``--role`` / ``--namespace`` over the environment."""
    import contextlib

    from ..store._audit import session

    role, namespace = getattr(args, "role", None), getattr(args, "namespace", None)
    if role is None and namespace is None:
        return contextlib.nullcontext()
    return session(role, namespace=namespace, store=getattr(args, "store", None))


def _error(message: str) -> None:
    print(f"fluxnb: error: {message}", file=sys.stderr)


def _namespace(imports: list[str], manifest: str) -> dict[str, Any]:
    """Callables from ``--import`` modules and files; module lookups see cwd and the
    manifest's folder. A name not found says where it was looked for."""
    folders = list(dict.fromkeys((str(Path.cwd()), str(Path(manifest).resolve().parent))))
    for folder in folders:
        if folder not in sys.path:
            sys.path.insert(0, folder)
    ns: dict[str, Any] = {}
    files: list[str] = []
    for item in imports:
        if item.endswith(".py") or Path(item).is_file():
            path = Path(item)
            if not path.is_file():
                raise FluxError(f"--import {item}: no such file")
            name = path.stem
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise FluxError(f"--import {item}: cannot load it as Python")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as exc:  # the user's module is broken: say where, briefly
                del sys.modules[name]
                raise FluxError(f"--import {item} failed: {_describe(exc)}") from None
        else:
            try:
                module = importlib.import_module(item)
            except ModuleNotFoundError as exc:
                if exc.name is None or not item.startswith(exc.name):
                    raise FluxError(f"--import {item} failed: {_describe(exc)}") from None
                raise FluxError(
                    f"--import {item}: no module named '{exc.name}' in {' or '.join(folders)} "
                    "(the current folder and the manifest's) or the installed packages; "
                    "run from the folder that has it, or pass the file: --import path/to/it.py"
                ) from None
            except Exception as exc:
                raise FluxError(f"--import {item} failed: {_describe(exc)}") from None
        ns.update({k: v for k, v in vars(module).items() if not k.startswith("_")})
        files.append(f"{item} ({getattr(module, '__file__', None) or 'built in'})")
    return _searched(ns, files, folders)


def _searched(ns: dict[str, Any], files: list[str], folders: list[str]) -> dict[str, Any]:
    from ..spec._resolve import SearchedNamespace

    where = " or ".join(folders)
    if not files:
        return SearchedNamespace(
            ns,
            searched="no module (no --import was given)",
            how=f"pass --import MODULE (a module in {where}) or --import path/to/steps.py "
            "with the step functions",
        )
    return SearchedNamespace(
        ns,
        searched=f"the module{'s' if len(files) > 1 else ''} imported with --import: "
        + ", ".join(files),
        how=f"define it there, or add --import MODULE for the module that has it (module "
        f"names are found in {where})",
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} ({exc.filename}, line {exc.lineno})"
    import traceback

    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({last[0].filename}, line {last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _cmd_validate(args: argparse.Namespace) -> int:
    from .._session import Action
    from ..spec import Net
    from ..spec._net_manifest import load_any
    from ..spec._params import parse_params
    from ..store._audit import authorize

    wf = load_any(Path(args.file), params=parse_params(args.params))
    authorize(Action.VALIDATE, workflow=wf.name, rbac=wf.router.rbac)
    if isinstance(wf, Net):
        if args.resolve or args.imports:
            from ..engine._net_run import plan_net

            plan_net(wf, _namespace(args.imports, args.file))
        print(
            f"ok: {args.file}: net '{wf.name}', {plural(len(wf.places), 'place')}, "
            f"{plural(len(wf.transitions), 'transition')}"
        )
        return EXIT_OK
    if args.resolve or args.imports:
        wf.validate(resolve=True, namespace=_namespace(args.imports, args.file))
    steps = plural(len(wf), "step")
    order = " → ".join(wf.order()) if len(wf) <= 12 else steps
    print(f"ok: {args.file}: workflow '{wf.name}', {steps} ({order})")
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    from ..engine import DEFAULT, run
    from ..engine._setup import recorder_for
    from ..spec import Net
    from ..spec._net_manifest import load_any
    from ..spec._params import parse_params

    wf = load_any(Path(args.file), params=parse_params(args.params))
    ns = _namespace(args.imports, args.file)
    target = DEFAULT if args.store is None else args.store
    store: Any = recorder_for(None if args.no_store else target)
    if isinstance(wf, Net):
        return _run_net(wf, ns, store, args)
    show = sys.stderr.isatty() if args.progress is None else args.progress
    if show and not args.json:
        from ._progress import with_progress

        store = with_progress(store, len(wf))
    try:
        result = run(
            wf,
            ns,
            store=store,
            tenant=args.tenant,
            seed=args.seed,
            executor=args.executor,
            cache=args.cache,
        )
    except KeyboardInterrupt as exc:
        return _interrupted(exc, args.json)
    _print_result(result, args.json)
    if result.store:
        _load_into_file(result.store, result)
    return _exit_code(result)


def _exit_code(result: Any) -> int:
    """0 / 1 by the run's status, or 6 when its rows could not all be recorded."""
    if result.recording_error is not None:
        if str(result.recording_error) not in _WARNED:  # once on stderr, not twice
            _error(str(result.recording_error))
        return EXIT_NOT_RECORDED
    return EXIT_OK if result.ok else EXIT_FAILED


def _leave_complete(args: argparse.Namespace) -> None:
    """After a command on a store: fold what waits, so other programs see every row."""
    from ..store import default_path
    from ..store._segments import pending_segments

    if not hasattr(args, "store") or getattr(args, "no_store", False):
        return
    path = str(Path(args.store or default_path()).expanduser().absolute())
    if pending_segments(Path(path + ".segments")):
        _load_into_file(path)


def _run_net(net: Any, ns: Any, store: Any, args: argparse.Namespace) -> int:
    import dataclasses

    from ..engine import run

    if args.choice is not None:
        net = dataclasses.replace(net, choice=args.choice)
    try:
        result = run(
            net,
            ns,
            store=store,
            tenant=args.tenant,
            seed=args.seed,
            executor=args.executor,
            max_firings=args.max_firings,
        )
    except KeyboardInterrupt:
        print("fluxnb: interrupted; the run is recorded as cancelled", file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.json:
        data = {
            "run_id": result.run_id,
            "net": result.workflow,
            "status": result.status.value,
            "ending": result.ending,
            "reason": result.reason,
            "firings": result.firings,
            "counts": result.counts,
            "marking": result.marking,
            "duration_s": result.duration,
            "store": result.store,
            "errors": result.errors,
        }
        if result.names:
            data["transition_names"] = result.names
        print(json.dumps(data, indent=2, default=repr))
    else:
        print(result.summary())
    if result.store:
        _load_into_file(result.store, result)
    return _exit_code(result)


def _interrupted(exc: KeyboardInterrupt, as_json: bool) -> int:
    """Ctrl-C during a run: show what was recorded, and exit 130."""
    partial = getattr(exc, "run_result", None)
    if partial is not None:
        _print_result(partial, as_json)
    print("fluxnb: interrupted; the run is recorded as cancelled", file=sys.stderr)
    return EXIT_INTERRUPTED


def _load_into_file(path: str, run: Any = None) -> None:
    """Leave a complete DuckDB file behind for other tools; never fail the run for it.

    ``run``: the result just printed; a run whose rows were not all recorded has said so
    (``NOT RECORDED``), so the note is left out rather than claim it is recorded."""
    from ..store import Store

    try:
        Store(path, lock_timeout=2.0).load_pending()
    except FluxError as exc:
        if getattr(run, "recording_error", None) is not None or path in _NOTED:
            _NOTED.add(path)  # said already (NOT RECORDED names what waits)
            return
        _NOTED.add(path)  # said once per command, not again by _leave_complete
        what = "the run is recorded; loading it" if run is not None else "loading the rows"
        print(f"fluxnb: note: {what} into {path} waits: {exc}", file=sys.stderr)


#: Store files whose waiting load this command has noted already.
_NOTED: set[str] = set()


def _print_result(result: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(_result_json(result), indent=2, default=repr))
        return
    print(result.summary())
    if getattr(result, "cache", None) is not None:
        print(result.explain())
    for sid, err in result.errors.items():
        print(f"\n--- {sid} (attempt {err.attempt}) ---\n{err.traceback.rstrip()}", file=sys.stderr)
    if result.store and result.recording_error is None:  # else its rows are not all there
        print(f"\ntrace: fluxnb sql \"SELECT * FROM events WHERE run_id = '{result.run_id}'\"")


def _result_json(result: Any) -> dict[str, Any]:
    outputs = {}
    for k, v in result.outputs.items():
        try:
            json.dumps(v)
            outputs[k] = v
        except (TypeError, ValueError):
            outputs[k] = repr(v)
    return {
        "run_id": result.run_id,
        "workflow": result.workflow,
        "status": result.status.value,
        "duration_s": result.duration,
        "store": result.store,
        "reason": result.reason,
        "recording_error": None if result.recording_error is None else str(result.recording_error),
        "steps": [
            {
                "step": s.step,
                "status": s.status.value,
                "attempts": s.attempts,
                "duration_s": s.duration,
                "error_type": s.error.type if s.error else None,
                "error_message": s.error.message if s.error else None,
            }
            for s in result.steps.values()
        ],
        "outputs": outputs,
        # incremental runs: why each step ran or was reused (None: caching was off)
        "cache": None
        if getattr(result, "cache", None) is None
        else {
            sid: {"decision": d.decision, "reason": d.reason, "source_run_id": d.source_run_id}
            for sid, d in result.cache.items()
        },
    }


def _print_frame(df: Any, as_json: bool) -> None:
    if as_json:
        print(df.to_json(orient="records", date_format="iso"))
    elif df.empty:
        print("(no rows)" if len(df.columns) else "ok")
    else:
        shown = df.astype(object).where(df.notna(), "")
        print(shown.to_string(index=False, max_colwidth=60))


def _cmd_sql(args: argparse.Namespace) -> int:
    from ..store import open_store

    query = sys.stdin.read() if args.query == "-" else args.query
    _print_frame(open_store(args.store).sql(query), args.json)
    return EXIT_OK


def _cmd_runs(args: argparse.Namespace) -> int:
    from ..store import open_store

    _print_frame(open_store(args.store).runs(args.limit), args.json)
    return EXIT_OK


def _cmd_analyze(args: argparse.Namespace) -> int:
    from .. import analyze
    from ..spec import AnalysisTimeout, StateBudgetExceeded, load_pnml_file
    from ..spec._net import label
    from ..spec._net_manifest import load_net
    from ..spec._params import parse_params

    if args.file.endswith((".yaml", ".yml")):  # a missing or odd file: _files says which
        net = load_net(Path(args.file), params=parse_params(args.params))
    else:
        net = load_pnml_file(args.file)
    if args.timeout is not None and not args.timeout > 0:
        raise FluxError(f"--timeout takes a number of seconds above 0, not {args.timeout:g}")
    try:
        result = analyze(net, max_states=args.max_states, timeout=args.timeout)
    except (AnalysisTimeout, StateBudgetExceeded) as exc:
        _error(str(exc))
        return EXIT_GAVE_UP
    data = result.to_json(witness=args.witness)
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    names = result.transition_names
    for key, value in data.items():
        if key in ("notes", "transition_names"):
            continue
        if key in ("dead_transitions", "witness") and isinstance(value, list):
            shown: Any = ", ".join(label(t, names) for t in value)
        else:
            shown = ", ".join(value) if isinstance(value, list) else value
        print(f"{key:20} {'-' if shown is None else shown}")
    for note in data.get("notes", []):
        print(f"note: {note}")
    return EXIT_OK


_COMMANDS = {
    "validate": _cmd_validate,
    "run": _cmd_run,
    "sql": _cmd_sql,
    "runs": _cmd_runs,
    **HISTORY_COMMANDS,
    **SCAFFOLD_COMMANDS,
    "analyze": _cmd_analyze,
    **BILLING_COMMANDS,
    **TRIGGER_COMMANDS,
    **STORE_COMMANDS,
    **CACHE_COMMANDS,
    "version": _cmd_version,
}
_COMMANDS = with_remote(_COMMANDS)  # run, runs, sql, invoice: --remote URL; serve

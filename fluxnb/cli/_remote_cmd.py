"""``fluxnb serve`` (the control plane, headless) and ``--remote URL`` for run, runs, sql and
invoice (the same commands against a control plane instead of a local store)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Commands that take --remote URL.
REMOTE_COMMANDS = ("run", "runs", "sql", "invoice")


def add_remote_commands(sub: Any, store_opt: Callable[[argparse.ArgumentParser], None]) -> None:
    """``serve``, and ``--remote`` / ``--token`` on the commands that take them."""
    _add_remote_options(sub)
    sv = sub.add_parser(
        "serve",
        help="start the control plane: a headless Jupyter Server with only fluxnb's REST API",
    )
    sv.add_argument("--port", type=int, default=8888, help="port to listen on (default 8888)")
    sv.add_argument("--ip", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sv.add_argument(
        "--token",
        help="Jupyter's token clients send (Authorization: token T); default: "
        "$JUPYTER_TOKEN, else a random one printed at start",
    )
    sv.add_argument("--workers", type=int, default=2, help="worker processes for runs")
    store_opt(sv)


def _add_remote_options(sub: Any) -> None:
    for name in REMOTE_COMMANDS:
        sp = sub.choices[name]
        sp.add_argument(
            "--remote",
            metavar="URL",
            help="do it on the control plane at URL (fluxnb serve, or a Jupyter Server with "
            "fluxnb) instead of a local store",
        )
        sp.add_argument(
            "--token",
            help="with --remote: the Jupyter token (default: $FLUXNB_TOKEN, $JUPYTER_TOKEN)",
        )


def _cmd_serve(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        from .._exceptions import FluxError

        raise FluxError(f"--port takes 1-65535, not {args.port}")
    try:
        from ..server import FluxnbServer
    except ImportError as exc:  # jupyter_server missing
        from .._exceptions import FluxError

        raise FluxError(
            f"fluxnb serve needs Jupyter Server ({exc.name} is missing): "
            'pip install "fluxnb[server]"'
        ) from None
    argv = [
        f"--ServerApp.port={args.port}",
        f"--ServerApp.ip={args.ip}",
        "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False",
        # it starts no kernels or terminals (only this extension): root may run it
        "--ServerApp.allow_root=True",
        # a request body larger than this is refused before it is read whole
        f"--ServerApp.max_body_size={16 << 20}",
        "--FluxnbServer.eager_workers=True",
        f"--FluxnbServer.workers={args.workers}",
    ]
    if args.token is not None:
        argv.append(f"--IdentityProvider.token={args.token}")
    if args.store:
        argv.append(f"--FluxnbServer.store={Path(args.store).expanduser().absolute()}")
    FluxnbServer.launch_instance(argv=argv)
    return 0


def with_remote(commands: dict[str, Callable[[argparse.Namespace], int]]) -> dict[str, Any]:
    """The commands, those of REMOTE_COMMANDS going to the control plane under --remote."""

    def dispatch(name: str) -> Callable[[argparse.Namespace], int]:
        local = commands[name]

        def command(args: argparse.Namespace) -> int:
            if getattr(args, "remote", None):
                return _remote(name, args)
            return local(args)

        return command

    out: dict[str, Any] = {
        name: dispatch(name) if name in REMOTE_COMMANDS else fn for name, fn in commands.items()
    }
    out["serve"] = _cmd_serve
    return out


def _remote(name: str, args: argparse.Namespace) -> int:
    from .. import cli
    from ..server._client import Remote, RemoteError

    token = args.token or os.environ.get("FLUXNB_TOKEN") or os.environ.get("JUPYTER_TOKEN")
    plane = Remote(args.remote, token, namespace=getattr(args, "namespace", None))
    try:
        if name == "run":
            return _remote_run(plane, args)
        if name == "runs":
            cli._print_frame(plane.runs(args.limit), args.json)
        elif name == "sql":
            query = sys.stdin.read() if args.query == "-" else args.query
            cli._print_frame(plane.sql(query), args.json)
        else:
            inv = plane.invoice(args.tenant, args.period)
            print(inv.to_json() if args.json else inv.to_csv() if args.csv else inv, end="")
            if not (args.json or args.csv):
                print()
    except RemoteError as exc:
        cli._error(str(exc))
        return cli.EXIT_DENIED if exc.status == 403 else cli.EXIT_INVALID
    return cli.EXIT_OK


def _remote_run(plane: Any, args: argparse.Namespace) -> int:
    """Register the manifest (by its name) and run it there; the same summary as a local
    run. Its callables are imported on the server (``run: module:function``)."""
    from .. import cli
    from ..spec._net_manifest import load_any
    from ..spec._params import parse_params

    path = Path(args.file)
    params = parse_params(args.params)
    wf = load_any(path, params=params)  # a bad manifest is exit 2 here, before any request
    plane.register(wf.name, path.read_text())
    result = plane.run(wf.name, params or None, tenant=args.tenant, seed=args.seed)
    cli._print_result(result, args.json)
    return cli.EXIT_OK if result.ok else cli.EXIT_FAILED

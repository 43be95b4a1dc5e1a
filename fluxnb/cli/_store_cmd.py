"""``fluxnb store flush / check`` and ``fluxnb doctor``: the store file's upkeep.

Exit codes of ``check`` (and ``doctor``, the same command): 0 healthy; 1 something was set
aside as corrupt, or the file cannot be opened or written; 3 another program holds it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

#: What ``fluxnb store check`` prints for each set-aside segment with ``--json``.
_FIELDS = ("path", "size", "when", "reason", "original")


def add_store_commands(sub: Any, store_opt: Callable[[argparse.ArgumentParser], None]) -> None:
    st = sub.add_parser("store", help="upkeep of the store file: flush, check")
    ssub = st.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    fl = ssub.add_parser(
        "flush", help="fold every pending segment into the DuckDB file now, and say what it did"
    )
    store_opt(fl)
    ck = ssub.add_parser(
        "check", help="list segments set aside as corrupt; exit 1 if any, 0 if healthy"
    )
    _check_opts(ck, store_opt)
    doc = sub.add_parser("doctor", help="the same as `fluxnb store check`")
    _check_opts(doc, store_opt)


def _check_opts(sp: argparse.ArgumentParser, store_opt: Callable[..., None]) -> None:
    store_opt(sp)
    sp.add_argument("--json", action="store_true", help="print the findings as JSON")


def _cmd_store(args: argparse.Namespace) -> int:
    if args.store_command == "check":
        return _cmd_check(args)
    from .. import cli
    from ..store import open_store

    st = open_store(args.store)
    report = st.flush()
    print(f"{st.path}: {report}")
    return cli.EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    from .. import cli
    from ..store import open_store

    health = open_store(args.store).check()
    if args.json:
        data = {
            "path": health.path,
            "healthy": health.healthy,
            "error": health.error,
            "pending": health.pending,
            "quarantined": [
                {k: str(getattr(q, k)) if k != "size" else q.size for k in _FIELDS}
                for q in health.quarantined
            ],
        }
        print(json.dumps(data, indent=2))
    else:
        print(health)
    return cli.EXIT_OK if health.healthy else cli.EXIT_FAILED


STORE_COMMANDS = {"store": _cmd_store, "doctor": _cmd_check}

"""``fluxnb cache prune``: keep the large-output store of incremental runs within budget."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from .._exceptions import FluxError


def add_cache_commands(sub: Any, store_opt: Callable[[argparse.ArgumentParser], None]) -> None:
    c = sub.add_parser("cache", help="incremental runs: prune their large-output store")
    csub = c.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    pr = csub.add_parser(
        "prune",
        help="remove the least recently used large outputs until the store's folder is "
        "within budget",
    )
    store_opt(pr)
    pr.add_argument(
        "--budget",
        metavar="SIZE",
        help="bytes to keep (e.g. 500MB, 2GB, 0; default: $FLUXNB_CACHE_BUDGET, else 2GB)",
    )
    pr.add_argument(
        "--all",
        action="store_true",
        help="remove every large output and forget every cache key (nothing is reused after)",
    )


_UNITS = {"": 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4}


def parse_size(text: str) -> int:
    """``500MB`` → 500000000; a plain number is bytes."""
    raw = text.strip().upper().replace(" ", "")
    number = raw.rstrip("KMGTB")
    unit = raw[len(number) :]
    if not number.isdigit() or not number.isascii() or unit not in _UNITS:
        raise FluxError(f"--budget {text!r} is not a size: use a number of bytes, or 500MB, 2GB")
    return int(number) * _UNITS[unit]


def _cmd_cache(args: argparse.Namespace) -> int:
    from .. import cli
    from .._plural import plural
    from ..store import open_store

    budget = None if args.budget is None else parse_size(args.budget)
    st = open_store(args.store)
    report = st.prune_cache(budget, everything=args.all)
    line = (
        f"{st.path}: removed {plural(report.removed, 'file')} ({report.freed:,} bytes); "
        f"{report.kept:,} bytes kept"
    )
    if args.all:
        line += f"; {plural(report.forgotten, 'cache entry', 'cache entries')} forgotten"
    print(line)
    return cli.EXIT_OK


CACHE_COMMANDS = {"cache": _cmd_cache}

"""``fluxnb triggers list | pause ID | resume ID | fire-now ID``: the store's triggers.

Triggers fire in the server (``fluxnb serve`` or a Jupyter Server with fluxnb); these
commands only read and change what the store says, so they work with no server running:
``fire-now`` records a queued firing that the server starts on its next pass.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any


def add_trigger_commands(sub: Any, store_opt: Callable[[argparse.ArgumentParser], None]) -> None:
    tr = sub.add_parser("triggers", help="list, pause, resume or fire a workflow's triggers")
    tsub = tr.add_subparsers(dest="triggers_command", metavar="ACTION", required=True)
    ls = tsub.add_parser("list", help="every trigger with its state (active, paused, backing off)")
    store_opt(ls)
    ls.add_argument("--json", action="store_true", help="print rows as JSON records")
    for verb, text in (
        ("pause", "stop firing a trigger until it is resumed"),
        ("resume", "fire a paused trigger again, from now on (no catch-up of the pause)"),
        ("fire-now", "queue a firing now; the server starts it as soon as the trigger has room"),
    ):
        sp = tsub.add_parser(verb, help=text)
        sp.add_argument("trigger", metavar="ID", help="the trigger's id")
        store_opt(sp)


def _cmd_triggers(args: argparse.Namespace) -> int:
    from .. import cli
    from .. import triggers as t

    verb = args.triggers_command
    if verb == "list":
        frame = t.list_triggers(args.store)
        if args.json:
            print(json.dumps(frame.to_dict("records"), default=str, indent=2))
        elif frame.empty:
            print("no triggers: declare them under triggers: in a manifest and register it")
        else:
            print(frame.to_string(index=False))
        return cli.EXIT_OK
    if verb == "fire-now":
        key = t.fire_now(args.trigger, store=args.store)
        print(f"{args.trigger}: queued as {key}; the server starts it on its next pass")
        return cli.EXIT_OK
    reg = (t.pause if verb == "pause" else t.resume)(args.trigger, store=args.store)
    print(f"{reg.id}: {'paused' if reg.paused else 'active'}")
    return cli.EXIT_OK


TRIGGER_COMMANDS = {"triggers": _cmd_triggers}

"""``fluxnb rates / invoice / usage / metrics``: billing and telemetry from the shell."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._plural import plural


def add_billing_commands(sub: Any, store_opt: Callable[[argparse.ArgumentParser], None]) -> None:
    rates = sub.add_parser("rates", help="set or list rate cards")
    rsub = rates.add_subparsers(dest="rates_command", metavar="ACTION", required=True)
    rset = rsub.add_parser("set", help="store a new version of a rate card (admin)")
    rset.add_argument("file", help="the rate card, as YAML")
    rset.add_argument("--tenant", help="the tenant it prices (default: every tenant)")
    store_opt(rset)
    rlist = rsub.add_parser("list", help="every version of every card, one row per price tier")
    rlist.add_argument("--tenant", help="that tenant's cards and the defaults")
    rlist.add_argument("--json", action="store_true", help="print rows as JSON records")
    store_opt(rlist)

    inv = sub.add_parser("invoice", help="print a tenant's invoice for a month")
    inv.add_argument("--tenant", required=True)
    inv.add_argument("--period", required=True, help="a month: 2026-11")
    inv.add_argument("--scope", metavar="NAMESPACE", help="admin: one namespace's usage only")
    out = inv.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the invoice as JSON")
    out.add_argument("--csv", action="store_true", help="print the lines as CSV")
    inv.add_argument("--issue", action="store_true", help="issue it (admin; an ended month)")
    store_opt(inv)

    us = sub.add_parser("usage", help="list usage events")
    us.add_argument("--tenant")
    us.add_argument("--period", help="a month: 2026-11")
    us.add_argument("--json", action="store_true", help="print rows as JSON records")
    store_opt(us)

    me = sub.add_parser("metrics", help="SLA tables, or Prometheus text with --prometheus")
    me.add_argument("--sla", choices=["steps", "agents", "runs"], default="steps")
    me.add_argument("--prometheus", action="store_true", help="the Prometheus exposition")
    me.add_argument("--json", action="store_true", help="print rows as JSON records")
    store_opt(me)


def _cmd_rates(args: argparse.Namespace) -> int:
    from .. import cli
    from ..billing import rate_cards, set_rate_card

    if args.rates_command == "set":
        card = set_rate_card(Path(args.file), args.tenant, store=args.store)
        who = "every tenant" if args.tenant is None else f"tenant {args.tenant}"
        print(
            f"ok: rate card {card.card_id} ({card.currency}, effective from "
            f"{card.effective_from}) prices {plural(len(card.prices), 'unit')} for {who}"
        )
        return cli.EXIT_OK
    cli._print_frame(rate_cards(args.tenant, store=args.store), args.json)
    return cli.EXIT_OK


def _cmd_invoice(args: argparse.Namespace) -> int:
    from .. import cli
    from ..billing import invoice, issue_invoice

    if args.issue:
        inv = issue_invoice(args.tenant, args.period, namespace=args.scope, store=args.store)
    else:
        inv = invoice(args.tenant, args.period, namespace=args.scope, store=args.store)
    if args.json:
        print(inv.to_json())
    elif args.csv:
        print(inv.to_csv(), end="")
    else:
        print(inv)
    return cli.EXIT_OK


def _cmd_usage(args: argparse.Namespace) -> int:
    from .. import cli
    from ..billing import usage

    cli._print_frame(usage(args.tenant, args.period, store=args.store), args.json)
    return cli.EXIT_OK


def _cmd_metrics(args: argparse.Namespace) -> int:
    from .. import cli
    from ..metrics import prometheus_text, sla

    if args.prometheus:
        print(prometheus_text(store=args.store), end="")
        return cli.EXIT_OK
    frame: Any = sla(args.sla, store=args.store)
    if args.json:
        print(json.dumps(json.loads(frame.to_json(orient="records", date_format="iso"))))
        return cli.EXIT_OK
    cli._print_frame(frame, False)
    return cli.EXIT_OK


BILLING_COMMANDS = {
    "rates": _cmd_rates,
    "invoice": _cmd_invoice,
    "usage": _cmd_usage,
    "metrics": _cmd_metrics,
}

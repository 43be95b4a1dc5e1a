"""Invoices: a tenant's usage in a period, priced by the rate cards in effect, as data.

An invoice is computed from stored usage and cards only (no clock, no float), so computing
it twice gives the same numbers; issuing it stores those numbers, and an issued invoice is
what ``fluxnb.invoice`` returns for its period from then on, whatever usage arrives later.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from .._exceptions import BillingError
from .._plural import plural
from ._money import EXACT, round_amount, show
from ._rate_card import RateCard, charge


class InvoiceState(StrEnum):
    """An invoice's lifecycle: ``draft`` (computed, not stored) → ``issued`` (stored,
    fixed) → ``void`` (withdrawn; the period can be issued again)."""

    DRAFT = "draft"
    ISSUED = "issued"
    VOID = "void"

    def move(self, to: InvoiceState) -> InvoiceState:
        """``to`` if the lifecycle allows it, else BillingError naming both states."""
        if to not in _NEXT[self]:
            raise BillingError(f"an invoice cannot go from {self} to {to}")
        return to


_NEXT: dict[InvoiceState, frozenset[InvoiceState]] = {
    InvoiceState.DRAFT: frozenset({InvoiceState.ISSUED}),
    InvoiceState.ISSUED: frozenset({InvoiceState.VOID}),
    InvoiceState.VOID: frozenset(),
}


_MONTH = re.compile(r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})")


def period_bounds(period: Any) -> tuple[str, datetime, datetime]:
    """``"2026-11"`` (or a date in that month) → (label, first instant, first instant of
    the next month), UTC."""
    if isinstance(period, date):
        period = f"{period.year:04d}-{period.month:02d}"
    if not isinstance(period, str):
        raise BillingError(f"period must be a month like '2026-11', found {period!r}")
    m = _MONTH.fullmatch(period.strip())
    if m is None or not 1 <= int(m["month"]) <= 12:
        raise BillingError(f"period {period[:40]!r} is not a month like '2026-11'")
    year, month = int(m["year"]), int(m["month"])
    if year < 1 or (year, month) > (9999, 11):  # the month after must be a date too
        raise BillingError(f"period {period!r} is out of range: months from 0001-01 to 9999-11")
    start = datetime(year, month, 1)
    end = datetime(year + (month == 12), month % 12 + 1, 1)
    return start.strftime("%Y-%m"), start, end


@dataclass(frozen=True)
class InvoiceLine:
    """One unit priced by one rate card."""

    unit: str
    #: Net quantity in the period (usage plus corrections).
    quantity: Decimal
    #: Units per priced block.
    per: Decimal
    #: The flat price per block, or the marginal tier's price.
    unit_price: Decimal | None
    #: The tiers that priced some units (from, to, quantity, price, exact amount).
    tiers: list[dict[str, Any]]
    #: Rounded once, half-even, to the currency's minor unit.
    amount: Decimal
    #: The rate card's id (``tenant-or-*:name:vN``), or "" when no card priced the unit.
    card: str
    note: str | None = None


@dataclass
class Invoice:
    """A tenant's invoice for a month: ``lines``, ``subtotal``, ``total``; exports to a
    DataFrame, CSV and JSON; shows as a table in a notebook."""

    invoice_id: str
    tenant: str
    #: The namespace whose usage it covers (None: every namespace of the tenant).
    namespace: str | None
    period: str
    period_start: datetime
    period_end: datetime
    currency: str
    minor_unit: int
    lines: list[InvoiceLine]
    state: InvoiceState = InvoiceState.DRAFT
    issued_at: datetime | None = None
    #: How many usage events the invoice prices.
    usage_events: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def subtotal(self) -> Decimal:
        """The sum of the rounded lines, to the currency's minor unit (``0.00`` when empty)."""
        return round_amount(sum((line.amount for line in self.lines), Decimal(0)), self.minor_unit)

    @property
    def total(self) -> Decimal:
        """What is owed: the subtotal (fluxnb adds no tax or discount)."""
        return self.subtotal

    def to_frame(self) -> Any:
        import pandas as pd

        from ..store._frames import nulls_as_none

        frame = pd.DataFrame(
            [
                {
                    "unit": ln.unit,
                    "quantity": ln.quantity,
                    "per": ln.per,
                    "unit_price": ln.unit_price,
                    "tiers": len(ln.tiers),
                    "amount": ln.amount,
                    "card": ln.card,
                    "note": ln.note,
                }
                for ln in self.lines
            ],
            columns=["unit", "quantity", "per", "unit_price", "tiers", "amount", "card", "note"],
        )
        return nulls_as_none(frame)

    def to_dict(self) -> dict[str, Any]:
        """Every fact, decimals as strings (exact), times as ISO 8601 UTC."""
        return {
            "invoice_id": self.invoice_id,
            "tenant": self.tenant,
            "namespace": self.namespace,
            "period": self.period,
            "period_start": self.period_start.replace(tzinfo=UTC).isoformat(),
            "period_end": self.period_end.replace(tzinfo=UTC).isoformat(),
            "currency": self.currency,
            "state": str(self.state),
            "issued_at": self.issued_at.replace(tzinfo=UTC).isoformat() if self.issued_at else None,
            "usage_events": self.usage_events,
            "lines": [
                {
                    "unit": ln.unit,
                    "quantity": str(ln.quantity),
                    "per": str(ln.per),
                    "unit_price": None if ln.unit_price is None else str(ln.unit_price),
                    "tiers": ln.tiers,
                    "amount": str(ln.amount),
                    "card": ln.card,
                    "note": ln.note,
                }
                for ln in self.lines
            ],
            "subtotal": str(self.subtotal),
            "total": str(self.total),
            "notes": list(self.notes),
        }

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    def to_csv(self, path: str | Path | None = None) -> str:
        """One row per line, then a total row; amounts as exact decimal strings."""
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["invoice_id", "unit", "quantity", "per", "unit_price", "amount", "currency"])
        for ln in self.lines:
            price = "" if ln.unit_price is None else str(ln.unit_price)
            row = [ln.unit, ln.quantity, ln.per, price, ln.amount, self.currency]
            w.writerow([self.invoice_id, *map(str, row)])
        w.writerow([self.invoice_id, "total", "", "", "", str(self.total), self.currency])
        if path is not None:
            Path(path).write_text(out.getvalue())
        return out.getvalue()

    def __repr__(self) -> str:
        total = show(self.total, self.currency, self.minor_unit)
        return (
            f"<Invoice {self.invoice_id} {self.state}: {self.tenant} {self.period}, "
            f"{plural(len(self.lines), 'line')}, total {total}>"
        )

    def __str__(self) -> str:
        scope = f" namespace {self.namespace}" if self.namespace else ""
        head = (
            f"Invoice {self.invoice_id} ({self.state}) · tenant {self.tenant}{scope} · "
            f"{self.period} · {self.usage_events} usage events"
        )
        rows = [head, f"{'unit':<20} {'quantity':>18} {'unit price':>14} {'amount':>16}"]
        for ln in self.lines:
            price = "" if ln.unit_price is None else f"{ln.unit_price}/{ln.per}"
            rows.append(
                f"{ln.unit:<20} {ln.quantity.normalize():>18,f} {price:>14} "
                f"{show(ln.amount, self.currency, self.minor_unit):>16}"
                + (f"  ({ln.note})" if ln.note else "")
            )
        rows.append(f"{'total':<54} {show(self.total, self.currency, self.minor_unit):>16}")
        rows += [f"note: {n}" for n in self.notes]
        return "\n".join(rows)

    def _repr_html_(self) -> str:
        e = html.escape
        body = "".join(
            f"<tr><td>{e(ln.unit)}</td><td style='text-align:right'>{ln.quantity.normalize():,f}"
            f"</td><td style='text-align:right'>{'' if ln.unit_price is None else ln.unit_price}"
            f" / {ln.per.normalize()}</td><td style='text-align:right'>"
            f"{e(show(ln.amount, self.currency, self.minor_unit))}</td>"
            f"<td>{e(ln.note or '')}</td></tr>"
            for ln in self.lines
        )
        notes = "".join(f"<div><i>{e(n)}</i></div>" for n in self.notes)
        scope = f" · namespace <b>{e(self.namespace)}</b>" if self.namespace else ""
        return (
            f"<div class='fluxnb-invoice'><b>Invoice {e(self.invoice_id)}</b> "
            f"<span>({e(str(self.state))})</span> · tenant <b>{e(self.tenant)}</b>{scope} · "
            f"{e(self.period)} · {self.usage_events} usage events"
            "<table><thead><tr><th>unit</th><th>quantity</th><th>price / per</th>"
            f"<th>amount</th><th></th></tr></thead><tbody>{body}</tbody><tfoot><tr>"
            f"<td colspan='3'><b>total</b></td><td style='text-align:right'><b>"
            f"{e(show(self.total, self.currency, self.minor_unit))}</b></td><td></td></tr>"
            f"</tfoot></table>{notes}</div>"
        )


def card_in_effect(cards: list[RateCard], tenant: str, day: date) -> RateCard | None:
    """The tenant's own card in effect on ``day`` (latest effective_from, then version),
    else the default card in effect (``tenant`` None)."""
    for owner in (tenant, None):
        mine = [c for c in cards if c.tenant == owner and c.effective_from <= day]
        if mine:
            return max(mine, key=lambda c: (c.effective_from, c.version or 0))
    return None


def price_usage(
    usage: list[tuple[str, date, Decimal]], cards: list[RateCard], tenant: str
) -> tuple[list[InvoiceLine], str, int, list[str]]:
    """Lines for ``usage`` (unit, day, net quantity of that day), each unit priced by the
    card in effect on each day; (lines, currency, minor unit, notes)."""
    sums: dict[tuple[str, str], Decimal] = {}
    by_id: dict[str, RateCard] = {}
    unpriced: dict[str, Decimal] = {}
    for unit, day, q in usage:
        card = card_in_effect(cards, tenant, day)
        if card is None:
            unpriced[unit] = EXACT.add(unpriced.get(unit, Decimal(0)), q)
            continue
        key = str(card.card_id)
        by_id[key] = card
        sums[(key, unit)] = EXACT.add(sums.get((key, unit), Decimal(0)), q)
    currencies = {(c.currency, c.minor_unit) for c in by_id.values()}
    if len(currencies) > 1:
        raise BillingError(
            "the period is priced by rate cards in different currencies "
            f"({', '.join(sorted(c for c, _ in currencies))}); fluxnb cannot add them up"
        )
    code, minor = next(iter(currencies)) if currencies else ("USD", 2)
    if not currencies and cards:
        code, minor = cards[0].currency, cards[0].minor_unit
    lines: list[InvoiceLine] = []
    notes: list[str] = []
    order = sorted(sums, key=lambda k: (by_id[k[0]].effective_from, k[0], k[1]))
    for card_id, unit in order:
        card = by_id[card_id]
        q = sums[(card_id, unit)]
        price = card.price_of(unit)
        zero = round_amount(Decimal(0), minor)
        if price is None:
            why = f"not on rate card '{card.name}' v{card.version}: not charged"
            lines.append(InvoiceLine(unit, q, Decimal(1), None, [], zero, card_id, why))
            continue
        c = charge(price, q)
        note = f"net usage {q} is negative: billed as 0" if q < 0 else None
        amount = round_amount(c.amount, minor)
        lines.append(InvoiceLine(unit, q, price.per, c.unit_price, c.tiers, amount, card_id, note))
    for unit, q in sorted(unpriced.items()):
        note = "no rate card in effect: not charged"
        lines.append(
            InvoiceLine(unit, q, Decimal(1), None, [], round_amount(Decimal(0), minor), "", note)
        )
    if unpriced:
        notes.append(f"usage of {', '.join(sorted(unpriced))} fell on days without a rate card")
    return lines, code, minor, notes

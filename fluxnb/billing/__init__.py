"""Billing as data: rate cards, usage, corrections and invoices in the store.

See docs/billing.md for the data model and the rounding rule.
"""

from __future__ import annotations

from ._invoice import Invoice, InvoiceLine, InvoiceState
from ._ledger import (
    correct_usage,
    create_tenant,
    invoice,
    issue_invoice,
    rate_cards,
    record_usage,
    set_rate_card,
    tenants,
    usage,
    void_invoice,
)
from ._rate_card import Price, RateCard, Tier, charge, read_rate_card

__all__ = [
    "Invoice",
    "InvoiceLine",
    "InvoiceState",
    "Price",
    "RateCard",
    "Tier",
    "charge",
    "correct_usage",
    "create_tenant",
    "invoice",
    "issue_invoice",
    "rate_cards",
    "read_rate_card",
    "record_usage",
    "set_rate_card",
    "tenants",
    "usage",
    "void_invoice",
]

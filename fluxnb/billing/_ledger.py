"""The billing API over a store: tenants, rate cards, usage, corrections and invoices.

Reads of money go straight to DuckDB (``fetchall`` keeps DECIMAL as Decimal; a pandas
DataFrame would turn it into float64). Writes of cards, invoices and tenants are one
transaction each; usage rows travel like trace rows (segments), idempotent by event id.

Why over 400 lines: the ledger's reads and writes (rate cards, usage, invoices) share one set
of queries, scopes and permission checks; split by table they would import each other.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from .._exceptions import BillingError
from .._session import Action, Session, check_name, current
from ..store import Store, open_store
from ..store._audit import authorize
from ..store._usage import check_unit, micros, quantity, scoped_key, usage_row
from ._invoice import Invoice, InvoiceLine, InvoiceState, period_bounds, price_usage
from ._money import round_amount, unscaled
from ._rate_card import RateCard, read_rate_card


def _store(store: Any) -> Store:
    return store if isinstance(store, Store) else open_store(store)


def _utc_micros(at: datetime | date | str | None) -> int:
    """A time given by the user, as epoch microseconds UTC (naive = UTC; None = now)."""
    if at is None:
        return micros()
    if isinstance(at, str):
        try:
            at = datetime.fromisoformat(at)
        except ValueError:
            raise BillingError(f"occurred_at {at!r} is not an ISO 8601 time") from None
    if isinstance(at, date) and not isinstance(at, datetime):
        at = datetime(at.year, at.month, at.day)
    if not isinstance(at, datetime):
        raise BillingError(f"occurred_at must be a datetime, found {type(at).__name__}")
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return int(at.timestamp() * 1_000_000)


# ---------------------------------------------------------------------- tenants
def create_tenant(name: str, *, display_name: str | None = None, store: Any = None) -> None:
    """Add a tenant (admin). Runs may name any valid tenant; this records who it is."""
    check_name(name, "tenant")
    st = _store(store)
    authorize(Action.MANAGE_TENANTS, store=st, target=f"tenant {name}", detail="create")
    s = current()
    with st.connect() as con:
        if con.execute("SELECT 1 FROM tenants WHERE tenant = $1", [name]).fetchall():
            raise BillingError(f"tenant '{name}' exists already")
        con.execute(
            "INSERT INTO tenants VALUES ($1, $2, now(), $3)", [name, display_name, str(s.role)]
        )


def tenants(*, store: Any = None) -> Any:
    """The tenants table, with each tenant's runs and usage events so far (a DataFrame)."""
    return _store(store).sql(
        "SELECT t.*, (SELECT count(*) FROM runs r WHERE r.tenant = t.tenant) AS runs, "
        "(SELECT count(*) FROM usage u WHERE u.tenant = t.tenant) AS usage_events "
        "FROM tenants t ORDER BY tenant"
    )


# ---------------------------------------------------------------------- rate cards
def set_rate_card(card: Any, tenant: str | None = None, *, store: Any = None) -> RateCard:
    """Store a new version of a rate card (admin); ``tenant`` None makes it the default
    card of every tenant without one of its own. Returns the card with its version.

    Raises:
        BillingError: the card is invalid (a float price, a bad tier, an unknown key...).
        PermissionDenied: the session is not admin.
    """
    parsed = read_rate_card(card)
    if tenant is not None:
        check_name(tenant, "tenant")
    st = _store(store)
    owner = tenant or "*"
    authorize(
        Action.SET_RATES,
        store=st,
        target=f"rate card {parsed.name} ({'every tenant' if tenant is None else tenant})",
        detail=f"effective from {parsed.effective_from}",
    )
    s = current()
    with st.connect() as con:
        con.execute("BEGIN")
        try:
            (version,) = con.execute(
                "SELECT coalesce(max(version), 0) + 1 FROM rate_cards "
                "WHERE name = $1 AND tenant IS NOT DISTINCT FROM $2",
                [parsed.name, tenant],
            ).fetchone()
            card_id = f"{owner}:{parsed.name}:v{version}"
            stored = replace(parsed, tenant=tenant, version=version, card_id=card_id)
            con.execute(
                "INSERT INTO rate_cards VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8, $9)",
                [
                    card_id,
                    tenant,
                    parsed.name,
                    version,
                    parsed.currency,
                    parsed.minor_unit,
                    parsed.effective_from,
                    str(s.role),
                    stored.to_json(),
                ],
            )
            rows = [
                [card_id, p.unit, p.per, i, t.up_to, t.price]
                for p in parsed.prices
                for i, t in enumerate(p.tiers)
            ]
            con.executemany("INSERT INTO rate_card_prices VALUES ($1, $2, $3, $4, $5, $6)", rows)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return stored


def _cards(con: Any, tenant: str) -> list[RateCard]:
    rows = con.execute(
        "SELECT card, tenant, version, card_id FROM rate_cards "
        "WHERE tenant = $1 OR tenant IS NULL ORDER BY effective_from, version",
        [tenant],
    ).fetchall()
    out = []
    for text, owner, version, card_id in rows:
        card = read_rate_card(json.loads(text))
        out.append(replace(card, tenant=owner, version=version, card_id=card_id))
    return out


def rate_cards(tenant: str | None = None, *, store: Any = None) -> Any:
    """Every version of every card (one row per price tier), newest last; with ``tenant``,
    that tenant's cards and the defaults. Prices are exact decimal strings."""
    where = "WHERE c.tenant = $t OR c.tenant IS NULL" if tenant else ""
    return _store(store).sql(
        "SELECT c.card_id, c.tenant, c.name, c.version, c.currency, c.effective_from, "
        "p.unit, CAST(p.per AS VARCHAR) AS per, p.tier, CAST(p.up_to AS VARCHAR) AS up_to, "
        "CAST(p.price AS VARCHAR) AS price, c.created_at "
        f"FROM rate_cards c JOIN rate_card_prices p USING (card_id) {where} "
        "ORDER BY c.tenant NULLS FIRST, c.name, c.version, p.unit, p.tier",
        {"t": tenant} if tenant else None,
    )


# ---------------------------------------------------------------------- usage
def record_usage(
    tenant: str,
    unit: str,
    amount: Any,
    *,
    idempotency_key: str,
    occurred_at: datetime | date | str | None = None,
    namespace: str | None = None,
    store: Any = None,
) -> str:
    """Ingest usage measured outside fluxnb (admin), e.g. a provider's daily export.
    Sending the same ``idempotency_key`` again counts once. Returns the event id."""
    return _write_usage(
        tenant, unit, amount, idempotency_key, occurred_at, namespace, store, "external"
    )


def correct_usage(
    tenant: str,
    unit: str,
    amount: Any,
    *,
    reason: str,
    corrects: str | None = None,
    occurred_at: datetime | date | str | None = None,
    namespace: str | None = None,
    idempotency_key: str | None = None,
    store: Any = None,
) -> str:
    """Add a signed correction (admin): ``amount`` -500 takes 500 units off. Usage is
    never changed in place; ``reason`` says why, ``corrects`` may name the event fixed.
    ``occurred_at`` (default now) decides which period it lands in."""
    if not isinstance(reason, str) or not reason.strip():
        raise BillingError("a usage correction needs a reason")
    key = idempotency_key or f"correction:{secrets.token_hex(8)}"
    return _write_usage(
        tenant, unit, amount, key, occurred_at, namespace, store, "correction", reason, corrects
    )


def _write_usage(
    tenant: str,
    unit: str,
    amount: Any,
    key: str,
    occurred_at: Any,
    namespace: str | None,
    store: Any,
    source: str,
    reason: str | None = None,
    corrects: str | None = None,
) -> str:
    check_name(tenant, "tenant")
    check_unit(unit)
    q = quantity(amount)
    if not isinstance(key, str) or not key:
        raise BillingError("idempotency_key must be a non-empty string")
    st = _store(store)
    s = current()
    ns = check_name(namespace, "namespace") if namespace else s.namespace
    authorize(
        Action.CORRECT_USAGE,
        store=st,
        target=f"usage of {tenant}",
        detail=f"{source} {q} {unit} ({reason or key})",
    )
    at = _utc_micros(occurred_at)
    key = scoped_key(tenant, ns, unit, key)
    row = usage_row(
        key, tenant, ns, unit, q, at, source, reason=reason, corrects=corrects, actor=str(s.role)
    )
    st.append("usage", [row])
    return key


def usage(tenant: str | None = None, period: Any = None, *, store: Any = None) -> Any:
    """Usage events (newest last), of one tenant and month if given; a non-admin sees its
    namespace's only. Quantities are ``Decimal`` values, as recorded (``Decimal("3")``, not
    the store's ``3.000000000``)."""
    import pandas as pd

    clauses: list[str] = []
    params: dict[str, Any] = {}
    if tenant:
        clauses.append("tenant = $t")
        params["t"] = tenant
    if period is not None:
        _, start, end = period_bounds(period)
        clauses.append("occurred_at >= $s AND occurred_at < $e")
        params.update(s=start, e=end)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    frame = _store(store).sql(
        f"SELECT * FROM usage {where} ORDER BY occurred_at, event_id", params or None
    )
    quantities = [unscaled(q) for q in frame["quantity"]]
    frame["quantity"] = pd.Series(quantities, dtype=object, index=frame.index)
    return frame


# ---------------------------------------------------------------------- invoices
def _scope(s: Session, namespace: str | None, st: Store, what: str) -> str | None:
    """The namespace an invoice covers: a non-admin's own, always."""
    if s.is_admin:
        return check_name(namespace, "namespace") if namespace else None
    if namespace not in (None, s.namespace):
        authorize(Action.READ_ALL, store=st, target=what)
    return s.namespace


def _compute(st: Store, tenant: str, period: Any, namespace: str | None) -> Invoice:
    label, start, end = period_bounds(period)
    ns_clause = "AND namespace = $4" if namespace else ""
    params: list[Any] = [tenant, start, end] + ([namespace] if namespace else [])
    with st.connect() as con:
        rows = con.execute(
            "SELECT unit, CAST(occurred_at AS DATE) AS day, sum(quantity), count(*) FROM usage "
            f"WHERE tenant = $1 AND occurred_at >= $2 AND occurred_at < $3 {ns_clause} "
            "GROUP BY ALL ORDER BY unit, day",
            params,
        ).fetchall()
        cards = _cards(con, tenant)
    usage = [(u, d, unscaled(q)) for u, d, q, _ in rows]  # 3, not the store's 3.000000000
    lines, code, minor, notes = price_usage(usage, cards, tenant)
    suffix = f"-{namespace}" if namespace else ""
    return Invoice(
        invoice_id=f"DRAFT-{tenant}-{label}{suffix}",
        tenant=tenant,
        namespace=namespace,
        period=label,
        period_start=start,
        period_end=end,
        currency=code,
        minor_unit=minor,
        lines=lines,
        usage_events=sum(n for *_, n in rows),
        notes=notes,
    )


def _issued(con: Any, tenant: str, label: str, namespace: str | None) -> Invoice | None:
    row = con.execute(
        "SELECT invoice_id, period_start, period_end, currency, minor_unit, issued_at, "
        "usage_events "
        "FROM invoices WHERE tenant = $1 AND period = $2 AND namespace IS NOT DISTINCT FROM $3 "
        "AND state = 'issued'",
        [tenant, label, namespace],
    ).fetchone()
    if row is None:
        return None
    invoice_id, start, end, code, minor, issued_at, n = row
    # the store keeps DECIMAL(38, 9): amounts come back to the currency's minor unit, other
    # numbers as they were written (73.00 USD, not 73.000000000)
    lines = [
        InvoiceLine(
            unit,
            unscaled(q),
            unscaled(per),
            None if price is None else unscaled(price),
            json.loads(tiers),
            round_amount(amount, minor),
            card,
            note,
        )
        for unit, q, per, price, tiers, amount, card, note in con.execute(
            "SELECT unit, quantity, per, unit_price, tiers, amount, card_id, note "
            "FROM invoice_lines WHERE invoice_id = $1 ORDER BY line",
            [invoice_id],
        ).fetchall()
    ]
    return Invoice(
        invoice_id,
        tenant,
        namespace,
        label,
        start,
        end,
        code,
        minor,
        lines,
        InvoiceState.ISSUED,
        issued_at,
        n,
    )


def invoice(
    tenant: str, period: Any, *, namespace: str | None = None, store: Any = None
) -> Invoice:
    """The invoice of ``tenant`` for ``period`` (a month: ``"2026-11"``): the issued one if
    there is one, else a draft computed now from the stored usage and rate cards.

    A non-admin session gets the invoice of its own namespace's usage; an admin gets the
    whole tenant's (or one ``namespace``'s).
    """
    check_name(tenant, "tenant")
    st = _store(store)
    s = current()
    scope = _scope(s, namespace, st, f"invoice of {tenant}")
    label = period_bounds(period)[0]
    with st.connect() as con:
        issued = _issued(con, tenant, label, scope)
    return issued if issued is not None else _compute(st, tenant, period, scope)


def issue_invoice(
    tenant: str, period: Any, *, namespace: str | None = None, store: Any = None
) -> Invoice:
    """Fix the invoice of a month that has ended (admin): its numbers are stored, and
    ``fluxnb.invoice`` returns them from now on. Void it to issue it again."""
    check_name(tenant, "tenant")
    st = _store(store)
    label, _, end = period_bounds(period)
    authorize(Action.ISSUE_INVOICES, store=st, target=f"invoice {tenant} {label}")
    if datetime.now(UTC).replace(tzinfo=None) < end:
        raise BillingError(
            f"period {label} is not over until {end:%Y-%m-%d} (UTC); "
            "fluxnb.invoice() shows its draft meanwhile"
        )
    scope = check_name(namespace, "namespace") if namespace else None
    draft = _compute(st, tenant, period, scope)
    with st.connect() as con:
        con.execute("BEGIN")
        try:
            existing = _issued(con, tenant, label, scope)
            if existing is not None:
                raise BillingError(
                    f"{existing.invoice_id} is already issued for {tenant} {label}; "
                    "void it first (fluxnb.void_invoice) to issue it again"
                )
            (n,) = con.execute(
                "SELECT count(*) FROM invoices WHERE tenant = $1 AND period = $2 "
                "AND namespace IS NOT DISTINCT FROM $3",
                [tenant, label, scope],
            ).fetchone()
            base = draft.invoice_id.replace("DRAFT-", "INV-", 1)
            draft.invoice_id = base if n == 0 else f"{base}-{n + 1}"
            draft.state = draft.state.move(InvoiceState.ISSUED)
            draft.issued_at = datetime.now(UTC).replace(tzinfo=None)
            con.execute(
                "INSERT INTO invoices VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
                "$12, NULL, NULL, $13)",
                [
                    draft.invoice_id,
                    tenant,
                    scope,
                    label,
                    draft.period_start,
                    draft.period_end,
                    draft.currency,
                    draft.minor_unit,
                    draft.subtotal,
                    draft.total,
                    str(draft.state),
                    draft.issued_at,
                    draft.usage_events,
                ],
            )
            if draft.lines:
                con.executemany(
                    "INSERT INTO invoice_lines VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    [
                        [
                            draft.invoice_id,
                            i,
                            ln.card,
                            ln.unit,
                            ln.quantity,
                            ln.per,
                            ln.unit_price,
                            json.dumps(ln.tiers),
                            ln.amount,
                            ln.note,
                        ]
                        for i, ln in enumerate(draft.lines)
                    ],
                )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return draft


def void_invoice(invoice_id: str, *, reason: str, store: Any = None) -> None:
    """Withdraw an issued invoice (admin); its rows stay, marked void with the reason."""
    if not isinstance(reason, str) or not reason.strip():
        raise BillingError("voiding an invoice needs a reason")
    st = _store(store)
    authorize(
        Action.ISSUE_INVOICES, store=st, target=f"invoice {invoice_id}", detail=f"void: {reason}"
    )
    with st.connect() as con:
        row = con.execute(
            "SELECT state FROM invoices WHERE invoice_id = $1", [invoice_id]
        ).fetchone()
        if row is None:
            raise BillingError(f"no invoice {invoice_id} in {st.path}")
        new = InvoiceState(row[0]).move(InvoiceState.VOID)
        con.execute(
            "UPDATE invoices SET state = $2, voided_at = now(), void_reason = $3 "
            "WHERE invoice_id = $1",
            [invoice_id, str(new), reason],
        )

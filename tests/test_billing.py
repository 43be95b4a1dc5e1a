"""Rate cards, usage, corrections and invoices: exact to the cent, idempotent, auditable."""

from __future__ import annotations

import csv
import functools
import io
import json
import subprocess
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fluxnb
from fluxnb import BillingError
from fluxnb.billing import InvoiceState, Price, Tier, charge, read_rate_card
from fluxnb.billing._invoice import price_usage
from fluxnb.billing._money import EXACT, round_amount

from .conftest import FLUXNB, ROOT, cli_env

CARD = (ROOT / "examples" / "rate_card.yaml").read_text()  # the card of docs/billing.md


# ---------------------------------------------------------------------- arithmetic
def exact(price: Price, q: Decimal, minor: int) -> Decimal:
    """The same charge by an independent method: Fractions and a hand-written half-even."""
    total, below = Fraction(0), Fraction(0)
    for t in price.tiers:
        top = Fraction(q) if t.up_to is None else min(Fraction(q), Fraction(t.up_to))
        if top > below:
            total += (top - below) * Fraction(t.price) / Fraction(price.per)
            below = top
    if q <= 0:
        total = Fraction(0)
    scaled = total * 10**minor
    whole = scaled.numerator // scaled.denominator
    rest = scaled - whole
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and whole % 2 == 1):
        whole += 1
    return Decimal(whole).scaleb(-minor)


decimals = st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False)


@st.composite
def prices(draw: st.DrawFn) -> Price:
    n = draw(st.integers(1, 4))
    bounds = sorted(draw(st.sets(st.integers(1, 10**7), min_size=n - 1, max_size=n - 1)))
    ups: list[Decimal | None] = [Decimal(b) for b in bounds] + [None]
    tiers = tuple(Tier(u, draw(decimals)) for u in ups)
    per = Decimal(draw(st.sampled_from([1, 3, 7, 10, 1000, 1_000_000])))
    return Price("u", tiers, per)


quantities = st.one_of(
    st.decimals(min_value=0, max_value=10**20, places=6, allow_nan=False),
    st.integers(0, 10**8).map(Decimal),
    st.just(Decimal(0)),
)


@settings(max_examples=400, deadline=None)
@given(prices(), quantities, st.sampled_from([0, 2, 3]))
def test_charge_matches_exact_fractions(price: Price, q: Decimal, minor: int) -> None:
    c = charge(price, q)
    assert isinstance(c.amount, Decimal)
    assert round_amount(c.amount, minor) == exact(price, q, minor)
    # the tiers used add up to the quantity and to the amount
    if q > 0:
        assert sum(Decimal(t["quantity"]) for t in c.tiers) == q
        parts = [Decimal(t["amount"]) for t in c.tiers]
        assert functools.reduce(EXACT.add, parts, Decimal(0)) == c.amount


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["invocations", "compute_seconds", "llm_tokens", "other"]),
            st.integers(0, 27),
            quantities,
        ),
        max_size=40,
    )
)
def test_invoice_total_is_the_sum_of_rounded_lines_and_nothing_is_float(rows) -> None:
    card = read_rate_card(CARD)
    from dataclasses import replace

    card = replace(card, tenant=None, version=1, card_id="*:standard:v1")
    usage = [(u, date(2026, 11, 1 + d), q) for u, d, q in rows]
    lines, code, minor, _ = price_usage(usage, [card], "acme")
    inv = fluxnb.Invoice(
        "x",
        "acme",
        None,
        "2026-11",
        datetime(2026, 11, 1),
        datetime(2026, 12, 1),
        code,
        minor,
        lines,
    )
    assert inv.total == sum((ln.amount for ln in lines), Decimal(0))
    for ln in lines:
        assert ln.amount == round_amount(ln.amount, 2)  # rounded to the cent
        for v in (ln.quantity, ln.per, ln.amount):
            assert isinstance(v, Decimal)
        want = {}
        for u, _, q in rows:
            want[u] = want.get(u, Decimal(0)) + q
        assert ln.quantity == want[ln.unit]

    def no_float(x) -> None:
        assert not isinstance(x, float), x
        if isinstance(x, dict):
            for v in x.values():
                no_float(v)
        if isinstance(x, list):
            for v in x:
                no_float(v)

    no_float(inv.to_dict())
    assert Decimal(inv.to_dict()["total"]) == inv.total


def test_tier_boundaries_blocks_and_rounding_by_hand() -> None:
    p = read_rate_card(CARD).price_of("invocations")
    assert p is not None
    assert charge(p, Decimal(0)).amount == 0
    assert charge(p, Decimal(100000)).amount == Decimal("50")  # exactly the first tier
    assert charge(p, Decimal(100001)).amount == Decimal("50.0004")  # one unit into tier 2
    assert len(charge(p, Decimal(100001)).tiers) == 2
    assert charge(p, Decimal(1)).amount == Decimal("0.0005")  # a partial block, pro rata
    assert charge(p, Decimal(10**20)).amount == Decimal("40000000000000010")  # huge counts
    # half-even at the cent: 0.005 -> 0.00, 0.015 -> 0.02, 0.025 -> 0.02
    assert [round_amount(Decimal(x), 2) for x in ("0.005", "0.015", "0.025", "0.0251")] == [
        Decimal("0.00"),
        Decimal("0.02"),
        Decimal("0.02"),
        Decimal("0.03"),
    ]
    assert round_amount(Decimal("2.5"), 0) == 2 and round_amount(Decimal("0.0005"), 3) == Decimal(
        "0.000"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('price: "0.0001"', "price: 0.0001"), "is a float; write it as a string"),
        (("currency: USD", "currency: XYZ"), "minor unit"),
        (("currency: USD", "currency: dollars"), "ISO 4217"),
        (
            ('{up_to: null, price: "0.40"}', '{up_to: 200000, price: "0.40"}'),
            "last tier must have up_to: null",
        ),
        (("{up_to: 100000, price", "{up_to: null, price"), "only the last tier"),
        (("per: 1000\n      tiers", "per: 0\n      tiers"), "per must be positive"),
        (("effective_from: 2026-01-01", "effective_from: soon"), "not a date"),
        (("- unit: compute_seconds", "- unit: Compute Seconds"), "not valid"),
        (("name: standard", "name: standard\n  colour: red"), "unknown key 'colour'"),
        (('price: "0.0001"', 'price: "-1"'), "must not be negative"),
        (('price: "0.0001"', 'price: "0.0000000001"'), "more than 9 decimal places"),
        (('price: "0.0001"', 'price: "0.0001"\n      tiers: []'), "either price"),
    ],
)
def test_bad_rate_cards_are_refused_with_the_key(change: tuple[str, str], message: str) -> None:
    with pytest.raises(BillingError, match=message):
        read_rate_card(CARD.replace(*change, 1))


def test_decimal_and_dict_forms_are_accepted_and_round_trip() -> None:
    card = read_rate_card(CARD)
    again = read_rate_card(card.to_dict())
    assert again == card
    direct = read_rate_card(
        {
            "name": "x",
            "currency": "JPY",
            "effective_from": date(2026, 1, 1),
            "prices": [{"unit": "calls", "price": Decimal("3")}],
        }
    )
    assert direct.minor_unit == 0 and direct.prices[0].tiers[0].price == 3


# ---------------------------------------------------------------------- the ledger
def ask(ctx):
    ctx.meter("llm_tokens", 1500, idempotency_key=f"resp-{ctx.run_id}")
    ctx.meter("llm_tokens", 1500, idempotency_key=f"resp-{ctx.run_id}")  # a resend
    ctx.meter("llm_tokens", "250.5")
    return 1


def answer(ask):
    return ask + 1


BILLED = "name: billed\npipeline:\n  - step: ask\n  - step: answer\n    depends_on: ask\n"
STEPS = {"ask": ask, "answer": answer}


def test_runs_meter_usage_once_and_replays_do_not_bill(store_path: str) -> None:
    fluxnb.set_rate_card(CARD, store=store_path)
    r = fluxnb.run(BILLED, STEPS, store=store_path, tenant="acme")
    assert r.ok
    u = fluxnb.usage("acme", store=store_path)
    by_unit = u.groupby("unit").quantity.apply(lambda s: sum(Decimal(x) for x in s))
    assert by_unit["invocations"] == 2
    assert by_unit["llm_tokens"] == Decimal("1750.5")  # 1500 once + 250.5
    assert "retries" not in by_unit  # nothing retried: no zero rows
    assert by_unit["compute_seconds"] > 0
    assert set(u.source) == {"auto", "custom"}
    assert set(u.run_id) == {r.run_id}
    before = len(u)
    assert fluxnb.replay(r.run_id, STEPS, store=store_path).identical
    fluxnb.store(store_path).load_pending()
    assert len(fluxnb.usage("acme", store=store_path)) == before  # a replay is not billed
    typed = fluxnb.sql("SELECT DISTINCT typeof(quantity) AS t FROM usage", store=store_path)
    assert typed.t.tolist() == ["DECIMAL(38,9)"]


def test_retries_are_metered_and_a_resume_bills_only_new_attempts(store_path: str) -> None:
    state = {"calls": 0, "fail": True}

    def flaky() -> int:
        state["calls"] += 1
        if state["fail"]:
            raise RuntimeError("down")
        return 1

    text = """
name: retried
agents:
  - id: flaky
    retry: {max_attempts: 3, backoff: none}
pipeline:
  - step: flaky
  - step: after
    depends_on: flaky
"""
    ns = {"flaky": flaky, "after": lambda flaky: flaky}
    failed = fluxnb.run(text, ns, store=store_path, tenant="acme")
    assert not failed.ok and state["calls"] == 3

    def totals() -> dict[str, Decimal]:
        u = fluxnb.usage("acme", store=store_path)
        return {k: sum(Decimal(x) for x in g) for k, g in u.groupby("unit").quantity}

    first = totals()
    assert (first["invocations"], first["retries"]) == (3, 2)
    state["fail"] = False
    resumed = fluxnb.resume(failed.run_id, ns, store=store_path)
    assert resumed.ok
    after = totals()
    # the resume ran flaky once more (attempt 4) and 'after' once: 2 new invocations, and
    # the three recorded attempts were not billed again
    assert after["invocations"] == 5 and after["retries"] == 3
    keys = fluxnb.usage("acme", store=store_path).event_id
    assert keys.is_unique


def test_record_and_correct_usage_are_idempotent_and_never_update_in_place(store_path: str) -> None:
    for _ in range(2):  # the same export twice: one event
        fluxnb.record_usage(
            "acme",
            "invocations",
            250000,
            idempotency_key="export-2026-10",
            occurred_at="2026-10-15T12:00:00",
            store=store_path,
        )
    fluxnb.correct_usage(
        "acme",
        "invocations",
        -50000,
        reason="duplicate batch from the provider",
        corrects="export-2026-10",
        occurred_at=date(2026, 10, 20),
        store=store_path,
    )
    u = fluxnb.usage("acme", "2026-10", store=store_path)
    assert u.quantity.tolist() == [Decimal("250000"), Decimal("-50000")]
    assert all(type(q) is Decimal for q in u.quantity)
    assert u.source.tolist() == ["external", "correction"]
    assert u.reason.tolist()[1] == "duplicate batch from the provider"
    with pytest.raises(BillingError, match="needs a reason"):
        fluxnb.correct_usage("acme", "invocations", 1, reason=" ", store=store_path)
    with pytest.raises(BillingError, match="more than 9 decimal places"):
        fluxnb.record_usage("acme", "x", "0.0000000001", idempotency_key="k", store=store_path)
    with pytest.raises(BillingError, match="must be a number"):
        fluxnb.record_usage("acme", "x", None, idempotency_key="k", store=store_path)
    fluxnb.set_rate_card(CARD, store=store_path)
    inv = fluxnb.invoice("acme", "2026-10", store=store_path)
    assert [(ln.unit, ln.quantity, ln.amount) for ln in inv.lines] == [
        ("invocations", Decimal(200000), Decimal("90.00"))  # 100k x 0.50/1k + 100k x 0.40/1k
    ]


def test_cards_in_effect_by_day_tenant_cards_first_and_versions(store_path: str) -> None:
    fluxnb.set_rate_card(CARD, store=store_path)
    cheaper = CARD.replace("2026-01-01", "2026-10-16").replace('"0.50"', '"0.25"')
    fluxnb.set_rate_card(cheaper, tenant="acme", store=store_path)
    v2 = fluxnb.set_rate_card(CARD.replace('"0.40"', '"0.30"'), store=store_path)
    assert v2.card_id == "*:standard:v2" and v2.version == 2
    for day, n in ((10, 1000), (20, 1000)):
        fluxnb.record_usage(
            "acme",
            "invocations",
            n,
            idempotency_key=f"d{day}",
            occurred_at=f"2026-10-{day}",
            store=store_path,
        )
        fluxnb.record_usage(
            "other",
            "invocations",
            n,
            idempotency_key=f"o{day}",
            occurred_at=f"2026-10-{day}",
            store=store_path,
        )
    acme = fluxnb.invoice("acme", "2026-10", store=store_path)
    assert [(ln.card, ln.quantity, ln.amount) for ln in acme.lines] == [
        ("*:standard:v2", 1000, Decimal("0.50")),  # before the 16th: the default card
        ("acme:standard:v1", 1000, Decimal("0.25")),  # from the 16th: acme's own
    ]
    other = fluxnb.invoice("other", "2026-10", store=store_path)
    assert [(ln.card, ln.amount) for ln in other.lines] == [("*:standard:v2", Decimal("1.00"))]
    cards = fluxnb.rate_cards(store=store_path)
    assert set(cards.card_id) == {"*:standard:v1", "*:standard:v2", "acme:standard:v1"}
    v2_tiers = cards[(cards.card_id == "*:standard:v2") & (cards.unit == "invocations")]
    assert v2_tiers.price.tolist() == ["0.500000000", "0.300000000"]


def test_unpriced_usage_is_shown_not_charged_and_currencies_never_mix(store_path: str) -> None:
    fluxnb.record_usage(
        "acme", "gpu_hours", 3, idempotency_key="g", occurred_at="2026-09-01", store=store_path
    )
    inv = fluxnb.invoice("acme", "2026-09", store=store_path)
    assert inv.total == 0 and "no rate card" in inv.lines[0].note
    fluxnb.set_rate_card(CARD.replace("2026-01-01", "2026-09-01"), store=store_path)
    inv = fluxnb.invoice("acme", "2026-09", store=store_path)
    assert inv.lines[0].note.startswith("not on rate card 'standard' v1")
    eur = (
        CARD.replace("USD", "EUR")
        .replace("2026-01-01", "2026-09-15")
        .replace("name: standard", "name: euro")
    )
    fluxnb.set_rate_card(eur, tenant="acme", store=store_path)
    fluxnb.record_usage(
        "acme", "invocations", 3, idempotency_key="h", occurred_at="2026-09-20", store=store_path
    )
    fluxnb.record_usage(
        "acme", "invocations", 3, idempotency_key="i", occurred_at="2026-09-02", store=store_path
    )
    with pytest.raises(BillingError, match="different currencies"):
        fluxnb.invoice("acme", "2026-09", store=store_path)


def test_issue_void_reissue_and_closed_periods_keep_their_numbers(
    store_path: str, tmp_path: Path
) -> None:
    fluxnb.set_rate_card(CARD, store=store_path)
    fluxnb.record_usage(
        "acme",
        "llm_tokens",
        1234567,
        idempotency_key="t",
        occurred_at="2026-10-03",
        store=store_path,
    )
    draft = fluxnb.invoice("acme", "2026-10", store=store_path)
    assert draft.state is InvoiceState.DRAFT and draft.invoice_id == "DRAFT-acme-2026-10"
    assert draft.total == Decimal("2.47")  # 1,234,567 / 1000 x 0.002 = 2.469134
    again = fluxnb.invoice("acme", "2026-10", store=store_path)
    assert again.to_dict() == draft.to_dict()  # regenerated: the same numbers
    issued = fluxnb.issue_invoice("acme", "2026-10", store=store_path)
    assert issued.state is InvoiceState.ISSUED and issued.invoice_id == "INV-acme-2026-10"
    # usage arriving late for October does not change the issued invoice
    fluxnb.record_usage(
        "acme",
        "llm_tokens",
        1000000,
        idempotency_key="late",
        occurred_at="2026-10-30",
        store=store_path,
    )
    stored = fluxnb.invoice("acme", "2026-10", store=store_path)
    assert stored.state is InvoiceState.ISSUED and stored.total == Decimal("2.47")
    assert [ln.tiers for ln in stored.lines] == [ln.tiers for ln in issued.lines]
    with pytest.raises(BillingError, match="already issued"):
        fluxnb.issue_invoice("acme", "2026-10", store=store_path)
    with pytest.raises(BillingError, match="is not over until"):
        fluxnb.issue_invoice("acme", datetime.now(UTC).strftime("%Y-%m"), store=store_path)
    fluxnb.void_invoice("INV-acme-2026-10", reason="late usage", store=store_path)
    with pytest.raises(BillingError, match="cannot go from void to void"):
        fluxnb.void_invoice("INV-acme-2026-10", reason="twice", store=store_path)
    reissued = fluxnb.issue_invoice("acme", "2026-10", store=store_path)
    assert reissued.invoice_id == "INV-acme-2026-10-2" and reissued.total == Decimal("4.47")
    rows = fluxnb.sql(
        "SELECT invoice_id, state, coalesce(void_reason, '-'), typeof(total) FROM invoices ORDER BY 1",
        store=store_path,
    )
    assert rows.values.tolist() == [
        ["INV-acme-2026-10", "void", "late usage", "DECIMAL(38,9)"],
        ["INV-acme-2026-10-2", "issued", "-", "DECIMAL(38,9)"],
    ]
    # SQL gives money as Decimal too, to the last digit (DuckDB's own pandas conversion
    # would give float64), on the store and in a viewer's scratch database alike
    money = fluxnb.sql(
        "SELECT total, total::DOUBLE AS approx, 12345678901234.5678::DECIMAL(38,4) AS big "
        "FROM invoices WHERE state = 'issued'",
        store=store_path,
    )
    assert money.total.tolist() == [reissued.total] and isinstance(money.total[0], Decimal)
    assert money.big[0] == Decimal("12345678901234.5678") and money.approx.dtype == float
    with fluxnb.session(role="viewer"):
        prices = fluxnb.sql(
            "SELECT unit, price FROM rate_card_prices WHERE unit = 'compute_seconds'",
            store=store_path,
        )
    assert prices.price.tolist() == [Decimal("0.0001")]
    # exports
    text = reissued.to_csv(tmp_path / "inv.csv")
    table = list(csv.DictReader(io.StringIO(text)))
    assert table[-1]["unit"] == "total" and Decimal(table[-1]["amount"]) == reissued.total
    data = json.loads(reissued.to_json(tmp_path / "inv.json"))
    assert data["total"] == "4.47" and data["lines"][0]["quantity"] == "2234567"
    frame = reissued.to_frame()
    assert isinstance(frame.amount[0], Decimal)
    assert "4.47 USD" in reissued._repr_html_() and "4.47 USD" in str(reissued)
    with pytest.raises(BillingError, match="cannot go from issued to draft"):
        InvoiceState.ISSUED.move(InvoiceState.DRAFT)
    for bad in ("2026-13", "November", 202611):
        with pytest.raises(BillingError, match="month like"):
            fluxnb.invoice("acme", bad, store=store_path)


def test_invoices_read_back_in_the_currencys_minor_unit(store_path: str) -> None:
    fluxnb.set_rate_card(CARD, store=store_path)
    fluxnb.record_usage(
        "acme",
        "llm_tokens",
        1234567,
        idempotency_key="t",
        occurred_at="2026-10-03",
        store=store_path,
    )
    issued = fluxnb.issue_invoice("acme", "2026-10", store=store_path)
    stored = fluxnb.invoice("acme", "2026-10", store=store_path)
    assert stored.state is InvoiceState.ISSUED
    # DECIMAL(38, 9) in the store; to the cent when read back, as when it was issued
    assert str(stored.total) == str(issued.total) == "2.47"
    assert [str(ln.amount) for ln in stored.lines] == [str(ln.amount) for ln in issued.lines]
    assert [str(ln.quantity) for ln in stored.lines] == ["1234567"]
    assert stored.to_dict() == issued.to_dict()
    empty = fluxnb.invoice("acme", "2026-08", store=store_path)
    assert not empty.lines and str(empty.total) == "0.00" and empty.to_dict()["total"] == "0.00"
    usage = fluxnb.usage("acme", store=store_path)
    assert usage["quantity"].tolist() == [Decimal("1234567")]
    assert type(usage["quantity"][0]) is Decimal
    assert usage["run_id"][0] is None  # a NULL string is None, not NaN or "None"
    assert issued.to_frame()["note"].tolist() == [None]


def test_cli_rates_and_invoice(store_path: str, tmp_path: Path) -> None:
    card = tmp_path / "card.yaml"
    card.write_text(CARD)
    env = cli_env()

    def run(*a):
        return subprocess.run(
            [*FLUXNB, *a, "--store", store_path], capture_output=True, text=True, env=env
        )

    assert run("rates", "set", str(card)).returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(CARD.replace('"0.0001"', "0.0001"))
    out = run("rates", "set", str(bad))
    assert out.returncode == 2 and "is a float" in out.stderr
    fluxnb.record_usage(
        "acme",
        "invocations",
        150000,
        idempotency_key="x",
        occurred_at="2026-10-05",
        store=store_path,
    )
    shown = run("invoice", "--tenant", "acme", "--period", "2026-10")
    assert shown.returncode == 0 and "70.00 USD" in shown.stdout, shown.stderr
    as_json = json.loads(run("invoice", "--tenant", "acme", "--period", "2026-10", "--json").stdout)
    assert as_json["total"] == "70.00" and as_json["state"] == "draft"
    issued = run("invoice", "--tenant", "acme", "--period", "2026-10", "--issue", "--csv")
    assert issued.returncode == 0 and "INV-acme-2026-10,total,,,,70.00,USD" in issued.stdout
    listed = json.loads(run("rates", "list", "--json").stdout)
    assert {r["unit"] for r in listed} == {"invocations", "compute_seconds", "llm_tokens"}

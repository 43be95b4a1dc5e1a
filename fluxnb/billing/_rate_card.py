"""Rate cards: what a unit of usage costs, written as YAML (or the same dict).

```yaml
rate_card:
  name: standard
  currency: USD
  effective_from: 2026-11-01
  prices:
    - unit: invocations
      per: 1000                  # price per block of 1,000 units (default 1)
      tiers:                     # graduated: each tier prices the units that fall in it
        - {up_to: 100000, price: "0.50"}
        - {up_to: null, price: "0.40"}
    - unit: compute_seconds
      price: "0.0001"
```

Pricing a quantity ``q`` of a unit: each tier takes the units between the previous tier's
``up_to`` and its own, and charges ``units / per x price`` (a partial block pro rata); the
line's amount is the sum, rounded once (see ``_money``). A flat ``price`` is one tier with no
limit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from .._exceptions import BillingError, ManifestError
from ..spec._files import read_file_text
from ..spec._located import load_yaml
from ..store._usage import check_unit
from ._money import EXACT, currency, decimal

CARD_KEYS = ("name", "currency", "minor_unit", "effective_from", "prices", "description")
PRICE_KEYS = ("unit", "per", "price", "tiers", "description")
TIER_KEYS = ("up_to", "price")


@dataclass(frozen=True)
class Tier:
    """One step of a graduated price."""

    #: The cumulative quantity up to which this tier's price applies (None: no limit).
    up_to: Decimal | None
    #: The price of one block of ``per`` units in this tier.
    price: Decimal


@dataclass(frozen=True)
class Price:
    """What one unit of usage costs: a flat price or graduated tiers, per block."""

    #: The usage unit (``invocations``, ``compute_seconds``, ``llm_tokens``, ...).
    unit: str
    #: Tiers in order; a flat price is a single tier with ``up_to`` None.
    tiers: tuple[Tier, ...]
    #: Units per priced block (a price "per 1,000" has per = 1000).
    per: Decimal = Decimal(1)

    @property
    def flat(self) -> bool:
        return len(self.tiers) == 1


@dataclass(frozen=True)
class Charge:
    """A quantity priced: the exact amount (before the line is rounded) and the tiers used."""

    amount: Decimal
    #: One dict per tier that priced some units: from, to, quantity, price, amount (strings).
    tiers: list[dict[str, str | None]] = field(default_factory=list)
    #: The flat price, or the price of the last tier reached (the marginal price).
    unit_price: Decimal | None = None


def charge(price: Price, quantity: Decimal) -> Charge:
    """Price ``quantity`` units (nothing is charged for zero or less)."""
    if quantity <= 0:
        return Charge(Decimal(0), [], price.tiers[0].price)
    done = Decimal(0)
    amount = Decimal(0)
    used: list[dict[str, str | None]] = []
    last = price.tiers[0].price
    for tier in price.tiers:
        top = quantity if tier.up_to is None else min(quantity, tier.up_to)
        if top <= done:
            break
        units = top - done
        part = EXACT.divide(EXACT.multiply(units, tier.price), price.per)
        amount = EXACT.add(amount, part)
        used.append(
            {
                "from": f"{done:f}",
                "to": None if tier.up_to is None else f"{tier.up_to:f}",
                "quantity": f"{units:f}",
                "price": f"{tier.price:f}",
                "amount": f"{part:f}",
            }
        )
        last = tier.price
        done = top
        if done >= quantity:
            break
    return Charge(amount, used, last)


@dataclass(frozen=True)
class RateCard:
    """A versioned price list. Set one with :func:`fluxnb.set_rate_card`."""

    #: The card's name (versions of one name for one tenant are numbered 1, 2, ...).
    name: str
    #: ISO 4217 code; every amount on an invoice priced by this card is in it.
    currency: str
    #: The first day (UTC) on which usage is priced by this card.
    effective_from: date
    #: One price per unit.
    prices: tuple[Price, ...]
    #: Decimal places of the currency's minor unit (2 for cents).
    minor_unit: int = 2
    description: str | None = None
    #: Set when read back from a store.
    tenant: str | None = None
    version: int | None = None
    card_id: str | None = None

    def price_of(self, unit: str) -> Price | None:
        return next((p for p in self.prices if p.unit == unit), None)

    def to_dict(self) -> dict[str, Any]:
        """The card as the YAML form's dict (decimals as strings): ``{"rate_card": {...}}``."""
        prices = []
        for p in self.prices:
            item: dict[str, Any] = {"unit": p.unit}
            if p.per != 1:
                item["per"] = str(p.per)
            if p.flat:
                item["price"] = str(p.tiers[0].price)
            else:
                item["tiers"] = [
                    {"up_to": None if t.up_to is None else str(t.up_to), "price": str(t.price)}
                    for t in p.tiers
                ]
            prices.append(item)
        card: dict[str, Any] = {
            "name": self.name,
            "currency": self.currency,
            "minor_unit": self.minor_unit,
            "effective_from": self.effective_from.isoformat(),
            "prices": prices,
        }
        if self.description:
            card["description"] = self.description
        return {"rate_card": card}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def read_rate_card(source: Any) -> RateCard:
    """A RateCard from YAML text, a path to a YAML file, a dict, or a RateCard.

    Raises:
        BillingError: naming the key at fault (``rate_card.prices[0].tiers[1].price``).
    """
    if isinstance(source, RateCard):
        return source
    name = "the rate card"  # where YAML problems are located: the file's path when read
    if isinstance(source, Path) or (
        isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml"))
    ):
        path = Path(source)
        try:
            source = read_file_text(path, "rate card")
            name = str(path)
        except ManifestError as exc:
            raise BillingError(str(exc)) from None
    if isinstance(source, str):
        try:  # the manifests' YAML reader: bounded aliases and sizes, plain types only
            source = load_yaml(source, name)
        except ManifestError as exc:
            raise BillingError(f"the rate card is not valid YAML: {exc}") from None
    if not isinstance(source, dict):
        raise BillingError(f"a rate card must be a mapping, found {type(source).__name__}")
    if "rate_card" in source:
        if len(source) > 1:
            others = ", ".join(str(k) for k in source if k != "rate_card")
            raise BillingError(f"a rate card has one top-level key, rate_card; found also {others}")
        source = source["rate_card"]
    return _card(source, "rate_card")


def _keys(raw: Any, allowed: tuple[str, ...], where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise BillingError(f"{where} must be a mapping, found {type(raw).__name__} {raw!r}")
    unknown = [k for k in raw if k not in allowed]
    if unknown:
        raise BillingError(f"{where}: unknown key '{unknown[0]}'; allowed: {', '.join(allowed)}")
    return raw


def _card(raw: Any, where: str) -> RateCard:
    m = _keys(raw, CARD_KEYS, where)
    for key in ("name", "currency", "effective_from", "prices"):
        if m.get(key) in (None, ""):
            raise BillingError(f"{where}.{key} is missing")
    if not isinstance(m["name"], str):
        raise BillingError(f"{where}.name must be a string, found {m['name']!r}")
    code, minor = currency(m["currency"], m.get("minor_unit"))
    effective = m["effective_from"]
    if isinstance(effective, str):
        try:
            effective = date.fromisoformat(effective)
        except ValueError:
            raise BillingError(
                f"{where}.effective_from {effective!r} is not a date like 2026-11-01"
            ) from None
    if not isinstance(effective, date):
        raise BillingError(f"{where}.effective_from must be a date like 2026-11-01")
    if not isinstance(m["prices"], list) or not m["prices"]:
        raise BillingError(f"{where}.prices must be a non-empty list")
    prices = tuple(_price(p, f"{where}.prices[{i}]") for i, p in enumerate(m["prices"]))
    seen: set[str] = set()
    for p in prices:
        if p.unit in seen:
            raise BillingError(f"{where}.prices: unit '{p.unit}' is priced twice")
        seen.add(p.unit)
    return RateCard(m["name"], code, effective, prices, minor, m.get("description"))


def _price(raw: Any, where: str) -> Price:
    m = _keys(raw, PRICE_KEYS, where)
    if "unit" not in m:
        raise BillingError(f"{where}.unit is missing")
    try:
        unit = check_unit(m["unit"])
    except BillingError as exc:
        raise BillingError(f"{where}.unit: {exc}") from None
    per = decimal(m.get("per", 1), f"{where}.per")
    assert per is not None
    if per <= 0:
        raise BillingError(f"{where}.per must be positive, found {per}")
    if ("price" in m) == ("tiers" in m):
        raise BillingError(f"{where}: give either price (flat) or tiers (graduated), not both")
    if "price" in m:
        return Price(unit, (Tier(None, _amount(m["price"], f"{where}.price")),), per)
    if not isinstance(m["tiers"], list) or not m["tiers"]:
        raise BillingError(f"{where}.tiers must be a non-empty list")
    tiers: list[Tier] = []
    for i, t in enumerate(m["tiers"]):
        tw = f"{where}.tiers[{i}]"
        tm = _keys(t, TIER_KEYS, tw)
        if "price" not in tm:
            raise BillingError(f"{tw}.price is missing")
        up_to = decimal(tm.get("up_to"), f"{tw}.up_to", allow_none=True)
        last = i == len(m["tiers"]) - 1
        if up_to is None and not last:
            raise BillingError(f"{tw}: only the last tier may have up_to: null")
        if up_to is not None and last:
            raise BillingError(
                f"{tw}: the last tier must have up_to: null, so that every quantity has a price"
            )
        if up_to is not None and (up_to <= 0 or (tiers and up_to <= (tiers[-1].up_to or 0))):
            raise BillingError(f"{tw}.up_to must be positive and above the previous tier's")
        tiers.append(Tier(up_to, _amount(tm["price"], f"{tw}.price")))
    return Price(unit, tuple(tiers), per)


def _amount(value: Any, where: str) -> Decimal:
    d = decimal(value, where)
    assert d is not None
    if d < 0:
        raise BillingError(f"{where} must not be negative, found {d}")
    return d

"""LLM prices: the table ``llm_prices`` (seeded from the package's ``llm_prices.csv``,
editable per store), aliases (``price_as``), and what a call costs.

Prices are Decimal per million tokens (USD). A row applies from its ``effective_from``
day; for one (provider, model) the newest row in effect wins, and a store's rows win over
the shipped file's on the same day. ``model`` ``*`` prices every model of a provider (a
local server: free). An unpriced model costs ``None`` with ``cost_status='unpriced'``
and one warning per (provider, model) per process, never an exception.
"""

from __future__ import annotations

import csv
import functools
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

_MILLION = Decimal(1_000_000)
_PLACES = Decimal(1).scaleb(-9)


@dataclass(frozen=True)
class Price:
    """One row of ``llm_prices`` (Decimal USD per million tokens)."""

    provider: str
    model: str
    input_per_m: Decimal | None
    output_per_m: Decimal | None
    cached_per_m: Decimal | None
    effective_from: date
    context_window: int | None = None
    #: What the model can do: ``json``, ``tools``, ``stream`` (space separated in the table).
    features: frozenset[str] = frozenset()
    #: Priced as another row: ``provider/model``.
    price_as: str | None = None
    source: str = "seed"

    @property
    def priced(self) -> bool:
        return self.input_per_m is not None and self.output_per_m is not None


def _dec(v: Any) -> Decimal | None:
    return None if v is None or v == "" else Decimal(str(v))


def _price(row: dict[str, Any]) -> Price:
    day = row["effective_from"]
    if isinstance(day, str):
        day = date.fromisoformat(day)
    cw = row.get("context_window")
    return Price(
        str(row["provider"]),
        str(row["model"]),
        _dec(row.get("input_per_m")),
        _dec(row.get("output_per_m")),
        _dec(row.get("cached_per_m")),
        day,
        None if cw in (None, "") else int(cw),
        frozenset(str(row.get("features") or "").replace(",", " ").split()),
        row.get("price_as") or None,
        str(row.get("source") or "seed"),
    )


@functools.cache
def shipped_prices() -> tuple[Price, ...]:
    """The rows of the package's ``llm_prices.csv`` (what a new store is seeded with)."""
    from ..store import _schema

    path = Path(_schema.__file__).with_name("llm_prices.csv")
    with open(path, newline="") as f:
        return tuple(_price(r) for r in csv.DictReader(f))


class PriceBook:
    """The prices in effect on ``day``: a store's rows over the shipped file's."""

    def __init__(self, rows: list[dict[str, Any]] | None = None, day: date | None = None) -> None:
        self.day = day or datetime.now(UTC).date()
        best: dict[tuple[str, str], Price] = {}
        # the shipped file first, then the store's rows: on the same day the store wins
        for p in (*shipped_prices(), *(_price(r) for r in rows or [])):
            if p.effective_from > self.day:
                continue
            key = (p.provider, p.model)
            old = best.get(key)
            if old is None or p.effective_from >= old.effective_from:
                best[key] = p
        self.rows = best

    def find(self, provider: str, model: str) -> Price | None:
        """The row of ``provider/model`` (or its provider's ``*`` row), unresolved."""
        return self.rows.get((provider, model)) or self.rows.get((provider, "*"))

    def resolve(
        self, provider: str, model: str, alias: str | None = None
    ) -> tuple[Price | None, str | None]:
        """The price to charge and the alias followed (``provider/model``), if any.
        ``alias`` (a provider's ``price_as``) wins over the table's own ``price_as``."""
        seen: list[str] = []
        target = alias
        row = None if alias else self.find(provider, model)
        while True:
            if target is None and row is not None:
                target = row.price_as
            if target is None:
                return row, (seen[-1] if seen else None)
            if target in seen or len(seen) > 8:  # a loop of aliases prices nothing
                return None, target
            seen.append(target)
            p, _, m = target.partition("/")
            row, target = self.find(p, m), None


def cost(price: Price | None, prompt: int, cached: int, completion: int) -> Decimal | None:
    """What the tokens cost under ``price`` (None: unpriced). Cached prompt tokens are
    charged at the cached price (the input price if the row has none); reasoning tokens
    are part of the completion tokens, as the providers report them."""
    if price is None or not price.priced:
        return None
    assert price.input_per_m is not None and price.output_per_m is not None
    cached = min(cached, prompt)
    cached_rate = price.cached_per_m if price.cached_per_m is not None else price.input_per_m
    total = (
        (prompt - cached) * price.input_per_m
        + cached * cached_rate
        + completion * price.output_per_m
    ) / _MILLION
    return total.quantize(_PLACES)


_WARNED: set[tuple[str, str]] = set()


def warn_unpriced(provider: str, model: str) -> None:
    """One warning per (provider, model) per process."""
    if (provider, model) in _WARNED:
        return
    _WARNED.add((provider, model))
    warnings.warn(
        f"LLM model {provider}/{model} has no price in llm_prices: its calls are recorded "
        "with cost NULL (cost_status 'unpriced') and budgets cannot count them. Add a row "
        "to the store's llm_prices table, or give the provider a price_as alias",
        RuntimeWarning,
        stacklevel=3,
    )

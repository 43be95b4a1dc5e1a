"""Which models a call tries, in order: explicit candidates, or a virtual model resolved
deterministically from the price table.

``model:`` is ``provider/model``, a list of them (tried in order), or a virtual name:

- ``cost-optimal``: every priced model of the configured providers that fits (context
  window, features), cheapest estimated cost first (ties by name);
- ``auto``: the same models, in the order the providers are configured, cheapest first
  within a provider.

The same inputs and prices always give the same order; it is recorded with every call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from .._exceptions import LLMError
from ._prices import PriceBook, cost
from ._providers import Provider

VIRTUAL = ("auto", "cost-optimal")


@dataclass(frozen=True)
class Candidate:
    """One (provider, model) a call may be sent to."""

    provider: Provider
    model: str

    @property
    def name(self) -> str:
        return f"{self.provider.name}/{self.model}"


def estimate_tokens(text: str) -> int:
    """A rough prompt size (4 characters a token), for routing only."""
    return len(text) // 4 + 1


def upper_bound_tokens(text: str) -> int:
    """A prompt can never be more tokens than its UTF-8 bytes (every tokenizer in use
    maps at least one byte to a token), plus a few per message: the budget's worst case."""
    return len(text.encode()) + 16


def resolve(
    model: str | Sequence[str],
    providers: Sequence[Provider],
    book: PriceBook,
    *,
    prompt: str = "",
    max_tokens: int | None = None,
    needs: frozenset[str] = frozenset(),
) -> tuple[Candidate, ...]:
    """The ordered candidates of ``model`` (see the module's docstring)."""
    names = [model] if isinstance(model, str) else list(model)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise LLMError(
            f"model must be 'provider/model', a list of them or one of {VIRTUAL}, got {model!r}"
        )
    by_name = {p.name: p for p in providers}
    out: list[Candidate] = []
    for n in names:
        found = (
            _virtual(n, providers, book, prompt, max_tokens, needs)
            if n in VIRTUAL
            else [_explicit(n, by_name)]
        )
        out += [c for c in found if c not in out]
    return tuple(out)


def _explicit(name: str, by_name: dict[str, Provider]) -> Candidate:
    prov, sep, m = name.partition("/")
    if not sep or not m:
        raise LLMError(
            f"model {name!r} names no provider: write it 'provider/model' (e.g. "
            f"'openai/gpt-4o-mini'), or use a virtual model {VIRTUAL}"
        )
    if prov not in by_name:
        known = ", ".join(by_name) or "none"
        raise LLMError(
            f"model {name!r}: no provider named '{prov}' (configured: {known}); declare it "
            "under providers:",
            candidates=(name,),
        )
    return Candidate(by_name[prov], m)


def _virtual(
    name: str,
    providers: Sequence[Provider],
    book: PriceBook,
    prompt: str,
    max_tokens: int | None,
    needs: frozenset[str],
) -> list[Candidate]:
    est_in = estimate_tokens(prompt)
    est_out = max_tokens or 256
    order = {p.name: i for i, p in enumerate(providers)}
    fits: list[tuple[tuple[int, Decimal, str], Candidate]] = []
    for (prov, m), row in sorted(book.rows.items()):
        if prov not in order or m == "*":
            continue
        price, _ = book.resolve(prov, m, providers[order[prov]].price_as.get(m))
        estimate = cost(price, est_in, 0, est_out)
        if estimate is None:
            continue  # routing by cost needs a price
        if row.context_window is not None and row.context_window < est_in + est_out:
            continue
        if not needs <= row.features:
            continue
        rank = order[prov] if name == "auto" else 0
        fits.append(((rank, estimate, f"{prov}/{m}"), Candidate(providers[order[prov]], m)))
    if not fits:
        raise LLMError(
            f"virtual model '{name}' found no priced model of the providers "
            f"({', '.join(order) or 'none configured'}) that fits {est_in + est_out} tokens"
            + (f" with {', '.join(sorted(needs))}" if needs else "")
            + "; add rows to llm_prices, or name the models"
        )
    return [c for _, c in sorted(fits, key=lambda f: f[0])]

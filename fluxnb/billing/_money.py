"""Money: Decimal amounts, currencies and their minor units, and the one rounding rule.

Rounding (documented in docs/billing.md): each invoice line is rounded once, half-even
(banker's rounding), to its currency's minor unit; the total is the sum of the rounded
lines, so it always equals what the lines show. Nothing is ever a float.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Any

from .._exceptions import BillingError

#: ISO 4217 minor units of common currencies (a card may give ``minor_unit`` for others).
_CENTS = "USD EUR GBP CHF CAD AUD NZD SEK NOK DKK PLN CZK HUF CNY HKD SGD INR BRL MXN ZAR TRY ILS"
_CENTS += " AED SAR THB MYR PHP IDR TWD RUB UAH RON BGN"
MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(_CENTS.split(), 2),
    **dict.fromkeys(("JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XOF", "XAF", "PYG"), 0),
    **dict.fromkeys(("BHD", "KWD", "OMR", "JOD", "TND", "IQD", "LYD"), 3),
}
_CODE = re.compile(r"[A-Z]{3}")
#: A decimal string: ASCII digits with an optional sign, point and exponent (Decimal() would
#: also take '5_000' and other scripts' digits).
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
#: Enough digits that no sum or quotient of 38-digit amounts is ever rounded early.
EXACT = Context(prec=80)
#: Digits before the decimal point of a stored amount, price or quantity: DECIMAL(38, 9).
MAX_DIGITS = 29


def currency(code: Any, minor_unit: Any = None) -> tuple[str, int]:
    """(code, minor unit) for a currency code, refusing unknown codes without a minor unit."""
    if not isinstance(code, str) or not _CODE.fullmatch(code.strip().upper()):
        raise BillingError(f"currency {code!r} is not an ISO 4217 code like 'USD'")
    code = code.strip().upper()
    if minor_unit is not None:
        if (
            isinstance(minor_unit, bool)
            or not isinstance(minor_unit, int)
            or not 0 <= minor_unit <= 4
        ):
            raise BillingError(f"minor_unit must be an integer from 0 to 4, found {minor_unit!r}")
        return code, minor_unit
    if code not in MINOR_UNITS:
        raise BillingError(
            f"currency {code} is not one fluxnb knows the minor unit of; give it in the card "
            "(minor_unit: 2 for cents)"
        )
    return code, MINOR_UNITS[code]


def decimal(value: Any, what: str, *, allow_none: bool = False) -> Decimal | None:
    """``value`` (a string, int or Decimal) as a Decimal; floats are refused by name."""
    if value is None and allow_none:
        return None
    if isinstance(value, float):
        raise BillingError(
            f'{what} {value!r} is a float; write it as a string ("{value}") or a Decimal — '
            "a float cannot hold most decimal fractions exactly"
        )
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise BillingError(
            f"{what} must be a decimal string, found {type(value).__name__} {value!r}"
        )
    if isinstance(value, str) and not _DECIMAL.fullmatch(value.strip()):  # '5_000', '١٢٣'
        raise BillingError(
            f"{what} {value[:40]!r} is not a decimal number written with ASCII digits "
            "(like '0.25' or '12')"
        )
    try:
        d = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise BillingError(f"{what} {value!r} is not a decimal number") from None
    if not d.is_finite():
        raise BillingError(f"{what} {value!r} is not a finite number")
    if d.as_tuple().exponent < -9:  # type: ignore[operator]
        raise BillingError(f"{what} {value!r} has more than 9 decimal places")
    if d and d.adjusted() >= MAX_DIGITS:
        raise BillingError(
            f"{what} {value!r} is too large: amounts have at most {MAX_DIGITS} digits before "
            "the decimal point (the store keeps DECIMAL(38, 9))"
        )
    return d


def round_amount(amount: Decimal, minor_unit: int) -> Decimal:
    """``amount`` rounded half-even to ``minor_unit`` decimal places."""
    return amount.quantize(Decimal(1).scaleb(-minor_unit), rounding=ROUND_HALF_EVEN, context=EXACT)


def unscaled(number: Decimal) -> Decimal:
    """A number read from the store without the store's trailing zeros (DECIMAL(38, 9)
    gives ``3.000000000`` for the 3 that was written): ``3``, ``0.5``."""
    if number == number.to_integral_value():
        return number.quantize(Decimal(1), context=EXACT)
    return number.normalize(context=EXACT)


def show(amount: Decimal, code: str, minor_unit: int) -> str:
    """``1,234.50 USD``."""
    return f"{amount:,.{minor_unit}f} {code}"

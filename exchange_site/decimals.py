"""Decimal helpers shared by every app: money is Decimal, never float (ARCHITECTURE §4)."""

import decimal
from decimal import Decimal


def decimal_to_str(value: Decimal, min_places: int = 0) -> str:
    """Plain notation without trailing zeros beyond ``min_places``: 1.50000 → "1.50" (2)."""
    text = format(value.normalize(), "f")
    places = len(text.partition(".")[2])
    if places < min_places:
        text = format(value.quantize(Decimal(1).scaleb(-min_places)), "f")
    return text


def decimal_places(value: Decimal) -> int:
    """How many decimal places a finite Decimal carries once trailing zeros are dropped."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


# Amounts have up to 36 digits (18 after the point) and products of two of them (price ×
# quantity) twice that; Python's default 28 digits would round them or raise.
MONEY_PRECISION = 80


def install_money_context() -> None:
    """Give this process (and every thread it starts later) enough decimal precision."""
    decimal.DefaultContext.prec = MONEY_PRECISION
    decimal.getcontext().prec = MONEY_PRECISION

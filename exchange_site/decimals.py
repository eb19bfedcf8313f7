"""Decimal helpers shared by every app: money is Decimal, never float (DESIGN §4)."""

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

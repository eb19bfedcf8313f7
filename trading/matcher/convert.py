"""The one boundary between Decimal amounts and the engine's integer ticks and lots.

A price of ``p`` is ``p / tick_size`` ticks, a quantity ``q`` is ``q / lot_size`` lots, and
a quote amount is counted in tick-lots (``tick_size * lot_size``), so the engine's notional
``price_ticks * qty_lots`` converts back exactly.
"""

from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal

from exchange_site.decimals import decimal_places, decimal_to_str


class OffGrid(ValueError):
    """An amount that is not a whole number of steps."""


@dataclass(frozen=True, slots=True)
class MarketScale:
    tick_size: Decimal
    lot_size: Decimal
    price_places: int = field(init=False)
    qty_places: int = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "price_places", decimal_places(self.tick_size))
        object.__setattr__(self, "qty_places", decimal_places(self.lot_size))

    @property
    def quote_unit(self) -> Decimal:
        return self.tick_size * self.lot_size

    def price_to_ticks(self, price: Decimal) -> int:
        return _steps(price, self.tick_size)

    def qty_to_lots(self, quantity: Decimal) -> int:
        return _steps(quantity, self.lot_size)

    def quote_to_units(self, quote: Decimal) -> int:
        """Whole tick-lots that fit in ``quote`` (rounded down: never more than reserved)."""
        return int((quote / self.quote_unit).to_integral_value(rounding=ROUND_FLOOR))

    def ticks_to_price(self, ticks: int) -> Decimal:
        return self.tick_size * ticks

    def lots_to_qty(self, lots: int) -> Decimal:
        return self.lot_size * lots

    def units_to_quote(self, units: int) -> Decimal:
        return self.quote_unit * units

    def price_text(self, ticks: int) -> str:
        """A price for the wire: "50000.01", with the tick's decimal places."""
        return decimal_to_str(self.tick_size * ticks, self.price_places)

    def qty_text(self, lots: int) -> str:
        """A quantity for the wire: "0.50000", with the lot's decimal places."""
        return decimal_to_str(self.lot_size * lots, self.qty_places)


def _steps(amount: Decimal, step: Decimal) -> int:
    steps, remainder = divmod(amount, step)
    if remainder:
        raise OffGrid(f"{amount} is not a multiple of {step}")
    return int(steps)

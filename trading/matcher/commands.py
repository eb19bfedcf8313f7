"""The engine commands for an order's row: the matcher's Decimal-to-int boundary per command.

Pure functions of a ``MarketScale`` and an order with the matcher's column attributes
(``trading.matcher.market.OrderState``, or any object with the same attribute names); no
database access, so ``bench/engine.py`` times exactly what the matcher runs per command.
"""

from decimal import Decimal

from trading import engine

_new = tuple.__new__
_PLACE = engine.Place


def place_command(scale, order, reserve: Decimal | None = None) -> engine.Place:
    """The engine's Place for ``order``. ``reserve``: what caps a market buy by quantity
    when the order does not hold its own (an OCO's stop leg: the pair's one reserve is on
    its limit leg until the stop triggers). Raises OffGrid."""
    quantity = order.quantity
    quote_quantity = order.quote_quantity
    price = order.price
    stop_price = order.stop_price
    iceberg = order.iceberg_quantity
    quote_amount = None if quote_quantity is None else scale.quote_to_units(quote_quantity)
    max_quote = None
    if order.side == engine.BUY and price is None and quote_amount is None:
        # A market buy by quantity may spend at most what it reserved.
        max_quote = scale.quote_to_units(order.reserved if reserve is None else reserve)
    # tuple.__new__ builds the NamedTuple without its Python-level __new__ (a third of this
    # function's cost); the fields are in Place's order.
    return _new(
        _PLACE,
        (
            order.id,
            order.user_id,
            order.side,
            order.order_type,
            None if quantity is None else scale.qty_to_lots(quantity),
            None if price is None else scale.price_to_ticks(price),
            None if stop_price is None else scale.price_to_ticks(stop_price),
            order.time_in_force,
            order.post_only,
            quote_amount,
            max_quote,
            None if iceberg is None else scale.qty_to_lots(iceberg),
            order.trailing_delta,
        ),
    )


def oco_command(scale, limit, stop) -> engine.PlaceOco:
    """The command placing an OCO's two legs at once; the stop leg's market buy is capped by
    the pair's one reserve, held by the limit leg. Raises OffGrid."""
    return engine.PlaceOco(
        limit.order_list_id,
        place_command(scale, limit),
        place_command(scale, stop, reserve=limit.reserved),
    )


def amend_command(scale, order, quantity: Decimal) -> engine.Amend | None:
    """The Amend making ``quantity`` (the order's new total) its remaining lots, or None when
    nothing would remain. Raises OffGrid."""
    lots = scale.qty_to_lots(quantity - order.filled_quantity)
    return engine.Amend(order.id, lots) if lots > 0 else None

"""The engine commands for an order's row: the matcher's Decimal-to-int boundary per command.

A place command's engine fields come from PostgreSQL already as ints: ``place_columns``
gives the expressions the matcher's command query selects, the 13 fields of
``engine.Place`` in its order plus an off-grid remainder, computed on the matcher's own grid
with exact integer division (``div``/``mod`` on numeric), the same rules as
``trading.matcher.convert.MarketScale``. The matcher hands that slice of the row to
``OrderBook.apply`` as it is: no Decimal work and no object built per command in Python, and
``bench/engine.py`` times exactly that (``test_commands`` checks the SQL against MarketScale).

The functions below are the Python path, for what the query cannot compute alone: an OCO's
stop leg capped by its limit leg's reserve, amends (the new quantity is the command's), and
the stops of a restore. Pure functions of a ``MarketScale`` and an order with the matcher's
column attributes (``trading.matcher.market.OrderState``); no database access.
"""

from decimal import Decimal

from django.db.models import BigIntegerField, BooleanField, Case, F, Func, Q, Value, When
from django.db.models.functions import Cast, Coalesce, Mod

from trading import engine

_new = tuple.__new__
_PLACE = engine.Place

# Names of the computed columns (annotations) in a place command's row.
PLACE_FIELDS = (
    "id",
    "user_id",
    "side",
    "order_type",
    "engine_qty_lots",
    "engine_price_ticks",
    "engine_stop_ticks",
    "time_in_force",
    "post_only",
    "engine_quote_units",
    "engine_max_quote",
    "engine_iceberg_lots",
    "trailing_delta",
)
OFF_GRID = "engine_off_grid"
OUT_OF_RANGE = "engine_out_of_range"

# The matcher's command row (trading.matcher.market): command id, kind, quantity, the
# owner's frozen_at, then the PLACE_FIELDS (PLACE_AT up to OFF_GRID_AT), the off-grid
# remainder at OFF_GRID_AT, whether an amount is too large for the engine's ints at
# OUT_OF_RANGE_AT, then the order's columns from ORDER_AT.
PLACE_AT = 4
OFF_GRID_AT = PLACE_AT + len(PLACE_FIELDS)
OUT_OF_RANGE_AT = OFF_GRID_AT + 1
ORDER_AT = OUT_OF_RANGE_AT + 1

# The engine's ints travel as PostgreSQL bigints. An amount of 2**63 steps or more cannot
# (order entry refuses such prices; a quote amount or reserve could still reach it on a
# market with tiny steps): such an order is rejected (``out_of_range``), never left to fail
# the matcher's query, which would stall every later command of the market.
ENGINE_INT_LIMIT = 2**63


def _div(column, step):
    # Whole steps in a positive amount: PostgreSQL's div() on numeric is exact. NULL when
    # too large for a bigint, with OUT_OF_RANGE set for the row.
    return Case(
        When(
            **{f"{column}__lt": step * ENGINE_INT_LIMIT},
            then=Cast(Func(F(column), Value(step), function="div"), BigIntegerField()),
        ),
        default=None,
        output_field=BigIntegerField(),
    )


def _too_large(column, step) -> Q:
    return Q(**{f"{column}__gte": step * ENGINE_INT_LIMIT})


def place_columns(scale, prefix: str = "") -> tuple[tuple[str, ...], dict]:
    """The query side of ``place_command``: ``(names, annotations)`` where ``names`` are the
    ``values_list`` names of the 13 ``engine.Place`` fields in order followed by the
    off-grid remainder (``OFF_GRID``) and the out-of-range flag (``OUT_OF_RANGE``), and
    ``annotations`` the expressions to ``annotate`` with. ``prefix`` is the path to the
    order (``"order__"`` from an OrderCommand).

    The off-grid remainder is the sum of each price's remainder on the tick and each
    quantity's on the lot (0: on the grid; the query cannot raise OffGrid). The market buy
    by quantity's ``max_quote`` is its own reserve: an OCO stop leg's is its limit leg's,
    which the query does not see, so OCO pairs use ``oco_command``.
    """
    tick, lot = scale.tick_size, scale.lot_size
    quote_unit = scale.quote_unit
    o = prefix
    annotations = {
        "engine_qty_lots": _div(f"{o}quantity", lot),
        "engine_price_ticks": _div(f"{o}price", tick),
        "engine_stop_ticks": _div(f"{o}stop_price", tick),
        "engine_quote_units": _div(f"{o}quote_quantity", quote_unit),
        "engine_max_quote": Case(
            When(
                Q(**{f"{o}side": engine.BUY})
                & Q(**{f"{o}price__isnull": True})
                & Q(**{f"{o}quote_quantity__isnull": True}),
                then=_div(f"{o}reserved", quote_unit),
            ),
            default=None,
            output_field=BigIntegerField(),
        ),
        "engine_iceberg_lots": _div(f"{o}iceberg_quantity", lot),
        OFF_GRID: sum(
            (
                Coalesce(Mod(F(f"{o}{column}"), Value(step)), Value(Decimal(0)))
                for column, step in (
                    ("price", tick),
                    ("stop_price", tick),
                    ("quantity", lot),
                    ("iceberg_quantity", lot),
                )
            ),
            start=Value(Decimal(0)),
        ),
        OUT_OF_RANGE: Case(
            When(
                _too_large(f"{o}quantity", lot)
                | _too_large(f"{o}price", tick)
                | _too_large(f"{o}stop_price", tick)
                | _too_large(f"{o}quote_quantity", quote_unit)
                | _too_large(f"{o}reserved", quote_unit)
                | _too_large(f"{o}iceberg_quantity", lot),
                then=Value(True),
            ),
            default=Value(False),
            output_field=BooleanField(),
        ),
    }
    names = tuple(
        name if name in annotations else f"{o}{name}"
        for name in (*PLACE_FIELDS, OFF_GRID, OUT_OF_RANGE)
    )
    return names, annotations


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

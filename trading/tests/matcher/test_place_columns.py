"""The engine's ints computed by PostgreSQL in the matcher's command query
(trading.matcher.commands.place_columns) are the ones MarketScale computes in Python."""

from decimal import Decimal

import pytest

from trading import engine
from trading.matcher.commands import OFF_GRID_AT, ORDER_AT, OUT_OF_RANGE_AT, PLACE_AT, place_command
from trading.matcher.convert import OffGrid
from trading.matcher.market import MarketMatcher, OrderState
from trading.models import Order
from trading.tests.helpers import place

pytestmark = pytest.mark.django_db

_ORDER_AT = ORDER_AT


def _rows(market):
    matcher = MarketMatcher(market)
    return list(matcher._commands_query(100)), matcher.scale


def test_every_order_type_gets_the_place_fields_market_scale_gives(market, trader):
    buyer = trader(market, usd="1000000")
    seller = trader(market, btc="100")
    # A market buy by quantity reserves from an estimate: give it a last price.
    market.last_price = Decimal(100)
    market.save(update_fields=["last_price"])
    orders = [
        place(buyer, side="buy", price="100.25", quantity="0.12345"),
        place(seller, side="sell", price="250.5", quantity="1.5", time_in_force="IOC"),
        place(seller, side="sell", price="300", quantity="2", post_only=True),
        place(buyer, side="buy", order_type="market", quantity="0.5"),
        place(buyer, side="buy", order_type="market", quote_quantity="123.4567891"),
        place(seller, side="sell", order_type="market", quantity="0.75"),
        place(buyer, side="buy", order_type="stop", stop_price="110", quantity="0.3"),
        place(
            seller,
            side="sell",
            order_type="stop_limit",
            stop_price="90.01",
            price="89.99",
            quantity="0.4",
        ),
        place(seller, side="sell", price="400", quantity="10", iceberg_quantity="2.5"),
        place(seller, side="sell", order_type="stop", quantity="0.2", trailing_delta=150),
    ]
    rows, scale = _rows(market)
    assert [row[_ORDER_AT] for row in rows] == [order.pk for order in orders]
    for row in rows:
        expected = place_command(scale, OrderState(row[_ORDER_AT:]))
        fields = row[PLACE_AT:OFF_GRID_AT]
        assert fields == tuple(expected)
        assert type(fields) is tuple
        # Ticks, lots and quote units: ints (or None), never Decimals.
        assert {type(fields[i]) for i in (4, 5, 6, 9, 10, 11)} <= {int, type(None)}
        assert not row[OFF_GRID_AT]
    # place(*fields) is apply(Place(*fields)), the same events.
    for row in rows:
        fields = row[PLACE_AT:OFF_GRID_AT]
        assert engine.OrderBook().place(*fields) == engine.OrderBook().apply(engine.Place(*fields))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price", Decimal("100.005")),
        ("quantity", Decimal("0.000015")),
        ("stop_price", Decimal("110.001")),
        ("iceberg_quantity", Decimal("1.000001")),
    ],
)
def test_an_amount_off_the_grid_is_flagged_where_market_scale_raises(market, trader, field, value):
    seller = trader(market, btc="100")
    if field == "stop_price":
        order = place(
            seller, side="sell", order_type="stop_limit", stop_price="110", price="109", quantity=1
        )
    elif field == "iceberg_quantity":
        order = place(seller, side="sell", price="100", quantity="10", iceberg_quantity="2")
    else:
        order = place(seller, side="sell", price="100", quantity="10")
    # A grid change after acceptance leaves such amounts behind; set one directly.
    Order.objects.filter(pk=order.pk).update(**{field: value})
    (row,), scale = _rows(market)
    assert row[OFF_GRID_AT] > 0
    with pytest.raises(OffGrid):
        place_command(scale, OrderState(row[_ORDER_AT:]))


def test_an_amount_too_large_for_the_engine_is_flagged_and_the_query_still_runs(market, trader):
    seller = trader(market, btc="100")
    order = place(seller, side="sell", price="100", quantity="1")
    # 2**63 ticks and more do not fit PostgreSQL's bigint: the query must not fail on it.
    huge = market.tick_size * 2**63
    Order.objects.filter(pk=order.pk).update(price=huge)
    (row,), _ = _rows(market)
    assert row[OUT_OF_RANGE_AT] is True
    assert row[PLACE_AT + 5] is None  # engine_price_ticks


def test_a_market_order_within_range_is_not_flagged(market, trader):
    seller = trader(market, btc="100")
    place(seller, side="sell", price="100", quantity="1")
    (row,), _ = _rows(market)
    assert row[OUT_OF_RANGE_AT] is False


def test_the_matcher_rejects_an_out_of_range_order_and_goes_on_matching(market, trader):
    from trading.tests.helpers import assert_ledger_ok, balance_of, drain, reload

    seller = trader(market, btc="100")
    stuck = place(seller, side="sell", price="100", quantity="1")
    Order.objects.filter(pk=stuck.pk).update(price=market.tick_size * 2**63)
    maker = trader(market, btc="1")
    taker = trader(market, usd="1000")
    resting = place(maker, side="sell", price="100", quantity="1")
    crossing = place(taker, side="buy", price="100", quantity="1")

    drain(market)

    stuck = reload(stuck)
    assert (stuck.status, stuck.reason) == (Order.Status.REJECTED, "out_of_range")
    assert balance_of(seller, market.base_asset) == (Decimal(100), Decimal(0))
    assert reload(resting).status == Order.Status.FILLED
    assert reload(crossing).status == Order.Status.FILLED
    assert_ledger_ok()

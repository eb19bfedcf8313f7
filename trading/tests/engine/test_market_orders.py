"""Market orders: by quantity, a buy by quote amount, the reserve cap, FOK, liquidity."""

import pytest

from trading.engine import (
    BUY,
    EXPIRED,
    FILLED,
    FOK,
    FOK_NOT_FILLED,
    GTC,
    NO_LIQUIDITY,
    RESERVE_EXHAUSTED,
    SELF_TRADE_PREVENTED,
    SELL,
    LevelChanged,
    OrderDone,
    Trade,
)

from .helpers import check, limit, market

TWO_ASKS = [limit(1, 10, SELL, 100, 2), limit(2, 10, SELL, 110, 5)]


def test_market_sell_by_quantity_fills_against_the_best_bids():
    check(
        given=[limit(1, 10, BUY, 100, 2), limit(2, 10, BUY, 99, 2)],
        when=market(3, 11, SELL, qty=3),
        then=[
            Trade(1, 3, 100, 2, SELL),
            OrderDone(1, FILLED, None, 0),
            LevelChanged(BUY, 100, 0, 3),
            Trade(2, 3, 99, 1, SELL),
            LevelChanged(BUY, 99, 1, 4),
            OrderDone(3, FILLED, None, 0),
        ],
    )


@pytest.mark.parametrize("tif", [GTC, "IOC"])
def test_market_order_never_rests_whatever_its_time_in_force(tif):
    book = check(
        given=[limit(1, 10, SELL, 100, 2)],
        when=market(2, 11, BUY, qty=5, tif=tif),
        then=[
            Trade(1, 2, 100, 2, BUY),
            OrderDone(1, FILLED, None, 0),
            LevelChanged(SELL, 100, 0, 2),
            OrderDone(2, EXPIRED, NO_LIQUIDITY, 3),
        ],
    )
    assert len(book) == 0


@pytest.mark.parametrize("side", [BUY, SELL])
def test_market_order_against_an_empty_side_expires_with_no_liquidity(side):
    check(given=[], when=market(1, 10, side, qty=3), then=[OrderDone(1, EXPIRED, NO_LIQUIDITY, 3)])


def test_market_buy_stops_before_it_would_spend_more_than_its_reserve():
    # 2 lots at 100 cost 200; of the 300 left, 2 lots at 110 fit (220), a third would not.
    check(
        given=TWO_ASKS,
        when=market(3, 11, BUY, qty=5, max_quote=500),
        then=[
            Trade(1, 3, 100, 2, BUY),
            OrderDone(1, FILLED, None, 0),
            LevelChanged(SELL, 100, 0, 3),
            Trade(2, 3, 110, 2, BUY),
            LevelChanged(SELL, 110, 3, 4),
            OrderDone(3, EXPIRED, RESERVE_EXHAUSTED, 1),
        ],
    )


def test_market_buy_whose_reserve_covers_the_fill_fills():
    check(
        given=TWO_ASKS,
        when=market(3, 11, BUY, qty=5, max_quote=530),
        then=[
            Trade(1, 3, 100, 2, BUY),
            OrderDone(1, FILLED, None, 0),
            LevelChanged(SELL, 100, 0, 3),
            Trade(2, 3, 110, 3, BUY),
            LevelChanged(SELL, 110, 2, 4),
            OrderDone(3, FILLED, None, 0),
        ],
    )


def test_market_buy_whose_reserve_buys_no_lot_expires_without_trading():
    check(
        given=TWO_ASKS,
        when=market(3, 11, BUY, qty=1, max_quote=99),
        then=[OrderDone(3, EXPIRED, RESERVE_EXHAUSTED, 1)],
    )


def test_market_buy_by_quote_amount_buys_the_whole_lots_that_fit():
    # 200 buys 2 lots at 100; 250 left buys 2 lots at 110; 30 left buys nothing more.
    check(
        given=TWO_ASKS,
        when=market(3, 11, BUY, quote=450),
        then=[
            Trade(1, 3, 100, 2, BUY),
            OrderDone(1, FILLED, None, 0),
            LevelChanged(SELL, 100, 0, 3),
            Trade(2, 3, 110, 2, BUY),
            LevelChanged(SELL, 110, 3, 4),
            OrderDone(3, FILLED, None, None),
        ],
    )


def test_market_buy_by_quote_amount_spent_exactly_is_filled():
    check(
        given=TWO_ASKS,
        when=market(3, 11, BUY, quote=200),
        then=[
            Trade(1, 3, 100, 2, BUY),
            OrderDone(1, FILLED, None, 0),
            LevelChanged(SELL, 100, 0, 3),
            OrderDone(3, FILLED, None, None),
        ],
    )


def test_market_buy_by_quote_amount_too_small_for_one_lot_expires():
    check(
        given=TWO_ASKS,
        when=market(3, 11, BUY, quote=99),
        then=[OrderDone(3, EXPIRED, RESERVE_EXHAUSTED, None)],
    )


def test_market_buy_by_quote_amount_larger_than_the_book_expires_with_no_liquidity():
    check(
        given=[limit(1, 10, SELL, 100, 2)],
        when=market(2, 11, BUY, quote=1000),
        then=[
            Trade(1, 2, 100, 2, BUY),
            OrderDone(1, FILLED, None, 0),
            LevelChanged(SELL, 100, 0, 2),
            OrderDone(2, EXPIRED, NO_LIQUIDITY, None),
        ],
    )


def test_market_order_meeting_its_owners_order_expires_the_remainder():
    check(
        given=[limit(1, 10, SELL, 100, 1), limit(2, 11, SELL, 100, 1), limit(3, 10, SELL, 100, 1)],
        when=market(4, 11, BUY, qty=3),
        then=[
            Trade(1, 4, 100, 1, BUY),
            OrderDone(1, FILLED, None, 0),
            LevelChanged(SELL, 100, 2, 4),
            OrderDone(4, EXPIRED, SELF_TRADE_PREVENTED, 2),
        ],
    )


@pytest.mark.parametrize(
    "when",
    [
        pytest.param(market(3, 11, BUY, qty=8, tif=FOK), id="too_little_liquidity"),
        pytest.param(market(3, 11, BUY, qty=3, max_quote=309, tif=FOK), id="reserve_too_small"),
        pytest.param(market(3, 10, BUY, qty=1, tif=FOK), id="own_order_first"),
    ],
)
def test_market_fok_that_cannot_fill_completely_expires_before_any_fill(when):
    book = check(
        given=TWO_ASKS,
        when=when,
        then=[OrderDone(3, EXPIRED, FOK_NOT_FILLED, when.qty_lots)],
    )
    assert book.seq == 2


def test_market_fok_that_can_fill_completely_fills():
    check(
        given=TWO_ASKS,
        when=market(3, 11, BUY, qty=3, max_quote=310, tif=FOK),
        then=[
            Trade(1, 3, 100, 2, BUY),
            OrderDone(1, FILLED, None, 0),
            LevelChanged(SELL, 100, 0, 3),
            Trade(2, 3, 110, 1, BUY),
            LevelChanged(SELL, 110, 4, 4),
            OrderDone(3, FILLED, None, 0),
        ],
    )

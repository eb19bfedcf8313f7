"""Limit orders: resting, price-time priority, maker's price, IOC, FOK, post-only, STP.

Each test is a table row: the ``given`` commands, the ``when`` command, and exactly the events
it must produce (``check`` validates the book after every command).
"""

import pytest

from trading.engine import (
    BUY,
    EXPIRED,
    FILLED,
    FOK,
    FOK_NOT_FILLED,
    IOC,
    IOC_REMAINDER,
    OPEN,
    PARTIALLY_FILLED,
    POST_ONLY_WOULD_TAKE,
    SELF_TRADE_PREVENTED,
    SELL,
    DepthLevel,
    LevelChanged,
    OrderDone,
    OrderRejected,
    OrderRested,
    Trade,
)

from .helpers import apply_checked, book_with, check, limit


@pytest.mark.parametrize("side", [BUY, SELL])
def test_limit_order_that_does_not_cross_rests_open(side):
    check(
        given=[],
        when=limit(1, 10, side, 100, 5),
        then=[OrderRested(1, side, 100, 5, OPEN), LevelChanged(side, 100, 5, 1)],
    )


def test_order_joining_a_level_adds_to_its_total():
    book = check(
        given=[limit(1, 10, SELL, 101, 5)],
        when=limit(2, 11, SELL, 101, 3),
        then=[OrderRested(2, SELL, 101, 3, OPEN), LevelChanged(SELL, 101, 8, 2)],
    )
    assert book.depth(1)[1] == [DepthLevel(101, 8, 2)]


def test_crossing_buy_trades_at_the_makers_price():
    check(
        given=[limit(1, 10, SELL, 100, 5)],
        when=limit(2, 11, BUY, 105, 5),
        then=[
            Trade(1, 2, 100, 5, BUY),
            OrderDone(1, FILLED, None, 0),
            LevelChanged(SELL, 100, 0, 2),
            OrderDone(2, FILLED, None, 0),
        ],
    )


def test_crossing_sell_trades_at_the_makers_price_from_the_highest_bid():
    check(
        given=[limit(1, 10, BUY, 99, 1), limit(2, 11, BUY, 100, 1)],
        when=limit(3, 12, SELL, 98, 2),
        then=[
            Trade(2, 3, 100, 1, SELL),
            OrderDone(2, FILLED, None, 0),
            LevelChanged(BUY, 100, 0, 3),
            Trade(1, 3, 99, 1, SELL),
            OrderDone(1, FILLED, None, 0),
            LevelChanged(BUY, 99, 0, 4),
            OrderDone(3, FILLED, None, 0),
        ],
    )


def test_taker_fills_the_best_price_first_and_the_earliest_order_within_a_price():
    book = check(
        given=[
            limit(1, 10, SELL, 101, 2),
            limit(2, 11, SELL, 100, 2),
            limit(3, 12, SELL, 101, 2),
            limit(4, 13, SELL, 100, 2),
        ],
        when=limit(5, 14, BUY, 101, 7),
        then=[
            Trade(2, 5, 100, 2, BUY),
            OrderDone(2, FILLED, None, 0),
            Trade(4, 5, 100, 2, BUY),
            OrderDone(4, FILLED, None, 0),
            LevelChanged(SELL, 100, 0, 5),
            Trade(1, 5, 101, 2, BUY),
            OrderDone(1, FILLED, None, 0),
            Trade(3, 5, 101, 1, BUY),
            LevelChanged(SELL, 101, 1, 6),
            OrderDone(5, FILLED, None, 0),
        ],
    )
    assert book.order(3).qty_lots == 1


def test_partially_filled_maker_keeps_its_place_at_the_head_of_its_level():
    book = check(
        given=[limit(1, 10, SELL, 100, 5), limit(2, 11, SELL, 100, 5), limit(3, 12, BUY, 100, 2)],
        when=limit(4, 13, BUY, 100, 4),
        then=[
            Trade(1, 4, 100, 3, BUY),
            OrderDone(1, FILLED, None, 0),
            Trade(2, 4, 100, 1, BUY),
            LevelChanged(SELL, 100, 4, 4),
            OrderDone(4, FILLED, None, 0),
        ],
    )
    assert [o.order_id for o in book.resting_orders()] == [2]


def test_remainder_of_a_crossing_gtc_order_rests_partially_filled():
    check(
        given=[limit(1, 10, SELL, 100, 2)],
        when=limit(2, 11, BUY, 101, 5),
        then=[
            Trade(1, 2, 100, 2, BUY),
            OrderDone(1, FILLED, None, 0),
            LevelChanged(SELL, 100, 0, 2),
            OrderRested(2, BUY, 101, 3, PARTIALLY_FILLED),
            LevelChanged(BUY, 101, 3, 3),
        ],
    )


def test_ioc_order_remainder_expires_instead_of_resting():
    book = check(
        given=[limit(1, 10, SELL, 100, 2)],
        when=limit(2, 11, BUY, 101, 5, IOC),
        then=[
            Trade(1, 2, 100, 2, BUY),
            OrderDone(1, FILLED, None, 0),
            LevelChanged(SELL, 100, 0, 2),
            OrderDone(2, EXPIRED, IOC_REMAINDER, 3),
        ],
    )
    assert book.best_bid() is None


def test_ioc_order_that_does_not_cross_expires_whole():
    check(
        given=[],
        when=limit(1, 10, BUY, 100, 5, IOC),
        then=[OrderDone(1, EXPIRED, IOC_REMAINDER, 5)],
    )


@pytest.mark.parametrize(
    ("given", "when"),
    [
        pytest.param([limit(1, 10, SELL, 100, 3)], limit(2, 11, BUY, 100, 5, FOK), id="too_little"),
        pytest.param(
            [limit(1, 10, SELL, 100, 3), limit(3, 10, SELL, 102, 3)],
            limit(2, 11, BUY, 101, 5, FOK),
            id="rest_beyond_its_price",
        ),
        pytest.param(
            [limit(1, 11, SELL, 100, 3), limit(3, 10, SELL, 100, 3)],
            limit(2, 11, BUY, 100, 2, FOK),
            id="own_order_first",
        ),
        pytest.param([], limit(2, 11, BUY, 100, 2, FOK), id="empty_book"),
    ],
)
def test_fok_order_that_cannot_fill_completely_expires_before_any_fill(given, when):
    book = book_with(*given)
    resting_before, seq_before = book.resting_orders(), book.seq
    assert apply_checked(book, when) == [
        OrderDone(when.order_id, EXPIRED, FOK_NOT_FILLED, when.qty_lots)
    ]
    assert book.resting_orders() == resting_before
    assert book.seq == seq_before


def test_fok_order_that_can_fill_completely_fills_across_levels():
    check(
        given=[limit(1, 10, SELL, 100, 3), limit(2, 10, SELL, 101, 3)],
        when=limit(3, 11, BUY, 101, 5, FOK),
        then=[
            Trade(1, 3, 100, 3, BUY),
            OrderDone(1, FILLED, None, 0),
            LevelChanged(SELL, 100, 0, 3),
            Trade(2, 3, 101, 2, BUY),
            LevelChanged(SELL, 101, 1, 4),
            OrderDone(3, FILLED, None, 0),
        ],
    )


def test_fok_order_may_fill_before_reaching_its_owners_order():
    check(
        given=[limit(1, 10, SELL, 100, 3), limit(2, 11, SELL, 100, 3)],
        when=limit(3, 11, BUY, 100, 3, FOK),
        then=[
            Trade(1, 3, 100, 3, BUY),
            OrderDone(1, FILLED, None, 0),
            LevelChanged(SELL, 100, 3, 3),
            OrderDone(3, FILLED, None, 0),
        ],
    )


@pytest.mark.parametrize(
    "given",
    [
        pytest.param([limit(1, 10, SELL, 100, 3)], id="other_users_ask"),
        pytest.param([limit(1, 11, SELL, 100, 3)], id="own_ask"),
        pytest.param([limit(1, 10, SELL, 99, 3)], id="better_ask"),
    ],
)
def test_post_only_order_that_would_take_is_rejected(given):
    book = check(
        given=given,
        when=limit(2, 11, BUY, 100, 1, post_only=True),
        then=[OrderRejected(2, POST_ONLY_WOULD_TAKE)],
    )
    assert [o.order_id for o in book.resting_orders()] == [1]
    assert book.seq == 1


def test_post_only_order_that_would_not_take_rests():
    check(
        given=[limit(1, 10, SELL, 100, 3)],
        when=limit(2, 11, BUY, 99, 1, post_only=True),
        then=[OrderRested(2, BUY, 99, 1, OPEN), LevelChanged(BUY, 99, 1, 2)],
    )


def test_self_trade_is_prevented_by_expiring_the_incoming_remainder():
    book = check(
        given=[limit(1, 10, SELL, 100, 2), limit(2, 11, SELL, 100, 2), limit(3, 10, SELL, 100, 2)],
        when=limit(4, 11, BUY, 100, 5),
        then=[
            Trade(1, 4, 100, 2, BUY),
            OrderDone(1, FILLED, None, 0),
            LevelChanged(SELL, 100, 4, 4),
            OrderDone(4, EXPIRED, SELF_TRADE_PREVENTED, 3),
        ],
    )
    assert [(o.order_id, o.qty_lots) for o in book.resting_orders()] == [(2, 2), (3, 2)]


def test_self_trade_prevention_stops_before_a_worse_level_too():
    book = check(
        given=[limit(1, 11, SELL, 100, 2), limit(2, 10, SELL, 101, 2)],
        when=limit(3, 11, BUY, 101, 3),
        then=[OrderDone(3, EXPIRED, SELF_TRADE_PREVENTED, 3)],
    )
    assert book.seq == 2

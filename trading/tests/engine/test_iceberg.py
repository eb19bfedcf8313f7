"""Iceberg orders: only the visible part shows and fills; a used-up part refreshes at the back."""

import pytest

from trading.engine import (
    BUY,
    CANCELLED,
    EXPIRED,
    FILLED,
    FOK,
    FOK_NOT_FILLED,
    INVALID_ICEBERG,
    IOC,
    OPEN,
    PARTIALLY_FILLED,
    POST_ONLY_WOULD_TAKE,
    SELF_TRADE_PREVENTED,
    SELL,
    DepthLevel,
    LevelChanged,
    OrderBook,
    OrderDone,
    OrderRefreshed,
    OrderRejected,
    OrderRested,
    Resting,
    Trade,
)

from .helpers import book_with, cancel, check, iceberg, limit, market, stop_limit

# Sell iceberg 1: 10 lots at 100 showing 3, then a plain sell of 2 behind it (seq 2 after).
ICE = [iceberg(1, 10, SELL, 100, 10, 3), limit(2, 11, SELL, 100, 2)]


def test_iceberg_rests_showing_only_its_visible_part():
    book = check(
        given=[],
        when=iceberg(1, 10, SELL, 100, 10, 3),
        then=[OrderRested(1, SELL, 100, 10, OPEN), LevelChanged(SELL, 100, 3, 1)],
    )
    assert book.depth(1) == ([], [DepthLevel(100, 3, 1)])
    assert book.order(1) == Resting(1, 10, SELL, 100, 10, 3, 3, None)
    assert book.resting_orders() == [Resting(1, 10, SELL, 100, 10, 3, 3)]


@pytest.mark.parametrize(
    ("given", "when", "then"),
    [
        pytest.param(
            ICE,
            market(3, 12, BUY, qty=2),
            [
                Trade(1, 3, 100, 2, BUY),
                LevelChanged(SELL, 100, 3, 3),
                OrderDone(3, FILLED, None, 0),
            ],
            id="partial-visible-fill-keeps-place",
        ),
        pytest.param(
            ICE,
            market(3, 12, BUY, qty=3),
            [
                Trade(1, 3, 100, 3, BUY),
                OrderRefreshed(1, 3),
                LevelChanged(SELL, 100, 5, 3),
                OrderDone(3, FILLED, None, 0),
            ],
            id="visible-used-up-refreshes",
        ),
        pytest.param(
            ICE,
            market(3, 12, BUY, qty=6),
            [
                Trade(1, 3, 100, 3, BUY),
                OrderRefreshed(1, 3),
                Trade(2, 3, 100, 2, BUY),
                OrderDone(2, FILLED, None, 0),
                Trade(1, 3, 100, 1, BUY),
                LevelChanged(SELL, 100, 2, 3),
                OrderDone(3, FILLED, None, 0),
            ],
            id="refreshed-part-goes-behind-the-level",
        ),
        pytest.param(
            ICE,
            market(3, 12, BUY, qty=20),
            [
                Trade(1, 3, 100, 3, BUY),
                OrderRefreshed(1, 3),
                Trade(2, 3, 100, 2, BUY),
                OrderDone(2, FILLED, None, 0),
                Trade(1, 3, 100, 3, BUY),
                OrderRefreshed(1, 3),
                Trade(1, 3, 100, 3, BUY),
                OrderRefreshed(1, 1),
                Trade(1, 3, 100, 1, BUY),
                OrderDone(1, FILLED, None, 0),
                LevelChanged(SELL, 100, 0, 3),
                OrderDone(3, EXPIRED, "no_liquidity", 8),
            ],
            id="same-taker-refills-it-until-done",
        ),
        pytest.param(
            [iceberg(1, 10, SELL, 100, 6, 3), limit(2, 12, SELL, 100, 2)],
            market(3, 12, BUY, qty=5),
            [
                Trade(1, 3, 100, 3, BUY),
                OrderRefreshed(1, 3),
                LevelChanged(SELL, 100, 5, 3),
                OrderDone(3, EXPIRED, SELF_TRADE_PREVENTED, 2),
            ],
            id="self-trade-behind-the-iceberg",
        ),
        pytest.param(
            ICE,
            cancel(1),
            [OrderDone(1, CANCELLED, None, 10), LevelChanged(SELL, 100, 2, 3)],
            id="cancel-reports-hidden-lots-too",
        ),
        pytest.param(
            [limit(5, 10, SELL, 100, 4), limit(6, 11, SELL, 101, 4)],
            iceberg(1, 12, BUY, 101, 10, 2),
            [
                Trade(5, 1, 100, 4, BUY),
                OrderDone(5, FILLED, None, 0),
                LevelChanged(SELL, 100, 0, 3),
                Trade(6, 1, 101, 4, BUY),
                OrderDone(6, FILLED, None, 0),
                LevelChanged(SELL, 101, 0, 4),
                OrderRested(1, BUY, 101, 2, PARTIALLY_FILLED),
                LevelChanged(BUY, 101, 2, 5),
            ],
            id="taker-takes-whole-quantity-then-rests-its-visible-part",
        ),
        pytest.param(
            [limit(5, 10, SELL, 100, 4)],
            iceberg(1, 12, BUY, 100, 10, 2, post_only=True),
            [OrderRejected(1, POST_ONLY_WOULD_TAKE)],
            id="post-only-iceberg-would-take",
        ),
    ],
)
def test_iceberg_fills(given, when, then):
    check(given, when, then)


@pytest.mark.parametrize(
    ("given", "when", "then"),
    [
        pytest.param(
            ICE,
            market(3, 12, BUY, qty=12, tif=FOK),
            [
                Trade(1, 3, 100, 3, BUY),
                OrderRefreshed(1, 3),
                Trade(2, 3, 100, 2, BUY),
                OrderDone(2, FILLED, None, 0),
                Trade(1, 3, 100, 3, BUY),
                OrderRefreshed(1, 3),
                Trade(1, 3, 100, 3, BUY),
                OrderRefreshed(1, 1),
                Trade(1, 3, 100, 1, BUY),
                OrderDone(1, FILLED, None, 0),
                LevelChanged(SELL, 100, 0, 3),
                OrderDone(3, FILLED, None, 0),
            ],
            id="fok-counts-hidden-lots",
        ),
        pytest.param(
            ICE,
            market(3, 12, BUY, qty=13, tif=FOK),
            [OrderDone(3, EXPIRED, FOK_NOT_FILLED, 13)],
            id="fok-more-than-all",
        ),
        pytest.param(
            [iceberg(1, 10, SELL, 100, 6, 3), limit(2, 12, SELL, 100, 2)],
            limit(3, 12, BUY, 100, 4, FOK),
            [OrderDone(3, EXPIRED, FOK_NOT_FILLED, 4)],
            id="fok-stops-at-own-order-reached-before-the-refresh",
        ),
        pytest.param(
            [iceberg(1, 10, SELL, 100, 6, 3), limit(2, 12, SELL, 100, 2)],
            limit(3, 12, BUY, 100, 3, FOK),
            [
                Trade(1, 3, 100, 3, BUY),
                OrderRefreshed(1, 3),
                LevelChanged(SELL, 100, 5, 3),
                OrderDone(3, FILLED, None, 0),
            ],
            id="fok-fits-before-own-order",
        ),
        pytest.param(
            ICE,
            market(3, 12, BUY, qty=4, max_quote=399, tif=FOK),
            [OrderDone(3, EXPIRED, FOK_NOT_FILLED, 4)],
            id="fok-quote-cap",
        ),
    ],
)
def test_fok_against_icebergs_simulates_the_refreshes(given, when, then):
    check(given, when, then)


@pytest.mark.parametrize(
    "command",
    [
        iceberg(1, 10, SELL, 100, 10, 0),
        iceberg(1, 10, SELL, 100, 10, 10),
        iceberg(1, 10, SELL, 100, 10, 11),
        iceberg(1, 10, SELL, 100, 10, 3, tif=IOC),
        iceberg(1, 10, SELL, 100, 10, 3, tif=FOK),
        market(1, 10, SELL, qty=10)._replace(iceberg_lots=3),
        stop_limit(1, 10, SELL, 90, 100, 10)._replace(iceberg_lots=3),
    ],
)
def test_invalid_icebergs_are_rejected(command):
    book = book_with(limit(9, 9, BUY, 50, 1))
    assert book.apply(command) == [OrderRejected(1, INVALID_ICEBERG)]
    assert book.resting_orders() == [Resting(9, 9, BUY, 50, 1)]


def test_iceberg_round_trips_through_restore_with_its_visible_part():
    original = book_with(*ICE, market(3, 12, BUY, qty=6))
    resting = original.resting_orders()
    assert resting == [Resting(1, 10, SELL, 100, 6, 3, 2)]
    restored = OrderBook.restore(resting, seq=original.seq, audit=True)
    restored.validate()
    assert restored.depth() == original.depth()
    for command in [market(4, 13, BUY, qty=5), cancel(1), iceberg(5, 14, BUY, 99, 9, 4)]:
        assert restored.apply(command) == original.apply(command)
    assert restored.resting_orders() == original.resting_orders()

"""Amend: a live order's remaining quantity goes down and it keeps its time priority."""

import pytest

from trading.engine import (
    BUY,
    FILLED,
    INVALID_QUANTITY,
    SELL,
    UNKNOWN_ORDER,
    Amend,
    AmendRejected,
    LevelChanged,
    OrderAmended,
    OrderDone,
    Resting,
    Trade,
)

from .helpers import apply_checked, book_with, check, iceberg, limit, market, stop, stop_limit

TWO_ASKS = [limit(1, 10, SELL, 100, 5), limit(2, 11, SELL, 100, 3)]


@pytest.mark.parametrize(
    ("given", "when", "then"),
    [
        pytest.param(
            TWO_ASKS,
            Amend(1, 2),
            [OrderAmended(1, 2), LevelChanged(SELL, 100, 5, 3)],
            id="resting",
        ),
        pytest.param(
            [iceberg(1, 10, SELL, 100, 10, 3)],
            Amend(1, 5),
            [OrderAmended(1, 5)],
            id="iceberg-hidden-lots-go-first",
        ),
        pytest.param(
            [iceberg(1, 10, SELL, 100, 10, 3)],
            Amend(1, 2),
            [OrderAmended(1, 2), LevelChanged(SELL, 100, 2, 2)],
            id="iceberg-then-visible-lots",
        ),
        pytest.param(
            [stop(1, 10, BUY, 105, qty=5)],
            Amend(1, 4),
            [OrderAmended(1, 4)],
            id="untriggered-stop",
        ),
        pytest.param(
            [stop_limit(1, 10, SELL, 95, 94, 5)],
            Amend(1, 1),
            [OrderAmended(1, 1)],
            id="untriggered-stop-limit",
        ),
        pytest.param(TWO_ASKS, Amend(9, 1), [AmendRejected(9, UNKNOWN_ORDER)], id="unknown"),
        pytest.param(TWO_ASKS, Amend(1, 5), [AmendRejected(1, INVALID_QUANTITY)], id="same"),
        pytest.param(TWO_ASKS, Amend(1, 6), [AmendRejected(1, INVALID_QUANTITY)], id="up"),
        pytest.param(TWO_ASKS, Amend(1, 0), [AmendRejected(1, INVALID_QUANTITY)], id="zero"),
        pytest.param(TWO_ASKS, Amend(1, 2.0), [AmendRejected(1, INVALID_QUANTITY)], id="float"),
        pytest.param(
            [stop(1, 10, BUY, 105, quote=500)],
            Amend(1, 1),
            [AmendRejected(1, INVALID_QUANTITY)],
            id="stop-by-quote-amount",
        ),
        pytest.param(
            [*TWO_ASKS, market(3, 12, BUY, qty=5)],
            Amend(1, 1),
            [AmendRejected(1, UNKNOWN_ORDER)],
            id="done-order",
        ),
    ],
)
def test_amend(given, when, then):
    check(given, when, then)


def test_amended_order_keeps_its_place_in_the_queue():
    book = book_with(*TWO_ASKS, Amend(1, 2))
    events = apply_checked(book, market(3, 12, BUY, qty=3))
    assert events == [
        Trade(1, 3, 100, 2, BUY),
        OrderDone(1, FILLED, None, 0),
        Trade(2, 3, 100, 1, BUY),
        LevelChanged(SELL, 100, 2, 4),
        OrderDone(3, FILLED, None, 0),
    ]


def test_amended_iceberg_reports_its_remaining_and_visible_lots():
    book = book_with(iceberg(1, 10, SELL, 100, 10, 3), Amend(1, 5))
    assert book.order(1) == Resting(1, 10, SELL, 100, 5, 3, 3)
    apply_checked(book, Amend(1, 2))
    assert book.order(1) == Resting(1, 10, SELL, 100, 2, 3, 2)


def test_amended_stop_executes_its_new_quantity():
    book = book_with(stop(1, 10, BUY, 101, qty=5), Amend(1, 2), limit(2, 11, SELL, 101, 9))
    assert book.order(1) == stop(1, 10, BUY, 101, qty=2)
    events = apply_checked(book, market(3, 12, BUY, qty=1))
    assert events[-3:] == [
        Trade(2, 1, 101, 2, BUY),
        LevelChanged(SELL, 101, 6, 3),
        OrderDone(1, FILLED, None, 0),
    ]

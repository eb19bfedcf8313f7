"""Restore: a book rebuilt from its resting orders, stops, last price and seq continues
exactly like the original."""

import pytest

from trading.engine import BUY, SELL, OrderBook, Resting

from .helpers import apply_checked, book_with, cancel, limit, market, stop, stop_limit

HISTORY = [
    limit(1, 10, SELL, 101, 2),
    limit(2, 11, SELL, 101, 3),
    limit(3, 12, SELL, 103, 4),
    limit(4, 10, BUY, 99, 5),
    limit(5, 13, BUY, 98, 1),
    limit(6, 14, BUY, 101, 1),
    stop(7, 15, BUY, 103, qty=2),
    stop_limit(8, 16, SELL, 97, 96, 3),
    stop(9, 17, SELL, 99, quote=None, qty=1),
    limit(10, 18, BUY, 99, 2),
]
FUTURE = [
    limit(20, 20, BUY, 103, 6),
    market(21, 21, SELL, qty=7),
    cancel(2),
    limit(22, 22, SELL, 99, 1),
    market(23, 23, BUY, quote=1000),
    cancel(8),
    limit(24, 24, BUY, 99, 3),
]


def _restored(book):
    return OrderBook.restore(
        book.resting_orders(),
        book.stop_orders(),
        last_price_ticks=book.last_price_ticks,
        seq=book.seq,
        audit=True,
    )


def test_restored_book_continues_exactly_like_the_original():
    original = book_with(*HISTORY)
    restored = _restored(original)
    restored.validate()
    assert restored.depth(10) == original.depth(10)
    for command in FUTURE:
        assert apply_checked(restored, command) == apply_checked(original, command)
    assert restored.resting_orders() == original.resting_orders()
    assert restored.stop_orders() == original.stop_orders()
    assert (restored.seq, restored.last_price_ticks) == (original.seq, original.last_price_ticks)


def test_restore_keeps_the_given_time_priority_within_a_level():
    book = OrderBook.restore(
        [Resting(5, 1, SELL, 100, 1), Resting(2, 2, SELL, 100, 1), Resting(9, 3, BUY, 90, 1)],
        seq=41,
    )
    events = book.place_limit(10, 4, BUY, 100, 2)
    assert [e[0] for e in events if e[-1] == "trade"] == [5, 2]
    assert events[-2][3] == 42


@pytest.mark.parametrize(
    ("resting", "stops", "last", "message"),
    [
        ([Resting(1, 1, BUY, 100, 1), Resting(2, 2, SELL, 100, 1)], [], None, "crossed"),
        ([Resting(1, 1, BUY, 100, 1), Resting(1, 2, BUY, 99, 1)], [], None, "duplicate"),
        ([Resting(1, 1, "hold", 100, 1)], [], None, "side"),
        ([Resting(1, 1, BUY, 100, 0)], [], None, "positive"),
        ([Resting(1, 1, BUY, 100, 1)], [stop(1, 1, BUY, 200, qty=1)], None, "duplicate"),
        ([], [stop(1, 1, BUY, 100, qty=1)], 100, "triggered"),
        ([], [stop(1, 1, BUY, 100, qty=0)], None, "invalid_quantity"),
        ([], [limit(1, 1, BUY, 100, 1)], None, "invalid_order_type"),
    ],
)
def test_restore_refuses_state_no_live_book_could_hold(resting, stops, last, message):
    with pytest.raises(ValueError, match=message):
        OrderBook.restore(resting, stops, last_price_ticks=last)

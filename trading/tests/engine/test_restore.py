"""Restore: a book rebuilt from its resting orders, stops, last price and seq continues
exactly like the original."""

import pytest

from trading.engine import BUY, SELL, Amend, OrderBook, PlaceOco, Resting

from .helpers import (
    apply_checked,
    book_with,
    cancel,
    iceberg,
    limit,
    market,
    stop,
    stop_limit,
    trailing,
)

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


# The same with every newer order type: icebergs (one partly shown), trailing stops (one
# active), an OCO pair with an iceberg limit leg and a trailing stop leg, amends.
HISTORY_ALL_TYPES = [
    *HISTORY,
    iceberg(30, 30, SELL, 104, 9, 2),
    iceberg(31, 31, BUY, 98, 7, 3),
    market(32, 32, BUY, qty=5),
    trailing(33, 33, SELL, 100, qty=1),
    trailing(34, 34, BUY, 300, activation=96, qty=2),
    PlaceOco(
        35, iceberg(35, 35, SELL, 106, 6, 2, post_only=True), trailing(36, 35, SELL, 50, qty=6)
    ),
    Amend(31, 5),
    Amend(36, 4),
]
FUTURE_ALL_TYPES = [
    market(40, 40, BUY, qty=3),
    limit(41, 41, SELL, 98, 4),
    market(42, 42, SELL, qty=6),
    market(43, 43, BUY, qty=12),
    cancel(30),
    limit(44, 44, BUY, 97, 2),
]


def _restored(book):
    return OrderBook.restore(
        book.resting_orders(),
        book.stop_orders(),
        last_price_ticks=book.last_price_ticks,
        seq=book.seq,
        trailing_peaks=book.trailing_peaks(),
        oco_pairs=book.oco_pairs(),
        audit=True,
    )


def test_restored_book_with_every_order_type_continues_exactly_like_the_original():
    original = book_with(*HISTORY_ALL_TYPES)
    assert original.oco_pairs() == [(35, 35, 36)]
    assert set(original.trailing_peaks()) == {33, 36}
    assert any(o.visible_lots is not None for o in original.resting_orders())
    restored = _restored(original)
    restored.validate()
    assert restored.depth(10) == original.depth(10)
    kinds = set()
    for command in FUTURE_ALL_TYPES:
        events = apply_checked(original, command)
        assert apply_checked(restored, command) == events
        kinds.update(e[-1] for e in events)
    assert {"order_refreshed", "stop_triggered", "trailing_moved"} <= kinds
    assert restored.resting_orders() == original.resting_orders()
    assert restored.stop_orders() == original.stop_orders()
    assert restored.trailing_peaks() == original.trailing_peaks()
    assert restored.oco_pairs() == original.oco_pairs()
    assert (restored.seq, restored.last_price_ticks) == (original.seq, original.last_price_ticks)


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

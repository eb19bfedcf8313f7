"""validate() accepts every book the engine builds and names each kind of corruption."""

import pytest

from trading.engine import BUY, SELL, BookInconsistency

from .helpers import book_with, limit, stop


def _book():
    return book_with(
        limit(1, 10, BUY, 100, 2),
        limit(2, 11, BUY, 100, 3),
        limit(3, 12, SELL, 102, 4),
        stop(4, 13, BUY, 150, qty=1),
        limit(5, 14, SELL, 101, 1),
        limit(6, 15, BUY, 101, 1),
        limit(7, 16, BUY, 99, 1),
    )


def test_validate_accepts_a_consistent_book():
    _book().validate()


def test_inconsistency_is_an_assertion_error():
    assert issubclass(BookInconsistency, AssertionError)


def _wrong_total(book):
    book._bids.levels[100].total_lots += 1


def _wrong_count(book):
    book._bids.levels[100].count = 1


def _fifo_broken(book):
    book._bids.levels[100].orders.rotate(1)


def _crossed(book):
    book._rest([], 9, 16, book._bids, 103, 103, 1, "open")


def _unindexed(book):
    del book._live[2]


def _emptied_order(book):
    # A plain resting order is packed into its _live value; the quantity is the top bits.
    book._live[1] &= (1 << 52) - 1


def _unsorted_keys(book):
    book._bids.keys.reverse()


def _stop_due(book):
    book._last_price = 150


def _stale_level(book):
    # Order 3 left as a cancel in the middle of its level would: a tracked ghost.
    del book._live[3]
    book._ghosts[3] = book._asks.levels[-102]


def _untracked_ghost(book):
    book._ghosts[99] = book._bids.levels[100]


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (_wrong_total, "total"),
        (_wrong_count, "total/count"),
        (_fifo_broken, "FIFO"),
        (_crossed, "crossed"),
        (_unindexed, "not indexed"),
        (_emptied_order, "non-positive qty"),
        (_untracked_ghost, "ghost 99 is tracked in a level that does not hold it"),
        (_unsorted_keys, "ascending"),
        (_stop_due, "stop"),
        (_stale_level, "empty"),
    ],
)
def test_validate_reports_a_corrupted_book(corrupt, message):
    book = _book()
    corrupt(book)
    with pytest.raises(BookInconsistency, match=message):
        book.validate()

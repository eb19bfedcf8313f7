"""Depth, best prices, seq, and the lazily deleted queue of a level."""

from trading.engine import BUY, SELL, DepthLevel, OrderBook, Resting

from .helpers import apply_checked, book_with, cancel, limit


def test_empty_book_has_no_best_prices_and_no_depth():
    book = OrderBook()
    assert (book.best_bid(), book.best_ask()) == (None, None)
    assert book.depth(5) == ([], [])
    assert (book.seq, book.last_price_ticks, len(book)) == (0, None, 0)


def test_depth_aggregates_the_top_levels_of_each_side_best_first():
    book = book_with(
        limit(1, 10, BUY, 100, 1),
        limit(2, 11, BUY, 100, 2),
        limit(3, 10, BUY, 99, 5),
        limit(4, 10, BUY, 98, 7),
        limit(5, 10, SELL, 102, 4),
        limit(6, 11, SELL, 101, 3),
        limit(7, 11, SELL, 101, 1),
    )
    assert book.depth(2) == (
        [DepthLevel(100, 3, 2), DepthLevel(99, 5, 1)],
        [DepthLevel(101, 4, 2), DepthLevel(102, 4, 1)],
    )
    assert book.depth(0) == ([], [])
    assert len(book.depth(50)[0]) == 3
    assert (book.best_bid(), book.best_ask()) == (100, 101)


def test_depth_leaves_out_cancelled_and_filled_orders():
    book = book_with(
        limit(1, 10, SELL, 101, 2),
        limit(2, 11, SELL, 101, 3),
        limit(3, 10, SELL, 102, 5),
        cancel(2),
        limit(4, 12, BUY, 101, 1),
    )
    assert book.depth(5)[1] == [DepthLevel(101, 1, 1), DepthLevel(102, 5, 1)]


def test_every_level_change_increments_seq_by_one():
    book = OrderBook()
    seqs = []
    for command in (
        limit(1, 10, SELL, 101, 2),
        limit(2, 10, SELL, 102, 2),
        limit(3, 11, BUY, 102, 3),
        cancel(2),
    ):
        seqs += [e[3] for e in apply_checked(book, command) if e[-1] == "level_changed"]
    assert seqs == [1, 2, 3, 4, 5]
    assert book.seq == 5


def test_order_reports_a_live_order_and_none_for_others():
    book = book_with(limit(1, 10, BUY, 100, 4), limit(2, 11, SELL, 100, 1))
    assert book.order(1) == Resting(1, 10, BUY, 100, 3)
    assert book.order(2) is None
    assert 1 in book
    assert 2 not in book


def test_many_cancels_inside_a_level_keep_fifo_and_bounded_queue():
    # Cancels in the middle of a level leave ghosts in its queue; compaction must bound
    # them without disturbing the order of the live ones.
    book = book_with(*(limit(i, i, SELL, 100, 1) for i in range(1, 301)))
    survivors = [i for i in range(1, 301) if i == 1 or i == 300 or i % 7 == 0]
    for i in range(2, 300):
        if i % 7:
            apply_checked(book, cancel(i))
    level = book._asks.levels[-100]
    assert len(level.orders) <= 2 * len(survivors) + 32
    assert [o.order_id for o in book.resting_orders()] == survivors
    events = apply_checked(book, limit(1000, 999, BUY, 100, len(survivors)))
    assert [e[0] for e in events if e[-1] == "trade"] == survivors
    assert book.best_ask() is None


def test_an_id_placed_again_after_a_cancel_does_not_take_the_place_of_its_ghost():
    # Order 2's cancel leaves its id queued as a ghost between 1 and 3; placed again at the
    # same price, 2 must queue behind 3, not pass for the ghost ahead of it.
    book = book_with(
        limit(1, 10, SELL, 100, 1), limit(2, 11, SELL, 100, 1), limit(3, 12, SELL, 100, 1)
    )
    apply_checked(book, cancel(2))
    apply_checked(book, limit(2, 13, SELL, 100, 1))
    assert [o.order_id for o in book.resting_orders()] == [1, 3, 2]
    events = apply_checked(book, limit(9, 99, BUY, 100, 2))
    assert [e[0] for e in events if e[-1] == "trade"] == [1, 3]
    assert book.order(2) == Resting(2, 13, SELL, 100, 1)


def test_orders_whose_user_id_does_not_pack_rest_and_trade_like_the_others():
    # User ids of 2**32 and above (and non-int ones) do not fit the packed layout; those
    # orders rest as objects, with the same events and priority.
    big = 1 << 40
    book = book_with(limit(1, big, SELL, 100, 2), limit(2, 11, SELL, 100, 1))
    assert book.order(1) == Resting(1, big, SELL, 100, 2)
    assert apply_checked(book, limit(3, big, BUY, 100, 1)) == [
        (3, "expired", "self_trade_prevented", 1, "order_done")
    ]
    events = apply_checked(book, limit(4, 12, BUY, 100, 3))
    assert [e[:4] for e in events if e[-1] == "trade"] == [(1, 4, 100, 2), (2, 4, 100, 1)]
    assert book.best_ask() is None


def test_emptied_levels_are_parked_for_their_price_and_bounded():
    # An emptied level stays (unlisted) for its price to be used again; past the limit
    # they are all freed, so a market drifting over many prices does not pile them up.
    book = OrderBook()
    for price in range(1, 1200):
        apply_checked(book, limit(price, 10, SELL, price, 1))
        apply_checked(book, cancel(price))
    assert book.best_ask() is None
    assert len(book._asks.levels) <= 1024
    assert book.depth(5) == ([], [])
    level = book._asks.levels[-1199]
    apply_checked(book, limit(5000, 10, SELL, 1199, 2))
    assert book._asks.levels[-1199] is level
    assert book.depth(1) == ([], [DepthLevel(1199, 2, 1)])

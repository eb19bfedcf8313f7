"""Trailing stops: activation, the extreme since activation, the trigger in basis points."""

import random

import pytest

from trading.engine import (
    BUY,
    CANCELLED,
    FILLED,
    INVALID_STOP_PRICE,
    INVALID_TRAILING_DELTA,
    LEVEL_CHANGED,
    OPEN,
    SELL,
    STOP_TRIGGERED,
    TRAILING_MOVED,
    Amend,
    LevelChanged,
    OrderAmended,
    OrderBook,
    OrderDone,
    OrderRejected,
    OrderRested,
    StopAccepted,
    StopTriggered,
    Trade,
    TrailingMoved,
)

from .helpers import (
    apply_checked,
    book_with,
    cancel,
    check,
    limit,
    market,
    stop,
    stop_limit,
    trailing,
)
from .reference import ReferenceBook

# Prices near 1000 ticks, so 100 bips (1 %) is 10 ticks. A trade at 1000; seq 2, book empty.
LAST_AT_1000 = [limit(1, 20, SELL, 1000, 1), limit(2, 21, BUY, 1000, 1)]
# Sell trailing stop, 1 %, active from placement at 1000.
TSELL = trailing(3, 10, SELL, 100, qty=2)
# The last price goes up to 1010 (seq 4): the extreme moves.
UP_TO_1010 = [limit(4, 22, SELL, 1010, 1), limit(5, 23, BUY, 1010, 1)]


@pytest.mark.parametrize(
    ("given", "when", "then"),
    [
        pytest.param(
            LAST_AT_1000,
            TSELL,
            [StopAccepted(3, None), TrailingMoved(3, 1000)],
            id="active-from-placement-at-the-last-price",
        ),
        pytest.param([], TSELL, [StopAccepted(3, None)], id="no-last-price-yet"),
        pytest.param(
            [TSELL],
            limit(1, 20, SELL, 1000, 1),
            [OrderRested(1, SELL, 1000, 1, OPEN), LevelChanged(SELL, 1000, 1, 1)],
            id="resting-is-no-trade",
        ),
        pytest.param(
            [TSELL, limit(1, 20, SELL, 1000, 1)],
            limit(2, 21, BUY, 1000, 1),
            [
                Trade(1, 2, 1000, 1, BUY),
                OrderDone(1, FILLED, None, 0),
                LevelChanged(SELL, 1000, 0, 2),
                OrderDone(2, FILLED, None, 0),
                TrailingMoved(3, 1000),
            ],
            id="starts-from-the-first-trade",
        ),
        pytest.param(
            [*LAST_AT_1000, TSELL, limit(4, 22, SELL, 1010, 1)],
            limit(5, 23, BUY, 1010, 1),
            [
                Trade(4, 5, 1010, 1, BUY),
                OrderDone(4, FILLED, None, 0),
                LevelChanged(SELL, 1010, 0, 4),
                OrderDone(5, FILLED, None, 0),
                TrailingMoved(3, 1010),
            ],
            id="extreme-moves-up",
        ),
        pytest.param(
            [*LAST_AT_1000, TSELL, *UP_TO_1010, limit(6, 24, BUY, 1000, 1)],
            market(8, 26, SELL, qty=1),
            [
                Trade(6, 8, 1000, 1, SELL),
                OrderDone(6, FILLED, None, 0),
                LevelChanged(BUY, 1000, 0, 6),
                OrderDone(8, FILLED, None, 0),
            ],
            id="not-yet-at-1000",
        ),
        pytest.param(
            [
                *LAST_AT_1000,
                TSELL,
                *UP_TO_1010,
                limit(6, 24, BUY, 1000, 1),
                limit(7, 25, BUY, 999, 5),
            ],
            market(8, 26, SELL, qty=2),
            [
                Trade(6, 8, 1000, 1, SELL),
                OrderDone(6, FILLED, None, 0),
                LevelChanged(BUY, 1000, 0, 7),
                Trade(7, 8, 999, 1, SELL),
                LevelChanged(BUY, 999, 4, 8),
                OrderDone(8, FILLED, None, 0),
                StopTriggered(3, 999),
                Trade(7, 3, 999, 2, SELL),
                LevelChanged(BUY, 999, 2, 9),
                OrderDone(3, FILLED, None, 0),
            ],
            id="triggers-1-percent-below-the-extreme",
        ),
        pytest.param(
            [*LAST_AT_1000, TSELL, limit(6, 24, BUY, 1015, 1), limit(7, 25, BUY, 990, 5)],
            market(8, 26, SELL, qty=2),
            [
                Trade(6, 8, 1015, 1, SELL),
                OrderDone(6, FILLED, None, 0),
                LevelChanged(BUY, 1015, 0, 5),
                Trade(7, 8, 990, 1, SELL),
                LevelChanged(BUY, 990, 4, 6),
                OrderDone(8, FILLED, None, 0),
                TrailingMoved(3, 1015),
                StopTriggered(3, 990),
                Trade(7, 3, 990, 2, SELL),
                LevelChanged(BUY, 990, 2, 7),
                OrderDone(3, FILLED, None, 0),
            ],
            id="every-trade-of-a-sweep-counts-for-the-extreme",
        ),
        pytest.param(
            LAST_AT_1000,
            trailing(3, 10, SELL, 100, activation=1020, qty=2),
            [StopAccepted(3, 1020)],
            id="sell-activation-price-above-waits",
        ),
        pytest.param(
            [*LAST_AT_1000, trailing(3, 10, SELL, 100, activation=1020, qty=2)],
            limit(9, 9, BUY, 999, 1),
            [OrderRested(9, BUY, 999, 1, OPEN), LevelChanged(BUY, 999, 1, 3)],
            id="inactive-ignores-a-falling-price",
        ),
        pytest.param(
            [
                *LAST_AT_1000,
                trailing(3, 10, SELL, 100, activation=1020, qty=2),
                limit(4, 22, SELL, 1020, 1),
                limit(6, 24, BUY, 1009, 5),
            ],
            limit(5, 23, BUY, 1020, 1),
            [
                Trade(4, 5, 1020, 1, BUY),
                OrderDone(4, FILLED, None, 0),
                LevelChanged(SELL, 1020, 0, 5),
                OrderDone(5, FILLED, None, 0),
                TrailingMoved(3, 1020),
            ],
            id="activates-when-the-last-price-reaches-it",
        ),
        pytest.param(
            LAST_AT_1000,
            trailing(3, 10, BUY, 100, activation=1000, qty=2),
            [StopAccepted(3, 1000), TrailingMoved(3, 1000)],
            id="buy-activation-already-reached",
        ),
        pytest.param(
            [
                *LAST_AT_1000,
                trailing(3, 10, BUY, 100, qty=2),
                limit(4, 22, BUY, 990, 1),
                market(5, 23, SELL, qty=1),
                limit(6, 24, SELL, 1000, 1),
                limit(7, 25, SELL, 1001, 5),
            ],
            market(8, 26, BUY, qty=1),
            [
                Trade(6, 8, 1000, 1, BUY),
                OrderDone(6, FILLED, None, 0),
                LevelChanged(SELL, 1000, 0, 7),
                OrderDone(8, FILLED, None, 0),
                StopTriggered(3, 1000),
                Trade(7, 3, 1001, 2, BUY),
                LevelChanged(SELL, 1001, 3, 8),
                OrderDone(3, FILLED, None, 0),
            ],
            id="buy-trough-then-rises-1-percent",
        ),
    ],
)
def test_trailing(given, when, then):
    check(given, when, then)


def test_buy_trailing_triggers_only_at_one_percent_above_the_trough():
    book = book_with(
        *LAST_AT_1000,
        trailing(3, 10, BUY, 100, qty=1),
        limit(4, 22, BUY, 990, 1),
        market(5, 23, SELL, qty=1),
        limit(6, 24, SELL, 999, 1),
    )
    # 999 >= 990 * 1.01 = 999.9? No.
    events = apply_checked(book, market(7, 25, BUY, qty=1))
    assert [e[-1] for e in events] == ["trade", "order_done", "level_changed", "order_done"]
    assert book.trailing_peaks() == {3: 990}


def test_plain_stops_trigger_before_trailing_stops_and_trailing_ones_by_arrival():
    book = book_with(
        *LAST_AT_1000,
        trailing(3, 10, SELL, 100, qty=1),
        trailing(4, 11, SELL, 50, qty=1),
        stop(5, 12, SELL, 995, qty=1),
        limit(6, 24, BUY, 990, 9),
    )
    events = apply_checked(book, market(7, 25, SELL, qty=1))
    assert [e[0] for e in events if e[-1] == "stop_triggered"] == [5, 3, 4]


def test_trailing_stop_limit_rests_at_its_limit_price_when_triggered():
    book = book_with(
        *LAST_AT_1000, stop_limit(3, 10, SELL, None, 985, 2)._replace(trailing_delta=100)
    )
    apply_checked(book, limit(4, 22, BUY, 989, 1))
    events = apply_checked(book, market(5, 23, SELL, qty=1))
    assert events[-3:] == [
        StopTriggered(3, 989),
        OrderRested(3, SELL, 985, 2, OPEN),
        LevelChanged(SELL, 985, 2, 5),
    ]


def test_cancel_and_amend_an_untriggered_trailing_stop():
    book = book_with(*LAST_AT_1000, TSELL)
    assert apply_checked(book, Amend(3, 1)) == [OrderAmended(3, 1)]
    assert book.order(3) == TSELL._replace(qty_lots=1)
    assert book.trailing_peaks() == {3: 1000}
    assert apply_checked(book, cancel(3)) == [OrderDone(3, CANCELLED, None, 1)]
    assert book.trailing_peaks() == {}
    assert len(book) == 0


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (trailing(3, 10, SELL, 0, qty=1), INVALID_TRAILING_DELTA),
        (trailing(3, 10, SELL, 10000, qty=1), INVALID_TRAILING_DELTA),
        (trailing(3, 10, SELL, 1.5, qty=1), INVALID_TRAILING_DELTA),
        (trailing(3, 10, SELL, 100, activation=0, qty=1), INVALID_STOP_PRICE),
        (limit(3, 10, SELL, 1000, 1)._replace(trailing_delta=100), INVALID_TRAILING_DELTA),
        (market(3, 10, SELL, qty=1)._replace(trailing_delta=100), INVALID_TRAILING_DELTA),
        (stop(3, 10, SELL, None, qty=1), INVALID_STOP_PRICE),
    ],
)
def test_invalid_trailing_stops_are_rejected(command, reason):
    book = book_with(*LAST_AT_1000)
    assert apply_checked(book, command) == [OrderRejected(3, reason)]
    assert len(book) == 0


def test_trailing_stops_round_trip_through_restore_with_their_extremes():
    original = book_with(
        *LAST_AT_1000,
        TSELL,
        trailing(13, 11, BUY, 200, activation=990, qty=1),
        trailing(15, 12, BUY, 200, qty=1),
        *UP_TO_1010,
    )
    assert original.trailing_peaks() == {3: 1010, 15: 1000}
    restored = OrderBook.restore(
        original.resting_orders(),
        original.stop_orders(),
        last_price_ticks=original.last_price_ticks,
        seq=original.seq,
        trailing_peaks=original.trailing_peaks(),
        audit=True,
    )
    restored.validate()
    future = [
        limit(6, 24, BUY, 999, 3),
        limit(7, 25, SELL, 1020, 3),
        market(8, 26, SELL, qty=1),
        market(9, 27, BUY, qty=1),
    ]
    for command in future:
        assert apply_checked(restored, command) == apply_checked(original, command)
    assert restored.stop_orders() == original.stop_orders()
    assert restored.trailing_peaks() == original.trailing_peaks()


@pytest.mark.parametrize(
    ("peaks", "message"),
    [
        ({}, "should already be active"),
        ({3: 1010}, "should already have triggered"),
        ({3: 998}, "peak behind the last price"),
    ],
)
def test_restore_refuses_trailing_state_no_live_book_could_hold(peaks, message):
    with pytest.raises(ValueError, match=message):
        OrderBook.restore([], [TSELL], last_price_ticks=999, trailing_peaks=peaks)


def test_many_trailing_stops_go_through_the_heaps_and_match_the_reference():
    # Enough trailing stops at once for the engine to index them by heaps (and enough moves
    # for their stale entries to be dropped in rebuilds), on a price that wanders 10 %
    # each way: every event but LevelChanged equals the naive reference book's.
    rng = random.Random(21)
    book = OrderBook(audit=True)
    reference = ReferenceBook()
    mid = 1000
    placed = []
    heap_commands = moved = triggered = 0
    for order_id in range(1, 3001):
        mid = min(1100, max(900, mid + rng.randint(-6, 6)))
        side = rng.choice((BUY, SELL))
        r = rng.random()
        if r < 0.12 or order_id < 60:
            activation = None if rng.random() < 0.5 else mid + rng.randint(-20, 20)
            command = trailing(
                order_id, 1 + rng.randrange(5), side, rng.randint(5, 300), activation, qty=1
            )
        elif r < 0.7:
            price = mid + (rng.randint(-3, 8) if side == SELL else rng.randint(-8, 3))
            command = limit(order_id, 1 + rng.randrange(5), side, price, rng.randint(1, 6))
        elif r < 0.85:
            command = market(order_id, 1 + rng.randrange(5), side, qty=rng.randint(1, 4))
        else:
            command = cancel(rng.choice(placed)) if placed else limit(order_id, 1, BUY, mid, 1)
        placed.append(order_id)
        heap_commands += book._trail_heaps
        events = book.apply(command)
        book.validate()
        assert [e for e in events if e[-1] != LEVEL_CHANGED] == reference.apply(command)
        moved += sum(1 for e in events if e[-1] == TRAILING_MOVED)
        triggered += sum(1 for e in events if e[-1] == STOP_TRIGGERED)
    assert heap_commands > 1000
    assert moved > 1000
    assert triggered > 100
    assert book.trailing_peaks() == reference.trailing_peaks()
    assert book.stop_orders() == reference.stop_orders()

"""OCO pairs: a post-only limit leg and a stop leg; whichever acts first ends the other."""

import pytest

from trading.engine import (
    BUY,
    CANCELLED,
    DUPLICATE_ORDER_ID,
    FILLED,
    INVALID_OCO,
    INVALID_PRICE,
    INVALID_STOP_PRICE,
    IOC,
    OCO_OTHER_LEG,
    OCO_STOP_WOULD_TRIGGER,
    OPEN,
    POST_ONLY_WOULD_TAKE,
    SELL,
    Amend,
    LevelChanged,
    OrderAmended,
    OrderBook,
    OrderDone,
    OrderRefreshed,
    OrderRejected,
    OrderRested,
    PlaceOco,
    Resting,
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
    iceberg,
    limit,
    market,
    stop,
    stop_limit,
    trailing,
)

# A trade at 100 sets the last price; seq is 2 afterwards and the book is empty.
LAST_AT_100 = [limit(1, 20, SELL, 100, 1), limit(2, 21, BUY, 100, 1)]
# Sell 4: take profit at 110, stop loss at 95 (list 7, legs 3 and 4, user 10).
TP = limit(3, 10, SELL, 110, 4, post_only=True)
SL = stop(4, 10, SELL, 95, qty=4)
OCO = PlaceOco(7, TP, SL)


def test_accepted_pair_rests_the_limit_leg_then_accepts_the_stop_leg():
    book = check(
        given=LAST_AT_100,
        when=OCO,
        then=[
            OrderRested(3, SELL, 110, 4, OPEN),
            LevelChanged(SELL, 110, 4, 3),
            StopAccepted(4, 95),
        ],
    )
    assert book.order(3) == Resting(3, 10, SELL, 110, 4, list_peer_id=4)
    assert book.stop_orders() == [SL]
    assert book.oco_pairs() == [(7, 3, 4)]


@pytest.mark.parametrize(
    ("given", "when", "then"),
    [
        pytest.param(
            [*LAST_AT_100, OCO],
            market(5, 11, BUY, qty=1),
            [
                Trade(3, 5, 110, 1, BUY),
                OrderDone(4, CANCELLED, OCO_OTHER_LEG, 4),
                LevelChanged(SELL, 110, 3, 4),
                OrderDone(5, FILLED, None, 0),
            ],
            id="first-partial-fill-of-the-limit-leg-cancels-the-stop-leg",
        ),
        pytest.param(
            [*LAST_AT_100, OCO],
            market(5, 11, BUY, qty=4),
            [
                Trade(3, 5, 110, 4, BUY),
                OrderDone(3, FILLED, None, 0),
                OrderDone(4, CANCELLED, OCO_OTHER_LEG, 4),
                LevelChanged(SELL, 110, 0, 4),
                OrderDone(5, FILLED, None, 0),
            ],
            id="filled-limit-leg-then-the-stop-leg-ends",
        ),
        pytest.param(
            [*LAST_AT_100, PlaceOco(7, iceberg(3, 10, SELL, 110, 4, 2, post_only=True), SL)],
            market(5, 11, BUY, qty=2),
            [
                Trade(3, 5, 110, 2, BUY),
                OrderRefreshed(3, 2),
                OrderDone(4, CANCELLED, OCO_OTHER_LEG, 4),
                LevelChanged(SELL, 110, 2, 4),
                OrderDone(5, FILLED, None, 0),
            ],
            id="iceberg-limit-leg",
        ),
        pytest.param(
            [*LAST_AT_100, OCO, limit(5, 12, BUY, 95, 2), limit(8, 13, BUY, 94, 10)],
            market(6, 14, SELL, qty=2),
            [
                Trade(5, 6, 95, 2, SELL),
                OrderDone(5, FILLED, None, 0),
                LevelChanged(BUY, 95, 0, 6),
                OrderDone(6, FILLED, None, 0),
                StopTriggered(4, 95),
                OrderDone(3, CANCELLED, OCO_OTHER_LEG, 4),
                LevelChanged(SELL, 110, 0, 7),
                Trade(8, 4, 94, 4, SELL),
                LevelChanged(BUY, 94, 6, 8),
                OrderDone(4, FILLED, None, 0),
            ],
            id="triggered-stop-leg-cancels-the-limit-leg-first",
        ),
        pytest.param(
            [*LAST_AT_100, OCO],
            cancel(3),
            [
                OrderDone(3, CANCELLED, None, 4),
                LevelChanged(SELL, 110, 0, 4),
                OrderDone(4, CANCELLED, OCO_OTHER_LEG, 4),
            ],
            id="cancel-limit-leg",
        ),
        pytest.param(
            [*LAST_AT_100, OCO],
            cancel(4),
            [
                OrderDone(4, CANCELLED, None, 4),
                OrderDone(3, CANCELLED, OCO_OTHER_LEG, 4),
                LevelChanged(SELL, 110, 0, 4),
            ],
            id="cancel-stop-leg",
        ),
        pytest.param(
            [*LAST_AT_100, OCO],
            Amend(4, 2),
            [OrderAmended(4, 2), OrderAmended(3, 2), LevelChanged(SELL, 110, 2, 4)],
            id="amend-one-leg-amends-both",
        ),
        pytest.param(
            LAST_AT_100,
            PlaceOco(7, TP, trailing(4, 10, SELL, 100, qty=4)),
            [
                OrderRested(3, SELL, 110, 4, OPEN),
                LevelChanged(SELL, 110, 4, 3),
                StopAccepted(4, None),
                TrailingMoved(4, 100),
            ],
            id="trailing-stop-leg",
        ),
        pytest.param(
            [],
            PlaceOco(7, limit(3, 10, BUY, 90, 4), stop_limit(4, 10, BUY, 105, 106, 4)),
            [OrderRested(3, BUY, 90, 4, OPEN), LevelChanged(BUY, 90, 4, 1), StopAccepted(4, 105)],
            id="buy-pair-no-last-price-post-only-flag-not-needed",
        ),
    ],
)
def test_oco_legs(given, when, then):
    check(given, when, then)


@pytest.mark.parametrize(
    ("given", "when", "reason"),
    [
        pytest.param(
            [*LAST_AT_100, limit(5, 12, BUY, 111, 1)], OCO, POST_ONLY_WOULD_TAKE, id="would-take"
        ),
        pytest.param(
            LAST_AT_100,
            PlaceOco(7, TP, SL._replace(stop_price_ticks=100)),
            OCO_STOP_WOULD_TRIGGER,
            id="would-trigger",
        ),
        pytest.param(
            LAST_AT_100, PlaceOco(7, TP, SL._replace(qty_lots=3)), INVALID_OCO, id="qty-differs"
        ),
        pytest.param(
            LAST_AT_100, PlaceOco(7, TP, SL._replace(side=BUY)), INVALID_OCO, id="side-differs"
        ),
        pytest.param(
            LAST_AT_100, PlaceOco(7, TP, SL._replace(user_id=11)), INVALID_OCO, id="user-differs"
        ),
        pytest.param(
            LAST_AT_100, PlaceOco(7, TP._replace(tif=IOC), SL), INVALID_OCO, id="limit-leg-ioc"
        ),
        pytest.param(
            LAST_AT_100,
            PlaceOco(7, TP, limit(4, 10, SELL, 95, 4)),
            INVALID_OCO,
            id="stop-leg-not-a-stop",
        ),
        pytest.param(
            LAST_AT_100, PlaceOco(7, TP, SL._replace(order_id=3)), INVALID_OCO, id="same-id"
        ),
        pytest.param(
            [*LAST_AT_100, limit(4, 12, BUY, 50, 1)], OCO, DUPLICATE_ORDER_ID, id="duplicate"
        ),
        pytest.param(
            LAST_AT_100,
            PlaceOco(7, TP, SL._replace(stop_price_ticks=0)),
            INVALID_STOP_PRICE,
            id="bad-stop-leg",
        ),
        pytest.param(
            LAST_AT_100, PlaceOco(7, TP._replace(price_ticks=0), SL), INVALID_PRICE, id="bad-limit"
        ),
    ],
)
def test_rejected_pair_rejects_both_legs_and_changes_nothing(given, when, reason):
    book = book_with(*given)
    before = (book.resting_orders(), book.stop_orders(), book.seq, book.oco_pairs())
    expected = [
        OrderRejected(when.limit.order_id, reason),
        OrderRejected(when.stop.order_id, reason),
    ]
    assert apply_checked(book, when) == expected
    assert (book.resting_orders(), book.stop_orders(), book.seq, book.oco_pairs()) == before


def test_after_the_limit_leg_traded_its_rest_is_an_ordinary_order():
    book = book_with(*LAST_AT_100, OCO, market(5, 11, BUY, qty=1))
    assert book.oco_pairs() == []
    assert book.order(3) == Resting(3, 10, SELL, 110, 3)
    assert 4 not in book
    assert apply_checked(book, cancel(3)) == [
        OrderDone(3, CANCELLED, None, 3),
        LevelChanged(SELL, 110, 0, 5),
    ]


def test_oco_pair_round_trips_through_restore():
    original = book_with(*LAST_AT_100, OCO, limit(5, 12, BUY, 96, 1))
    restored = OrderBook.restore(
        original.resting_orders(),
        original.stop_orders(),
        last_price_ticks=original.last_price_ticks,
        seq=original.seq,
        oco_pairs=original.oco_pairs(),
        audit=True,
    )
    restored.validate()
    for command in [market(6, 13, SELL, qty=1), limit(8, 14, BUY, 94, 9), market(9, 15, SELL, 1)]:
        assert apply_checked(restored, command) == apply_checked(original, command)
    assert restored.resting_orders() == original.resting_orders()
    assert original.oco_pairs() == []


@pytest.mark.parametrize(
    "pairs",
    [[(7, 4, 3)], [(7, 3, 9)], [(7, 3, 4), (8, 3, 4)]],
    ids=["legs-swapped", "stop-leg-missing", "leg-twice"],
)
def test_restore_refuses_oco_pairs_that_do_not_match_the_orders(pairs):
    original = book_with(*LAST_AT_100, OCO)
    with pytest.raises(ValueError, match="OCO"):
        OrderBook.restore(
            original.resting_orders(),
            original.stop_orders(),
            last_price_ticks=100,
            oco_pairs=pairs,
        )

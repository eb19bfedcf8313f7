"""Stop and stop-limit orders: trigger conditions, order of triggering, cascades."""

import pytest

from trading.engine import (
    BUY,
    CANCELLED,
    EXPIRED,
    FILLED,
    OPEN,
    SELF_TRADE_PREVENTED,
    SELL,
    LevelChanged,
    OrderDone,
    OrderRested,
    StopAccepted,
    StopTriggered,
    Trade,
    named,
)

from .helpers import book_with, cancel, check, limit, market, stop, stop_limit

# A trade at 100 sets the last price; seq is 2 afterwards and the book is empty.
LAST_AT_100 = [limit(1, 10, SELL, 100, 1), limit(2, 11, BUY, 100, 1)]


def test_stop_is_accepted_untriggered_while_the_last_price_has_not_reached_it():
    book = check(given=LAST_AT_100, when=stop(3, 12, BUY, 105, qty=2), then=[StopAccepted(3, 105)])
    assert book.order(3) == stop(3, 12, BUY, 105, qty=2)
    assert book.stop_orders() == [stop(3, 12, BUY, 105, qty=2)]


def test_stop_waits_while_there_is_no_last_price():
    book = check(given=[], when=stop(1, 10, BUY, 1, qty=1), then=[StopAccepted(1, 1)])
    assert book.last_price_ticks is None


def test_buy_stop_triggers_when_the_last_price_reaches_it():
    check(
        given=[
            *LAST_AT_100,
            stop(3, 12, BUY, 105, qty=2),
            limit(4, 13, SELL, 105, 1),
            limit(5, 13, SELL, 106, 5),
        ],
        when=limit(6, 14, BUY, 105, 1),
        then=[
            Trade(4, 6, 105, 1, BUY),
            OrderDone(4, FILLED, None, 0),
            LevelChanged(SELL, 105, 0, 5),
            OrderDone(6, FILLED, None, 0),
            StopTriggered(3, 105),
            Trade(5, 3, 106, 2, BUY),
            LevelChanged(SELL, 106, 3, 6),
            OrderDone(3, FILLED, None, 0),
        ],
    )


def test_sell_stop_triggers_when_the_last_price_falls_to_it():
    check(
        given=[
            *LAST_AT_100,
            stop(3, 12, SELL, 95, qty=2),
            limit(4, 13, BUY, 94, 1),
            limit(5, 13, BUY, 93, 5),
        ],
        when=limit(6, 14, SELL, 90, 1),
        then=[
            Trade(4, 6, 94, 1, SELL),
            OrderDone(4, FILLED, None, 0),
            LevelChanged(BUY, 94, 0, 5),
            OrderDone(6, FILLED, None, 0),
            StopTriggered(3, 94),
            Trade(5, 3, 93, 2, SELL),
            LevelChanged(BUY, 93, 3, 6),
            OrderDone(3, FILLED, None, 0),
        ],
    )


@pytest.mark.parametrize(
    ("stop_order", "move"),
    [
        pytest.param(stop(3, 12, BUY, 105, qty=1), limit(5, 14, BUY, 104, 1), id="buy_below"),
        pytest.param(stop(3, 12, SELL, 95, qty=1), limit(5, 14, SELL, 96, 1), id="sell_above"),
    ],
)
def test_stop_does_not_trigger_before_the_last_price_reaches_it(stop_order, move):
    maker = limit(4, 13, SELL if move.side == BUY else BUY, move.price_ticks, 1)
    book = book_with(*LAST_AT_100, stop_order, maker)
    events = [named(e) for e in book.apply(move)]
    book.validate()
    assert book.last_price_ticks == move.price_ticks
    assert not [e for e in events if isinstance(e, StopTriggered)]
    assert 3 in book


def test_stop_whose_condition_already_holds_triggers_at_once():
    check(
        given=[*LAST_AT_100, limit(3, 13, SELL, 101, 1)],
        when=stop(4, 12, BUY, 99, qty=1),
        then=[
            StopAccepted(4, 99),
            StopTriggered(4, 100),
            Trade(3, 4, 101, 1, BUY),
            OrderDone(3, FILLED, None, 0),
            LevelChanged(SELL, 101, 0, 4),
            OrderDone(4, FILLED, None, 0),
        ],
    )


def test_triggered_stop_limit_rests_at_its_limit_with_priority_from_the_trigger():
    book = check(
        given=[
            *LAST_AT_100,
            limit(7, 15, BUY, 99, 1),
            stop_limit(3, 12, BUY, 101, 99, 5),
            limit(4, 13, SELL, 101, 1),
        ],
        when=limit(5, 14, BUY, 101, 1),
        then=[
            Trade(4, 5, 101, 1, BUY),
            OrderDone(4, FILLED, None, 0),
            LevelChanged(SELL, 101, 0, 5),
            OrderDone(5, FILLED, None, 0),
            StopTriggered(3, 101),
            OrderRested(3, BUY, 99, 5, OPEN),
            LevelChanged(BUY, 99, 6, 6),
        ],
    )
    assert [o.order_id for o in book.resting_orders()] == [7, 3]


def test_stops_triggered_together_run_lowest_buy_stop_first_then_by_arrival():
    check(
        given=[
            *LAST_AT_100,
            stop(3, 12, BUY, 104, qty=1),
            stop(4, 12, BUY, 103, qty=1),
            stop(5, 12, BUY, 103, qty=1),
            limit(6, 20, SELL, 104, 10),
        ],
        when=limit(7, 13, BUY, 104, 1),
        then=[
            Trade(6, 7, 104, 1, BUY),
            LevelChanged(SELL, 104, 9, 4),
            OrderDone(7, FILLED, None, 0),
            StopTriggered(4, 104),
            Trade(6, 4, 104, 1, BUY),
            LevelChanged(SELL, 104, 8, 5),
            OrderDone(4, FILLED, None, 0),
            StopTriggered(5, 104),
            Trade(6, 5, 104, 1, BUY),
            LevelChanged(SELL, 104, 7, 6),
            OrderDone(5, FILLED, None, 0),
            StopTriggered(3, 104),
            Trade(6, 3, 104, 1, BUY),
            LevelChanged(SELL, 104, 6, 7),
            OrderDone(3, FILLED, None, 0),
        ],
    )


def test_stops_triggered_together_run_highest_sell_stop_first_then_by_arrival():
    book = book_with(
        *LAST_AT_100,
        stop(3, 12, SELL, 96, qty=1),
        stop(4, 12, SELL, 97, qty=1),
        stop(5, 12, SELL, 97, qty=1),
        limit(6, 20, BUY, 96, 10),
    )
    events = [named(e) for e in book.apply(limit(7, 13, SELL, 96, 1))]
    book.validate()
    assert [e.order_id for e in events if isinstance(e, StopTriggered)] == [4, 5, 3]
    assert [e.taker_order_id for e in events if isinstance(e, Trade)] == [7, 4, 5, 3]


def test_triggered_stop_can_trigger_another_stop_in_the_same_command():
    check(
        given=[
            *LAST_AT_100,
            stop(3, 12, BUY, 101, qty=2),
            stop(4, 12, BUY, 103, qty=1),
            limit(5, 20, SELL, 101, 1),
            limit(6, 20, SELL, 103, 5),
        ],
        when=limit(7, 13, BUY, 101, 1),
        then=[
            Trade(5, 7, 101, 1, BUY),
            OrderDone(5, FILLED, None, 0),
            LevelChanged(SELL, 101, 0, 5),
            OrderDone(7, FILLED, None, 0),
            StopTriggered(3, 101),
            Trade(6, 3, 103, 2, BUY),
            LevelChanged(SELL, 103, 3, 6),
            OrderDone(3, FILLED, None, 0),
            StopTriggered(4, 103),
            Trade(6, 4, 103, 1, BUY),
            LevelChanged(SELL, 103, 2, 7),
            OrderDone(4, FILLED, None, 0),
        ],
    )


def test_cancelled_stop_never_triggers():
    book = book_with(*LAST_AT_100, stop(3, 12, BUY, 101, qty=1), limit(5, 20, SELL, 101, 2))
    assert book.apply(cancel(3)) == [OrderDone(3, CANCELLED, None, 1)]
    events = book.apply(limit(6, 13, BUY, 101, 1))
    book.validate()
    assert events[-1] == OrderDone(6, FILLED, None, 0)
    assert book.stop_orders() == []


def test_triggered_stop_is_subject_to_self_trade_prevention():
    check(
        given=[*LAST_AT_100, stop(3, 20, BUY, 101, qty=2), limit(5, 20, SELL, 101, 3)],
        when=limit(6, 13, BUY, 101, 1),
        then=[
            Trade(5, 6, 101, 1, BUY),
            LevelChanged(SELL, 101, 2, 4),
            OrderDone(6, FILLED, None, 0),
            StopTriggered(3, 101),
            OrderDone(3, EXPIRED, SELF_TRADE_PREVENTED, 2),
        ],
    )


def test_stop_market_buy_by_quote_amount_spends_within_its_quote_when_triggered():
    check(
        given=[*LAST_AT_100, stop(3, 12, BUY, 101, quote=250), limit(5, 20, SELL, 101, 5)],
        when=market(6, 13, BUY, qty=1),
        then=[
            Trade(5, 6, 101, 1, BUY),
            LevelChanged(SELL, 101, 4, 4),
            OrderDone(6, FILLED, None, 0),
            StopTriggered(3, 101),
            Trade(5, 3, 101, 2, BUY),
            LevelChanged(SELL, 101, 2, 5),
            OrderDone(3, FILLED, None, None),
        ],
    )

"""Cancel, order ids, and the rejection of malformed commands."""

import pytest

from trading.engine import (
    BUY,
    CANCELLED,
    DUPLICATE_ORDER_ID,
    FILLED,
    FOK,
    INVALID_ORDER_TYPE,
    INVALID_PRICE,
    INVALID_QUANTITY,
    INVALID_QUOTE,
    INVALID_SIDE,
    INVALID_STOP_PRICE,
    INVALID_TIF,
    LIMIT,
    OPEN,
    POST_ONLY_NOT_LIMIT,
    SELL,
    UNKNOWN_ORDER,
    CancelRejected,
    LevelChanged,
    OrderBook,
    OrderDone,
    OrderRejected,
    OrderRested,
    Place,
    StopAccepted,
    Trade,
)

from .helpers import apply_checked, book_with, cancel, check, limit, market, stop, stop_limit


def test_cancel_removes_the_order_and_reports_its_levels_new_total():
    check(
        given=[limit(1, 10, BUY, 100, 2), limit(2, 11, BUY, 100, 3)],
        when=cancel(1),
        then=[OrderDone(1, CANCELLED, None, 2), LevelChanged(BUY, 100, 3, 3)],
    )


def test_cancel_of_a_levels_last_order_removes_the_level():
    book = check(
        given=[limit(1, 10, SELL, 100, 2)],
        when=cancel(1),
        then=[OrderDone(1, CANCELLED, None, 2), LevelChanged(SELL, 100, 0, 2)],
    )
    assert book.best_ask() is None


def test_cancel_of_a_partially_filled_order_reports_what_was_left():
    check(
        given=[limit(1, 10, SELL, 100, 5), limit(2, 11, BUY, 100, 2)],
        when=cancel(1),
        then=[OrderDone(1, CANCELLED, None, 3), LevelChanged(SELL, 100, 0, 3)],
    )


@pytest.mark.parametrize(
    "given",
    [
        pytest.param([], id="never_placed"),
        pytest.param([limit(1, 10, BUY, 100, 1), cancel(1)], id="already_cancelled"),
        pytest.param([limit(1, 10, BUY, 100, 1), limit(2, 11, SELL, 100, 1)], id="filled"),
        pytest.param([limit(1, 10, BUY, 100, 1, "IOC")], id="expired"),
    ],
)
def test_cancel_of_an_order_that_is_not_live_is_rejected_and_changes_nothing(given):
    book = book_with(*given)
    seq = book.seq
    assert apply_checked(book, cancel(1)) == [CancelRejected(1, UNKNOWN_ORDER)]
    assert book.seq == seq


def test_cancelled_order_never_trades():
    check(
        given=[limit(1, 10, SELL, 100, 2), limit(2, 11, SELL, 100, 2), cancel(1)],
        when=limit(3, 12, BUY, 100, 2),
        then=[
            Trade(2, 3, 100, 2, BUY),
            OrderDone(2, FILLED, None, 0),
            LevelChanged(SELL, 100, 0, 4),
            OrderDone(3, FILLED, None, 0),
        ],
    )


def test_cancel_of_an_untriggered_stop_reports_its_quantity():
    check(
        given=[stop(1, 10, BUY, 105, qty=4)],
        when=cancel(1),
        then=[OrderDone(1, CANCELLED, None, 4)],
    )


def test_cancel_of_an_untriggered_stop_by_quote_amount_has_no_quantity():
    check(
        given=[stop(1, 10, BUY, 105, quote=400)],
        when=cancel(1),
        then=[OrderDone(1, CANCELLED, None, None)],
    )


@pytest.mark.parametrize(
    "when",
    [
        pytest.param(limit(1, 11, SELL, 200, 1), id="limit"),
        pytest.param(market(1, 11, SELL, qty=1), id="market"),
        pytest.param(stop(1, 11, SELL, 50, qty=1), id="stop"),
    ],
)
@pytest.mark.parametrize(
    "live", [limit(1, 10, BUY, 100, 2), stop(1, 10, BUY, 105, qty=2)], ids=["resting", "stop"]
)
def test_order_with_a_live_id_is_rejected_and_the_live_order_is_kept(live, when):
    book = check(given=[live], when=when, then=[OrderRejected(1, DUPLICATE_ORDER_ID)])
    assert book.order(1).qty_lots == 2


def test_id_of_a_done_order_can_be_used_again():
    check(
        given=[limit(1, 10, BUY, 100, 2), cancel(1)],
        when=limit(1, 10, BUY, 100, 3),
        then=[OrderRested(1, BUY, 100, 3, OPEN), LevelChanged(BUY, 100, 3, 3)],
    )


MALFORMED = [
    (limit(1, 10, "hold", 100, 1), INVALID_SIDE),
    (limit(1, 10, BUY, 0, 1), INVALID_PRICE),
    (limit(1, 10, BUY, -5, 1), INVALID_PRICE),
    (limit(1, 10, BUY, 100, 0), INVALID_QUANTITY),
    (limit(1, 10, BUY, 100, 1, "GTD"), INVALID_TIF),
    (Place(1, 10, BUY, LIMIT, qty_lots=1), INVALID_PRICE),
    (Place(1, 10, BUY, LIMIT, price_ticks=100), INVALID_QUANTITY),
    (Place(1, 10, BUY, "iceberg", qty_lots=1, price_ticks=100), INVALID_ORDER_TYPE),
    (market(1, 10, BUY), INVALID_QUANTITY),
    (market(1, 10, "hold", qty=1), INVALID_SIDE),
    (market(1, 10, BUY, qty=0), INVALID_QUANTITY),
    (market(1, 10, BUY, qty=1, quote=100), INVALID_QUANTITY),
    (market(1, 10, SELL, quote=100), INVALID_QUOTE),
    (market(1, 10, SELL, qty=1, max_quote=100), INVALID_QUOTE),
    (market(1, 10, BUY, qty=1, max_quote=0), INVALID_QUOTE),
    (market(1, 10, BUY, quote=100, max_quote=100), INVALID_QUOTE),
    (market(1, 10, BUY, quote=0), INVALID_QUOTE),
    (market(1, 10, BUY, quote=100, tif=FOK), INVALID_TIF),
    (market(1, 10, BUY, qty=1, tif="GTD"), INVALID_TIF),
    (market(1, 10, BUY, qty=1)._replace(post_only=True), POST_ONLY_NOT_LIMIT),
    (stop(1, 10, BUY, 0, qty=1), INVALID_STOP_PRICE),
    (stop(1, 10, BUY, None, qty=1), INVALID_STOP_PRICE),
    (stop(1, 10, "hold", 100, qty=1), INVALID_SIDE),
    (stop(1, 10, BUY, 100), INVALID_QUANTITY),
    (stop(1, 10, SELL, 100, quote=100), INVALID_QUOTE),
    (stop(1, 10, BUY, 100, qty=1)._replace(post_only=True), POST_ONLY_NOT_LIMIT),
    (stop_limit(1, 10, BUY, 100, 0, 1), INVALID_PRICE),
    (stop_limit(1, 10, BUY, 100, 100, 0), INVALID_QUANTITY),
    (stop_limit(1, 10, BUY, 100, 100, 1, "GTD"), INVALID_TIF),
    (stop_limit(1, 10, "hold", 100, 100, 1), INVALID_SIDE),
    (stop_limit(1, 10, BUY, 100, 100, 1)._replace(post_only=True), POST_ONLY_NOT_LIMIT),
    (stop_limit(1, 10, BUY, 100, 100, 1)._replace(max_quote=100), INVALID_QUOTE),
]


@pytest.mark.parametrize(("command", "reason"), MALFORMED)
def test_malformed_order_is_rejected_with_a_reason_and_changes_nothing(command, reason):
    book = book_with(limit(7, 10, BUY, 90, 1), limit(8, 10, SELL, 110, 1))
    before = (book.resting_orders(), book.stop_orders(), book.seq)
    assert apply_checked(book, command) == [OrderRejected(1, reason)]
    assert (book.resting_orders(), book.stop_orders(), book.seq) == before
    assert 1 not in book


def test_typed_entry_points_give_the_same_events_as_apply():
    commands = [
        limit(1, 10, SELL, 100, 3),
        market(2, 11, BUY, qty=1),
        stop(3, 12, SELL, 90, qty=1),
        stop_limit(4, 12, BUY, 120, 121, 1),
        limit(5, 11, BUY, 100, 1, "IOC"),
        cancel(3),
    ]
    by_apply = OrderBook()
    typed = OrderBook()
    assert [by_apply.apply(c) for c in commands] == [
        typed.place_limit(1, 10, SELL, 100, 3),
        typed.place_market(2, 11, BUY, 1),
        typed.place_stop(stop(3, 12, SELL, 90, qty=1)),
        typed.place_stop(stop_limit(4, 12, BUY, 120, 121, 1)),
        typed.place_limit(5, 11, BUY, 100, 1, "IOC"),
        typed.cancel(3),
    ]
    assert by_apply.stop_orders() == typed.stop_orders() == [stop_limit(4, 12, BUY, 120, 121, 1)]
    assert typed.apply(stop(9, 1, BUY, 200, qty=1)) == [StopAccepted(9, 200)]

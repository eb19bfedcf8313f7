"""Property tests: random command sequences through the engine and the naive reference book.

Small price, id and user ranges make crossings, self-trades, duplicate ids, cancels of done
orders and stop cascades common. After every command: validate(); the same trades and order
outcomes (every event but LevelChanged) as the reference; LevelChanged events, applied in seq
order, reproduce the book's levels. At the end: the same book, and conservation of every
accepted order's quantity.
"""

from collections import defaultdict
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trading.engine import (
    BUY,
    CANCELLED,
    EXPIRED,
    FILLED,
    FOK,
    GTC,
    IOC,
    LEVEL_CHANGED,
    ORDER_AMENDED,
    ORDER_DONE,
    ORDER_REJECTED,
    SELL,
    TRADE,
    Amend,
    OrderBook,
    Place,
    PlaceOco,
)
from trading.engine import book as book_module

from .helpers import cancel, iceberg, limit, market, stop, stop_limit
from .reference import ReferenceBook


def _settings(examples):
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


users = st.integers(1, 4)
sides = st.sampled_from([BUY, SELL])
prices = st.integers(95, 105)
qtys = st.integers(1, 6)
tifs = st.sampled_from([GTC, GTC, GTC, IOC, FOK])
quotes = st.integers(1, 700)


# Every command strategy is built once with order id 0; the sequence gives it its real id.
NO_ID = st.just(0)
LIMITS = st.builds(
    limit, NO_ID, users, sides, prices, qtys, tifs, st.sampled_from([False, False, False, True])
)
ICEBERGS = st.builds(
    iceberg, NO_ID, users, sides, prices, st.integers(2, 12), st.integers(1, 4), st.booleans()
).filter(lambda c: c.iceberg_lots < c.qty_lots)
MARKETS = st.one_of(
    st.builds(market, NO_ID, users, sides, qty=qtys, tif=st.sampled_from([IOC, GTC, FOK])),
    st.builds(
        market,
        NO_ID,
        users,
        st.just(BUY),
        qty=qtys,
        max_quote=quotes,
        tif=st.sampled_from([IOC, FOK]),
    ),
    st.builds(market, NO_ID, users, st.just(BUY), quote=quotes),
)
STOPS = st.one_of(
    st.builds(stop, NO_ID, users, sides, prices, qty=qtys, tif=st.sampled_from([IOC, FOK])),
    st.builds(stop, NO_ID, users, st.just(BUY), prices, qty=qtys, max_quote=quotes),
    st.builds(stop, NO_ID, users, st.just(BUY), prices, quote=quotes),
    st.builds(stop_limit, NO_ID, users, sides, prices, prices, qtys, tifs),
)
# Basis points: at prices near 100, 100 bips is one tick.
deltas = st.sampled_from([1, 100, 150, 200, 500])
activation = st.one_of(st.none(), prices)
TRAILS = st.one_of(
    st.builds(stop, NO_ID, users, sides, activation, qty=qtys, tif=st.sampled_from([IOC, FOK])),
    st.builds(stop, NO_ID, users, st.just(BUY), activation, quote=quotes),
    st.builds(stop_limit, NO_ID, users, sides, activation, prices, qtys, tifs),
).flatmap(lambda c: deltas.map(lambda d: c._replace(trailing_delta=d)))


@st.composite
def ocos(draw, first_id):
    """A PlaceOco with ids first_id (limit leg) and first_id + 1 (stop leg); sometimes an
    iceberg limit leg, a trailing or stop-limit stop leg, and now and then one defect."""
    user, side, qty = draw(users), draw(sides), draw(st.integers(2, 6))
    limit_leg = limit(first_id, user, side, draw(prices), qty, GTC, True)
    if draw(st.booleans()):
        limit_leg = limit_leg._replace(iceberg_lots=draw(st.integers(1, qty - 1)))
    stop_price = draw(prices)
    if draw(st.booleans()):
        stop_leg = stop(first_id + 1, user, side, stop_price, qty=qty)
    else:
        stop_leg = stop_limit(first_id + 1, user, side, stop_price, draw(prices), qty)
    if draw(st.integers(0, 2)) == 0:
        stop_leg = stop_leg._replace(trailing_delta=draw(deltas))
        if draw(st.booleans()):
            stop_leg = stop_leg._replace(stop_price_ticks=None)
    defect = draw(st.integers(0, 9))
    if defect == 0:
        stop_leg = stop_leg._replace(qty_lots=qty + 1)
    elif defect == 1:
        limit_leg = limit_leg._replace(tif=IOC)
    elif defect == 2:
        stop_leg = stop_leg._replace(trailing_delta=0)
    return PlaceOco(first_id, limit_leg, stop_leg)


# Exactly one defect each, so the reason does not depend on the order of checks.
MALFORMED = st.one_of(
    st.builds(limit, NO_ID, users, st.just("hold"), prices, qtys),
    st.builds(limit, NO_ID, users, sides, st.just(0), qtys),
    st.builds(limit, NO_ID, users, sides, prices, st.just(0)),
    st.builds(limit, NO_ID, users, sides, prices, qtys, st.just("GTD")),
    st.builds(market, NO_ID, users, st.just(SELL), quote=quotes),
    st.builds(market, NO_ID, users, st.just(BUY), qty=qtys, quote=quotes),
    st.builds(market, NO_ID, users, st.just(BUY), quote=quotes, tif=st.just(FOK)),
    st.builds(market, NO_ID, users, sides, qty=qtys).map(lambda c: c._replace(post_only=True)),
    st.builds(stop, NO_ID, users, sides, st.just(0), qty=qtys),
    st.builds(
        Place,
        NO_ID,
        users,
        sides,
        st.just("iceberg"),
        qtys,
        prices,
        stop_price_ticks=st.none(),
        tif=st.just(GTC),
        post_only=st.just(False),
        quote_amount=st.none(),
        max_quote=st.none(),
        iceberg_lots=st.none(),
        trailing_delta=st.none(),
    ),
    st.builds(iceberg, NO_ID, users, sides, prices, qtys, st.sampled_from([0, 6])),
    st.builds(
        iceberg, NO_ID, users, sides, prices, st.integers(2, 6), st.just(1), tif=st.just(IOC)
    ),
    st.builds(market, NO_ID, users, sides, qty=qtys).map(lambda c: c._replace(iceberg_lots=1)),
    st.builds(limit, NO_ID, users, sides, prices, qtys).map(lambda c: c._replace(trailing_delta=5)),
    st.builds(stop, NO_ID, users, sides, st.none(), qty=qtys),
    st.builds(stop, NO_ID, users, sides, prices, qty=qtys).map(
        lambda c: c._replace(trailing_delta=10000)
    ),
)


@st.composite
def sequences(draw, max_size=80):
    """Weighted mix: limit and iceberg orders, stops (plain and trailing), OCO pairs, cancels,
    amends, market and malformed orders.

    New orders mostly get fresh ids; some reuse an earlier id (duplicate while it is live,
    allowed once it is done). Cancels and amends mostly name an earlier id.
    """
    count = draw(st.integers(1, max_size))
    used = []
    out = []
    for _ in range(count):
        if used and draw(st.integers(0, 9)) == 0:
            order_id = draw(st.sampled_from(used))
        else:
            order_id = max(used, default=0) + 1
        roll = draw(st.integers(0, 99))
        earlier = draw(st.sampled_from(used)) if used else order_id
        if 66 <= roll < 80:
            command = cancel(earlier)
        elif 80 <= roll < 86:
            command = Amend(earlier, draw(st.integers(0, 8)))
        elif 86 <= roll < 92:
            fresh = max(used, default=0) + 1
            command = draw(ocos(fresh))
            used += [fresh, fresh + 1]
        else:
            if roll < 32:
                strategy = LIMITS
            elif roll < 40:
                strategy = ICEBERGS
            elif roll < 48:
                strategy = MARKETS
            elif roll < 58:
                strategy = STOPS
            elif roll < 66:
                strategy = TRAILS
            else:
                strategy = MALFORMED
            command = draw(strategy)._replace(order_id=order_id)
        if not isinstance(command, PlaceOco) and command.order_id not in used:
            used.append(command.order_id)
        out.append(command)
    return out


def _levels_of(book):
    levels = defaultdict(int)
    for order in book.resting_orders():
        shown = order.qty_lots if order.visible_lots is None else order.visible_lots
        levels[(order.side, order.price_ticks)] += shown
    return dict(levels)


class _Conservation:
    """Per accepted order: filled + resting + left unfilled at the end = submitted."""

    def __init__(self):
        self.open = {}

    def record(self, command, events):
        if events[0][-1] != ORDER_REJECTED:
            if isinstance(command, Place):
                self._open(command)
            elif isinstance(command, PlaceOco):
                self._open(command.limit)
                self._open(command.stop)
        for event in events:
            kind = event[-1]
            if kind == ORDER_AMENDED:
                order_id, new_remaining = event[:2]
                order = self.open[order_id]
                remaining = order["command"].qty_lots - order["filled"] - order["cut"]
                assert 0 < new_remaining < remaining
                order["cut"] += remaining - new_remaining
            if kind == TRADE:
                maker_id, taker_id, price, qty = event[:4]
                self.open[maker_id]["filled"] += qty
                taker = self.open[taker_id]
                taker["filled"] += qty
                taker["spent"] += price * qty
            elif kind == ORDER_DONE:
                self._close(event)

    def _open(self, command):
        self.open[command.order_id] = {"command": command, "filled": 0, "spent": 0, "cut": 0}

    def _close(self, event):
        order_id, status, _reason, qty_left = event[:4]
        order = self.open.pop(order_id)
        command = order["command"]
        assert status in (FILLED, CANCELLED, EXPIRED)
        if command.quote_amount is not None:
            assert qty_left is None
            assert order["spent"] <= command.quote_amount
            return
        assert order["filled"] + qty_left + order["cut"] == command.qty_lots, (command, order)
        assert (status == FILLED) == (qty_left == 0)
        if command.max_quote is not None:
            assert order["spent"] <= command.max_quote

    def check_live(self, book):
        for order_id, order in self.open.items():
            live = book.order(order_id)
            assert live is not None, f"order {order_id} neither live nor done"
            if isinstance(live, Place):
                assert order["filled"] == 0
                if live.qty_lots is not None:
                    assert live.qty_lots + order["cut"] == order["command"].qty_lots
            else:
                assert order["filled"] + live.qty_lots + order["cut"] == order["command"].qty_lots
        assert len(self.open) == len(book)


@contextmanager
def _trail_thresholds(heaps_from, scan_below):
    # The sequences hold a few trailing stops at a time, under the thresholds at which the
    # engine indexes them by heaps; these tests lower the thresholds to check that path
    # (and switching between the two) against the same oracle.
    saved = book_module._TRAIL_HEAPS_FROM, book_module._TRAIL_SCAN_BELOW
    book_module._TRAIL_HEAPS_FROM, book_module._TRAIL_SCAN_BELOW = heaps_from, scan_below
    try:
        yield
    finally:
        book_module._TRAIL_HEAPS_FROM, book_module._TRAIL_SCAN_BELOW = saved


# (heaps from, scan below): heaps from the first trailing stop on and never dropped; heaps
# switched on and off as the count crosses 2 and 1.
HEAP_THRESHOLDS = [pytest.param((0, 0), id="heaps-always"), pytest.param((2, 1), id="switching")]


@_settings(1000)
@given(sequences())
def test_engine_matches_reference_book_on_random_command_sequences(command_list):
    _check_against_reference(command_list)


@pytest.mark.parametrize("thresholds", HEAP_THRESHOLDS)
@_settings(400)
@given(command_list=sequences())
def test_trailing_heaps_match_reference_book_on_random_command_sequences(thresholds, command_list):
    with _trail_thresholds(*thresholds):
        _check_against_reference(command_list)


def _check_against_reference(command_list):
    book = OrderBook(audit=True)
    reference = ReferenceBook()
    conservation = _Conservation()
    shown_levels = {}
    seq = 0
    for command in command_list:
        events = book.apply(command)
        book.validate()
        expected = reference.apply(command)
        assert [e for e in events if e[-1] != LEVEL_CHANGED] == expected, command
        for event in events:
            if event[-1] == LEVEL_CHANGED:
                side, price, qty, event_seq = event[:4]
                seq += 1
                assert event_seq == seq
                if qty:
                    shown_levels[(side, price)] = qty
                else:
                    shown_levels.pop((side, price), None)
        assert book.seq == seq
        assert shown_levels == _levels_of(book)
        conservation.record(command, events)
    assert book.resting_orders() == reference.resting_orders()
    assert book.stop_orders() == reference.stop_orders()
    assert book.trailing_peaks() == reference.trailing_peaks()
    assert sorted(book.oco_pairs()) == reference.oco_pairs()
    assert book.last_price_ticks == reference.last
    conservation.check_live(book)


@_settings(300)
@given(sequences(), st.data())
def test_restored_book_continues_exactly_like_the_original(command_list, data):
    _check_restore(command_list, data)


@pytest.mark.parametrize("thresholds", HEAP_THRESHOLDS)
@_settings(150)
@given(command_list=sequences(), data=st.data())
def test_restore_rebuilds_the_trailing_heaps(thresholds, command_list, data):
    with _trail_thresholds(*thresholds):
        _check_restore(command_list, data)


def _check_restore(command_list, data):
    split = data.draw(st.integers(0, len(command_list)))
    original = OrderBook()
    for command in command_list[:split]:
        original.apply(command)
    restored = OrderBook.restore(
        original.resting_orders(),
        original.stop_orders(),
        last_price_ticks=original.last_price_ticks,
        seq=original.seq,
        trailing_peaks=original.trailing_peaks(),
        oco_pairs=original.oco_pairs(),
        audit=True,
    )
    restored.validate()
    for command in command_list[split:]:
        assert restored.apply(command) == original.apply(command)
        restored.validate()
    assert restored.resting_orders() == original.resting_orders()
    assert restored.stop_orders() == original.stop_orders()
    assert restored.trailing_peaks() == original.trailing_peaks()
    assert restored.oco_pairs() == original.oco_pairs()


@_settings(150)
@given(sequences())
def test_same_commands_always_give_the_same_events(command_list):
    first, second = OrderBook(), OrderBook()
    assert [first.apply(c) for c in command_list] == [second.apply(c) for c in command_list]
    assert first.seq == second.seq
    assert first.trade_count == second.trade_count


@_settings(100)
@given(
    st.lists(st.tuples(st.sampled_from([100, 101]), qtys, users), min_size=40, max_size=160),
    st.data(),
)
def test_cancel_heavy_levels_still_fill_in_time_priority(orders, data):
    # Enough cancels inside two levels to leave ghosts behind and compact their queues.
    book = OrderBook(audit=True)
    reference = ReferenceBook()
    commands = [limit(i, user, SELL, price, qty) for i, (price, qty, user) in enumerate(orders, 1)]
    doomed = data.draw(st.sets(st.integers(1, len(orders))))
    commands += [cancel(i) for i in sorted(doomed, key=lambda i: (i * 7919) % len(orders))]
    commands.append(market(10_000, 99, BUY, qty=sum(qty for _, qty, _ in orders)))
    for command in commands:
        events = book.apply(command)
        book.validate()
        assert [e for e in events if e[-1] != LEVEL_CHANGED] == reference.apply(command)
    assert book.resting_orders() == reference.resting_orders() == []


def _run_both(book, reference, command):
    events = book.apply(command)
    book.validate()
    assert [e for e in events if e[-1] != LEVEL_CHANGED] == reference.apply(command), command
    return events


@_settings(200)
@given(sequences(max_size=50), st.data())
def test_cancel_then_place_in_the_same_book_behaves_like_the_reference(command_list, data):
    # Cancel-replace is a cancel and then a place, both in the same book: the engine needs
    # nothing special for it, and the pair must give what the reference gives.
    book = OrderBook(audit=True)
    reference = ReferenceBook()
    for command in command_list:
        _run_both(book, reference, command)
    fresh = 1000
    for _ in range(data.draw(st.integers(1, 5))):
        live = [o.order_id for o in book.resting_orders()] + [
            c.order_id for c in book.stop_orders()
        ]
        target = data.draw(st.sampled_from(live)) if live else fresh
        replacement = data.draw(st.one_of(LIMITS, ICEBERGS, MARKETS, STOPS, TRAILS))
        fresh += 1
        cancelled = _run_both(book, reference, cancel(target))
        assert (cancelled[0][-1] == ORDER_DONE) == (target in live)
        assert target not in book
        _run_both(book, reference, replacement._replace(order_id=fresh))
    assert book.resting_orders() == reference.resting_orders()
    assert book.stop_orders() == reference.stop_orders()
    assert book.trailing_peaks() == reference.trailing_peaks()

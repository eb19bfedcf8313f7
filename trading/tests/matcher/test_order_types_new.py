"""Icebergs, amends, trailing stops and OCO lists through real matcher batches (ARCHITECTURE
§5), with the money invariants (§4) checked after every batch's commit and a restore from
the database in the middle: the rebuilt book must equal the live one and carry on the same.
"""

import random
from decimal import Decimal

import pytest

from trading import services
from trading.matcher.market import MarketMatcher
from trading.models import Order, OrderCommand, OrderList, Trade
from trading.tests.helpers import assert_ledger_ok, balance_of, place, reload

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def usd(unit_market):
    return unit_market.quote_asset


@pytest.fixture
def btc(unit_market):
    return unit_market.base_asset


def run(market, matcher: MarketMatcher | None = None) -> MarketMatcher:
    """Drain the market one command per batch, checking the invariants after each commit."""
    matcher = matcher or MarketMatcher(market)
    while matcher.run_batch(1) is not None:
        assert_ledger_ok()
    return matcher


def restored(market, matcher: MarketMatcher) -> MarketMatcher:
    """A matcher rebuilt from the database, as after a crash: its book must be the live
    one's, order for order (icebergs' shown parts and OCO pairs included)."""
    fresh = MarketMatcher(market)
    fresh.restore()
    live, rebuilt = matcher.book, fresh.book
    assert rebuilt.resting_orders() == live.resting_orders()
    assert rebuilt.stop_orders() == live.stop_orders()
    assert (rebuilt.seq, rebuilt.last_price_ticks) == (live.seq, live.last_price_ticks)
    assert rebuilt.depth(50) == live.depth(50)
    rebuilt.validate()
    assert fresh.peers == matcher.peers
    return fresh


def trade_at(market, trader, price: str, quantity: str = "1") -> None:
    """Two other users trade at ``price``: the last price moves there."""
    place(trader(market, btc=quantity), side="sell", price=price, quantity=quantity)
    place(trader(market, usd="100000"), side="buy", price=price, quantity=quantity)


def oco(user, **fields) -> OrderList:
    fields.setdefault("symbol", "BTC-USD")
    for name in ("quantity", "limit_price", "stop_price", "stop_limit_price"):
        if fields.get(name) is not None:
            fields[name] = D(str(fields[name]))
    return services.oco_place(user=user, request=services.OcoRequest(**fields))


def legs(order_list: OrderList) -> tuple[Order, Order]:
    limit, stop = order_list.orders.order_by("id")
    return limit, stop


# --- icebergs -----------------------------------------------------------------------------


def test_an_iceberg_shows_its_part_refreshes_behind_the_level_and_restores(
    unit_market, trader, btc
):
    seller = trader(unit_market, btc="10")
    iceberg = place(seller, side="sell", price="100", quantity="10", iceberg_quantity="3")
    matcher = run(unit_market)
    assert matcher.book.depth(1)[1][0][1] == 3  # only the shown part is on the book
    assert (reload(iceberg).status, reload(iceberg).iceberg_visible) == ("open", 3)

    place(trader(unit_market, usd="1000"), side="buy", price="100", quantity="5")
    run(unit_market, matcher)

    iceberg = reload(iceberg)
    # 3 from the shown part, a refresh of 3, then 2 of it: 1 shown, 5 left.
    assert (iceberg.status, iceberg.filled_quantity, iceberg.iceberg_visible) == (
        "partially_filled",
        5,
        1,
    )
    assert iceberg.reserved == 5
    assert balance_of(seller, btc) == (D(0), D(5))
    matcher = restored(unit_market, matcher)

    other = place(trader(unit_market, btc="2"), side="sell", price="100", quantity="2")
    run(unit_market, matcher)
    place(trader(unit_market, usd="1000"), side="buy", price="100", quantity="2")
    run(unit_market, matcher)
    # The iceberg's last shown lot, then its refresh goes behind the other order.
    assert (reload(iceberg).filled_quantity, reload(other).filled_quantity) == (6, 1)
    matcher = restored(unit_market, matcher)

    place(trader(unit_market, usd="1000"), side="buy", price="100", quantity="2")
    run(unit_market, matcher)
    assert (reload(other).status, reload(iceberg).filled_quantity) == ("filled", 7)
    assert reload(iceberg).iceberg_visible == 2
    restored(unit_market, matcher)
    assert_ledger_ok()


def test_icebergs_refreshed_in_one_pass_restore_in_refresh_order(unit_market, trader):
    first = place(
        trader(unit_market, btc="4"), side="sell", price="100", quantity="4", iceberg_quantity="1"
    )
    second = place(
        trader(unit_market, btc="4"), side="sell", price="100", quantity="4", iceberg_quantity="1"
    )
    matcher = run(unit_market)

    # first, second, first again: each refresh goes to the back, so second now leads.
    place(trader(unit_market, usd="1000"), side="buy", price="100", quantity="3")
    run(unit_market, matcher)
    assert (reload(first).filled_quantity, reload(second).filled_quantity) == (2, 1)
    matcher = restored(unit_market, matcher)

    place(trader(unit_market, usd="1000"), side="buy", price="100", quantity="1")
    run(unit_market, matcher)
    assert (reload(first).filled_quantity, reload(second).filled_quantity) == (2, 2)
    assert_ledger_ok()


# --- amend --------------------------------------------------------------------------------


def test_amend_reduces_a_resting_buy_keeps_its_priority_and_releases_its_reserve(
    unit_market, trader, usd
):
    buyer = trader(unit_market, usd="1000")
    amended = place(buyer, side="buy", price="100", quantity="5")
    later = place(trader(unit_market, usd="1000"), side="buy", price="100", quantity="1")
    matcher = run(unit_market)

    services.order_amend(user=buyer, order_id=amended.pk, quantity=D(3))
    run(unit_market, matcher)

    amended = reload(amended)
    assert (amended.quantity, amended.reserved, amended.status) == (3, 300, "open")
    assert balance_of(buyer, usd) == (D(700), D(300))
    matcher = restored(unit_market, matcher)

    place(trader(unit_market, btc="1"), side="sell", price="100", quantity="1")
    run(unit_market, matcher)
    # Still first in the queue.
    assert (reload(amended).filled_quantity, reload(later).filled_quantity) == (1, 0)
    assert reload(amended).reserved == 200
    assert_ledger_ok()


def test_amend_of_an_iceberg_takes_the_hidden_part_first(unit_market, trader, btc):
    seller = trader(unit_market, btc="10")
    iceberg = place(seller, side="sell", price="100", quantity="10", iceberg_quantity="3")
    matcher = run(unit_market)

    services.order_amend(user=seller, order_id=iceberg.pk, quantity=D(5))
    run(unit_market, matcher)

    iceberg = reload(iceberg)
    assert (iceberg.quantity, iceberg.iceberg_visible, iceberg.reserved) == (5, 3, 5)
    assert balance_of(seller, btc) == (D(5), D(5))
    restored(unit_market, matcher)


def test_an_amend_that_fills_overtook_changes_nothing(unit_market, trader, usd):
    buyer = trader(unit_market, usd="1000")
    order = place(buyer, side="buy", price="100", quantity="5")
    matcher = run(unit_market)
    # Queued before the amend, this sell fills 3 first: a new total of 2 is then below
    # the filled quantity, and the amend changes nothing.
    place(trader(unit_market, btc="3"), side="sell", price="100", quantity="3")
    services.order_amend(user=buyer, order_id=order.pk, quantity=D(2))
    run(unit_market, matcher)

    order = reload(order)
    assert (order.quantity, order.filled_quantity, order.reserved) == (5, 3, 200)
    assert balance_of(buyer, usd) == (D(500), D(200))  # 300 spent
    restored(unit_market, matcher)


# --- trailing stops -----------------------------------------------------------------------


def test_a_trailing_stop_sell_follows_the_peak_across_a_restore(unit_market, trader, btc, usd):
    trade_at(unit_market, trader, "100")
    stopper = trader(unit_market, btc="1")
    stop = place(stopper, side="sell", order_type="stop", quantity="1", trailing_delta=1000)
    matcher = run(unit_market)
    assert reload(stop).status == "untriggered"

    trade_at(unit_market, trader, "110")
    trade_at(unit_market, trader, "105")
    run(unit_market, matcher)
    assert reload(stop).trailing_peak == 110
    matcher = restored(unit_market, matcher)

    # 10 % below the peak of 110 is 99: a trail restarted at 105 would wait for 94.5.
    place(trader(unit_market, usd="1000"), side="buy", price="98", quantity="1")
    trade_at(unit_market, trader, "99")
    run(unit_market, matcher)

    stop = reload(stop)
    assert (stop.status, stop.filled_quantity, stop.filled_quote) == ("filled", 1, 98)
    assert balance_of(stopper, btc) == (D(0), D(0))
    assert_ledger_ok()


def test_a_trailing_stop_buy_never_spends_beyond_its_reserve(unit_market, trader, usd):
    trade_at(unit_market, trader, "100")
    run(unit_market)  # the last price the reserve is sized from
    stopper = trader(unit_market, usd="1000")
    stop = place(stopper, side="buy", order_type="stop", quantity="1", trailing_delta=500)
    assert stop.reserved == D("110.25")  # 100 × 1.05 (delta) × 1.05 (slippage)
    matcher = run(unit_market)

    place(trader(unit_market, btc="1"), side="sell", price="106", quantity="1")
    trade_at(unit_market, trader, "105")  # 5 % above the trough of 100: triggers
    run(unit_market, matcher)

    stop = reload(stop)
    assert (stop.status, stop.filled_quote, stop.reserved) == ("filled", 106, 0)
    assert balance_of(stopper, usd) == (D(894), D(0))
    assert_ledger_ok()


# --- OCO ----------------------------------------------------------------------------------


def test_a_filled_limit_leg_cancels_the_stop_leg(unit_market, trader, btc):
    seller = trader(unit_market, btc="1")
    order_list = oco(seller, side="sell", quantity="1", limit_price="120", stop_price="90")
    matcher = run(unit_market)
    limit, stop = legs(order_list)
    assert (reload(limit).status, reload(stop).status) == ("open", "untriggered")
    matcher = restored(unit_market, matcher)

    place(trader(unit_market, usd="1000"), side="buy", price="120", quantity="1")
    run(unit_market, matcher)

    limit, stop = reload(limit), reload(stop)
    assert (limit.status, limit.reserved) == ("filled", 0)
    assert (stop.status, stop.reason, stop.reserved) == ("cancelled", "oco_other_leg", 0)
    assert reload(order_list).status == "all_done"
    assert balance_of(seller, btc) == (D(0), D(0))
    restored(unit_market, matcher)


def test_a_triggered_stop_leg_takes_the_reserve_and_cancels_the_limit_leg(
    unit_market, trader, btc, usd
):
    trade_at(unit_market, trader, "100")
    seller = trader(unit_market, btc="2")
    order_list = oco(seller, side="sell", quantity="2", limit_price="120", stop_price="90")
    place(trader(unit_market, usd="1000"), side="buy", price="89", quantity="5")
    matcher = run(unit_market)
    matcher = restored(unit_market, matcher)

    trade_at(unit_market, trader, "90")
    run(unit_market, matcher)

    limit, stop = legs(order_list)
    assert (limit.status, limit.reason, limit.reserved) == ("cancelled", "oco_other_leg", 0)
    assert (stop.status, stop.filled_quantity, stop.filled_quote) == ("filled", 2, 178)
    assert stop.reserved == 0
    assert balance_of(seller, btc) == (D(0), D(0))
    assert reload(order_list).status == "all_done"
    assert_ledger_ok()


def test_a_buy_oco_stop_limit_leg_moves_the_reserve_and_keeps_price_times_quantity(
    unit_market, trader, usd
):
    trade_at(unit_market, trader, "100")
    buyer = trader(unit_market, usd="1000")
    order_list = oco(
        buyer,
        side="buy",
        quantity="2",
        limit_price="80",
        stop_price="110",
        stop_limit_price="115",
    )
    matcher = run(unit_market)
    limit, stop = legs(order_list)
    assert (limit.reserved, stop.reserved) == (230, 0)
    assert balance_of(buyer, usd) == (D(770), D(230))

    # Amending a leg reduces both; the pair keeps the higher price × the new quantity.
    services.order_amend(user=buyer, order_id=stop.pk, quantity=D(1))
    run(unit_market, matcher)
    limit, stop = legs(order_list)
    assert (limit.quantity, stop.quantity, limit.reserved) == (1, 1, 115)
    assert balance_of(buyer, usd) == (D(885), D(115))
    matcher = restored(unit_market, matcher)

    place(trader(unit_market, btc="5"), side="sell", price="112", quantity="5")
    trade_at(unit_market, trader, "110")
    run(unit_market, matcher)

    limit, stop = legs(order_list)
    assert (limit.status, limit.reason) == ("cancelled", "oco_other_leg")
    assert (stop.status, stop.filled_quote, stop.reserved) == ("filled", 112, 0)
    assert balance_of(buyer, usd) == (D(888), D(0))
    assert_ledger_ok()


def test_cancelling_either_leg_cancels_both_and_releases_once(unit_market, trader, usd):
    buyer = trader(unit_market, usd="1000")
    order_list = oco(buyer, side="buy", quantity="2", limit_price="80", stop_price="110")
    matcher = run(unit_market)
    assert balance_of(buyer, usd)[1] == D("231.00")  # the stop-market leg's 110 × 2 × 1.05

    services.order_cancel(user=buyer, order_id=legs(order_list)[1].pk)
    run(unit_market, matcher)

    limit, stop = legs(order_list)
    assert (stop.status, stop.reason) == ("cancelled", "")
    assert (limit.status, limit.reason) == ("cancelled", "oco_other_leg")
    assert balance_of(buyer, usd) == (D(1000), D(0))
    assert reload(order_list).status == "all_done"
    restored(unit_market, matcher)
    assert_ledger_ok()


def test_an_oco_whose_limit_leg_would_take_is_rejected_whole(unit_market, trader, usd):
    place(trader(unit_market, btc="1"), side="sell", price="79", quantity="1")
    buyer = trader(unit_market, usd="1000")
    order_list = oco(buyer, side="buy", quantity="1", limit_price="80", stop_price="110")
    run(unit_market)

    limit, stop = legs(order_list)
    assert (limit.status, limit.reason) == ("rejected", "post_only_would_take")
    assert stop.status == "rejected"
    assert reload(order_list).status == "rejected"
    assert balance_of(buyer, usd) == (D(1000), D(0))
    assert not Trade.objects.filter(buyer=buyer).exists()
    assert_ledger_ok()


# --- all of it at random ------------------------------------------------------------------

CENT = D("0.01")
LOT = D("0.00001")


def _random_step(rng, user, mine: list[int]):
    """One random action of ``user``: any order type, an OCO, an amend or a cancel."""
    from trading.tests.matcher.random_orders import _price, _quantity, random_request

    roll = rng.random()
    side = rng.choice(["buy", "sell"])
    if mine and roll < 0.15:
        return services.order_cancel(user=user, order_id=rng.choice(mine))
    if mine and roll < 0.3:
        live = list(
            Order.objects.filter(pk__in=mine, status__in=Order.LIVE, quantity__isnull=False)
            .order_by("id")
            .values_list("id", flat=True)
        )
        if not live:
            return None
        order = Order.objects.get(pk=rng.choice(live))
        if order.quantity - order.filled_quantity <= LOT:
            return None
        low = order.filled_quantity + LOT
        new = low + (order.quantity - low) * D(rng.randint(0, 99)) / 100
        new = (new // LOT) * LOT
        return services.order_amend(user=user, order_id=order.pk, quantity=max(new, low))
    if roll < 0.45:
        quantity = _quantity(rng)
        limit, stop = _price(rng, 200), _price(rng, 200)
        limit, stop = (
            (max(limit, stop) + CENT, min(limit, stop))
            if side == "sell"
            else (
                min(limit, stop) - CENT,
                max(limit, stop),
            )
        )
        fields = {"stop_price": stop}
        if rng.random() < 0.4:
            offset = D(rng.randint(0, 50)) * CENT
            fields["stop_limit_price"] = stop + offset if side == "buy" else stop - offset
        if rng.random() < 0.3:
            fields["trailing_delta"] = rng.randint(10, 500)
        if rng.random() < 0.3 and quantity > 2 * CENT:
            fields["limit_iceberg_quantity"] = quantity / 2 // LOT * LOT
        order_list = services.oco_place(
            user=user,
            request=services.OcoRequest(
                symbol="BTC-USD", side=side, quantity=quantity, limit_price=limit, **fields
            ),
        )
        mine.extend(order_list.orders.values_list("id", flat=True))
        return order_list
    if roll < 0.6:
        quantity = _quantity(rng)
        request = services.OrderRequest(
            symbol="BTC-USD",
            side=side,
            order_type="limit",
            price=_price(rng),
            quantity=quantity,
            iceberg_quantity=max(LOT, quantity * D(rng.randint(5, 60)) / 100 // LOT * LOT),
        )
    elif roll < 0.7:
        stop_limit = rng.random() < 0.5
        stop = _price(rng, 300) if rng.random() < 0.5 else None
        request = services.OrderRequest(
            symbol="BTC-USD",
            side=side,
            order_type="stop_limit" if stop_limit else "stop",
            stop_price=stop,
            price=_price(rng, 300) if stop_limit else None,
            quantity=_quantity(rng),
            trailing_delta=rng.randint(10, 300),
        )
    else:
        request = random_request(rng)
    order, _ = services.order_place(user=user, request=request)
    mine.append(order.pk)
    return order


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_flows_of_every_type_keep_the_money_right_across_restores(market, trader, seed):
    from trading.exceptions import (
        InvalidOrder,
        NoLiquidity,
        OrderNotAmendable,
        OrderNotCancellable,
    )
    from wallets.exceptions import InsufficientBalance

    rng = random.Random(seed)
    users = [trader(market, usd="5000", btc="50") for _ in range(5)]
    mine: dict[int, list[int]] = {user.pk: [] for user in users}
    matcher = MarketMatcher(market)
    done = {"steps": 0, "refused": 0}
    refusals: set[str] = set()
    for step in range(300):
        user = rng.choice(users)
        try:
            _random_step(rng, user, mine[user.pk])
            done["steps"] += 1
        except (InsufficientBalance, NoLiquidity, OrderNotCancellable, OrderNotAmendable):
            done["refused"] += 1
        except InvalidOrder as exc:
            # An amend whose order filled meanwhile, or a trailing stop's min notional.
            done["refused"] += 1
            refusals.add(exc.code)
        if rng.random() < 0.3:
            while matcher.run_batch(rng.randint(1, 8)) is not None:
                pass
            assert_ledger_ok()
        if step % 60 == 59:
            matcher = restored(market, matcher)  # as after a crash, and carry on with it

    while matcher.run_batch(50) is not None:
        pass
    assert_ledger_ok()
    restored(market, matcher)
    assert done["steps"] > 150, done
    assert refusals <= {"INVALID_QUANTITY", "MIN_NOTIONAL"}, refusals
    types = set(Order.objects.values_list("order_type", "status"))
    assert ("limit", "filled") in types, types
    assert Trade.objects.count() > 20
    assert Order.objects.exclude(iceberg_quantity=None).filter(filled_quantity__gt=0).exists()
    assert Order.objects.filter(reason="oco_other_leg").exists()
    assert OrderCommand.objects.filter(kind="amend").count() > 5
    # A list is executing exactly while both legs are live; once one leg ended the other
    # (a partly filled limit leg, a triggered stop-limit leg) may work on alone.
    lists = OrderList.objects.prefetch_related("orders")
    for order_list in lists:
        live = [order.is_live for order in order_list.orders.all()]
        assert len(live) == 2
        if all(live):
            assert order_list.status == "executing", order_list
        else:
            assert order_list.status in ("all_done", "rejected"), order_list
    assert "all_done" in {order_list.status for order_list in lists}

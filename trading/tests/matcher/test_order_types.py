"""Time in force, post_only, stops and self-trade prevention (ARCHITECTURE §5), settled."""

from decimal import Decimal

import pytest

from trading.models import Order, Trade
from trading.services import order_cancel
from trading.tests.helpers import assert_ledger_ok, balance_of, drain, place, reload

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def usd(unit_market):
    return unit_market.quote_asset


@pytest.fixture
def btc(unit_market):
    return unit_market.base_asset


@pytest.fixture
def ask_at_100(unit_market, trader):
    """Another user rests a sell of 1 @ 100."""
    ask = place(trader(unit_market, btc="1"), side="sell", price="100", quantity="1")
    drain(unit_market)
    return ask


def test_ioc_fills_what_it_can_and_expires_the_remainder(unit_market, trader, usd, ask_at_100):
    buyer = trader(unit_market, usd="1000")
    buy = place(buyer, side="buy", price="100", quantity="3", time_in_force="IOC")

    drain(unit_market)

    buy = reload(buy)
    assert (buy.status, buy.reason, buy.filled_quantity) == ("expired", "ioc_remainder", 1)
    assert buy.reserved == 0
    assert balance_of(buyer, usd) == (D(900), D(0))
    assert reload(ask_at_100).status == Order.Status.FILLED
    assert_ledger_ok()


def test_ioc_that_cannot_trade_expires_whole(unit_market, trader, usd, ask_at_100):
    buyer = trader(unit_market, usd="1000")
    buy = place(buyer, side="buy", price="99", quantity="1", time_in_force="IOC")

    drain(unit_market)

    assert (reload(buy).status, reload(buy).filled_quantity) == ("expired", 0)
    assert balance_of(buyer, usd) == (D(1000), D(0))
    assert_ledger_ok()


def test_fok_that_cannot_fill_entirely_expires_with_nothing_traded(
    unit_market, trader, usd, ask_at_100
):
    buyer = trader(unit_market, usd="1000")
    buy = place(buyer, side="buy", price="100", quantity="2", time_in_force="FOK")
    assert balance_of(buyer, usd) == (D(800), D(200))

    drain(unit_market)

    buy = reload(buy)
    assert (buy.status, buy.reason, buy.filled_quantity) == ("expired", "fok_not_filled", 0)
    assert not Trade.objects.exists()
    assert balance_of(buyer, usd) == (D(1000), D(0))
    ask = reload(ask_at_100)
    assert (ask.status, ask.filled_quantity) == ("open", 0)
    assert_ledger_ok()


def test_fok_that_can_fill_entirely_fills(unit_market, trader, usd, ask_at_100):
    buyer = trader(unit_market, usd="1000")
    buy = place(buyer, side="buy", price="100", quantity="1", time_in_force="FOK")

    drain(unit_market)

    assert reload(buy).status == Order.Status.FILLED
    assert balance_of(buyer, usd) == (D(900), D(0))
    assert_ledger_ok()


def test_post_only_that_would_take_is_rejected_and_its_reserve_released(
    unit_market, trader, usd, ask_at_100
):
    buyer = trader(unit_market, usd="1000")
    buy = place(buyer, side="buy", price="100", quantity="1", post_only=True)

    drain(unit_market)

    buy = reload(buy)
    assert (buy.status, buy.reason, buy.reserved) == ("rejected", "post_only_would_take", 0)
    assert not Trade.objects.exists()
    assert balance_of(buyer, usd) == (D(1000), D(0))
    assert reload(ask_at_100).status == Order.Status.OPEN
    assert_ledger_ok()


def test_post_only_that_does_not_cross_rests(unit_market, trader, usd, ask_at_100):
    buyer = trader(unit_market, usd="1000")
    buy = place(buyer, side="buy", price="99", quantity="1", post_only=True)

    drain(unit_market)

    assert (reload(buy).status, reload(buy).reserved) == ("open", 99)
    assert balance_of(buyer, usd) == (D(901), D(99))
    assert_ledger_ok()


def test_self_trade_prevention_expires_the_taker_and_leaves_the_maker_alone(
    unit_market, trader, usd, btc
):
    other = trader(unit_market, btc="1")
    user = trader(unit_market, usd="1000", btc="1")
    cheaper = place(other, side="sell", price="99", quantity="1")
    own_ask = place(user, side="sell", price="100", quantity="1")
    drain(unit_market)

    buy = place(user, side="buy", price="100", quantity="2")
    drain(unit_market)

    buy = reload(buy)
    # The fill before reaching its own order stands; the remainder expires.
    assert (buy.status, buy.reason) == ("expired", "self_trade_prevented")
    assert (buy.filled_quantity, buy.reserved) == (1, 0)
    assert reload(cheaper).status == Order.Status.FILLED
    own_ask = reload(own_ask)
    assert (own_ask.status, own_ask.filled_quantity, own_ask.reserved) == ("open", 0, 1)
    assert not Trade.objects.filter(sell_order=own_ask).exists()
    assert balance_of(user, usd) == (D(901), D(0))
    assert balance_of(user, btc) == (D("0.998"), D(1))  # 1 bought less the 0.2 % taker fee
    assert_ledger_ok()


def test_stop_sell_triggers_on_a_trade_at_its_stop_price_and_runs_as_market(
    unit_market, trader, usd, btc
):
    bidder = trader(unit_market, usd="10000")
    place(bidder, side="buy", price="96", quantity="1")
    place(bidder, side="buy", price="95", quantity="1")
    place(bidder, side="buy", price="94", quantity="5")
    stopper = trader(unit_market, btc="2")
    stop = place(stopper, side="sell", order_type="stop", stop_price="95", quantity="2")
    drain(unit_market)
    assert (reload(stop).status, reload(stop).reserved) == ("untriggered", 2)
    assert balance_of(stopper, btc) == (D(0), D(2))

    seller = trader(unit_market, btc="2")
    place(seller, side="sell", price="96", quantity="1")  # a trade above the stop: no trigger
    drain(unit_market)
    assert reload(stop).status == Order.Status.UNTRIGGERED

    place(seller, side="sell", price="95", quantity="1")  # a trade at the stop: triggers
    drain(unit_market)

    stop = reload(stop)
    assert (stop.status, stop.filled_quantity, stop.filled_quote) == ("filled", 2, 188)
    assert list(Trade.objects.filter(sell_order=stop).values_list("price", "quantity")) == [(94, 2)]
    assert balance_of(stopper, btc) == (D(0), D(0))
    assert balance_of(stopper, usd) == (D("188") - D("0.376"), D(0))
    assert_ledger_ok()


def test_stop_buy_triggers_on_a_trade_through_its_stop_price(unit_market, trader, usd, btc):
    asker = trader(unit_market, btc="10")
    place(asker, side="sell", price="106", quantity="1")
    place(asker, side="sell", price="107", quantity="5")
    stopper = trader(unit_market, usd="1000")
    stop = place(stopper, side="buy", order_type="stop", stop_price="105", quantity="1")
    # A stop-market buy by quantity reserves stop price × quantity plus the slippage margin.
    assert stop.reserved == D("110.25")
    drain(unit_market)
    assert reload(stop).status == Order.Status.UNTRIGGERED

    place(trader(unit_market, usd="1000"), side="buy", price="106", quantity="1")
    drain(unit_market)

    stop = reload(stop)
    assert (stop.status, stop.filled_quantity, stop.filled_quote) == ("filled", 1, 107)
    assert stop.reserved == 0
    assert balance_of(stopper, usd) == (D(893), D(0))
    assert balance_of(stopper, btc) == (D("0.998"), D(0))
    assert_ledger_ok()


def test_stop_limit_triggers_then_rests_as_a_limit_order(unit_market, trader, usd, btc):
    asker = trader(unit_market, btc="10")
    place(asker, side="sell", price="105", quantity="1")
    place(asker, side="sell", price="108", quantity="1")
    stopper = trader(unit_market, usd="1000")
    stop = place(
        stopper, side="buy", order_type="stop_limit", stop_price="105", price="106", quantity="1"
    )
    drain(unit_market)
    assert (reload(stop).status, reload(stop).reserved) == ("untriggered", 106)

    place(trader(unit_market, usd="1000"), side="buy", price="105", quantity="1")
    drain(unit_market)

    stop = reload(stop)
    assert (stop.status, stop.filled_quantity, stop.reserved) == ("open", 0, 106)
    assert balance_of(stopper, usd) == (D(894), D(106))

    place(trader(unit_market, btc="1"), side="sell", price="106", quantity="1")
    drain(unit_market)

    stop = reload(stop)
    assert (stop.status, stop.filled_quote, stop.reserved) == ("filled", 106, 0)
    assert balance_of(stopper, usd) == (D(894), D(0))
    assert_ledger_ok()


def test_stop_whose_condition_already_holds_triggers_at_once(unit_market, trader, usd):
    asker = trader(unit_market, btc="10")
    place(asker, side="sell", price="100", quantity="1")
    place(asker, side="sell", price="101", quantity="5")
    place(trader(unit_market, usd="1000"), side="buy", price="100", quantity="1")
    drain(unit_market)  # last price 100
    stopper = trader(unit_market, usd="1000")

    stop = place(
        stopper, side="buy", order_type="stop_limit", stop_price="99", price="101", quantity="2"
    )
    drain(unit_market)

    assert (reload(stop).status, reload(stop).filled_quote) == ("filled", 202)
    assert balance_of(stopper, usd) == (D(798), D(0))
    assert_ledger_ok()


def test_cancelling_an_untriggered_stop_releases_its_reserve(unit_market, trader, btc):
    stopper = trader(unit_market, btc="3")
    stop = place(stopper, side="sell", order_type="stop", stop_price="90", quantity="3")
    drain(unit_market)

    order_cancel(user=stopper, order_id=stop.pk)
    drain(unit_market)

    assert (reload(stop).status, reload(stop).reserved) == ("cancelled", 0)
    assert balance_of(stopper, btc) == (D(3), D(0))
    assert_ledger_ok()

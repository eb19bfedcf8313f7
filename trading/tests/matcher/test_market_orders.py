"""Market orders (ARCHITECTURE §5): by quote amount, by quantity within a slippage reserve, and
with no liquidity. None ever spends more than it reserved; what is left is released."""

from decimal import Decimal

import pytest

from trading.models import Market, Order, Trade
from trading.services import order_cancel
from trading.tests.helpers import assert_ledger_ok, balance_of, drain, place, reload

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def asks(market, trader):
    """Another user's asks: 1 @ 100, 1 @ 101."""
    seller = trader(market, btc="10")
    orders = [
        place(seller, side="sell", price="100", quantity="1"),
        place(seller, side="sell", price="101", quantity="1"),
    ]
    drain(market)
    return orders


def test_a_market_buy_by_quote_spends_at_most_that_and_releases_the_rest(
    market, trader, usd, btc, asks
):
    buyer = trader(market, usd="1000")
    buy = place(buyer, side="buy", order_type="market", quote_quantity="150")
    assert balance_of(buyer, usd) == (D(850), D(150))

    drain(market)

    buy = reload(buy)
    # 1 @ 100, then the whole lots of 0.00001 that 50 buys at 101: 0.49504 for 49.99904.
    assert list(Trade.objects.order_by("id").values_list("price", "quantity")) == [
        (D(100), D(1)),
        (D(101), D("0.49504")),
    ]
    assert (buy.status, buy.filled_quantity, buy.filled_quote) == (
        "filled",
        D("1.49504"),
        D("149.99904"),
    )
    assert buy.reserved == 0
    assert balance_of(buyer, usd) == (D("850.00096"), D(0))
    assert balance_of(buyer, btc) == (D("1.49504") - D("0.00299008"), D(0))
    assert_ledger_ok()


def test_a_market_buy_by_quote_larger_than_the_book_expires_with_the_rest_released(
    market, trader, usd, asks
):
    buyer = trader(market, usd="1000")
    buy = place(buyer, side="buy", order_type="market", quote_quantity="500")

    drain(market)

    buy = reload(buy)
    assert (buy.status, buy.reason, buy.filled_quote) == ("expired", "no_liquidity", 201)
    assert balance_of(buyer, usd) == (D(799), D(0))
    assert_ledger_ok()


def test_a_market_buy_by_quantity_reserves_with_slippage_and_spends_the_fills(
    market, trader, usd, asks, settings
):
    settings.MARKET_ORDER_SLIPPAGE = D("0.05")
    buyer = trader(market, usd="1000")
    buy = place(buyer, side="buy", order_type="market", quantity="2")
    assert (buy.reserved, balance_of(buyer, usd)) == (D("211.05"), (D("788.95"), D("211.05")))

    drain(market)

    buy = reload(buy)
    assert (buy.status, buy.filled_quantity, buy.filled_quote, buy.reserved) == (
        "filled",
        2,
        201,
        0,
    )
    assert balance_of(buyer, usd) == (D(799), D(0))
    assert_ledger_ok()


def test_a_market_buy_by_quantity_never_spends_more_than_it_reserved(
    market, trader, usd, asks, settings
):
    settings.MARKET_ORDER_SLIPPAGE = D("0.05")
    seller = Order.objects.get(pk=asks[0].pk).user
    place(seller, side="sell", price="130", quantity="5")
    drain(market)
    # The cheapest ask is cancelled after the buy's reserve was estimated with it.
    order_cancel(user=seller, order_id=asks[0].pk)
    buyer = trader(market, usd="1000")
    buy = place(buyer, side="buy", order_type="market", quantity="2")
    assert buy.reserved == D("211.05")  # (100 + 101) × 1.05

    drain(market)

    buy = reload(buy)
    # 1 @ 101, then 110.05 buys 0.84653 @ 130 (110.0489); the next lot does not fit.
    assert (buy.status, buy.reason) == ("expired", "reserve_exhausted")
    assert buy.filled_quantity == D("1.84653")
    assert buy.filled_quote == D("211.0489")
    assert buy.filled_quote <= D("211.05")
    assert balance_of(buyer, usd) == (D(1000) - D("211.0489"), D(0))
    assert_ledger_ok()


def test_a_market_sell_with_no_bids_expires_no_liquidity_and_releases(market, trader, btc):
    seller = trader(market, btc="2")
    sell = place(seller, side="sell", order_type="market", quantity="1.5")
    assert balance_of(seller, btc) == (D("0.5"), D("1.5"))

    drain(market)

    sell = reload(sell)
    assert (sell.status, sell.reason, sell.reserved) == ("expired", "no_liquidity", 0)
    assert balance_of(seller, btc) == (D(2), D(0))
    assert not Trade.objects.exists()
    assert_ledger_ok()


def test_a_market_buy_on_an_empty_book_estimates_from_the_last_price_then_expires(
    market, trader, usd, settings
):
    settings.MARKET_ORDER_SLIPPAGE = D("0.05")
    Market.objects.filter(pk=market.pk).update(last_price=D("200"))
    buyer = trader(market, usd="1000")
    buy = place(buyer, side="buy", order_type="market", quantity="2")
    assert buy.reserved == D(420)

    drain(market)

    buy = reload(buy)
    assert (buy.status, buy.reason, buy.filled_quantity) == ("expired", "no_liquidity", 0)
    assert balance_of(buyer, usd) == (D(1000), D(0))
    assert_ledger_ok()


def test_a_market_sell_takes_the_bids_best_first(market, trader, usd, btc):
    buyer = trader(market, usd="1000")
    place(buyer, side="buy", price="99", quantity="1")
    place(buyer, side="buy", price="98", quantity="1")
    seller = trader(market, btc="3")
    drain(market)
    sell = place(seller, side="sell", order_type="market", quantity="1.5")

    drain(market)

    assert list(Trade.objects.order_by("id").values_list("price", "quantity")) == [
        (D(99), D(1)),
        (D(98), D("0.5")),
    ]
    assert reload(sell).status == Order.Status.FILLED
    assert balance_of(seller, usd) == (D(148) - D("0.296"), D(0))
    assert balance_of(seller, btc) == (D("1.5"), D(0))
    assert_ledger_ok()

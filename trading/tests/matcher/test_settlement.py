"""Settlement of matched orders (ARCHITECTURE §3–§4): trades at the makers' prices, fees from what
each side receives, better-price refunds, exact balances and a clean ledger."""

from decimal import Decimal

import pytest

from trading.matcher.market import ORDER_COLUMNS, OrderState
from trading.models import Order, Trade
from trading.tests.helpers import assert_ledger_ok, balance_of, drain, place, reload
from wallets.models import LedgerEntry, LedgerKind

pytestmark = pytest.mark.django_db

D = Decimal


def test_partial_fill_of_a_resting_buy_settles_both_sides_with_fees(
    market, trader, btc, usd, fee_account
):
    buyer = trader(market, usd="1500")
    seller = trader(market, btc="7")
    buy = place(buyer, side="buy", price="100", quantity="10")
    drain(market)
    sell = place(seller, side="sell", price="100", quantity="5")
    assert balance_of(seller, btc) == (D(2), D(5))

    drain(market)

    buy, sell = reload(buy), reload(sell)
    assert (buy.status, buy.filled_quantity, buy.filled_quote) == ("partially_filled", 5, 500)
    assert (sell.status, sell.filled_quantity, sell.filled_quote) == ("filled", 5, 500)
    assert buy.fee_total == D("0.005")  # maker buyer: 0.1 % of the 5 BTC received
    assert sell.fee_total == D("1")  # taker seller: 0.2 % of the 500 USD received
    assert (buy.reserved, sell.reserved) == (D(500), D(0))
    trade = Trade.objects.get()
    assert (trade.price, trade.quantity, trade.quote_quantity) == (100, 5, 500)
    assert (trade.buy_order_id, trade.sell_order_id, trade.taker_side) == (buy.pk, sell.pk, "sell")
    assert (trade.buyer_fee, trade.seller_fee) == (D("0.005"), D("1"))
    assert balance_of(buyer, usd) == (D(500), D(500))
    assert balance_of(buyer, btc) == (D("4.995"), D(0))
    assert balance_of(seller, btc) == (D(2), D(0))
    assert balance_of(seller, usd) == (D(499), D(0))
    assert balance_of(fee_account, btc) == (D("0.005"), D(0))
    assert balance_of(fee_account, usd) == (D(1), D(0))
    kinds = sorted(
        LedgerEntry.objects.filter(reference_type="trade", reference_id=trade.pk).values_list(
            "kind", flat=True
        )
    )
    # The payers' fees are on the trade; the fee account's side is one line per batch.
    assert kinds == [LedgerKind.FEE] * 2 + [LedgerKind.TRADE] * 4
    fee_lines = LedgerEntry.objects.filter(user=fee_account, reference_type="matcher_batch")
    assert sorted(fee_lines.values_list("available_delta", flat=True)) == [D("0.005"), D(1)]
    assert_ledger_ok()


def test_fees_are_exact_to_the_last_stored_decimal(market, trader, btc, usd, fee_account):
    buyer = trader(market, usd="20000")
    seller = trader(market, btc="1")
    buy = place(buyer, side="buy", price="30001.17", quantity="0.5")
    drain(market)
    sell = place(seller, side="sell", price="30000.00", quantity="0.12345")

    drain(market)

    trade = Trade.objects.get()
    assert trade.price == D("30001.17")  # the maker's price, not the seller's limit
    assert trade.quote_quantity == D("3703.6444365")
    assert trade.buyer_fee == D("0.00012345")
    assert trade.seller_fee == D("7.407288873")
    assert balance_of(buyer, btc) == (D("0.12332655"), D(0))
    assert balance_of(buyer, usd) == (
        D("20000") - D("15000.585"),
        D("15000.585") - D("3703.6444365"),
    )
    assert reload(buy).reserved == D("30001.17") * D("0.37655")
    assert balance_of(seller, usd) == (D("3696.237147627"), D(0))
    assert balance_of(seller, btc) == (D("0.87655"), D(0))
    assert reload(sell).status == Order.Status.FILLED
    assert balance_of(fee_account, btc) == (D("0.00012345"), D(0))
    assert balance_of(fee_account, usd) == (D("7.407288873"), D(0))
    assert_ledger_ok()


def test_a_taker_sweeps_three_levels_at_the_makers_prices(market, trader, btc, usd, fee_account):
    makers = [trader(market, btc="5") for _ in range(3)]
    asks = [
        place(maker, side="sell", price=price, quantity=qty)
        for maker, price, qty in zip(makers, ("101", "102", "103"), ("1", "2", "3"), strict=True)
    ]
    taker = trader(market, usd="1000")
    drain(market)
    buy = place(taker, side="buy", price="103", quantity="5")
    assert balance_of(taker, usd) == (D(485), D(515))

    drain(market)

    trades = list(Trade.objects.order_by("id").values_list("price", "quantity", "sell_order_id"))
    assert trades == [(101, 1, asks[0].pk), (102, 2, asks[1].pk), (103, 2, asks[2].pk)]
    assert {t.buy_order_id for t in Trade.objects.all()} == {buy.pk}
    assert Trade.objects.filter(taker_side="buy").count() == 3
    buy = reload(buy)
    assert (buy.status, buy.filled_quantity, buy.filled_quote) == ("filled", 5, 511)
    assert buy.fee_total == D("0.01")  # taker buyer: 0.2 % of 5 BTC
    assert [reload(ask).status for ask in asks] == ["filled", "filled", "partially_filled"]
    assert reload(asks[2]).reserved == D(1)
    # Reserved 515 at 103, spent 101 + 204 + 206: the 4 saved comes back at once.
    assert balance_of(taker, usd) == (D(489), D(0))
    assert balance_of(taker, btc) == (D("4.99"), D(0))
    assert balance_of(makers[0], usd) == (D("100.899"), D(0))
    assert balance_of(makers[1], usd) == (D("203.796"), D(0))
    assert balance_of(makers[2], usd) == (D("205.794"), D(0))
    assert balance_of(makers[2], btc) == (D(2), D(1))
    assert balance_of(fee_account, btc) == (D("0.01"), D(0))
    assert balance_of(fee_account, usd) == (D("0.511"), D(0))
    market.refresh_from_db()
    assert market.last_price == D(103)
    assert_ledger_ok()


def test_a_buy_filling_below_its_limit_keeps_only_what_its_remainder_needs(
    market, trader, btc, usd
):
    seller = trader(market, btc="1")
    place(seller, side="sell", price="90", quantity="1")
    buyer = trader(market, usd="1000")
    drain(market)
    buy = place(buyer, side="buy", price="100", quantity="3")
    assert balance_of(buyer, usd) == (D(700), D(300))

    drain(market)

    buy = reload(buy)
    assert (buy.status, buy.filled_quantity, buy.filled_quote) == ("partially_filled", 1, 90)
    # Locked is now price × remaining = 100 × 2; the 10 saved is available again.
    assert buy.reserved == D(200)
    assert balance_of(buyer, usd) == (D(710), D(200))
    release = LedgerEntry.objects.get(
        user=buyer, kind=LedgerKind.ORDER_RELEASE, reference_id=buy.pk
    )
    assert (release.available_delta, release.locked_delta) == (D(10), D(-10))
    assert_ledger_ok()


def test_a_buy_filled_entirely_below_its_limit_releases_the_whole_difference(unit_market, trader):
    usd = unit_market.quote_asset
    seller = trader(unit_market, btc="2")
    place(seller, side="sell", price="90", quantity="2")
    buyer = trader(unit_market, usd="1000")
    drain(unit_market)
    buy = place(buyer, side="buy", price="100", quantity="2")

    drain(unit_market)

    buy = reload(buy)
    assert (buy.status, buy.filled_quote, buy.reserved) == ("filled", 180, 0)
    assert balance_of(buyer, usd) == (D(820), D(0))
    assert_ledger_ok()


def test_several_makers_at_one_level_fill_in_time_priority(unit_market, trader):
    makers = [trader(unit_market, btc="1") for _ in range(3)]
    asks = [place(maker, side="sell", price="100", quantity="1") for maker in makers]
    drain(unit_market)
    taker = trader(unit_market, usd="1000")
    place(taker, side="buy", price="100", quantity="2")

    drain(unit_market)

    assert list(Trade.objects.order_by("id").values_list("sell_order_id", flat=True)) == [
        asks[0].pk,
        asks[1].pk,
    ]
    assert [reload(ask).status for ask in asks] == ["filled", "filled", "open"]
    assert_ledger_ok()


def test_an_order_whose_owner_was_frozen_before_matching_is_cancelled_and_released(
    market, trader, btc, usd, fee_account
):
    """A freeze can commit between an order's acceptance and its batch (the freeze's own
    cancel sweep could not see the uncommitted order): the matcher refuses it then."""
    from django.utils import timezone

    seller = trader(market, btc="1")
    buyer = trader(market, usd="1000")
    place(seller, side="sell", price="100", quantity="1")
    drain(market)
    buy = place(buyer, side="buy", price="100", quantity="1")
    type(buyer).objects.filter(pk=buyer.pk).update(frozen_at=timezone.now())

    drain(market)

    buy = reload(buy)
    assert (buy.status, buy.reason, buy.reserved) == ("cancelled", "account_frozen", 0)
    assert not Trade.objects.exists()
    assert balance_of(buyer, usd) == (D(1000), D(0))
    assert_ledger_ok()


def test_the_matchers_order_state_takes_its_columns_in_order():
    # OrderState unpacks a row in one statement rather than by ORDER_COLUMNS' names: a new
    # column must be added to both, in the same place.
    row = tuple(f"value of {column}" for column in ORDER_COLUMNS)

    state = OrderState(row)

    assert [getattr(state, column) for column in ORDER_COLUMNS] == list(row)
    with pytest.raises(ValueError, match="not enough values to unpack"):
        OrderState(row[:-1])

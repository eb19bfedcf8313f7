"""ARCHITECTURE §4 invariant 5 (and trading's part of 4): ``ledger_check`` catches each way trades,
orders and reserves can disagree. Each test corrupts one thing behind the services' back."""

from decimal import Decimal

import pytest

from trading.models import Order, Trade
from trading.tests.helpers import assert_ledger_ok, drain, place
from wallets.ledger_check import ledger_check

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def traded(market, trader):
    buyer = trader(market, usd="1000")
    seller = trader(market, btc="2")
    buy = place(buyer, side="buy", price="100", quantity="2")
    sell = place(seller, side="sell", price="100", quantity="1")
    drain(market)
    assert_ledger_ok()
    return buy, sell


def violations(invariant: int) -> list[dict]:
    return [v for v in ledger_check().violations if v["invariant"] == invariant]


def test_invariant_5_catches_a_filled_quantity_that_differs_from_the_trades(traded):
    buy, _ = traded
    Order.objects.filter(pk=buy.pk).update(filled_quantity=D("1.5"))

    found = violations(5)

    assert [(v["order_id"], D(v["filled"]), D(v["traded"])) for v in found] == [
        (buy.pk, D("1.5"), D(1))
    ]


def test_invariant_5_catches_a_trade_whose_order_has_no_filled_quantity(traded):
    _, sell = traded
    Order.objects.filter(pk=sell.pk).update(filled_quantity=0)

    assert [v["order_id"] for v in violations(5)] == [sell.pk]


def test_invariant_5_catches_a_trade_that_does_not_match_its_orders(traded, trader, market):
    stranger = trader(market)
    Trade.objects.update(buyer=stranger)

    found = violations(5)

    assert [v["trade_id"] for v in found] == [Trade.objects.get().pk]


def test_invariant_5_catches_a_done_order_that_still_reserves(traded):
    buy, _ = traded
    Order.objects.filter(pk=buy.pk).update(status=Order.Status.CANCELLED)

    assert [(v["order_id"], v["status"]) for v in violations(5)] == [(buy.pk, "cancelled")]
    # Its reserve no longer counts as live, so locked is not explained either.
    assert len(violations(4)) == 1


def test_invariant_4_catches_a_locked_balance_no_live_order_explains(traded):
    buy, _ = traded
    Order.objects.filter(pk=buy.pk).update(reserved=D(99))

    found = violations(4)

    assert [(v["asset"], v["locked"], v["reserved"]) for v in found] == [("USD", "100", "99")]

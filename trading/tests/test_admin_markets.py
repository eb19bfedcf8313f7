"""Operator console, markets: halt / cancel-only / resume and rule changes through the
admin's own views, their effect on order entry and in the matcher, and who may do them."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.models import OperatorAction
from accounts.tests.admin.fixtures import *  # noqa: F403 (fixtures)
from accounts.tests.admin.fixtures import run_action
from accounts.tests.factories import UserFactory
from trading.exceptions import InvalidOrder, MarketCancelOnly, MarketHalted
from trading.matcher.market import MarketMatcher
from trading.models import Market, Order, OrderCommand, Trade
from trading.services import order_cancel
from trading.tests.helpers import assert_ledger_ok, balance_of, drain, place, reload

pytestmark = pytest.mark.django_db

MARKETS = "/admin/trading/market/"


def change_url(market) -> str:
    return f"{MARKETS}{market.pk}/change/"


def rules_form(market, reason="fees review", **changes) -> dict:
    data = {
        name: str(getattr(market, name))
        for name in (
            "tick_size",
            "lot_size",
            "min_qty",
            "max_qty",
            "min_notional",
            "maker_fee",
            "taker_fee",
        )
    }
    data.update({name: str(value) for name, value in changes.items()})
    data["reason"] = reason
    return data


def test_halt_asks_for_a_reason_before_it_acts(operator_client, market):
    response = run_action(operator_client, MARKETS, "halt", [market], reason=None)

    assert response.status_code == 200
    assert b'name="reason"' in response.content
    assert reload(market).status == Market.Status.TRADING
    assert not OperatorAction.objects.exists()


def test_halt_refuses_the_next_order_and_is_audited(operator_client, operator, market, trader):
    alice = trader(market, usd="1000")

    response = run_action(operator_client, MARKETS, "halt", [market], reason="exchange incident")

    assert response.status_code == 302
    assert reload(market).status == Market.Status.HALTED
    with pytest.raises(MarketHalted):
        place(alice, side="buy", price="100", quantity="1")
    action = OperatorAction.objects.get()
    assert (action.actor, action.action, action.reason) == (
        operator,
        "market_halt",
        "exchange incident",
    )
    assert (action.target_type, action.target_id) == ("trading.market", str(market.pk))
    assert action.details == {"from": "trading", "to": "halted"}


def test_halted_market_matches_nothing_until_it_resumes(operator_client, market, trader):
    alice, bob = trader(market, usd="1000"), trader(market, btc="2")
    place(alice, side="buy", price="100", quantity="1")
    place(bob, side="sell", price="100", quantity="1")

    run_action(operator_client, MARKETS, "halt", [market])
    drain(market)

    assert not Trade.objects.exists()
    assert OrderCommand.objects.filter(processed_at__isnull=True).count() == 2

    run_action(operator_client, MARKETS, "resume", [market])
    drain(market)

    assert reload(market).status == Market.Status.TRADING
    assert Trade.objects.count() == 1
    assert not OrderCommand.objects.filter(processed_at__isnull=True).exists()
    assert_ledger_ok()


def test_cancel_only_rejects_queued_orders_and_still_cancels(operator_client, market, trader):
    alice = trader(market, usd="1000")
    resting = place(alice, side="buy", price="100", quantity="1")
    drain(market)
    queued = place(alice, side="buy", price="99", quantity="2")
    order_cancel(user=alice, order_id=resting.pk)

    run_action(operator_client, MARKETS, "set_cancel_only", [market])
    with pytest.raises(MarketCancelOnly):
        place(alice, side="buy", price="98", quantity="1")
    drain(market)

    assert reload(market).status == Market.Status.CANCEL_ONLY
    assert reload(resting).status == Order.Status.CANCELLED
    assert (reload(queued).status, queued.reason) == (Order.Status.REJECTED, "market_cancel_only")
    assert balance_of(alice, market.quote_asset) == (Decimal("1000"), Decimal("0"))
    assert_ledger_ok()


def test_resume_of_a_trading_market_is_a_warning_not_an_action(operator_client, market):
    response = run_action(operator_client, MARKETS, "resume", [market])

    assert response.status_code == 302
    assert not OperatorAction.objects.exists()


def test_tick_that_does_not_divide_resting_prices_is_refused(operator_client, market, trader):
    alice = trader(market, usd="1000")
    order = place(alice, side="buy", price="100.01", quantity="1")
    drain(market)

    response = operator_client.post(change_url(market), rules_form(market, tick_size="0.1"))

    assert response.status_code == 200
    assert f"live orders {order.pk}".encode() in response.content
    assert reload(market).tick_size == Decimal("0.01")
    assert not OperatorAction.objects.exists()


def test_rules_change_without_a_reason_is_refused(operator_client, market):
    response = operator_client.post(
        change_url(market), rules_form(market, reason="", taker_fee="0.003")
    )

    assert response.status_code == 200
    assert reload(market).taker_fee == Decimal("0.002")


def test_rules_and_fees_change_at_once_for_order_entry_and_in_the_matcher(
    operator_client, operator, market, trader
):
    alice, bob = trader(market, usd="1000"), trader(market, btc="2")
    place(alice, side="buy", price="100.00", quantity="1")
    matcher = drain(market)

    response = operator_client.post(
        change_url(market), rules_form(market, tick_size="0.5", taker_fee="0.01")
    )

    assert response.status_code == 302, response.content
    market = reload(market)
    assert (market.tick_size, market.taker_fee) == (Decimal("0.5"), Decimal("0.01"))
    with pytest.raises(InvalidOrder) as refused:
        place(bob, side="sell", price="100.25", quantity="1")
    assert refused.value.code == "INVALID_PRICE_TICK"
    place(bob, side="sell", price="100.00", quantity="1")
    # The running matcher notices the new grid, rebuilds its book, then matches on it.
    drain(market, matcher)
    drain(market, matcher)
    trade = Trade.objects.get()
    assert trade.seller_fee == Decimal("1.00")  # 1 % of 100: the new taker fee
    action = OperatorAction.objects.get()
    assert action.action == "market_rules_update"
    assert action.details == {"tick_size": ["0.01", "0.5"], "taker_fee": ["0.002", "0.01"]}
    assert_ledger_ok()


def test_order_accepted_off_a_new_grid_is_rejected_by_the_matcher(market, trader, operator):
    alice = trader(market, usd="1000")
    matcher = drain(market)
    order = place(alice, side="buy", price="100.01", quantity="1")
    # As if the tick changed between the order's checks and its commit.
    Market.objects.filter(pk=market.pk).update(tick_size=Decimal("0.1"))

    drain(market, matcher)
    drain(market, matcher)

    assert (reload(order).status, order.reason) == (Order.Status.REJECTED, "off_grid")
    assert balance_of(alice, market.quote_asset) == (Decimal("1000"), Decimal("0"))
    assert_ledger_ok()


def test_market_status_is_not_editable_on_the_change_form(operator_client, market):
    data = rules_form(market)
    data["status"] = Market.Status.HALTED

    operator_client.post(change_url(market), data)

    assert reload(market).status == Market.Status.TRADING


def test_markets_cannot_be_deleted_by_anyone(market):
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    response = client.post(f"{MARKETS}{market.pk}/delete/", {"post": "yes"})

    assert response.status_code == 403
    assert Market.objects.filter(pk=market.pk).exists()


@pytest.mark.parametrize("action", ["halt", "set_cancel_only", "resume"])
def test_staff_outside_the_operators_cannot_change_a_market_status(outsider_client, market, action):
    # cancel-only to start with, so that each of the three actions would change it
    Market.objects.filter(pk=market.pk).update(status=Market.Status.CANCEL_ONLY)
    if action == "set_cancel_only":
        Market.objects.filter(pk=market.pk).update(status=Market.Status.TRADING)
    before = reload(market).status

    listing = outsider_client.get(MARKETS)
    response = run_action(outsider_client, MARKETS, action, [market])

    assert listing.status_code == 403
    assert response.status_code == 403
    assert reload(market).status == before
    assert not OperatorAction.objects.exists()


def test_staff_outside_the_operators_cannot_change_rules(outsider_client, market):
    response = outsider_client.post(change_url(market), rules_form(market, taker_fee="0.05"))

    assert response.status_code == 403
    assert reload(market).taker_fee == Decimal("0.002")


def test_view_only_staff_gets_no_market_actions(market):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_market"))
    client = Client()
    client.force_login(viewer)

    listing = client.get(MARKETS)
    response = run_action(client, MARKETS, "halt", [market])

    assert listing.status_code == 200
    assert b'value="halt"' not in listing.content
    assert response.status_code in (200, 302)
    assert reload(market).status == Market.Status.TRADING
    assert not OperatorAction.objects.exists()


def test_matcher_reads_the_market_status_in_every_batch(market, trader):
    """The matcher reads the status in each batch, not once at start."""
    alice = trader(market, usd="1000")
    matcher = MarketMatcher(market)
    place(alice, side="buy", price="100", quantity="1")
    Market.objects.filter(pk=market.pk).update(status=Market.Status.HALTED)

    assert matcher.run_batch(100) is None

    Market.objects.filter(pk=market.pk).update(status=Market.Status.TRADING)
    assert matcher.run_batch(100) is not None

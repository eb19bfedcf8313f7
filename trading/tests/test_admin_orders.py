"""Operator console, orders and trades: "cancel selected" queues cancel commands (the
matcher cancels and releases funds), nothing edits an order, trades or commands by hand."""

from decimal import Decimal

import pytest
from django.test import Client

from accounts.models import OperatorAction
from accounts.tests.admin.fixtures import *  # noqa: F403 (fixtures)
from accounts.tests.admin.fixtures import run_action
from accounts.tests.factories import UserFactory
from trading.models import Order, OrderCommand, Trade
from trading.tests.helpers import assert_ledger_ok, balance_of, drain, place, reload

pytestmark = pytest.mark.django_db

ORDERS = "/admin/trading/order/"


@pytest.fixture
def superuser_client(db):
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_cancel_selected_queues_commands_and_the_matcher_releases_funds(
    operator_client, operator, market, trader
):
    alice, bob = trader(market, usd="1000"), trader(market, btc="1")
    buy = place(alice, side="buy", price="100", quantity="2")
    sell = place(bob, side="sell", price="150", quantity="1")
    drain(market)

    response = run_action(
        operator_client, ORDERS, "cancel_selected", [buy, sell], reason="fat-finger report"
    )

    assert response.status_code == 302
    # Queued, not edited: the rows are untouched until the matcher runs the commands.
    assert (reload(buy).status, reload(sell).status) == (Order.Status.OPEN, Order.Status.OPEN)
    assert set(
        OrderCommand.objects.filter(kind="cancel", processed_at__isnull=True).values_list(
            "order_id", flat=True
        )
    ) == {buy.pk, sell.pk}
    audit = OperatorAction.objects.filter(action="order_cancel")
    assert {(a.target_id, a.actor_id, a.reason) for a in audit} == {
        (str(buy.pk), operator.pk, "fat-finger report"),
        (str(sell.pk), operator.pk, "fat-finger report"),
    }

    drain(market)

    assert (reload(buy).status, reload(sell).status) == (
        Order.Status.CANCELLED,
        Order.Status.CANCELLED,
    )
    assert balance_of(alice, market.quote_asset) == (Decimal("1000"), Decimal("0"))
    assert balance_of(bob, market.base_asset) == (Decimal("1"), Decimal("0"))
    assert_ledger_ok()


def test_cancel_selected_skips_orders_already_done(operator_client, market, trader):
    alice, bob = trader(market, usd="1000"), trader(market, btc="1")
    buy = place(alice, side="buy", price="100", quantity="1")
    place(bob, side="sell", price="100", quantity="1")
    drain(market)
    assert reload(buy).status == Order.Status.FILLED

    run_action(operator_client, ORDERS, "cancel_selected", [buy])

    assert not OrderCommand.objects.filter(kind="cancel").exists()
    assert not OperatorAction.objects.exists()


def test_cancel_selected_asks_for_a_reason_first(operator_client, market, trader):
    order = place(trader(market, usd="1000"), side="buy", price="100", quantity="1")

    response = run_action(operator_client, ORDERS, "cancel_selected", [order], reason=None)

    assert response.status_code == 200
    assert b'name="reason"' in response.content
    assert not OrderCommand.objects.filter(kind="cancel").exists()


def test_order_list_filters_by_status_market_and_user(operator_client, market, trader):
    alice, bob = trader(market, usd="1000"), trader(market, usd="1000")
    mine = place(alice, side="buy", price="100", quantity="1")
    theirs = place(bob, side="buy", price="101", quantity="1")
    drain(market)

    response = operator_client.get(
        ORDERS, {"user": alice.pk, "status__exact": "open", "market__id__exact": market.pk}
    )

    assert response.status_code == 200
    shown = {order.pk for order in response.context["cl"].result_list}
    assert shown == {mine.pk}
    assert theirs.pk not in shown


def test_order_money_fields_cannot_be_edited_even_by_a_superuser(superuser_client, market, trader):
    order = place(trader(market, usd="1000"), side="buy", price="100", quantity="1")

    response = superuser_client.post(
        f"{ORDERS}{order.pk}/change/", {"price": "1", "quantity": "999", "reserved": "0"}
    )

    assert response.status_code == 403
    order = reload(order)
    assert (order.price, order.quantity, order.reserved) == (
        Decimal("100"),
        Decimal("1"),
        Decimal("100"),
    )


@pytest.mark.parametrize("model", ["trade", "order", "ordercommand"])
def test_trading_records_cannot_be_added_or_deleted(superuser_client, market, trader, model):
    alice, bob = trader(market, usd="1000"), trader(market, btc="1")
    place(alice, side="buy", price="100", quantity="1")
    place(bob, side="sell", price="100", quantity="1")
    drain(market)
    row = {"trade": Trade, "order": Order, "ordercommand": OrderCommand}[model].objects.first()

    add = superuser_client.get(f"/admin/trading/{model}/add/")
    delete = superuser_client.post(f"/admin/trading/{model}/{row.pk}/delete/", {"post": "yes"})
    view = superuser_client.get(f"/admin/trading/{model}/{row.pk}/change/")

    assert (add.status_code, delete.status_code, view.status_code) == (403, 403, 200)
    assert type(row).objects.filter(pk=row.pk).exists()


def test_staff_outside_the_operators_cannot_cancel_orders(outsider_client, market, trader):
    order = place(trader(market, usd="1000"), side="buy", price="100", quantity="1")

    listing = outsider_client.get(ORDERS)
    response = run_action(outsider_client, ORDERS, "cancel_selected", [order])

    assert listing.status_code == 403
    assert response.status_code == 403
    assert not OrderCommand.objects.filter(kind="cancel").exists()
    assert not OperatorAction.objects.exists()


def test_order_lists_and_the_new_order_fields_show_in_the_admin(superuser_client, market, trader):
    from trading import services

    seller = trader(market, btc="1")
    order_list = services.oco_place(
        user=seller,
        request=services.OcoRequest(
            symbol="BTC-USD",
            side="sell",
            quantity=Decimal("0.5"),
            limit_price=Decimal("150"),
            stop_price=Decimal("90"),
            limit_iceberg_quantity=Decimal("0.1"),
            list_client_id="admin-oco",
        ),
    )
    limit, stop = order_list.orders.order_by("id")

    page = superuser_client.get(f"/admin/trading/orderlist/{order_list.pk}/change/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "admin-oco" in body
    assert f"/admin/trading/order/{stop.pk}/change/" in body
    listed = superuser_client.get("/admin/trading/orderlist/")
    assert listed.status_code == 200
    assert "admin-oco" in listed.content.decode()
    detail = superuser_client.get(f"/admin/trading/order/{limit.pk}/change/")
    assert detail.status_code == 200
    assert "Iceberg quantity" in detail.content.decode()
    assert "0.100000000000000000" in detail.content.decode()
    assert superuser_client.get("/admin/trading/ordercommand/").status_code == 200

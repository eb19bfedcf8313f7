"""Operator console as a whole: the "operators" group's exact permissions, every model in
the admin, the audit trail shown read-only, and the dashboard on the admin index."""

import json
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone
from django_redis import get_redis_connection

from accounts.models import OperatorAction
from accounts.services import user_freeze
from accounts.tests.admin.fixtures import fund
from accounts.tests.factories import UserFactory
from exchange_site.admin_dashboard import market_rows
from trading.matcher.publish import heartbeat_key
from trading.models import Market, OrderCommand
from trading.tests.factories import MarketFactory
from trading.tests.helpers import drain, place
from wallets.models import LedgerCheckRun
from wallets.tests.helpers import withdrawal_request_confirmed

pytestmark = pytest.mark.django_db

OPERATOR_PERMISSIONS = {
    "accounts.view_user",
    "accounts.freeze_user",
    "accounts.view_operatoraction",
    "accounts.view_apikey",
    "trading.view_market",
    "trading.change_market",
    "trading.change_market_status",
    "trading.view_order",
    "trading.cancel_order",
    "trading.view_trade",
    "trading.view_ordercommand",
    "trading.view_orderlist",
    "trading.view_feetier",
    "trading.add_feetier",
    "trading.change_feetier",
    "trading.view_feeprofile",
    "trading.add_feeprofile",
    "trading.change_feeprofile",
    "wallets.view_asset",
    "wallets.view_balance",
    "wallets.view_balanceadjustment",
    "wallets.add_balanceadjustment",
    "wallets.view_ledgerentry",
    "wallets.view_ledgercheckrun",
    "wallets.view_deposit",
    "wallets.confirm_deposit",
    "wallets.view_depositaddress",
    "wallets.view_withdrawal",
    "wallets.review_withdrawal",
    "wallets.view_withdrawaltier",
    "wallets.change_withdrawaltier",
    "wallets.view_withdrawalprofile",
    "wallets.add_withdrawalprofile",
    "wallets.change_withdrawalprofile",
    "wallets.view_withdrawaladdress",
    "wallets.view_liabilitysnapshot",
    "wallets.view_liabilityroot",
    "wallets.view_liabilityleaf",
    "wallets.view_liabilitynode",
    "marketdata.view_candle",
}


def test_the_operators_group_has_exactly_the_console_permissions(operators_group, operator):
    granted = {
        f"{app}.{codename}"
        for app, codename in operators_group.permissions.values_list(
            "content_type__app_label", "codename"
        )
    }

    assert granted == OPERATOR_PERMISSIONS
    assert operator.get_all_permissions() == OPERATOR_PERMISSIONS


def test_a_staff_user_outside_the_group_has_none_of_them(outsider):
    assert not outsider.get_all_permissions()
    assert not Permission.objects.filter(user=outsider).exists()


@pytest.mark.parametrize("app_label", ["accounts", "wallets", "trading", "marketdata"])
def test_every_model_is_in_the_admin(app_label):
    missing = [
        model.__name__
        for model in apps.get_app_config(app_label).get_models()
        if model not in admin.site._registry
    ]

    assert missing == []


def test_every_console_list_opens_for_an_operator(operator_client):
    MarketFactory()
    pages = [
        f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in ("accounts", "wallets", "trading", "marketdata")
    ]

    statuses = {page: operator_client.get(page).status_code for page in pages}

    assert set(statuses.values()) == {200}, statuses


def test_the_audit_trail_is_shown_and_cannot_be_edited(operator_client, operator):
    target = UserFactory()
    user_freeze(user_id=target.pk, actor=operator, reason="chargeback ring")
    action = OperatorAction.objects.get()
    superuser = Client()
    superuser.force_login(UserFactory(is_staff=True, is_superuser=True))

    listing = operator_client.get("/admin/accounts/operatoraction/", {"action": "user_freeze"})
    detail = operator_client.get(f"/admin/accounts/operatoraction/{action.pk}/change/")
    add = superuser.get("/admin/accounts/operatoraction/add/")
    delete = superuser.post(f"/admin/accounts/operatoraction/{action.pk}/delete/", {"post": "yes"})

    assert listing.status_code == 200
    assert b"chargeback ring" in listing.content
    assert operator.email.encode() in listing.content
    assert f"/admin/accounts/user/{target.pk}/change/".encode() in listing.content
    assert detail.status_code == 200
    assert (add.status_code, delete.status_code) == (403, 403)
    assert OperatorAction.objects.filter(pk=action.pk).exists()


def test_dashboard_shows_markets_withdrawals_and_the_last_ledger_check(operator_client):
    market = MarketFactory()
    alice, bob = UserFactory(), UserFactory()
    fund(alice, market.quote_asset, "1000")
    fund(bob, market.base_asset, "2")
    place(alice, side="buy", price="100", quantity="1")
    place(bob, side="sell", price="100", quantity="0.5")
    drain(market)
    place(alice, side="buy", price="90", quantity="1")  # still pending for the matcher
    withdrawal_request_confirmed(
        user=alice, asset_code="USD", amount=Decimal("20"), address="acct-1"
    )  # confirmed by its owner: waiting for an operator
    LedgerCheckRun.objects.create(
        started_at=timezone.now() - timedelta(seconds=1),
        finished_at=timezone.now(),
        ok=False,
        violations=[{"invariant": 1}],
    )
    beat = json.dumps({"at": time.time(), "last_batch_at": None})
    get_redis_connection("default").set(heartbeat_key(market.symbol), beat)

    page = operator_client.get("/admin/")

    assert page.status_code == 200
    html = page.content.decode()
    row = html[html.index(f'data-symbol="{market.symbol}"') :].split("</tr>")[0]
    assert 'class="matcher-ok"' in row
    assert f"/admin/trading/ordercommand/?market__id__exact={market.pk}&amp;pending=yes" in row
    assert ">1</a>" in row  # one pending command
    assert ">2</a>" in row  # two open orders (the rest of the first buy, the pending one)
    assert "0.5 BTC" in row  # 24 h volume
    assert "(50 USD)" in row
    assert "/admin/wallets/withdrawal/?stage=first" in html
    to_review = html[html.index('id="withdrawals-to-review"') :].split("</a>")[0]
    assert '<span class="oc-card-value">1</span>' in to_review
    assert "FAILED, 1 violation(s)" in html
    assert OrderCommand.objects.filter(processed_at__isnull=True).count() == 1
    assert Market.objects.count() == 1


def test_dashboard_links_open_their_filtered_lists(operator_client):
    market = MarketFactory()

    links = market_rows()[0].links

    for name, url in links.items():
        assert operator_client.get(url).status_code == 200, (name, url)
    assert str(market.pk) in links["orders"]


def test_dashboard_is_not_shown_to_staff_outside_the_operators(outsider_client):
    MarketFactory()

    page = outsider_client.get("/admin/")

    assert page.status_code == 200
    assert b"operator-dashboard" not in page.content


def test_dashboard_volumes_are_plain_digits_not_exponents(operator_client):
    market = MarketFactory()
    alice, bob = UserFactory(), UserFactory()
    fund(alice, market.quote_asset, "2000")
    fund(bob, market.base_asset, "20")
    place(alice, side="buy", price="100", quantity="10")
    place(bob, side="sell", price="100", quantity="10")
    drain(market)
    html = operator_client.get("/admin/").content.decode()
    row = html[html.index(f'data-symbol="{market.symbol}"') :].split("</tr>")[0]
    assert "10 BTC" in row
    assert "(1000 USD)" in row
    assert "E+" not in row


def test_a_non_ascii_digit_in_the_user_filter_is_not_a_server_error(operator_client):
    response = operator_client.get("/admin/trading/order/", {"user": "\u00b2"})
    assert response.status_code in (200, 302)

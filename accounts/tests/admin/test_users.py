"""Operator console, users: freeze takes effect at once (logins, tokens, sessions, orders,
withdrawals) and cancels the user's open orders; unfreeze restores access."""

from decimal import Decimal

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.exceptions import AccountFrozen
from accounts.models import OperatorAction, User
from accounts.services import auth_login, auth_tokens_issue
from accounts.tests.admin.fixtures import fund, run_action
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from testsupport.helpers import assert_error, assert_ledger_ok
from trading.models import Order
from trading.services import OrderRequest, order_place
from trading.tests.factories import MarketFactory
from trading.tests.helpers import balance_of, drain, place, reload
from wallets.services import withdrawal_request

pytestmark = pytest.mark.django_db

USERS = "/admin/accounts/user/"


@pytest.fixture
def market(db):
    return MarketFactory()


@pytest.fixture
def alice(market):
    user = UserFactory()
    fund(user, market.quote_asset, "1000")
    return user


def api_login(user):
    return APIClient().post(
        "/api/v1/auth/login", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json"
    )


def bearer(access_token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token}")
    return client


def test_freeze_asks_for_a_reason_first(operator_client, alice):
    response = run_action(operator_client, USERS, "freeze", [alice], reason=None)

    assert response.status_code == 200
    assert b'name="reason"' in response.content
    assert not reload(alice).is_frozen


def test_freeze_blocks_logins_tokens_and_sessions_at_once(operator_client, operator, alice):
    tokens = auth_tokens_issue(user=alice)
    session = Client()
    session.force_login(alice)
    assert session.get("/api/v1/account/balance").status_code == 200

    response = run_action(operator_client, USERS, "freeze", [alice], reason="fraud report #7")

    assert response.status_code == 302
    alice = reload(alice)
    assert alice.is_frozen
    assert alice.frozen_reason == "fraud report #7"
    assert_error(api_login(alice), 403, "ACCOUNT_FROZEN")
    assert_error(
        bearer(tokens["access_token"]).get("/api/v1/account/balance"), 403, "ACCOUNT_FROZEN"
    )
    assert_error(
        APIClient().post(
            "/api/v1/auth/refresh", {"refresh_token": tokens["refresh_token"]}, format="json"
        ),
        403,
        "ACCOUNT_FROZEN",
    )
    assert session.get("/api/v1/account/balance").status_code in (401, 403)
    page_login = Client().post(
        "/api-auth/login/", {"username": alice.email, "password": DEFAULT_PASSWORD}
    )
    assert page_login.status_code == 200
    assert b"frozen" in page_login.content
    action = OperatorAction.objects.get()
    assert (action.actor, action.action, action.reason, action.target_type) == (
        operator,
        "user_freeze",
        "fraud report #7",
        "accounts.user",
    )


def test_a_wrong_password_of_a_frozen_account_says_nothing_about_the_freeze(alice, operator):
    User.objects.filter(pk=alice.pk).update(frozen_at="2026-01-01T00:00Z")

    response = APIClient().post(
        "/api/v1/auth/login", {"email": alice.email, "password": "wrong-password"}, format="json"
    )

    assert_error(response, 401, "INVALID_CREDENTIALS")


def test_freeze_cancels_open_orders_and_the_matcher_releases_funds(operator_client, market, alice):
    resting = place(alice, side="buy", price="100", quantity="2")
    drain(market)
    queued = place(alice, side="buy", price="90", quantity="1")

    run_action(operator_client, USERS, "freeze", [alice], reason="court order")
    drain(market)

    assert reload(resting).status == Order.Status.CANCELLED
    assert reload(queued).status == Order.Status.CANCELLED
    assert balance_of(alice, market.quote_asset) == (Decimal("1000"), Decimal("0"))
    action = OperatorAction.objects.get(action="user_freeze")
    assert sorted(action.details["orders_cancel_queued"]) == sorted([resting.pk, queued.pk])
    assert_ledger_ok()


def test_a_frozen_user_cannot_trade_or_withdraw(operator_client, market, alice):
    run_action(operator_client, USERS, "freeze", [alice])
    alice = reload(alice)

    with pytest.raises(AccountFrozen) as trading:
        order_place(
            user=alice,
            request=OrderRequest(
                symbol="BTC-USD",
                side="buy",
                order_type="limit",
                price=Decimal("100"),
                quantity=Decimal("1"),
            ),
        )
    with pytest.raises(AccountFrozen) as withdrawing:
        withdrawal_request(user=alice, asset_code="USD", amount=Decimal("50"), address="acct-1")

    assert (trading.value.code, trading.value.status) == ("ACCOUNT_FROZEN", 403)
    assert withdrawing.value.code == "ACCOUNT_FROZEN"
    assert not Order.objects.exists()
    assert balance_of(alice, market.quote_asset) == (Decimal("1000"), Decimal("0"))


def test_unfreeze_restores_access(operator_client, operator, market, alice):
    run_action(operator_client, USERS, "freeze", [alice])

    response = run_action(operator_client, USERS, "unfreeze", [alice], reason="cleared")

    assert response.status_code == 302
    alice = reload(alice)
    assert not alice.is_frozen
    login = api_login(alice)
    assert login.status_code == 200
    assert bearer(login.json()["access_token"]).get("/api/v1/account/balance").status_code == 200
    assert place(alice, side="buy", price="100", quantity="1").status == Order.Status.NEW
    assert list(OperatorAction.objects.values_list("action", "reason")) == [
        ("user_unfreeze", "cleared"),
        ("user_freeze", "why not"),
    ]


def test_an_operator_cannot_freeze_themselves(operator_client, operator):
    response = run_action(operator_client, USERS, "freeze", [operator], follow=True)

    assert b"your own account" in response.content
    assert not reload(operator).is_frozen
    assert not OperatorAction.objects.exists()


@pytest.mark.parametrize("action", ["freeze", "unfreeze"])
def test_staff_outside_the_operators_cannot_freeze(outsider_client, alice, action):
    if action == "unfreeze":
        User.objects.filter(pk=alice.pk).update(frozen_at="2026-01-01T00:00Z")
    before = reload(alice).is_frozen

    listing = outsider_client.get(USERS)
    response = run_action(outsider_client, USERS, action, [alice])

    assert listing.status_code == 403
    assert response.status_code == 403
    assert reload(alice).is_frozen == before
    assert not OperatorAction.objects.exists()


def test_operators_see_users_read_only_without_the_password_hash(operator_client, alice):
    page = operator_client.get(f"{USERS}{alice.pk}/change/")
    edit = operator_client.post(
        f"{USERS}{alice.pk}/change/", {"email": alice.email, "username": "renamed"}
    )

    assert page.status_code == 200
    assert alice.password.encode() not in page.content
    assert b"?user=%d" % alice.pk in page.content  # links to the user's orders, balances...
    assert edit.status_code == 403
    assert reload(alice).username == alice.username


def test_frozen_operators_session_ends_in_the_admin_too(operator_client, operator, alice):
    superuser = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(superuser)

    run_action(client, USERS, "freeze", [operator])

    assert operator_client.get("/admin/").status_code == 302  # back to the login page
    login = Client().post(
        "/admin/login/", {"username": operator.email, "password": DEFAULT_PASSWORD}
    )
    assert login.status_code == 200
    assert b"frozen" in login.content


def test_service_login_of_a_frozen_user_raises_account_frozen(alice):
    User.objects.filter(pk=alice.pk).update(frozen_at="2026-01-01T00:00Z")

    with pytest.raises(AccountFrozen) as refused:
        auth_login(login=alice.username, password=DEFAULT_PASSWORD)

    assert refused.value.code == "ACCOUNT_FROZEN"

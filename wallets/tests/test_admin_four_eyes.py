"""The operator console's four eyes: a large withdrawal and every balance adjustment need a
second operator, who is never the first; the queues show what waits; tiers are granted with
a reason."""

from decimal import Decimal

import pytest
from django.test import Client

from accounts.models import OperatorAction
from accounts.tests.admin.fixtures import *  # noqa: F403 (fixtures)
from accounts.tests.admin.fixtures import fund, run_action
from accounts.tests.factories import UserFactory
from wallets import services
from wallets.models import Asset, BalanceAdjustment, Withdrawal, WithdrawalProfile, WithdrawalTier
from wallets.tests.helpers import assert_ledger_ok, balance_of, withdrawal_confirm_by_email

pytestmark = pytest.mark.django_db

WITHDRAWALS = "/admin/wallets/withdrawal/"
ADJUSTMENTS = "/admin/wallets/balanceadjustment/"


@pytest.fixture
def btc(db):
    return Asset.objects.create(
        code="BTC",
        name="Bitcoin",
        precision=8,
        min_withdrawal=Decimal("0.001"),
        withdrawal_fee=Decimal("0.0005"),
        confirmations_required=2,
        reference_price=Decimal(1000),
    )


@pytest.fixture
def second_operator(operators_group):
    user = UserFactory(is_staff=True)
    user.groups.add(operators_group)
    return user


@pytest.fixture
def second_client(second_operator):
    client = Client()
    client.force_login(second_operator)
    return client


@pytest.fixture
def large_withdrawal(btc, settings):
    settings.WITHDRAWAL_SECOND_APPROVAL_OVER = {"BTC": "1"}
    user = UserFactory()
    fund(user, btc, "3")
    return withdrawal_confirm_by_email(
        services.withdrawal_request(
            user=user, asset_code="BTC", amount=Decimal(2), address="bc1qbig"
        )
    )


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_two_operators_approve_a_large_withdrawal_in_the_admin(
    operator_client, second_client, operator, second_operator, large_withdrawal
):
    first_queue = operator_client.get(WITHDRAWALS, {"stage": "first"})
    assert large_withdrawal in first_queue.context["cl"].result_list

    run_action(operator_client, WITHDRAWALS, "approve", [large_withdrawal], reason="KYC ok")
    again = run_action(
        operator_client, WITHDRAWALS, "approve", [large_withdrawal], reason="again", follow=True
    )
    assert any("first approval" in text for text in _messages(again))
    second_queue = second_client.get(WITHDRAWALS, {"stage": "second"})
    assert list(second_queue.context["cl"].result_list) == [
        Withdrawal.objects.get(status="awaiting_second_approval")
    ]
    run_action(second_client, WITHDRAWALS, "approve", [large_withdrawal], reason="Checked chain")

    withdrawal = Withdrawal.objects.get()
    assert withdrawal.status in ("approved", "processing", "completed")
    assert (withdrawal.first_approved_by, withdrawal.reviewed_by) == (operator, second_operator)
    assert list(OperatorAction.objects.order_by("id").values_list("action", "actor", "reason")) == [
        ("withdrawal_approve_first", operator.pk, "KYC ok"),
        ("withdrawal_approve", second_operator.pk, "Checked chain"),
    ]


def test_an_adjustment_waits_for_a_second_operator_in_the_admin(
    operator_client, second_client, operator, second_operator, btc
):
    user = UserFactory()
    created = operator_client.post(
        f"{ADJUSTMENTS}add/",
        {"user": user.pk, "asset": btc.pk, "amount": "1.5", "reason": "Ticket #7"},
        follow=True,
    )
    adjustment = BalanceAdjustment.objects.get()
    assert any("second operator" in text for text in _messages(created))
    assert adjustment.status == "pending"
    assert balance_of(user, btc) == (Decimal(0), Decimal(0))

    own = run_action(operator_client, ADJUSTMENTS, "approve", [adjustment], follow=True)
    assert any("other than the one who asked" in text for text in _messages(own))
    assert BalanceAdjustment.objects.get().status == "pending"
    run_action(second_client, ADJUSTMENTS, "approve", [adjustment], reason="Ticket checked")

    assert BalanceAdjustment.objects.get().status == "applied"
    assert balance_of(user, btc) == (Decimal("1.5"), Decimal(0))
    assert_ledger_ok()


def test_an_operator_grants_a_tier_with_a_reason(operator_client, operator):
    user = UserFactory()
    trusted = WithdrawalTier.objects.get(code="trusted")
    missing_reason = operator_client.post(
        "/admin/wallets/withdrawalprofile/add/", {"user": user.pk, "tier": trusted.pk}
    )
    assert missing_reason.status_code == 200  # the form again, with the error
    assert not WithdrawalProfile.objects.exists()

    response = operator_client.post(
        "/admin/wallets/withdrawalprofile/add/",
        {"user": user.pk, "tier": trusted.pk, "reason": "Business account"},
    )

    assert response.status_code == 302, response.content
    profile = WithdrawalProfile.objects.get()
    assert (profile.tier, profile.tier_granted_by) == (trusted, operator)
    assert OperatorAction.objects.get().reason == "Business account"


def test_operators_edit_the_tiers_limits(operator_client):
    tier = WithdrawalTier.objects.get(code="verified")
    response = operator_client.post(
        f"/admin/wallets/withdrawaltier/{tier.pk}/change/",
        {
            "code": "verified",
            "name": "Verified",
            "daily_limit": "25000",
            "is_default": "on",
            "description": "Email confirmed.",
        },
    )

    assert response.status_code == 302, response.content
    assert WithdrawalTier.objects.get(pk=tier.pk).daily_limit == Decimal(25000)

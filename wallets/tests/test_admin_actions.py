"""The operators' console for money: read-only where it must be, every change via services."""

from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from accounts.tests.factories import UserFactory
from wallets.models import Asset, Balance, BalanceAdjustment, LedgerEntry, Withdrawal
from wallets.services import balance_credit, withdrawal_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


@pytest.fixture
def btc():
    return Asset.objects.create(
        code="BTC",
        name="Bitcoin",
        precision=8,
        min_withdrawal=Decimal("0.001"),
        withdrawal_fee=Decimal("0.0005"),
        confirmations_required=2,
    )


@pytest.fixture
def funded_user(btc):
    user = UserFactory()
    balance_credit(
        user_id=user.pk,
        asset=btc,
        amount=Decimal("2"),
        kind="deposit",
        reference_type="test",
    )
    return user


def balance_of(user, asset):
    row = Balance.objects.get(user=user, asset=asset)
    return row.available, row.locked


@pytest.mark.parametrize(
    "model", ["asset", "balance", "ledgerentry", "deposit", "withdrawal", "balanceadjustment"]
)
def test_operator_sees_every_wallets_list(client, operator, btc, model):
    response = client.get(f"/admin/wallets/{model}/")

    assert response.status_code == 200


@pytest.mark.parametrize("model", ["balance", "ledgerentry", "deposit", "withdrawal"])
def test_money_records_cannot_be_added_by_hand(client, operator, model):
    assert client.get(f"/admin/wallets/{model}/add/").status_code == 403


def test_balance_and_ledger_cannot_be_changed_or_deleted(client, operator, funded_user, btc):
    balance = Balance.objects.get(user=funded_user, asset=btc)
    entry = LedgerEntry.objects.get(user=funded_user)

    client.post(f"/admin/wallets/balance/{balance.pk}/change/", {"available": "999"})
    delete = client.post(f"/admin/wallets/ledgerentry/{entry.pk}/delete/", {"post": "yes"})

    assert delete.status_code == 403
    assert balance_of(funded_user, btc) == (Decimal("2"), Decimal("0"))
    assert LedgerEntry.objects.filter(pk=entry.pk).exists()


def test_approve_action_approves_a_requested_withdrawal(client, operator, funded_user):
    withdrawal = withdrawal_request(
        user=funded_user, asset_code="BTC", amount=Decimal("0.5"), address="bc1qdest"
    )

    response = client.post(
        "/admin/wallets/withdrawal/",
        {"action": "approve", ACTION_CHECKBOX_NAME: [withdrawal.pk]},
        follow=True,
    )

    assert response.status_code == 200
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.APPROVED
    assert withdrawal.reviewed_by == operator


def test_reject_action_asks_for_a_reason_then_releases_funds(client, operator, funded_user, btc):
    withdrawal = withdrawal_request(
        user=funded_user, asset_code="BTC", amount=Decimal("0.5"), address="bc1qdest"
    )
    selection = {"action": "reject", ACTION_CHECKBOX_NAME: [withdrawal.pk]}

    form_page = client.post("/admin/wallets/withdrawal/", selection)
    withdrawal.refresh_from_db()
    assert form_page.status_code == 200
    assert b'name="reason"' in form_page.content
    assert withdrawal.status == Withdrawal.Status.REQUESTED

    client.post(
        "/admin/wallets/withdrawal/", {**selection, "reason": "Address on a sanctions list"}
    )

    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.REJECTED
    assert withdrawal.review_note == "Address on a sanctions list"
    assert balance_of(funded_user, btc) == (Decimal("2"), Decimal("0"))


def test_operator_credits_a_balance_with_a_reason(client, operator, funded_user, btc):
    response = client.post(
        "/admin/wallets/balanceadjustment/add/",
        {
            "user": funded_user.pk,
            "asset": btc.pk,
            "amount": "0.25",
            "reason": "Compensation for ticket #42",
        },
    )

    assert response.status_code == 302, response.content
    assert balance_of(funded_user, btc) == (Decimal("2.25"), Decimal("0"))
    adjustment = BalanceAdjustment.objects.get()
    assert adjustment.created_by == operator
    entry = LedgerEntry.objects.get(kind="adjustment")
    assert entry.available_delta == Decimal("0.25")
    assert entry.memo == "Compensation for ticket #42"


def test_operator_debit_beyond_available_is_refused_on_the_form(client, operator, funded_user, btc):
    response = client.post(
        "/admin/wallets/balanceadjustment/add/",
        {"user": funded_user.pk, "asset": btc.pk, "amount": "-5", "reason": "Clawback"},
    )

    assert response.status_code == 200
    assert b"is available" in response.content
    assert balance_of(funded_user, btc) == (Decimal("2"), Decimal("0"))
    assert not BalanceAdjustment.objects.exists()


def test_adjustment_without_reason_is_refused(client, operator, funded_user, btc):
    response = client.post(
        "/admin/wallets/balanceadjustment/add/",
        {"user": funded_user.pk, "asset": btc.pk, "amount": "1", "reason": ""},
    )

    assert response.status_code == 200
    assert balance_of(funded_user, btc) == (Decimal("2"), Decimal("0"))
    assert not BalanceAdjustment.objects.exists()

"""Operator console, money: read-only where it must be; confirm, approve, reject and adjust
go through the services (each audited), and only operators may use them."""

from decimal import Decimal

import pytest
from django.test import Client

from accounts.models import OperatorAction
from accounts.tests.admin.fixtures import *  # noqa: F403 (fixtures)
from accounts.tests.admin.fixtures import fund, run_action
from accounts.tests.factories import UserFactory
from exchange_site.celery import app as celery_app
from wallets.models import Asset, Balance, BalanceAdjustment, Deposit, LedgerEntry, Withdrawal
from wallets.selectors import fee_account_get
from wallets.services import deposit_address_get_or_create, deposit_chain_detect
from wallets.tests.helpers import assert_ledger_ok, withdrawal_request_confirmed

pytestmark = pytest.mark.django_db

WITHDRAWALS = "/admin/wallets/withdrawal/"
DEPOSITS = "/admin/wallets/deposit/"
ADJUSTMENTS = "/admin/wallets/balanceadjustment/"
ADJUST = f"{ADJUSTMENTS}add/"


@pytest.fixture
def superuser_client(db):
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def btc(db):
    return Asset.objects.create(
        code="BTC",
        name="Bitcoin",
        precision=8,
        min_withdrawal=Decimal("0.001"),
        withdrawal_fee=Decimal("0.0005"),
        confirmations_required=2,
        reference_price=Decimal("100"),
    )


@pytest.fixture
def funded_user(btc):
    user = UserFactory()
    fund(user, btc, "2")
    return user


@pytest.fixture
def withdrawal(funded_user):
    """Confirmed by its owner, so in the operators' queue; 0.5 BTC needs one approval."""
    return withdrawal_request_confirmed(
        user=funded_user, asset_code="BTC", amount=Decimal("0.5"), address="bc1qdest"
    )


@pytest.fixture
def eager_tasks():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def balance_of(user, asset):
    row = Balance.objects.get(user=user, asset=asset)
    return row.available, row.locked


@pytest.mark.parametrize(
    "model",
    ["asset", "balance", "ledgerentry", "deposit", "depositaddress", "withdrawal",
     "balanceadjustment", "ledgercheckrun"],
)  # fmt: skip
def test_operator_sees_every_wallets_list(operator_client, btc, model):
    assert operator_client.get(f"/admin/wallets/{model}/").status_code == 200


@pytest.mark.parametrize("model", ["balance", "ledgerentry", "deposit", "withdrawal"])
def test_money_records_cannot_be_added_by_hand(superuser_client, model):
    assert superuser_client.get(f"/admin/wallets/{model}/add/").status_code == 403


def test_balance_and_ledger_cannot_be_changed_or_deleted(superuser_client, funded_user, btc):
    balance = Balance.objects.get(user=funded_user, asset=btc)
    entry = LedgerEntry.objects.filter(user=funded_user).get()

    change = superuser_client.post(
        f"/admin/wallets/balance/{balance.pk}/change/", {"available": "999"}
    )
    delete = superuser_client.post(
        f"/admin/wallets/ledgerentry/{entry.pk}/delete/", {"post": "yes"}
    )
    change_entry = superuser_client.post(
        f"/admin/wallets/ledgerentry/{entry.pk}/change/", {"available_delta": "5"}
    )

    assert (change.status_code, delete.status_code, change_entry.status_code) == (403, 403, 403)
    assert balance_of(funded_user, btc) == (Decimal("2"), Decimal("0"))
    assert LedgerEntry.objects.get(pk=entry.pk).available_delta == Decimal("2")


def test_approval_pays_out_through_the_worker_task(
    operator_client, operator, funded_user, btc, withdrawal, eager_tasks,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(
            operator_client, WITHDRAWALS, "approve", [withdrawal], reason="KYC checked"
        )

    assert response.status_code == 302
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.COMPLETED
    assert (withdrawal.reviewed_by, withdrawal.review_note) == (operator, "KYC checked")
    assert withdrawal.tx_id.startswith("simtx-")
    assert balance_of(funded_user, btc) == (Decimal("1.4995"), Decimal("0"))
    assert balance_of(fee_account_get(), btc) == (Decimal("0.0005"), Decimal("0"))
    action = OperatorAction.objects.get()
    assert (action.actor, action.action, action.reason, action.target_id) == (
        operator,
        "withdrawal_approve",
        "KYC checked",
        str(withdrawal.pk),
    )
    assert_ledger_ok()


def test_reject_asks_for_a_reason_then_releases_funds(
    operator_client, operator, funded_user, btc, withdrawal
):
    form_page = run_action(operator_client, WITHDRAWALS, "reject", [withdrawal], reason=None)
    withdrawal.refresh_from_db()
    assert form_page.status_code == 200
    assert b'name="reason"' in form_page.content
    assert withdrawal.status == Withdrawal.Status.REQUESTED

    run_action(operator_client, WITHDRAWALS, "reject", [withdrawal], reason="Sanctioned address")

    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.REJECTED
    assert withdrawal.review_note == "Sanctioned address"
    assert balance_of(funded_user, btc) == (Decimal("2"), Decimal("0"))
    assert OperatorAction.objects.get().action == "withdrawal_reject"
    assert_ledger_ok()


def test_a_frozen_users_withdrawal_is_not_approved(operator_client, funded_user, withdrawal):
    type(funded_user).objects.filter(pk=funded_user.pk).update(frozen_at="2026-01-01T00:00Z")

    response = run_action(operator_client, WITHDRAWALS, "approve", [withdrawal], follow=True)

    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.REQUESTED
    assert b"frozen" in response.content
    assert not OperatorAction.objects.exists()


def test_deposit_confirm_credits_a_pending_deposit(operator_client, operator, funded_user, btc):
    address = deposit_address_get_or_create(user=funded_user, asset_code="BTC").address
    deposit = deposit_chain_detect(address=address, amount=Decimal("0.3"))

    run_action(operator_client, DEPOSITS, "confirm_now", [deposit], reason="seen on chain")

    deposit.refresh_from_db()
    assert deposit.status == Deposit.Status.CONFIRMED
    assert balance_of(funded_user, btc) == (Decimal("2.3"), Decimal("0"))
    action = OperatorAction.objects.get()
    assert (action.action, action.actor, action.reason) == (
        "deposit_confirm",
        operator,
        "seen on chain",
    )
    assert_ledger_ok()


def test_adjustment_moves_the_balance_and_writes_the_ledger(
    operator_client, operator, operators_group, funded_user, btc
):
    second = UserFactory(is_staff=True)
    second.groups.add(operators_group)
    second_client = Client()
    second_client.force_login(second)
    balances = operator_client.get("/admin/wallets/balance/")
    form = operator_client.get(ADJUST, {"user": funded_user.pk, "asset": btc.pk})
    response = operator_client.post(
        ADJUST,
        {"user": funded_user.pk, "asset": btc.pk, "amount": "-0.25", "reason": "Ticket #42"},
    )
    assert response.status_code == 302, response.content
    adjustment = BalanceAdjustment.objects.get()
    # Asked for, not applied: a second operator approves it from the changelist.
    assert adjustment.status == BalanceAdjustment.Status.PENDING
    assert balance_of(funded_user, btc) == (Decimal("2"), Decimal("0"))

    approval = run_action(second_client, ADJUSTMENTS, "approve", [adjustment], reason="Checked")

    assert f"{ADJUST}?user={funded_user.pk}&amp;asset={btc.pk}".encode() in balances.content
    assert form.context["adminform"].form.initial["user"] == str(funded_user.pk)
    assert approval.status_code == 302
    assert balance_of(funded_user, btc) == (Decimal("1.75"), Decimal("0"))
    adjustment.refresh_from_db()
    assert (adjustment.created_by, adjustment.reviewed_by) == (operator, second)
    assert adjustment.status == BalanceAdjustment.Status.APPLIED
    entry = LedgerEntry.objects.get(kind="adjustment")
    assert (entry.available_delta, entry.memo) == (Decimal("-0.25"), "Ticket #42")
    assert (entry.reference_type, entry.reference_id) == ("adjustment", adjustment.pk)
    actions = OperatorAction.objects.order_by("pk")
    assert [(a.actor, a.action, a.reason) for a in actions] == [
        (operator, "balance_adjust_request", "Ticket #42"),
        (second, "balance_adjust_approve", "Checked"),
    ]
    assert [a.details["amount"] for a in actions] == ["-0.25", "-0.25"]
    assert_ledger_ok()


def test_debit_beyond_available_is_refused_on_the_form(operator_client, funded_user, btc):
    response = operator_client.post(
        ADJUST, {"user": funded_user.pk, "asset": btc.pk, "amount": "-5", "reason": "Clawback"}
    )

    assert response.status_code == 200
    assert b"is available" in response.content
    assert balance_of(funded_user, btc) == (Decimal("2"), Decimal("0"))
    assert not BalanceAdjustment.objects.exists()


def test_adjustment_without_reason_is_refused(operator_client, funded_user, btc):
    response = operator_client.post(
        ADJUST, {"user": funded_user.pk, "asset": btc.pk, "amount": "1", "reason": ""}
    )

    assert response.status_code == 200
    assert balance_of(funded_user, btc) == (Decimal("2"), Decimal("0"))
    assert not BalanceAdjustment.objects.exists()
    assert not OperatorAction.objects.exists()


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_staff_outside_the_operators_cannot_review_withdrawals(outsider_client, withdrawal, action):
    response = run_action(outsider_client, WITHDRAWALS, action, [withdrawal])

    withdrawal.refresh_from_db()
    assert response.status_code == 403
    assert withdrawal.status == Withdrawal.Status.REQUESTED


def test_staff_outside_the_operators_cannot_confirm_deposits(outsider_client, funded_user):
    address = deposit_address_get_or_create(user=funded_user, asset_code="BTC").address
    deposit = deposit_chain_detect(address=address, amount=Decimal("0.3"))

    response = run_action(outsider_client, DEPOSITS, "confirm_now", [deposit])

    deposit.refresh_from_db()
    assert response.status_code == 403
    assert deposit.status == Deposit.Status.PENDING


def test_staff_outside_the_operators_cannot_adjust(outsider_client, funded_user, btc):
    response = outsider_client.post(
        ADJUST, {"user": funded_user.pk, "asset": btc.pk, "amount": "1", "reason": "gift"}
    )

    assert response.status_code == 403
    assert balance_of(funded_user, btc) == (Decimal("2"), Decimal("0"))
    assert not BalanceAdjustment.objects.exists()

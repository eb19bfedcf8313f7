from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from accounts.tests.factories import UserFactory
from wallets import services
from wallets.exceptions import InsufficientBalance
from wallets.models import BalanceAdjustment, LedgerEntry, LedgerKind
from wallets.tests.helpers import assert_ledger_ok, balance_of, money_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewer(db):
    """The second operator, who approves what ``operator`` asked for."""
    return UserFactory(is_staff=True)


def adjust(user, asset, amount, operator, reason="support ticket 42"):
    return services.balance_adjust(
        user=user, asset=asset, amount=Decimal(amount), reason=reason, operator=operator
    )


def approve(adjustment, reviewer):
    return services.balance_adjustment_approve(adjustment_id=adjustment.pk, reviewer=reviewer)


def test_balance_adjust_credits_with_the_reason_on_record(user, btc, operator, reviewer):
    adjustment = adjust(user, btc, "0.25", operator, reason="  refund of a lost deposit ")
    assert balance_of(user, btc) == (Decimal(0), Decimal(0))  # nothing moves until approved

    approved = approve(adjustment, reviewer)

    assert adjustment.reason == "refund of a lost deposit"
    assert adjustment.created_by == operator
    assert (approved.status, approved.reviewed_by) == (BalanceAdjustment.Status.APPLIED, reviewer)
    assert balance_of(user, btc) == (Decimal("0.25"), Decimal(0))
    entry = LedgerEntry.objects.get(user=user)
    assert (entry.kind, entry.reference_id, entry.memo) == (
        LedgerKind.ADJUSTMENT,
        adjustment.pk,
        "refund of a lost deposit",
    )
    assert_ledger_ok()


def test_balance_adjust_debits_available(user, btc, fund, operator, reviewer):
    fund(user, btc, "1")

    approve(adjust(user, btc, "-0.4", operator), reviewer)

    assert balance_of(user, btc) == (Decimal("0.6"), Decimal(0))
    assert_ledger_ok()


def test_balance_adjust_refuses_a_debit_larger_than_available(user, btc, fund, operator, reviewer):
    fund(user, btc, "1")
    services.withdrawal_request(user=user, asset_code="BTC", amount=Decimal("0.5"), address="x")
    adjustment = adjust(user, btc, "-0.5", operator)
    before = money_state()

    with pytest.raises(InsufficientBalance):
        approve(adjustment, reviewer)  # only 0.4999 is available; the rest is locked

    assert money_state() == before
    adjustment.refresh_from_db()
    assert adjustment.status == BalanceAdjustment.Status.PENDING


def test_balance_adjust_refuses_a_debit_of_an_asset_never_held(user, btc, operator, reviewer):
    adjustment = adjust(user, btc, "-1", operator)
    before = money_state()

    with pytest.raises(InsufficientBalance):
        approve(adjustment, reviewer)

    assert money_state() == before
    adjustment.refresh_from_db()
    assert adjustment.status == BalanceAdjustment.Status.PENDING


@pytest.mark.parametrize(
    ("amount", "reason", "field"),
    [
        ("1", "", "reason"),
        ("1", "   ", "reason"),
        ("0", "fix", "amount"),
        ("NaN", "fix", "amount"),
        ("0.000000001", "fix", "amount"),
        ("-1e30", "fix", "amount"),
    ],
)
def test_balance_adjust_refuses_bad_input(user, btc, operator, amount, reason, field):
    before = money_state()

    with pytest.raises(ValidationError) as caught:
        adjust(user, btc, amount, operator, reason=reason)

    assert field in caught.value.message_dict
    assert money_state() == before
    assert not BalanceAdjustment.objects.exists()

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from wallets import services
from wallets.exceptions import InsufficientBalance
from wallets.models import BalanceAdjustment, LedgerEntry, LedgerKind
from wallets.tests.helpers import assert_ledger_ok, balance_of, money_state

pytestmark = pytest.mark.django_db


def adjust(user, asset, amount, operator, reason="support ticket 42"):
    return services.balance_adjust(
        user=user, asset=asset, amount=Decimal(amount), reason=reason, operator=operator
    )


def test_balance_adjust_credits_with_the_reason_on_record(user, btc, operator):
    adjustment = adjust(user, btc, "0.25", operator, reason="  refund of a lost deposit ")

    assert adjustment.reason == "refund of a lost deposit"
    assert adjustment.created_by == operator
    assert balance_of(user, btc) == (Decimal("0.25"), Decimal(0))
    entry = LedgerEntry.objects.get(user=user)
    assert (entry.kind, entry.reference_id, entry.memo) == (
        LedgerKind.ADJUSTMENT,
        adjustment.pk,
        "refund of a lost deposit",
    )
    assert_ledger_ok()


def test_balance_adjust_debits_available(user, btc, fund, operator):
    fund(user, btc, "1")

    adjust(user, btc, "-0.4", operator)

    assert balance_of(user, btc) == (Decimal("0.6"), Decimal(0))
    assert_ledger_ok()


def test_balance_adjust_refuses_a_debit_larger_than_available(user, btc, fund, operator):
    fund(user, btc, "1")
    services.withdrawal_request(user=user, asset_code="BTC", amount=Decimal("0.5"), address="x")
    before = money_state()

    with pytest.raises(InsufficientBalance):
        adjust(user, btc, "-0.5", operator)  # only 0.4999 is available; the rest is locked

    assert money_state() == before


def test_balance_adjust_refuses_a_debit_of_an_asset_never_held(user, btc, operator):
    before = money_state()

    with pytest.raises(InsufficientBalance):
        adjust(user, btc, "-1", operator)

    assert money_state() == before


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

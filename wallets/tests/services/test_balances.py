"""The balance primitives every money movement is built from.

They join their caller's transaction (no savepoint of their own), so each refusal here runs
inside an ``atomic`` block the way a service calls them.
"""

from decimal import Decimal

import pytest
from django.db import transaction

from wallets import services
from wallets.exceptions import InsufficientBalance, LedgerInconsistency
from wallets.models import LedgerKind
from wallets.tests.helpers import balance_of, money_state

pytestmark = pytest.mark.django_db


def test_balance_reserve_refuses_more_than_available(user, btc, fund):
    fund(user, btc, "1")
    before = money_state()

    with pytest.raises(InsufficientBalance), transaction.atomic():  # the caller's transaction
        services.balance_reserve(
            user_id=user.pk,
            asset=btc,
            amount=Decimal("1.00000001"),
            kind=LedgerKind.ORDER_RESERVE,
            reference_type="order",
        )

    assert money_state() == before


def test_balance_release_of_more_than_locked_is_an_inconsistency(user, btc, fund):
    fund(user, btc, "1")
    before = money_state()

    with pytest.raises(LedgerInconsistency), transaction.atomic():  # the caller's transaction
        services.balance_release(
            user_id=user.pk,
            asset=btc,
            amount=Decimal("0.1"),
            kind=LedgerKind.ORDER_RELEASE,
            reference_type="order",
        )

    assert money_state() == before


def test_balance_changes_apply_is_all_or_nothing(user, other_user, btc, fund):
    fund(user, btc, "1")
    fund(other_user, btc, "1")
    before = money_state()
    changes = [
        services.BalanceChange(user.pk, btc.pk, LedgerKind.TRADE, "trade", 1, Decimal("-1")),
        services.BalanceChange(other_user.pk, btc.pk, LedgerKind.TRADE, "trade", 1, Decimal(1)),
        services.BalanceChange(other_user.pk, btc.pk, LedgerKind.TRADE, "trade", 1, Decimal(-3)),
    ]

    with pytest.raises(InsufficientBalance), transaction.atomic():  # the caller's transaction
        services.balance_changes_apply(changes=changes)

    assert money_state() == before


def test_balance_changes_apply_moves_money_between_accounts(user, other_user, btc, fund):
    fund(user, btc, "1")
    changes = [
        services.BalanceChange(user.pk, btc.pk, LedgerKind.TRADE, "trade", 1, Decimal("-0.3")),
        services.BalanceChange(other_user.pk, btc.pk, LedgerKind.TRADE, "trade", 1, Decimal("0.3")),
    ]

    services.balance_changes_apply(changes=changes)

    assert balance_of(user, btc) == (Decimal("0.7"), Decimal(0))
    assert balance_of(other_user, btc) == (Decimal("0.3"), Decimal(0))


@pytest.mark.parametrize("amount", ["0.0000000000000000001", "NaN", "1e18"])
def test_balance_credit_refuses_an_amount_the_database_cannot_store(user, btc, amount):
    before = money_state()

    with pytest.raises(ValueError, match="not storable"), transaction.atomic():
        services.balance_credit(
            user_id=user.pk,
            asset=btc,
            amount=Decimal(amount),
            kind=LedgerKind.DEPOSIT,
            reference_type="deposit",
        )

    assert money_state() == before


def test_balance_credit_stores_large_amounts_exactly(user, usd):
    services.balance_credit(
        user_id=user.pk,
        asset=usd,
        amount=Decimal("123456789012345678.25"),
        kind=LedgerKind.ADJUSTMENT,
        reference_type="test",
    )

    assert balance_of(user, usd) == (Decimal("123456789012345678.25"), Decimal(0))

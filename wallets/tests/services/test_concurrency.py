"""Concurrent callers, each on its own PostgreSQL connection, can never overdraw."""

from decimal import Decimal

import pytest

from accounts.tests.factories import UserFactory
from testsupport.helpers import run_concurrently
from wallets import services
from wallets.exceptions import DepositLimitExceeded, InsufficientBalance
from wallets.models import Deposit, LedgerEntry, Withdrawal
from wallets.selectors import fee_account_get
from wallets.tests.factories import AssetFactory
from wallets.tests.helpers import assert_ledger_ok, balance_of, withdrawal_request_confirmed

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_withdrawals_never_overdraw(fund):
    asset = AssetFactory(withdrawal_fee=Decimal("0.0001"), min_withdrawal=Decimal("0.001"))
    user = UserFactory()
    fund(user, asset, "7.2")  # covers 7 withdrawals of 1 + fee 0.0001, not 8

    results = run_concurrently(
        20,
        lambda i: services.withdrawal_request(
            user=user, asset_code=asset.code, amount=Decimal(1), address=f"addr-{i}"
        ),
    )

    succeeded = [r for r in results if isinstance(r, Withdrawal)]
    refused = [r for r in results if isinstance(r, InsufficientBalance)]
    assert len(succeeded) == 7, results
    assert len(refused) == 13, results
    assert Withdrawal.objects.count() == 7
    assert balance_of(user, asset) == (Decimal("0.1993"), Decimal("7.0007"))
    assert LedgerEntry.objects.filter(user=user).count() == 1 + 7
    assert_ledger_ok()


def test_concurrent_processing_of_one_withdrawal_pays_once(fund, settings):
    asset = AssetFactory(withdrawal_fee=Decimal("0.0005"))
    # One approval pays it out (unlisted assets need two by default: not this test's subject).
    settings.WITHDRAWAL_SECOND_APPROVAL_OVER = {"*": "0", asset.code: "1"}
    user, operator = UserFactory(), UserFactory(is_staff=True)
    fund(user, asset, "1")
    withdrawal = withdrawal_request_confirmed(
        user=user, asset_code=asset.code, amount=Decimal("0.5"), address="addr"
    )
    services.withdrawal_approve(withdrawal_id=withdrawal.pk, reviewer=operator)

    results = run_concurrently(
        8, lambda i: services.withdrawal_process(withdrawal_id=withdrawal.pk)
    )

    assert all(isinstance(r, Withdrawal) for r in results), results
    assert {r.status for r in results} == {Withdrawal.Status.COMPLETED}
    assert balance_of(user, asset) == (Decimal("0.4995"), Decimal(0))
    assert balance_of(fee_account_get(), asset) == (Decimal("0.0005"), Decimal(0))
    assert_ledger_ok()


def test_concurrent_demo_deposits_respect_the_daily_cap(settings):
    settings.DEMO_DEPOSITS = True
    settings.DEMO_DEPOSIT_MAX_PER_REQUEST = {"*": "10"}
    settings.DEMO_DEPOSIT_MAX_PER_DAY = {"*": "35"}
    asset = AssetFactory()
    user = UserFactory()

    results = run_concurrently(
        10,
        lambda i: services.deposit_demo_create(
            user=user, asset_code=asset.code, amount=Decimal(10)
        ),
    )

    assert sum(isinstance(r, Deposit) for r in results) == 3, results
    assert sum(isinstance(r, DepositLimitExceeded) for r in results) == 7, results
    assert balance_of(user, asset) == (Decimal(30), Decimal(0))
    assert_ledger_ok()


def test_cancel_racing_reject_releases_the_reserve_once(fund):
    asset = AssetFactory()
    user, operator = UserFactory(), UserFactory(is_staff=True)
    fund(user, asset, "1")
    # Confirmed, so in review: both the owner's cancel and the operator's reject apply.
    withdrawal = withdrawal_request_confirmed(
        user=user, asset_code=asset.code, amount=Decimal("0.5"), address="addr"
    )

    def act(i):
        if i % 2:
            return services.withdrawal_cancel(user=user, withdrawal_id=withdrawal.pk)
        return services.withdrawal_reject(
            withdrawal_id=withdrawal.pk, reviewer=operator, reason="x"
        )

    results = run_concurrently(6, act)

    assert sum(isinstance(r, Withdrawal) for r in results) == 1, results
    assert balance_of(user, asset) == (Decimal(1), Decimal(0))
    assert_ledger_ok()

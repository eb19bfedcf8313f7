"""Concurrent uses of one two-factor code, each on its own PostgreSQL connection: the device
row lock lets exactly one through, for a TOTP code, a recovery code and a withdrawal."""

from decimal import Decimal

import pytest
from django.test import override_settings

from accounts import twofactor
from accounts.exceptions import OtpInvalid
from accounts.models import RecoveryCode
from accounts.tests.factories import UserFactory
from accounts.tests.twofactor_helpers import enable_two_factor, fresh_code
from testsupport.helpers import run_concurrently
from wallets import services as wallet_services
from wallets.models import Withdrawal
from wallets.tests.factories import AssetFactory

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 6


@pytest.fixture(autouse=True)
def no_lockout(settings):
    # The racers' wrong answers must be OtpInvalid, not a lockout the count would cause.
    settings.LOGIN_LOCKOUT_FAILURES = 0
    settings.LOGIN_LOCKOUT_IP_FAILURES = 0
    settings.LOGIN_SLOWDOWN_SECONDS = 0


def _one_accepted(results):
    accepted = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, OtpInvalid)]
    assert len(accepted) == 1, results
    assert len(refused) == THREADS - 1, results
    return accepted


def test_one_totp_code_is_accepted_once_under_concurrency():
    user = UserFactory()
    secret, _codes = enable_two_factor(user)
    code = fresh_code(user, secret)
    results = run_concurrently(
        THREADS, lambda i: twofactor.two_factor_require(user=user, otp_code=code) or "ok"
    )
    _one_accepted(results)


def test_one_recovery_code_is_accepted_once_under_concurrency():
    user = UserFactory()
    _secret, codes = enable_two_factor(user)
    results = run_concurrently(
        THREADS, lambda i: twofactor.two_factor_require(user=user, otp_code=codes[0]) or "ok"
    )
    _one_accepted(results)
    assert RecoveryCode.objects.filter(user=user, used_at__isnull=False).count() == 1


def test_one_code_makes_one_withdrawal_under_concurrency():
    asset = AssetFactory(min_withdrawal=Decimal("0.001"), withdrawal_fee=Decimal("0"))
    user = UserFactory()
    caps = {"*": "1000000000"}
    with override_settings(
        DEMO_DEPOSITS=True, DEMO_DEPOSIT_MAX_PER_REQUEST=caps, DEMO_DEPOSIT_MAX_PER_DAY=caps
    ):
        wallet_services.deposit_demo_create(user=user, asset_code=asset.code, amount=Decimal(10))
    secret, _codes = enable_two_factor(user)
    code = fresh_code(user, secret)
    results = run_concurrently(
        THREADS,
        lambda i: wallet_services.withdrawal_request(
            user=user, asset_code=asset.code, amount=Decimal(1), address=f"addr-{i}", otp_code=code
        ),
    )
    [withdrawal] = _one_accepted(results)
    assert isinstance(withdrawal, Withdrawal)
    assert Withdrawal.objects.filter(user=user).count() == 1

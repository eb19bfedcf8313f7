"""Two-factor services: enrolment, codes (tolerance, replay), recovery codes, disable, the
operator reset, and wrong codes counted in the login lockout (real Redis)."""

import time
from urllib.parse import parse_qs, unquote, urlparse

import pyotp
import pytest
from django.core.exceptions import ValidationError

from accounts import selectors, twofactor
from accounts.exceptions import (
    LoginRateLimited,
    OtpInvalid,
    OtpRequired,
    PasswordIncorrect,
    TwoFactorStateConflict,
)
from accounts.models import OperatorAction, RecoveryCode, TwoFactorDevice
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from accounts.tests.twofactor_helpers import code_at, enable_two_factor, fresh_code

pytestmark = pytest.mark.django_db


@pytest.fixture
def lockout(settings):
    settings.LOGIN_LOCKOUT_FAILURES = 5
    settings.LOGIN_LOCKOUT_IP_FAILURES = 20
    settings.LOGIN_LOCKOUT_SECONDS = 900
    settings.LOGIN_SLOWDOWN_SECONDS = 0
    return settings


def test_enrol_begin_makes_a_pending_device_with_an_encrypted_secret():
    user = UserFactory()
    device, secret, uri = twofactor.two_factor_enrol_begin(user=user)
    assert not device.is_enabled
    assert secret not in device.secret_encrypted
    parsed = urlparse(uri)
    assert parsed.scheme == "otpauth"
    assert parsed.netloc == "totp"
    assert parse_qs(parsed.query)["secret"] == [secret]
    assert parse_qs(parsed.query)["issuer"] == ["Exchange"]
    assert unquote(parsed.path) == f"/Exchange:{user.email}"
    # Pending is not on: actions need no code yet.
    twofactor.two_factor_require(user=user, otp_code=None)
    assert selectors.two_factor_status(user=user)["pending"] is True
    assert selectors.two_factor_is_enabled(user=user) is False


def test_enrol_begin_again_replaces_the_secret():
    user = UserFactory()
    _device, first, _uri = twofactor.two_factor_enrol_begin(user=user)
    _device, second, _uri = twofactor.two_factor_enrol_begin(user=user)
    assert first != second
    assert TwoFactorDevice.objects.filter(user=user).count() == 1
    with pytest.raises(OtpInvalid):
        twofactor.two_factor_enrol_confirm(user=user, otp_code=pyotp.TOTP(first).now())


def test_confirm_with_a_wrong_code_keeps_it_off():
    user = UserFactory()
    twofactor.two_factor_enrol_begin(user=user)
    with pytest.raises(OtpInvalid):
        twofactor.two_factor_enrol_confirm(user=user, otp_code="000000")
    with pytest.raises(OtpRequired):
        twofactor.two_factor_enrol_confirm(user=user, otp_code="")
    assert not selectors.two_factor_is_enabled(user=user)
    assert not RecoveryCode.objects.filter(user=user).exists()


def test_confirm_turns_it_on_and_returns_ten_recovery_codes_stored_as_hashes():
    user = UserFactory()
    _device, secret, _uri = twofactor.two_factor_enrol_begin(user=user)
    codes = twofactor.two_factor_enrol_confirm(user=user, otp_code=pyotp.TOTP(secret).now())
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert all(len(code) == 19 and code.count("-") == 3 for code in codes)
    stored = list(RecoveryCode.objects.filter(user=user).values_list("code_hash", flat=True))
    assert len(stored) == 10
    assert not {code.replace("-", "") for code in codes} & set(stored)
    status = selectors.two_factor_status(user=user)
    assert status["enabled"]
    assert status["recovery_codes_left"] == 10
    assert status["enabled_at"] is not None


def test_confirm_refuses_a_recovery_code_and_missing_enrolment():
    user = UserFactory()
    with pytest.raises(TwoFactorStateConflict):
        twofactor.two_factor_enrol_confirm(user=user, otp_code="123456")
    secret, _codes = enable_two_factor(user)
    with pytest.raises(TwoFactorStateConflict):
        twofactor.two_factor_enrol_confirm(user=user, otp_code=code_at(secret))
    with pytest.raises(TwoFactorStateConflict):
        twofactor.two_factor_enrol_begin(user=user)


def test_require_asks_for_a_code_and_refuses_a_wrong_one(lockout):
    user = UserFactory()
    secret, _codes = enable_two_factor(user)
    with pytest.raises(OtpRequired):
        twofactor.two_factor_require(user=user, otp_code=None)
    with pytest.raises(OtpRequired):
        twofactor.two_factor_require(user=user, otp_code="  ")
    wrong = f"{(int(code_at(secret)) + 1) % 1_000_000:06d}"
    with pytest.raises(OtpInvalid):
        twofactor.two_factor_require(user=user, otp_code=wrong)
    twofactor.two_factor_require(user=user, otp_code=code_at(secret))


def test_a_code_is_accepted_once_and_never_an_older_one(lockout):
    user = UserFactory()
    secret, _codes = enable_two_factor(user)  # used the previous step
    with pytest.raises(OtpInvalid):
        twofactor.two_factor_require(user=user, otp_code=code_at(secret, -1))
    current = code_at(secret)
    twofactor.two_factor_require(user=user, otp_code=current)
    with pytest.raises(OtpInvalid):
        twofactor.two_factor_require(user=user, otp_code=current)
    # The next step (clock drift) is still within the tolerance, once.
    upcoming = code_at(secret, 1)
    twofactor.two_factor_require(user=user, otp_code=f"{upcoming[:3]} {upcoming[3:]}")
    with pytest.raises(OtpInvalid):
        twofactor.two_factor_require(user=user, otp_code=upcoming)


def test_codes_outside_one_step_of_tolerance_are_refused(lockout):
    user = UserFactory()
    secret, _codes = enable_two_factor(user)
    TwoFactorDevice.objects.filter(user=user).update(last_used_step=None)
    for steps in (-3, -2, 2, 3):
        code = code_at(secret, steps)
        if code in {code_at(secret, s) for s in (-1, 0, 1)}:
            continue  # a one-in-a-million collision with an accepted step
        with pytest.raises(OtpInvalid):
            twofactor.two_factor_require(user=user, otp_code=code)


def test_a_recovery_code_works_once_in_any_case_and_spacing():
    user = UserFactory()
    _secret, codes = enable_two_factor(user)
    twofactor.two_factor_require(user=user, otp_code=codes[0].upper().replace("-", " "))
    with pytest.raises(OtpInvalid):
        twofactor.two_factor_require(user=user, otp_code=codes[0])
    assert RecoveryCode.objects.filter(user=user, used_at__isnull=False).count() == 1
    assert selectors.two_factor_status(user=user)["recovery_codes_left"] == 9
    twofactor.two_factor_require(user=user, otp_code=codes[1])


def test_a_code_spent_on_a_refused_action_is_rolled_back():
    """The check runs inside the action's transaction: a refusal keeps the code unspent."""
    from django.db import transaction

    user = UserFactory()
    _secret, codes = enable_two_factor(user)

    def action():
        with transaction.atomic():
            twofactor.two_factor_require(user=user, otp_code=codes[0])
            raise RuntimeError("the action failed")

    with pytest.raises(RuntimeError):
        action()
    twofactor.two_factor_require(user=user, otp_code=codes[0])


def test_regenerate_replaces_every_recovery_code():
    user = UserFactory()
    secret, old = enable_two_factor(user)
    with pytest.raises(OtpRequired):
        twofactor.two_factor_recovery_codes_regenerate(user=user, otp_code="")
    new = twofactor.two_factor_recovery_codes_regenerate(user=user, otp_code=code_at(secret))
    assert len(new) == 10
    assert not set(new) & set(old)
    assert RecoveryCode.objects.filter(user=user).count() == 10
    with pytest.raises(OtpInvalid):
        twofactor.two_factor_require(user=user, otp_code=old[1])
    twofactor.two_factor_require(user=user, otp_code=new[0])


def test_disable_needs_the_password_and_a_code(lockout):
    user = UserFactory()
    secret, codes = enable_two_factor(user)
    with pytest.raises(PasswordIncorrect):
        twofactor.two_factor_disable(user=user, password="wrong", otp_code=code_at(secret))
    with pytest.raises(OtpInvalid):
        twofactor.two_factor_disable(user=user, password=DEFAULT_PASSWORD, otp_code="999999x")
    assert selectors.two_factor_is_enabled(user=user)
    twofactor.two_factor_disable(user=user, password=DEFAULT_PASSWORD, otp_code=codes[3])
    assert not TwoFactorDevice.objects.filter(user=user).exists()
    assert not RecoveryCode.objects.filter(user=user).exists()
    twofactor.two_factor_require(user=user, otp_code=None)
    with pytest.raises(TwoFactorStateConflict):
        twofactor.two_factor_disable(user=user, password=DEFAULT_PASSWORD, otp_code="123456")


def test_wrong_codes_lock_the_account_like_failed_logins(lockout):
    user = UserFactory()
    secret, _codes = enable_two_factor(user)
    for _ in range(5):
        with pytest.raises(OtpInvalid):
            twofactor.two_factor_require(user=user, otp_code="abcdefgh", ip="10.1.1.1")
    with pytest.raises(LoginRateLimited) as raised:
        twofactor.two_factor_require(user=user, otp_code=fresh_code(user, secret), ip="10.1.1.2")
    assert 890 <= raised.value.details["retry_after"] <= 900
    # The lock is the login's: the right password is refused too.
    from accounts.services import auth_login

    with pytest.raises(LoginRateLimited):
        auth_login(login=user.email, password=DEFAULT_PASSWORD, otp_code=code_at(secret))


def test_a_right_code_clears_the_failure_count(lockout):
    user = UserFactory()
    secret, _codes = enable_two_factor(user)
    for _ in range(4):
        with pytest.raises(OtpInvalid):
            twofactor.two_factor_require(user=user, otp_code="111111x")
    twofactor.two_factor_require(user=user, otp_code=code_at(secret))
    for _ in range(4):
        with pytest.raises(OtpInvalid):
            twofactor.two_factor_require(user=user, otp_code="111111x")
    twofactor.two_factor_require(user=user, otp_code=code_at(secret, 1))


def test_operator_reset_is_audited_and_needs_a_reason():
    operator = UserFactory(is_staff=True)
    user = UserFactory()
    _secret, _codes = enable_two_factor(user)
    with pytest.raises(ValidationError):
        twofactor.two_factor_reset(user_id=user.pk, actor=operator, reason="  ")
    assert selectors.two_factor_is_enabled(user=user)
    twofactor.two_factor_reset(user_id=user.pk, actor=operator, reason="lost phone, ID checked")
    assert not TwoFactorDevice.objects.filter(user=user).exists()
    assert not RecoveryCode.objects.filter(user=user).exists()
    action = OperatorAction.objects.get(action="two_factor_reset")
    assert action.actor == operator
    assert action.target_id == str(user.pk)
    assert action.reason == "lost phone, ID checked"
    assert action.details["was_enabled"] is True
    assert action.details["recovery_codes_unused"] == 10
    with pytest.raises(TwoFactorStateConflict):
        twofactor.two_factor_reset(user_id=user.pk, actor=operator, reason="again")
    assert OperatorAction.objects.filter(action="two_factor_reset").count() == 1


def test_an_operator_cannot_reset_their_own():
    operator = UserFactory(is_staff=True)
    enable_two_factor(operator)
    with pytest.raises(TwoFactorStateConflict):
        twofactor.two_factor_reset(user_id=operator.pk, actor=operator, reason="lost phone")
    assert selectors.two_factor_is_enabled(user=operator)
    assert not OperatorAction.objects.filter(action="two_factor_reset").exists()


def test_the_qr_code_is_an_inline_svg():
    import base64

    uri = twofactor.qr_code_data_uri("otpauth://totp/Exchange:a%40b.c?secret=ABC&issuer=Exchange")
    assert uri.startswith("data:image/svg+xml;base64,")
    svg = base64.b64decode(uri.split(",", 1)[1]).decode()
    assert svg.startswith("<svg")
    assert "<path" in svg


def test_users_without_two_factor_are_unaffected():
    user = UserFactory()
    started = time.time()
    twofactor.two_factor_require(user=user, otp_code=None)
    twofactor.two_factor_require(user=user, otp_code="garbage")
    assert time.time() - started < 1
    assert selectors.two_factor_status(user=user) == {
        "enabled": False,
        "pending": False,
        "enabled_at": None,
        "recovery_codes_left": 0,
    }


def test_consecutive_wrong_codes_exhaust_a_daily_budget_that_outlives_the_lockout(settings):
    """The login lockout forgets its count after each lock; the two-factor budget does not:
    at OTP_MAX_FAILURES even the right code is refused, until an operator reset."""
    settings.LOGIN_LOCKOUT_FAILURES = 0  # the 15-minute lockout off: only the budget counts
    settings.LOGIN_LOCKOUT_IP_FAILURES = 0
    settings.OTP_MAX_FAILURES = 3
    user = UserFactory()
    secret, _codes = enable_two_factor(user)
    TwoFactorDevice.objects.filter(user=user).update(last_used_step=None)
    wrong = f"{(int(code_at(secret)) + 500_000) % 1_000_000:06d}"
    for _ in range(2):
        with pytest.raises(OtpInvalid):
            twofactor.two_factor_require(user=user, otp_code=wrong)
    twofactor.two_factor_require(user=user, otp_code=code_at(secret))  # resets the count
    for _ in range(3):
        with pytest.raises(OtpInvalid):
            twofactor.two_factor_require(user=user, otp_code=wrong)
    with pytest.raises(LoginRateLimited) as refused:
        twofactor.two_factor_require(user=user, otp_code=code_at(secret, 1))
    assert 0 < refused.value.details["retry_after"] <= settings.OTP_FAILURE_WINDOW_SECONDS

    operator = UserFactory(is_staff=True, is_superuser=True)
    twofactor.two_factor_reset(user_id=user.pk, actor=operator, reason="locked out, ID checked")
    secret, _codes = enable_two_factor(user)
    twofactor.two_factor_require(user=user, otp_code=code_at(secret, 1))

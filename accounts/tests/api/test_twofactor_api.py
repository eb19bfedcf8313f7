"""Two-factor authentication over the API: the /api/v1/users/2fa endpoints, and the code it
then takes to log in, withdraw and create API keys (and nothing for users without it)."""

import base64
from decimal import Decimal

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.models import ApiKey, RecoveryCode, TwoFactorDevice
from accounts.services import auth_tokens_issue
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from accounts.tests.twofactor_helpers import code_at, enable_two_factor, fresh_code
from testsupport.helpers import assert_error
from wallets import services as wallet_services
from wallets.models import Balance, LedgerEntry, Withdrawal
from wallets.tests.factories import AssetFactory

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login"
TWO_FA = "/api/v1/users/2fa"
WITHDRAWALS = "/api/v1/wallets/withdrawals"
API_KEYS = "/api/v1/api-keys"


@pytest.fixture(autouse=True)
def lockout(settings):
    settings.LOGIN_LOCKOUT_FAILURES = 5
    settings.LOGIN_LOCKOUT_IP_FAILURES = 20
    settings.LOGIN_LOCKOUT_SECONDS = 900
    settings.LOGIN_SLOWDOWN_SECONDS = 0
    settings.THROTTLING = False
    return settings


def bearer(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {auth_tokens_issue(user=user)['access_token']}")
    return client


@pytest.fixture
def alice():
    return UserFactory()


@pytest.fixture
def two_factor(alice):
    secret, codes = enable_two_factor(alice)
    return secret, codes


@pytest.fixture
def usd(db):
    asset = AssetFactory(
        code="USD", precision=2, min_withdrawal=Decimal("10"), withdrawal_fee=Decimal("1")
    )
    return asset


def fund(user, asset, amount):
    caps = {"*": "1000000000"}
    with override_settings(
        DEMO_DEPOSITS=True, DEMO_DEPOSIT_MAX_PER_REQUEST=caps, DEMO_DEPOSIT_MAX_PER_DAY=caps
    ):
        wallet_services.deposit_demo_create(
            user=user, asset_code=asset.code, amount=Decimal(amount)
        )


def login(login_name, otp_code=None, client=None):
    body = {"email": login_name, "password": DEFAULT_PASSWORD}
    if otp_code is not None:
        body["otp_code"] = otp_code
    return (client or APIClient()).post(LOGIN, body, format="json")


# --- the 2FA endpoints -----------------------------------------------------------------------


def test_enrol_confirm_and_status(alice):
    client = bearer(alice)
    assert client.get(TWO_FA).json() == {
        "enabled": False,
        "pending": False,
        "enabled_at": None,
        "recovery_codes_left": 0,
    }
    response = client.post(f"{TWO_FA}/enrol")
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["provisioning_uri"].startswith("otpauth://totp/")
    assert f"secret={body['secret']}" in body["provisioning_uri"]
    assert body["qr_code"].startswith("data:image/svg+xml;base64,")
    assert base64.b64decode(body["qr_code"].split(",", 1)[1]).startswith(b"<svg")
    assert client.get(TWO_FA).json()["pending"] is True

    assert_error(client.post(f"{TWO_FA}/confirm", {"otp_code": "000000"}), 403, "OTP_INVALID")
    assert_error(client.post(f"{TWO_FA}/confirm", {}), 400, "VALIDATION_ERROR")
    response = client.post(
        f"{TWO_FA}/confirm", {"otp_code": code_at(body["secret"])}, format="json"
    )
    assert response.status_code == 200, response.content
    codes = response.json()["recovery_codes"]
    assert len(codes) == 10
    status = client.get(TWO_FA).json()
    assert status["enabled"] is True
    assert status["pending"] is False
    assert status["recovery_codes_left"] == 10
    assert status["enabled_at"]
    # Already on: a new enrolment or a second confirm is a conflict.
    assert_error(client.post(f"{TWO_FA}/enrol"), 409, "TWO_FACTOR_STATE")
    assert_error(
        client.post(f"{TWO_FA}/confirm", {"otp_code": code_at(body["secret"], 1)}),
        409,
        "TWO_FACTOR_STATE",
    )


def test_confirm_without_enrolment_and_disable_when_off_are_conflicts(alice):
    client = bearer(alice)
    assert_error(client.post(f"{TWO_FA}/confirm", {"otp_code": "123456"}), 409, "TWO_FACTOR_STATE")
    assert_error(
        client.post(f"{TWO_FA}/disable", {"password": DEFAULT_PASSWORD, "otp_code": "123456"}),
        409,
        "TWO_FACTOR_STATE",
    )
    assert_error(
        client.post(f"{TWO_FA}/recovery-codes", {"otp_code": "123456"}), 409, "TWO_FACTOR_STATE"
    )


def test_bad_input_is_a_400(alice, two_factor):
    client = bearer(alice)
    assert_error(
        client.post(f"{TWO_FA}/confirm", {"otp_code": "1" * 65}, format="json"),
        400,
        "VALIDATION_ERROR",
    )
    assert_error(
        client.post(f"{TWO_FA}/disable", {"otp_code": ["x"]}, format="json"),
        400,
        "VALIDATION_ERROR",
    )
    assert_error(login(alice.email, otp_code="9" * 100), 400, "VALIDATION_ERROR")


def test_the_endpoints_need_authentication():
    for path in ("", "/enrol", "/confirm", "/disable", "/recovery-codes"):
        response = APIClient().post(f"{TWO_FA}{path}", {}, format="json")
        assert response.status_code in (401, 405), (path, response.status_code)
    assert_error(APIClient().get(TWO_FA), 401, "NOT_AUTHENTICATED")


def test_regenerate_recovery_codes(alice, two_factor):
    secret, old = two_factor
    client = bearer(alice)
    assert_error(client.post(f"{TWO_FA}/recovery-codes", {}), 400, "VALIDATION_ERROR")
    assert_error(
        client.post(f"{TWO_FA}/recovery-codes", {"otp_code": old[0] + "x"}), 403, "OTP_INVALID"
    )
    response = client.post(f"{TWO_FA}/recovery-codes", {"otp_code": code_at(secret)})
    assert response.status_code == 200, response.content
    new = response.json()["recovery_codes"]
    assert len(new) == 10
    assert not set(new) & set(old)
    assert_error(login(alice.email, otp_code=old[0]), 401, "OTP_INVALID")
    assert login(alice.email, otp_code=new[0]).status_code == 200


def test_disable_needs_password_and_code(alice, two_factor):
    secret, _codes = two_factor
    client = bearer(alice)
    error = assert_error(
        client.post(f"{TWO_FA}/disable", {"password": "nope", "otp_code": code_at(secret)}),
        403,
        "PASSWORD_INVALID",
    )
    assert error["details"] == {"field": "password"}
    assert_error(
        client.post(f"{TWO_FA}/disable", {"password": DEFAULT_PASSWORD, "otp_code": "000000x"}),
        403,
        "OTP_INVALID",
    )
    assert TwoFactorDevice.objects.filter(user=alice).exists()
    response = client.post(
        f"{TWO_FA}/disable", {"password": DEFAULT_PASSWORD, "otp_code": code_at(secret)}
    )
    assert response.status_code == 200, response.content
    assert response.json()["enabled"] is False
    assert not RecoveryCode.objects.filter(user=alice).exists()
    assert login(alice.email).status_code == 200


# --- login ------------------------------------------------------------------------------------


def test_login_asks_for_the_code_after_the_right_password(alice, two_factor):
    secret, _codes = two_factor
    error = assert_error(login(alice.email), 401, "OTP_REQUIRED")
    assert error["details"] == {"field": "otp_code"}
    assert_error(login(alice.email, otp_code=""), 401, "OTP_REQUIRED")
    assert_error(login(alice.email, otp_code="000000x"), 401, "OTP_INVALID")
    # A wrong password says nothing about the second factor.
    response = APIClient().post(
        LOGIN, {"email": alice.email, "password": "wrong", "otp_code": code_at(secret)}
    )
    assert_error(response, 401, "INVALID_CREDENTIALS")
    code = code_at(secret)
    response = login(alice.username, otp_code=code)
    assert response.status_code == 200, response.content
    assert response.json()["access_token"]
    # The same code again is a replay.
    assert_error(login(alice.email, otp_code=code), 401, "OTP_INVALID")


def test_login_with_a_recovery_code_once(alice, two_factor):
    _secret, codes = two_factor
    assert login(alice.email, otp_code=codes[4]).status_code == 200
    assert_error(login(alice.email, otp_code=codes[4]), 401, "OTP_INVALID")


def test_wrong_login_codes_lock_the_account(alice, two_factor):
    secret, _codes = two_factor
    for _ in range(5):
        assert_error(login(alice.email, otp_code="123456x"), 401, "OTP_INVALID")
    response = login(alice.email, otp_code=fresh_code(alice, secret))
    error = assert_error(response, 429, "LOGIN_LOCKED")
    assert 890 <= int(response["Retry-After"]) <= 900
    assert error["details"]["retry_after"] == int(response["Retry-After"])


def test_a_right_password_does_not_clear_the_count_of_wrong_codes(alice, two_factor):
    """Else a guesser who knows the password would get a fresh count with every try."""
    for _ in range(4):
        assert_error(login(alice.email, otp_code="123456x"), 401, "OTP_INVALID")
    assert_error(login(alice.email), 401, "OTP_REQUIRED")
    assert_error(login(alice.email, otp_code="123456x"), 401, "OTP_INVALID")
    assert_error(login(alice.email, otp_code="123456x"), 429, "LOGIN_LOCKED")


def test_users_without_two_factor_log_in_with_the_password_alone(alice):
    assert login(alice.email).status_code == 200
    assert login(alice.email, otp_code="whatever").status_code == 200


# --- withdrawals ------------------------------------------------------------------------------


def _state(user):
    return (
        Withdrawal.objects.filter(user=user).count(),
        LedgerEntry.objects.filter(user=user).count(),
        list(Balance.objects.filter(user=user).values_list("available", "locked")),
    )


def test_withdrawal_needs_a_code(alice, two_factor, usd):
    secret, codes = two_factor
    fund(alice, usd, "100")
    client = bearer(alice)
    body = {"asset": "USD", "amount": "20", "address": "payout-1"}
    before = _state(alice)
    assert_error(client.post(WITHDRAWALS, body, format="json"), 403, "OTP_REQUIRED")
    assert_error(
        client.post(WITHDRAWALS, {**body, "otp_code": "000000x"}, format="json"),
        403,
        "OTP_INVALID",
    )
    assert _state(alice) == before
    code = code_at(secret)
    response = client.post(WITHDRAWALS, {**body, "otp_code": code}, format="json")
    assert response.status_code == 201, response.content
    assert Balance.objects.get(user=alice, asset=usd).locked == Decimal("21")
    after = _state(alice)
    assert_error(
        client.post(WITHDRAWALS, {**body, "otp_code": code}, format="json"), 403, "OTP_INVALID"
    )
    assert _state(alice) == after
    response = client.post(WITHDRAWALS, {**body, "otp_code": codes[0]}, format="json")
    assert response.status_code == 201, response.content


def test_a_refused_withdrawal_does_not_spend_the_recovery_code(alice, two_factor, usd):
    _secret, codes = two_factor
    fund(alice, usd, "15")
    client = bearer(alice)
    body = {"asset": "USD", "amount": "20", "address": "payout-1", "otp_code": codes[0]}
    assert_error(client.post(WITHDRAWALS, body, format="json"), 422, "INSUFFICIENT_BALANCE")
    assert RecoveryCode.objects.filter(user=alice, used_at__isnull=True).count() == 10
    fund(alice, usd, "100")
    assert client.post(WITHDRAWALS, body, format="json").status_code == 201


def test_withdrawal_without_two_factor_needs_no_code(alice, usd):
    fund(alice, usd, "100")
    response = bearer(alice).post(
        WITHDRAWALS, {"asset": "USD", "amount": "20", "address": "payout-1"}, format="json"
    )
    assert response.status_code == 201, response.content


def test_wrong_withdrawal_codes_lock_logins_too(alice, two_factor, usd):
    secret, _codes = two_factor
    fund(alice, usd, "100")
    client = bearer(alice)
    body = {"asset": "USD", "amount": "20", "address": "payout-1", "otp_code": "1234567"}
    for _ in range(5):
        assert_error(client.post(WITHDRAWALS, body, format="json"), 403, "OTP_INVALID")
    body["otp_code"] = fresh_code(alice, secret)
    response = client.post(WITHDRAWALS, body, format="json")
    error = assert_error(response, 429, "LOGIN_LOCKED")
    assert error["details"]["retry_after"] == int(response["Retry-After"])
    assert_error(login(alice.email, otp_code=code_at(secret)), 429, "LOGIN_LOCKED")
    assert not Withdrawal.objects.filter(user=alice).exists()


# --- API keys ---------------------------------------------------------------------------------


def test_api_key_creation_needs_a_code(alice, two_factor):
    secret, _codes = two_factor
    client = bearer(alice)
    body = {"label": "bot", "permissions": ["read"]}
    assert_error(client.post(API_KEYS, body, format="json"), 403, "OTP_REQUIRED")
    assert_error(
        client.post(API_KEYS, {**body, "otp_code": "999999x"}, format="json"), 403, "OTP_INVALID"
    )
    assert not ApiKey.objects.filter(user=alice).exists()
    response = client.post(API_KEYS, {**body, "otp_code": code_at(secret)}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["secret"]
    assert ApiKey.objects.filter(user=alice).count() == 1


def test_api_key_creation_without_two_factor_needs_no_code(alice):
    response = bearer(alice).post(API_KEYS, {"label": "bot"}, format="json")
    assert response.status_code == 201, response.content


def test_the_endpoints_are_in_the_openapi_schema():
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path in ("", "/enrol", "/confirm", "/disable", "/recovery-codes"):
        assert f"{TWO_FA}{path}" in schema["paths"] or f"{TWO_FA}{path}/" in schema["paths"], path
    login_body = schema["components"]["schemas"]["LoginInputRequest"]["properties"]
    assert "otp_code" in login_body

"""Two-factor authentication on the pages (Django's test client): the login's code step, the
profile's set-up / recovery codes / turn-off forms, the wallet and API-key forms, and the
admin's column and audited reset."""

import re
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.test import Client

from accounts.models import OperatorAction, TwoFactorDevice
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from accounts.tests.twofactor_helpers import code_at, enable_two_factor, fresh_code

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
CODE = "/accounts/login/code/"
PROFILE = "/accounts/profile/"
TWO_FA = "/accounts/profile/2fa/"
USERS = "/admin/accounts/user/"


@pytest.fixture(autouse=True)
def lockout(settings):
    settings.LOGIN_LOCKOUT_FAILURES = 5
    settings.LOGIN_LOCKOUT_SECONDS = 900
    settings.LOGIN_SLOWDOWN_SECONDS = 0
    settings.THROTTLING = False
    return settings


def logged_in_as(client) -> int | None:
    user_id = client.session.get("_auth_user_id")
    return int(user_id) if user_id else None


def session_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- login ------------------------------------------------------------------------------------


def test_login_page_asks_for_the_code_in_a_second_step():
    user = UserFactory()
    secret, _codes = enable_two_factor(user)
    client = Client()
    response = client.post(
        LOGIN, {"username": user.email, "password": DEFAULT_PASSWORD, "next": "/wallet/"}
    )
    assert response.status_code == 302
    assert response["Location"] == CODE
    assert logged_in_as(client) is None
    page = client.get(CODE)
    assert page.status_code == 200
    assert b'name="otp_code"' in page.content
    assert b"csrfmiddlewaretoken" in page.content

    response = client.post(CODE, {"otp_code": "000000x"})
    assert response.status_code == 200
    assert b"wrong, expired or already used" in response.content
    assert logged_in_as(client) is None

    response = client.post(CODE, {"otp_code": code_at(secret)})
    assert response.status_code == 302
    assert response["Location"] == "/wallet/"
    assert logged_in_as(client) == user.pk
    assert "two_factor_login" not in client.session


def test_login_page_takes_a_recovery_code():
    user = UserFactory()
    _secret, codes = enable_two_factor(user)
    client = Client()
    client.post(LOGIN, {"username": user.username, "password": DEFAULT_PASSWORD})
    response = client.post(CODE, {"otp_code": codes[2]})
    assert response.status_code == 302
    assert logged_in_as(client) == user.pk


def test_a_wrong_password_never_reaches_the_code_step():
    user = UserFactory()
    enable_two_factor(user)
    client = Client()
    response = client.post(LOGIN, {"username": user.email, "password": "wrong"})
    assert response.status_code == 200
    assert "two_factor_login" not in client.session
    assert client.get(CODE)["Location"] == LOGIN


def test_the_code_step_without_a_password_sends_back_to_login():
    client = Client()
    response = client.get(CODE)
    assert response.status_code == 302
    assert response["Location"] == LOGIN
    response = client.post(CODE, {"otp_code": "123456"})
    assert response.status_code == 302
    assert response["Location"] == LOGIN
    assert logged_in_as(client) is None


def test_wrong_codes_on_the_page_lock_the_login():
    user = UserFactory()
    secret, _codes = enable_two_factor(user)
    client = Client()
    client.post(LOGIN, {"username": user.email, "password": DEFAULT_PASSWORD})
    for _ in range(5):
        client.post(CODE, {"otp_code": "999999x"})
    response = client.post(CODE, {"otp_code": fresh_code(user, secret)})
    assert response.status_code == 200
    assert b"Too many failed logins" in response.content
    assert logged_in_as(client) is None


def test_login_page_without_two_factor_is_unchanged():
    user = UserFactory()
    client = Client()
    response = client.post(LOGIN, {"username": user.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    assert response["Location"] != CODE
    assert logged_in_as(client) == user.pk


# --- profile ----------------------------------------------------------------------------------


def _codes_in(content: bytes) -> list[str]:
    return re.findall(
        r"<li>([2-9a-z]{4}-[2-9a-z]{4}-[2-9a-z]{4}-[2-9a-z]{4})</li>", content.decode()
    )


def test_profile_set_up_shows_the_qr_code_then_the_recovery_codes_once():
    user = UserFactory()
    client = session_for(user)
    page = client.get(PROFILE)
    assert b"Set up two-factor authentication" in page.content

    response = client.post(TWO_FA, {"action": "begin"})
    assert response.status_code == 302
    assert response["Location"].endswith("#two-factor")
    page = client.get(PROFILE)
    assert b'src="data:image/svg+xml;base64,' in page.content
    secret = re.search(rb'id="two-factor-secret">([A-Z2-7 ]+)<', page.content).group(1)
    secret = secret.decode().replace(" ", "")
    assert TwoFactorDevice.objects.get(user=user).confirmed_at is None

    response = client.post(TWO_FA, {"action": "confirm", "confirm-otp_code": "000000"})
    assert response.status_code == 200
    assert b"wrong, expired or already used" in response.content
    assert TwoFactorDevice.objects.get(user=user).confirmed_at is None

    response = client.post(TWO_FA, {"action": "confirm", "confirm-otp_code": code_at(secret)})
    assert response.status_code == 200
    codes = _codes_in(response.content)
    assert len(codes) == 10
    assert TwoFactorDevice.objects.get(user=user).confirmed_at is not None
    # Shown once: the profile does not show them again.
    page = client.get(PROFILE)
    assert _codes_in(page.content) == []
    assert b"10 unused" in page.content


def test_profile_regenerates_codes_and_turns_it_off():
    user = UserFactory()
    secret, old = enable_two_factor(user)
    client = session_for(user)
    response = client.post(TWO_FA, {"action": "regenerate", "regenerate-otp_code": "12"})
    assert _codes_in(response.content) == []
    response = client.post(TWO_FA, {"action": "regenerate", "regenerate-otp_code": old[0]})
    new = _codes_in(response.content)
    assert len(new) == 10
    assert not set(new) & set(old)

    response = client.post(
        TWO_FA,
        {"action": "disable", "disable-password": "wrong", "disable-otp_code": code_at(secret)},
    )
    assert response.status_code == 200
    assert b"The password is wrong." in response.content
    assert TwoFactorDevice.objects.filter(user=user).exists()
    response = client.post(
        TWO_FA,
        {
            "action": "disable",
            "disable-password": DEFAULT_PASSWORD,
            "disable-otp_code": code_at(secret),
        },
    )
    assert response.status_code == 302
    assert not TwoFactorDevice.objects.filter(user=user).exists()


def test_profile_forms_need_the_csrf_token():
    user = UserFactory()
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(TWO_FA, {"action": "begin"}).status_code == 403
    assert not TwoFactorDevice.objects.filter(user=user).exists()
    page = client.get(PROFILE).content.decode()
    forms = re.findall(r'<form method="post" action="/accounts/profile/2fa/".*?</form>', page, re.S)
    assert forms
    assert all("csrfmiddlewaretoken" in form for form in forms)


def test_profile_two_factor_needs_a_login():
    response = Client().post(TWO_FA, {"action": "begin"})
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)
    assert Client().get(TWO_FA, follow=False).status_code in (302, 405)


def test_profile_and_wallet_ask_for_a_code_only_when_it_is_on():
    user = UserFactory()
    client = session_for(user)
    assert b'id="api-key-otp"' not in client.get(PROFILE).content
    assert b'id="withdraw-otp"' not in client.get("/wallet/").content
    enable_two_factor(user)
    assert b'id="api-key-otp"' in client.get(PROFILE).content
    assert b'id="withdraw-otp"' in client.get("/wallet/").content


def test_session_requests_of_the_pages_need_the_code_too():
    """The wallet and profile scripts post with the session: the same services check."""
    from accounts.tests.api.test_twofactor_api import fund
    from wallets.tests.factories import AssetFactory

    usd = AssetFactory(code="USD", precision=2, min_withdrawal=Decimal("10"))
    user = UserFactory()
    secret, _codes = enable_two_factor(user)
    fund(user, usd, "100")
    client = session_for(user)
    body = {"asset": "USD", "amount": "20", "address": "payout-1"}
    response = client.post("/api/v1/wallets/withdrawals", body, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "OTP_REQUIRED"
    response = client.post(
        "/api/v1/wallets/withdrawals",
        {**body, "otp_code": code_at(secret)},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    response = client.post("/api/v1/api-keys", {"label": "x"}, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "OTP_REQUIRED"


# --- admin ------------------------------------------------------------------------------------


@pytest.fixture
def operator():
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="operators"))
    return user


def test_admin_shows_two_factor_and_resets_it_with_a_reason(operator):
    user = UserFactory()
    enable_two_factor(user)
    client = session_for(operator)
    listing = client.get(USERS)
    assert listing.status_code == 200
    # The column is the boolean (on / off), not the user's device shown as a link.
    cells = re.findall(r'<td class="field-two_factor_enabled">(.*?)</td>', listing.content.decode())
    yes = '<img src="/static/admin/img/icon-yes.svg" alt="True">'
    no = '<img src="/static/admin/img/icon-no.svg" alt="False">'
    assert cells.count(yes) == 1  # only ``user`` has it on (the operator and system: off)
    assert set(cells) == {yes, no}
    device = TwoFactorDevice.objects.get(user=user)
    change_page = client.get(f"{USERS}{user.pk}/change/").content.decode()
    assert f"/admin/accounts/twofactordevice/{device.pk}/change/" not in change_page
    assert re.search(r"field-two_factor_enabled.*?icon-yes\.svg", change_page, re.S)
    data = {"action": "reset_two_factor", ACTION_CHECKBOX_NAME: [user.pk], "index": 0}
    response = client.post(USERS, data)
    assert response.status_code == 200
    assert b"reason" in response.content
    assert TwoFactorDevice.objects.filter(user=user).exists()
    response = client.post(USERS, {**data, "reason": "lost phone; ID checked"})
    assert response.status_code == 302
    assert not TwoFactorDevice.objects.filter(user=user).exists()
    action = OperatorAction.objects.get(action="two_factor_reset")
    assert (action.actor, action.target_id, action.reason) == (
        operator,
        str(user.pk),
        "lost phone; ID checked",
    )
    # The user logs in with the password alone again.
    response = Client().post(LOGIN, {"username": user.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    assert response["Location"] != CODE


def test_staff_outside_the_operators_cannot_reset():
    outsider = UserFactory(is_staff=True)
    user = UserFactory()
    enable_two_factor(user)
    client = session_for(outsider)
    data = {
        "action": "reset_two_factor",
        ACTION_CHECKBOX_NAME: [user.pk],
        "index": 0,
        "reason": "x",
    }
    client.post(USERS, data)
    assert TwoFactorDevice.objects.filter(user=user).exists()
    assert not OperatorAction.objects.filter(action="two_factor_reset").exists()


def test_admin_login_of_a_two_factor_account_is_refused_with_a_hint(operator):
    operator.set_password(DEFAULT_PASSWORD)
    operator.save()
    enable_two_factor(operator)
    client = Client()
    response = client.post(
        "/admin/login/", {"username": operator.email, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 200
    assert b"login page" in response.content
    assert logged_in_as(client) is None


def test_an_operator_cannot_reset_their_own_two_factor(operator):
    enable_two_factor(operator)
    client = session_for(operator)
    data = {
        "action": "reset_two_factor",
        ACTION_CHECKBOX_NAME: [operator.pk],
        "index": 0,
        "reason": "lost my phone",
    }
    response = client.post(USERS, data, follow=True)
    assert b"your own two-factor" in response.content
    assert TwoFactorDevice.objects.filter(user=operator, confirmed_at__isnull=False).exists()
    assert not OperatorAction.objects.filter(action="two_factor_reset").exists()


def test_the_browsable_api_login_refuses_a_two_factor_account():
    user = UserFactory()
    enable_two_factor(user)
    client = Client()
    response = client.post(
        "/api-auth/login/", {"username": user.email, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 200
    assert b"login page" in response.content
    assert logged_in_as(client) is None
    assert client.get("/api/v1/users/2fa").status_code in (401, 403)


def test_pages_with_codes_and_keys_are_never_cached():
    user = UserFactory()
    client = session_for(user)
    client.post(TWO_FA, {"action": "begin"})
    assert "no-store" in client.get(PROFILE)["Cache-Control"]
    response = client.post(TWO_FA, {"action": "confirm", "confirm-otp_code": "000000"})
    assert "no-store" in response["Cache-Control"]
    anonymous = Client()
    assert "no-store" in anonymous.get(CODE)["Cache-Control"]

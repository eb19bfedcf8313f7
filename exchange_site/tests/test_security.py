"""Issue 11, item 2: the deployment checks, headers and cookies with DEBUG off, CORS, CSRF on
the page forms, the admin for staff only, and credentials of users who are gone.

Covered elsewhere, not repeated here: refresh rotation and its blacklist
(accounts/tests/api/test_auth.py ``test_refresh_rotates_and_blacklists_the_old_token``,
``test_logout_revokes_the_refresh_token``); a frozen user's access token, refresh token,
login and session (accounts/tests/admin/test_users.py
``test_freeze_blocks_logins_tokens_and_sessions_at_once``) and API key
(trading/tests/binance/test_signing.py ``test_a_frozen_owner_is_refused_at_once``); the
WebSocket origin check (marketdata/tests/test_stream_consumer.py).
"""

import os
import secrets
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.middleware.csrf import get_token
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import ApiKey
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from testsupport.helpers import assert_error
from trading.tests.binance.conftest import BinanceClient

pytestmark = pytest.mark.django_db

PROFILE = "/api/v1/users/profile"
REFRESH = "/api/v1/auth/refresh"
EVIL = "https://evil.example"


# --- manage.py check --deploy ----------------------------------------------------------


def production_environment() -> dict[str, str]:
    """What a production deployment sets (README); nothing else differs from the tests."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "SECURE_", "CSRF_", "SESSION_"))
    }
    environment.update(
        {
            "DJANGO_SETTINGS_MODULE": "exchange_site.settings",
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "ALLOWED_HOSTS": "exchange.example",
            "CSRF_TRUSTED_ORIGINS": "https://exchange.example",
            "SECURE_SSL_REDIRECT": "1",
            "SECURE_COOKIES": "1",
            "SECURE_HSTS_SECONDS": "31536000",
            "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
            "SECURE_HSTS_PRELOAD": "1",
        }
    )
    return environment


def test_check_deploy_is_clean_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=django_settings.BASE_DIR,
        env=production_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_check_deploy_warns_about_the_insecure_defaults():
    """The check above is clean because of the production values, not because it is blind."""
    environment = production_environment()
    for name in ("SECURE_SSL_REDIRECT", "SECURE_COOKIES", "SECURE_HSTS_SECONDS"):
        environment.pop(name)

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=django_settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr + result.stdout


# --- headers and cookies with DEBUG off -------------------------------------------------


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    return settings


@pytest.mark.parametrize(
    "path", ["/", "/accounts/login/", "/api/v1/markets", "/api/v1/health", "/api/v3/ping"]
)
def test_security_headers_on_pages_and_api(production, path):
    response = Client().get(path, secure=True)

    assert response.status_code == 200, response.content
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["Strict-Transport-Security"] == ("max-age=31536000; includeSubDomains; preload")


def test_errors_carry_the_headers_too(production):
    response = Client().get("/api/v1/orders", secure=True)

    assert_error(response, 401, "NOT_AUTHENTICATED")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" in response


def test_hsts_is_off_unless_configured(settings):
    settings.SECURE_HSTS_SECONDS = 0

    response = Client().get("/", secure=True)

    assert "Strict-Transport-Security" not in response
    assert response["X-Frame-Options"] == "DENY"


def test_plain_http_is_redirected_to_https_when_configured(settings):
    settings.SECURE_SSL_REDIRECT = True
    # Behind a proxy (NUM_PROXIES > 0), which is when the settings trust X-Forwarded-Proto.
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    plain = Client().get("/api/v1/markets")
    behind_tls_proxy = Client().get("/api/v1/markets", HTTP_X_FORWARDED_PROTO="https")

    assert plain.status_code == 301
    assert plain["Location"] == "https://testserver/api/v1/markets"
    assert behind_tls_proxy.status_code == 200


def test_session_and_csrf_cookies_are_secure_httponly_and_same_site(production):
    user = UserFactory()
    client = Client(enforce_csrf_checks=True)
    form = client.get("/accounts/login/", secure=True)
    csrf_cookie = form.cookies[django_settings.CSRF_COOKIE_NAME]

    login = client.post(
        "/accounts/login/",
        {
            "username": user.email,
            "password": DEFAULT_PASSWORD,
            "csrfmiddlewaretoken": csrf_cookie.value,
        },
        secure=True,
        # Over HTTPS the CSRF check also wants a same-origin Referer.
        HTTP_REFERER="https://testserver/accounts/login/",
    )

    assert login.status_code == 302, login.content
    session_cookie = login.cookies[django_settings.SESSION_COOKIE_NAME]
    for cookie in (session_cookie, csrf_cookie):
        assert cookie["secure"] is True
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Lax"


def test_pages_hand_the_csrf_token_to_scripts_without_the_cookie():
    """The CSRF cookie is HttpOnly, so page scripts read the token from the page."""
    client = Client()
    client.force_login(UserFactory())

    page = client.get("/wallet/")

    assert page.status_code == 200
    assert b'<meta name="csrf-token" content="' in page.content


# --- CORS ------------------------------------------------------------------------------


def cors_headers(response) -> dict[str, str]:
    return {k: v for k, v in response.items() if k.lower().startswith("access-control-")}


@pytest.mark.parametrize(
    "path", ["/", "/accounts/login/", "/api/v1/markets", "/api/v1/orders", "/api/v3/depth"]
)
def test_cors_is_closed_to_other_origins(auth_client, path):
    query = "?symbol=BTCUSD" if path.startswith("/api/v3/") else ""

    simple = auth_client.get(path + query, HTTP_ORIGIN=EVIL)
    preflight = auth_client.options(
        path,
        HTTP_ORIGIN=EVIL,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )

    assert simple.status_code < 500
    assert preflight.status_code < 500
    assert cors_headers(simple) == {}
    assert cors_headers(preflight) == {}


def test_a_cross_site_form_post_with_a_session_is_refused(user):
    """Without CORS a foreign page can still submit a form; CSRF stops that."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    response = client.post(
        "/api/v1/orders",
        {"symbol": "BTC-USD", "side": "buy", "type": "limit", "price": "1", "quantity": "1"},
        HTTP_ORIGIN=EVIL,
        HTTP_REFERER=f"{EVIL}/",
    )

    assert response.status_code == 403
    assert cors_headers(response) == {}


# --- CSRF on every page form ------------------------------------------------------------


def page_forms(user) -> list[tuple[str, dict]]:
    """Every page that accepts a POST, with a body it would otherwise act on."""
    return [
        ("/accounts/login/", {"username": user.email, "password": DEFAULT_PASSWORD}),
        (
            "/accounts/signup/",
            {
                "email": "newcomer@example.com",
                "username": "newcomer",
                "password1": "a-Long-unusual-passphrase-42",
                "password2": "a-Long-unusual-passphrase-42",
            },
        ),
        ("/accounts/profile/", {"username": "renamed", "full_name": "Renamed"}),
        ("/accounts/logout/", {}),
        ("/api-auth/login/", {"username": user.email, "password": DEFAULT_PASSWORD}),
    ]


@pytest.mark.parametrize("index", range(5))
def test_page_forms_refuse_a_post_without_the_csrf_token(index):
    user = UserFactory()
    path, body = page_forms(user)[index]
    client = Client(enforce_csrf_checks=True)
    if path in ("/accounts/profile/", "/accounts/logout/"):
        client.force_login(user)
    before = (user.username, user.full_name)

    response = client.post(path, body)

    assert response.status_code == 403, (path, response.status_code)
    user.refresh_from_db()
    assert (user.username, user.full_name) == before
    assert not type(user).objects.filter(email="newcomer@example.com").exists()
    if path == "/accounts/logout/":
        assert client.get("/api/v1/account/balance").status_code == 200


def test_page_forms_carry_the_csrf_token():
    user = UserFactory()
    anonymous = Client()
    signed_in = Client()
    signed_in.force_login(user)

    pages = [
        anonymous.get("/accounts/login/"),
        anonymous.get("/accounts/signup/"),
        signed_in.get("/accounts/profile/"),
        signed_in.get("/accounts/logout/"),
    ]

    for page in pages:
        assert page.status_code == 200
        assert b'name="csrfmiddlewaretoken"' in page.content


def test_a_page_form_with_its_token_works():
    """The refusal above is the CSRF check, not a broken form."""
    user = UserFactory()
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    request = RequestFactory().get("/")
    token = get_token(request)
    client.cookies[django_settings.CSRF_COOKIE_NAME] = request.META["CSRF_COOKIE"]

    response = client.post(
        "/accounts/profile/",
        {"username": "renamed", "full_name": "Renamed", "csrfmiddlewaretoken": token},
    )

    assert response.status_code == 302, response.content
    user.refresh_from_db()
    assert user.username == "renamed"


# --- the admin is for staff only -------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/admin/", "/admin/accounts/user/", "/admin/wallets/withdrawal/", "/admin/doc/"]
)
def test_the_admin_sends_a_signed_in_non_staff_user_to_its_login(path):
    client = Client()
    client.force_login(UserFactory())

    response = client.get(path)

    assert response.status_code in (302, 404)
    if response.status_code == 302:
        assert response["Location"].startswith("/admin/login/")


def test_a_non_staff_user_cannot_log_into_the_admin():
    user = UserFactory()
    client = Client()

    response = client.post(
        "/admin/login/?next=/admin/", {"username": user.email, "password": DEFAULT_PASSWORD}
    )

    assert response.status_code == 200  # the form again, with an error
    assert b"staff account" in response.content
    assert client.get("/admin/").status_code == 302


def test_staff_reach_the_admin():
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    assert client.get("/admin/").status_code == 200


# --- tokens and keys of users who are gone -----------------------------------------------


def test_access_tokens_are_short_lived_and_refresh_tokens_rotate():
    jwt = django_settings.SIMPLE_JWT

    assert jwt["ACCESS_TOKEN_LIFETIME"] <= timedelta(minutes=15)
    assert jwt["REFRESH_TOKEN_LIFETIME"] <= timedelta(days=30)
    assert jwt["ROTATE_REFRESH_TOKENS"] is True
    assert jwt["BLACKLIST_AFTER_ROTATION"] is True
    assert "rest_framework_simplejwt.token_blacklist" in django_settings.INSTALLED_APPS


def _credentials(user):
    tokens = account_services.auth_tokens_issue(user=user)
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    api_key, secret = account_services.api_key_create(
        user=user, label="bot", permissions=["read", "trade"]
    )
    signed = BinanceClient(api_key.key, secret)
    session = Client()
    session.force_login(user)
    return tokens, bearer, signed, session


def _assert_binance_refused(response):
    assert response.status_code == 401, response.content
    assert response.json()["code"] == -2015


def _remove(user, how: str) -> None:
    if how == "deleted":
        user.delete()
    elif how == "deactivated":
        type(user).objects.filter(pk=user.pk).update(is_active=False)
    else:
        operator = UserFactory(is_staff=True)
        account_services.user_freeze(user_id=user.pk, actor=operator, reason="fraud report")


@pytest.mark.parametrize("how", ["deleted", "deactivated", "frozen"])
def test_credentials_of_a_removed_user_stop_working_at_once(how):
    user = UserFactory()
    tokens, bearer, signed, session = _credentials(user)
    assert bearer.get(PROFILE).status_code == 200
    assert signed.send("GET", "account", signed.payload()).status_code == 200
    assert session.get("/api/v1/users/profile").status_code == 200
    assert session.get("/accounts/profile/").status_code == 200

    _remove(user, how)

    access = bearer.get(PROFILE)
    refresh = APIClient().post(REFRESH, {"refresh_token": tokens["refresh_token"]}, format="json")
    if how == "frozen":
        assert_error(access, 403, "ACCOUNT_FROZEN")
        assert_error(refresh, 403, "ACCOUNT_FROZEN")
    else:
        assert access.status_code == 401, access.content
        assert_error(refresh, 401, "TOKEN_INVALID")
    _assert_binance_refused(signed.send("GET", "account", signed.payload()))
    assert session.get("/api/v1/users/profile").status_code in (401, 403)
    profile_page = session.get("/accounts/profile/")
    assert profile_page.status_code == 302
    assert profile_page["Location"].startswith("/accounts/login/")
    if how == "deleted":
        assert not ApiKey.objects.filter(key=signed.key).exists()


def test_a_token_already_used_is_still_refused_once_it_expires(settings):
    """Verified tokens are remembered by the authentication; their expiry is checked anew."""
    user = UserFactory()
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "ACCESS_TOKEN_LIFETIME": timedelta(seconds=1)}
    access = account_services.auth_tokens_issue(user=user)["access_token"]
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert bearer.get(PROFILE).status_code == 200
    assert bearer.get(PROFILE).status_code == 200
    time.sleep(1.1)
    assert_error(bearer.get(PROFILE), 401, "TOKEN_INVALID")

"""Login brute force: failures per account and per address are slowed, then locked for a
while (counters in the real Redis), over the API and the login page alike."""

import time

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from testsupport.helpers import assert_error

LOGIN = "/api/v1/auth/login"
PAGE = "/accounts/login/"


@pytest.fixture
def lockout(settings):
    """Five failures lock for 15 minutes; no slow-down unless a test wants one."""
    settings.LOGIN_LOCKOUT_FAILURES = 5
    settings.LOGIN_LOCKOUT_IP_FAILURES = 20
    settings.LOGIN_LOCKOUT_SECONDS = 900
    settings.LOGIN_SLOWDOWN_AFTER = 3
    settings.LOGIN_SLOWDOWN_SECONDS = 0
    # The per-address request limit of the credential endpoints is not what is tested here.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "auth": "1000/min",
        },
    }
    return settings


def _login(client, login, password, **extra):
    return client.post(LOGIN, {"email": login, "password": password}, format="json", **extra)


def _fail(client, login, times, **extra):
    for _ in range(times):
        assert_error(_login(client, login, "wrong-password", **extra), 401, "INVALID_CREDENTIALS")


def test_five_failures_lock_the_account_even_for_the_right_password(lockout, db):
    user = UserFactory()
    client = APIClient()
    _fail(client, user.email, 5)
    response = _login(client, user.email, DEFAULT_PASSWORD)
    error = assert_error(response, 429, "LOGIN_LOCKED")
    assert 890 <= int(response["Retry-After"]) <= 900
    assert error["details"]["retry_after"] == int(response["Retry-After"])
    # From another address too: the account itself is locked.
    other = APIClient(REMOTE_ADDR="10.9.9.9")
    assert_error(_login(other, user.username, DEFAULT_PASSWORD), 429, "LOGIN_LOCKED")


def test_email_and_username_count_against_the_same_account(lockout, db):
    user = UserFactory()
    client = APIClient()
    _fail(client, user.email, 3)
    _fail(client, user.username.upper(), 2)
    assert_error(_login(client, user.email, DEFAULT_PASSWORD), 429, "LOGIN_LOCKED")


def test_an_unknown_login_locks_exactly_like_a_real_one(lockout, db):
    user = UserFactory()
    real, ghost = APIClient(REMOTE_ADDR="10.0.0.1"), APIClient(REMOTE_ADDR="10.0.0.2")
    _fail(real, user.email, 5)
    _fail(ghost, "nobody@example.com", 5)
    real_answer = _login(real, user.email, "wrong-password")
    ghost_answer = _login(ghost, "nobody@example.com", "wrong-password")
    assert real_answer.status_code == ghost_answer.status_code == 429
    assert real_answer.json() == ghost_answer.json()
    assert real_answer["Retry-After"] == ghost_answer["Retry-After"]


def test_a_success_resets_the_accounts_count(lockout, db):
    user = UserFactory()
    client = APIClient()
    _fail(client, user.email, 4)
    assert _login(client, user.email, DEFAULT_PASSWORD).status_code == 200
    _fail(client, user.email, 4)
    assert _login(client, user.email, DEFAULT_PASSWORD).status_code == 200


def test_failures_slow_down_before_the_lock(lockout, db):
    lockout.LOGIN_SLOWDOWN_SECONDS = 1
    user = UserFactory()
    client = APIClient()
    _fail(client, user.email, 2)
    # No wait yet after two; the third failure asks for 1 s, even of the right password.
    _fail(client, user.email, 1)
    response = _login(client, user.email, DEFAULT_PASSWORD)
    assert_error(response, 429, "LOGIN_LOCKED")
    assert response["Retry-After"] == "1"
    time.sleep(1.1)
    # The fourth failure doubles the wait.
    _fail(client, user.email, 1)
    response = _login(client, user.email, DEFAULT_PASSWORD)
    assert_error(response, 429, "LOGIN_LOCKED")
    assert response["Retry-After"] == "2"
    time.sleep(2.1)
    assert _login(client, user.email, DEFAULT_PASSWORD).status_code == 200


def test_one_address_guessing_many_accounts_is_locked(lockout, db):
    lockout.LOGIN_LOCKOUT_IP_FAILURES = 4
    users = UserFactory.create_batch(4)
    guesser = APIClient(REMOTE_ADDR="10.7.7.7")
    for user in users:
        _fail(guesser, user.email, 1, REMOTE_ADDR="10.7.7.7")
    fresh = UserFactory()
    assert_error(_login(guesser, fresh.email, DEFAULT_PASSWORD), 429, "LOGIN_LOCKED")
    # The accounts themselves are not locked: their owners log in from elsewhere.
    elsewhere = APIClient(REMOTE_ADDR="10.7.7.8")
    assert _login(elsewhere, users[0].email, DEFAULT_PASSWORD).status_code == 200


def test_the_lock_ends(lockout, db):
    lockout.LOGIN_LOCKOUT_SECONDS = 1
    user = UserFactory()
    client = APIClient()
    _fail(client, user.email, 5)
    assert_error(_login(client, user.email, DEFAULT_PASSWORD), 429, "LOGIN_LOCKED")
    time.sleep(1.1)
    assert _login(client, user.email, DEFAULT_PASSWORD).status_code == 200


def test_the_login_page_is_locked_with_a_form_error(lockout, db):
    user = UserFactory()
    client = Client()
    for _ in range(5):
        response = client.post(PAGE, {"username": user.email, "password": "wrong-password"})
        assert response.status_code == 200
        assert "_auth_user_id" not in client.session
    response = client.post(PAGE, {"username": user.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert "Too many failed logins. Try again in 15 minutes." in response.content.decode()
    # The page and the API share the count.
    assert_error(_login(APIClient(), user.email, DEFAULT_PASSWORD), 429, "LOGIN_LOCKED")


def test_api_failures_lock_the_page_too_and_a_page_success_resets(lockout, db):
    user = UserFactory()
    _fail(APIClient(), user.email, 4)
    client = Client()
    response = client.post(PAGE, {"username": user.username, "password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    _fail(APIClient(), user.email, 4)
    assert _login(APIClient(), user.email, DEFAULT_PASSWORD).status_code == 200

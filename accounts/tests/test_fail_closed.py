"""With Redis down, the checks that guard credentials keep their limits (issue 18): the login
lockout counts failures in the login history instead, and two-factor codes and emailing
requests are refused with 503 rather than let through uncounted.

Each test runs the cache on a private Redis server of its own and stops it mid-test."""

import pytest
from rest_framework.test import APIClient

from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from accounts.tests.twofactor_helpers import enable_two_factor, fresh_code
from testsupport.faults import PrivateRedis
from testsupport.helpers import assert_error

LOGIN = "/api/v1/auth/login"
RESET = "/api/v1/auth/password/reset"

pytestmark = pytest.mark.django_db


@pytest.fixture
def private_cache(settings):
    """The cache on a private Redis (the test may stop it); limits as in production."""
    with PrivateRedis(name="accounts-fail-closed") as server:
        settings.CACHES = {
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": server.url,
                "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
            }
        }
        settings.LOGIN_LOCKOUT_FAILURES = 5
        settings.LOGIN_LOCKOUT_IP_FAILURES = 20
        settings.LOGIN_LOCKOUT_SECONDS = 900
        settings.LOGIN_SLOWDOWN_SECONDS = 0
        yield server


def _login(login, password, otp_code=None, ip="10.1.1.1"):
    body = {"email": login, "password": password}
    if otp_code is not None:
        body["otp_code"] = otp_code
    return APIClient(REMOTE_ADDR=ip).post(LOGIN, body, format="json")


def _fail(login, times, ip="10.1.1.1"):
    for _ in range(times):
        assert_error(_login(login, "wrong-password", ip=ip), 401, "INVALID_CREDENTIALS")


def test_failures_counted_before_the_outage_still_lock_during_it(private_cache):
    user = UserFactory()
    _fail(user.email, 3)
    private_cache.stop()
    _fail(user.email, 2)

    response = _login(user.email, DEFAULT_PASSWORD)

    error = assert_error(response, 429, "LOGIN_LOCKED")
    assert 880 <= error["details"]["retry_after"] <= 900
    # From another address too: the account itself is locked.
    assert_error(_login(user.username, DEFAULT_PASSWORD, ip="10.2.2.2"), 429, "LOGIN_LOCKED")


def test_an_outage_locks_nobody_who_has_not_failed(private_cache):
    guessed, bystander = UserFactory(), UserFactory()
    private_cache.stop()
    _fail(guessed.email, 5)

    assert_error(_login(guessed.email, DEFAULT_PASSWORD), 429, "LOGIN_LOCKED")
    assert _login(bystander.email, DEFAULT_PASSWORD).status_code == 200


def test_an_unknown_login_locks_during_the_outage_like_a_real_one(private_cache):
    private_cache.stop()
    _fail("nobody@example.com", 5)

    assert_error(_login("nobody@example.com", "anything"), 429, "LOGIN_LOCKED")


def test_one_address_guessing_many_accounts_is_locked_during_the_outage(private_cache):
    private_cache.stop()
    for n in range(20):
        _fail(f"guess{n}@example.com", 1, ip="10.3.3.3")
    victim = UserFactory()

    assert_error(_login(victim.email, DEFAULT_PASSWORD, ip="10.3.3.3"), 429, "LOGIN_LOCKED")
    assert _login(victim.email, DEFAULT_PASSWORD, ip="10.4.4.4").status_code == 200


def test_a_successful_login_clears_the_account_count_in_the_history_too(private_cache):
    user = UserFactory()
    private_cache.stop()
    _fail(user.email, 4)
    assert _login(user.email, DEFAULT_PASSWORD).status_code == 200
    _fail(user.email, 4)

    assert _login(user.email, DEFAULT_PASSWORD).status_code == 200


def test_two_factor_codes_are_refused_while_redis_is_down(private_cache):
    user = UserFactory()
    secret, _recovery = enable_two_factor(user)
    private_cache.stop()

    response = _login(user.email, DEFAULT_PASSWORD, otp_code=fresh_code(user, secret))
    assert_error(response, 503, "TWO_FACTOR_UNAVAILABLE")

    private_cache.start()
    response = _login(user.email, DEFAULT_PASSWORD, otp_code=fresh_code(user, secret))
    assert response.status_code == 200, response.content


def test_the_login_page_says_two_factor_is_unavailable(private_cache, client):
    user = UserFactory()
    secret, _recovery = enable_two_factor(user)
    private_cache.stop()

    password_step = client.post(
        "/accounts/login/", {"username": user.email, "password": DEFAULT_PASSWORD}
    )
    assert password_step.status_code == 302
    code_step = client.post("/accounts/login/code/", {"otp_code": fresh_code(user, secret)})

    assert code_step.status_code == 200
    assert "briefly unavailable" in code_step.content.decode()
    assert "_auth_user_id" not in client.session


def test_password_reset_requests_are_refused_alike_while_redis_is_down(private_cache):
    user = UserFactory()
    private_cache.stop()

    known = APIClient().post(RESET, {"email": user.email}, format="json")
    unknown = APIClient().post(RESET, {"email": "nobody@example.com"}, format="json")

    assert_error(known, 503, "TEMPORARILY_UNAVAILABLE")
    assert known.json() == unknown.json()

"""Where an account is signed in and how it got there: the session list (API refresh-token
families and web sessions), signing one or all others out, the login history and the
new-device email."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import AuthSession
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from accounts.tests.recovery_helpers import (
    API_PROFILE,
    CHROME,
    FIREFOX,
    SAFARI,
    api_client,
    api_login,
    api_tokens,
    bearer,
    mails,
    page_is_logged_in,
    page_login,
    refresh,
    template_of,
)
from accounts.tests.twofactor_helpers import enable_two_factor, fresh_code
from testsupport.helpers import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("login_limits")]

SESSIONS = "/api/v1/users/sessions"
REVOKE_OTHERS = "/api/v1/users/sessions/revoke-others"
HISTORY = "/api/v1/users/login-history"


def sid(tokens: dict) -> int:
    """The session (refresh-token family) a token pair belongs to."""
    return AccessToken(tokens["access_token"])["sid"]


def session_list(client) -> list[dict]:
    response = client.get(SESSIONS)
    assert response.status_code == 200, response.content
    return response.json()["results"]


def web_session_id(browser) -> int:
    return browser.session["auth_session_id"]


def is_live(tokens: dict) -> bool:
    """Whether a token pair's access token still authenticates (without spending the
    refresh token)."""
    response = bearer(tokens["access_token"]).get(API_PROFILE)
    if response.status_code == 200:
        return True
    assert_error(response, 401, "SESSION_REVOKED")
    return False


# --- the session list ------------------------------------------------------------------------


def test_api_logins_are_listed_with_device_address_and_which_is_the_callers(user):
    mine = api_tokens(user.email, ip="10.1.1.1", user_agent=FIREFOX)
    other = api_tokens(user.email, ip="10.2.2.2", user_agent=CHROME)

    listed = session_list(bearer(mine["access_token"]))

    assert {row["id"] for row in listed} == {sid(mine), sid(other)}
    by_id = {row["id"]: row for row in listed}
    assert by_id[sid(mine)]["kind"] == by_id[sid(other)]["kind"] == "api"
    assert by_id[sid(mine)]["device"] == "Firefox on Linux"
    assert by_id[sid(other)]["device"] == "Chrome on Windows"
    assert by_id[sid(mine)]["ip"] == "10.1.1.1"
    assert by_id[sid(other)]["ip"] == "10.2.2.2"
    assert by_id[sid(other)]["user_agent"] == CHROME
    assert all(row["last_used_at"] and row["expires_at"] for row in listed)
    assert by_id[sid(mine)]["current"] is True
    assert by_id[sid(other)]["current"] is False
    # Seen from the other session, the other one is current.
    assert [row["id"] for row in session_list(bearer(other["access_token"])) if row["current"]] == [
        sid(other)
    ]


def test_page_login_opens_a_web_session(user):
    browser = page_login(user.email, user_agent=SAFARI, ip="10.3.3.3")
    mine = api_tokens(user.email)

    listed = {row["id"]: row for row in session_list(bearer(mine["access_token"]))}

    web = AuthSession.objects.get(user=user, kind=AuthSession.Kind.WEB)
    assert web.pk == web_session_id(browser)
    assert web.session_key == browser.session.session_key
    assert listed[web.pk]["kind"] == "web"
    assert listed[web.pk]["device"] == "Safari on macOS"
    assert listed[web.pk]["ip"] == "10.3.3.3"
    assert listed[web.pk]["current"] is False
    # The browser itself (session authentication) sees its own session as current.
    assert [row["id"] for row in session_list(browser) if row["current"]] == [web.pk]


def test_sessions_page_lists_the_sessions(user):
    browser = page_login(user.email, user_agent=SAFARI)
    api_tokens(user.email, user_agent=CHROME)

    page = browser.get("/accounts/sessions/")

    assert page.status_code == 200
    assert b"Safari on macOS" in page.content
    assert b"Chrome on Windows" in page.content


def test_session_endpoints_need_a_login():
    client = api_client()
    assert_error(client.get(SESSIONS), 401, "NOT_AUTHENTICATED")
    assert_error(client.post(REVOKE_OTHERS), 401, "NOT_AUTHENTICATED")
    assert_error(client.delete(f"{SESSIONS}/1"), 401, "NOT_AUTHENTICATED")
    assert_error(client.get(HISTORY), 401, "NOT_AUTHENTICATED")


# --- signing sessions out --------------------------------------------------------------------


def test_revoking_an_api_session_refuses_its_tokens_from_the_next_request(user):
    mine, other = api_tokens(user.email), api_tokens(user.email)
    assert is_live(other)
    caller = bearer(mine["access_token"])

    response = caller.delete(f"{SESSIONS}/{sid(other)}")

    assert response.status_code == 204, response.content
    assert not is_live(other)
    assert_error(refresh(other["refresh_token"]), 401, "TOKEN_INVALID")
    assert is_live(mine)
    assert refresh(mine["refresh_token"]).status_code == 200
    assert [row["id"] for row in session_list(caller)] == [sid(mine)]
    # Already ended: nothing left to revoke.
    assert_error(caller.delete(f"{SESSIONS}/{sid(other)}"), 404, "SESSION_NOT_FOUND")


def test_revoking_a_web_session_logs_that_browser_out_at_its_next_request(user):
    browser = page_login(user.email)
    assert page_is_logged_in(browser)
    mine = api_tokens(user.email)

    response = bearer(mine["access_token"]).delete(f"{SESSIONS}/{web_session_id(browser)}")

    assert response.status_code == 204, response.content
    assert not page_is_logged_in(browser)
    assert_error(browser.get(SESSIONS), 401, "NOT_AUTHENTICATED")
    assert is_live(mine)


def test_revoke_others_ends_every_session_but_the_callers(user):
    mine, other = api_tokens(user.email), api_tokens(user.email)
    browser = page_login(user.email)

    response = bearer(mine["access_token"]).post(REVOKE_OTHERS)

    assert response.status_code == 200, response.content
    assert response.json() == {"revoked": 2}
    assert is_live(mine)
    assert refresh(mine["refresh_token"]).status_code == 200
    assert not is_live(other)
    assert_error(refresh(other["refresh_token"]), 401, "TOKEN_INVALID")
    assert not page_is_logged_in(browser)
    live = AuthSession.objects.filter(user=user, revoked_at__isnull=True)
    assert list(live.values_list("pk", flat=True)) == [sid(mine)]


def test_revoking_someone_elses_session_is_404_and_it_stays_live():
    alice, bob = UserFactory(), UserFactory()
    alices, bobs = api_tokens(alice.email), api_tokens(bob.email)
    bob_browser = page_login(bob.email)
    caller = bearer(alices["access_token"])

    for session_id in (sid(bobs), web_session_id(bob_browser)):
        error = assert_error(caller.delete(f"{SESSIONS}/{session_id}"), 404, "SESSION_NOT_FOUND")
        assert int(error["details"]["id"]) == session_id
    unknown = assert_error(caller.delete(f"{SESSIONS}/999999999"), 404, "SESSION_NOT_FOUND")

    assert unknown["message"] == error["message"]
    assert is_live(bobs)
    assert refresh(bobs["refresh_token"]).status_code == 200
    assert page_is_logged_in(bob_browser)
    assert not AuthSession.objects.filter(user=bob, revoked_at__isnull=False).exists()
    # Nor does listing show another account's sessions.
    assert [row["id"] for row in session_list(caller)] == [sid(alices)]


# --- the login history -----------------------------------------------------------------------


def test_login_history_lists_successes_and_failures_newest_first(user):
    api_tokens(user.email, ip="10.0.0.1", user_agent=FIREFOX)
    assert_error(
        api_login(user.email, "wrong-password", ip="10.0.0.2", user_agent=CHROME),
        401,
        "INVALID_CREDENTIALS",
    )
    secret, _codes = enable_two_factor(user)
    assert_error(
        api_login(user.email, otp_code="000000x", ip="10.0.0.3", user_agent=SAFARI),
        401,
        "OTP_INVALID",
    )
    # The login page stops at the code step: the password was right, no code yet.
    Client(HTTP_USER_AGENT=CHROME, REMOTE_ADDR="10.0.0.4").post(
        "/accounts/login/", {"username": user.username, "password": DEFAULT_PASSWORD}
    )
    tokens = api_tokens(user.email, otp_code=fresh_code(user, secret), ip="10.0.0.5")

    response = bearer(tokens["access_token"]).get(HISTORY)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 5
    rows = [
        (row["outcome"], row["success"], row["ip"], row["device"], row["channel"])
        for row in body["results"]
    ]
    assert rows == [
        ("success", True, "10.0.0.5", "Unknown device", "api"),
        ("otp_required", False, "10.0.0.4", "Chrome on Windows", "web"),
        ("otp_invalid", False, "10.0.0.3", "Safari on macOS", "api"),
        ("bad_credentials", False, "10.0.0.2", "Chrome on Windows", "api"),
        ("success", True, "10.0.0.1", "Firefox on Linux", "api"),
    ]
    assert body["results"][3]["user_agent"] == CHROME
    assert body["results"][3]["outcome_display"] == "Wrong login or password"
    times = [row["created_at"] for row in body["results"]]
    assert times == sorted(times, reverse=True)


def test_login_history_shows_only_the_callers_own_attempts(user):
    other = UserFactory()
    api_tokens(other.email, ip="10.9.9.9")
    api_login(other.email, "wrong-password", ip="10.9.9.9")
    api_login("nobody@example.com", "wrong-password", ip="10.9.9.9")
    tokens = api_tokens(user.email, ip="10.0.0.1")

    body = bearer(tokens["access_token"]).get(HISTORY).json()

    assert body["count"] == 1
    assert [(row["outcome"], row["ip"]) for row in body["results"]] == [("success", "10.0.0.1")]


def test_the_page_login_records_a_wrong_password_in_the_history(user):
    response = Client(HTTP_USER_AGENT=FIREFOX).post(
        "/accounts/login/", {"username": user.email, "password": "wrong-password"}
    )
    assert response.status_code == 200  # the form again, with its error
    tokens = api_tokens(user.email)

    results = bearer(tokens["access_token"]).get(HISTORY).json()["results"]

    assert [(row["outcome"], row["channel"], row["device"]) for row in results] == [
        ("success", "api", "Unknown device"),  # no user agent
        ("bad_credentials", "web", "Firefox on Linux"),
    ]


# --- the new-device email --------------------------------------------------------------------


def test_a_login_from_a_new_device_emails_the_owner_once(sent_emails, committed, user):
    with committed():
        api_tokens(user.email, user_agent=FIREFOX, ip="10.0.0.1")
    assert sent_emails == []  # the very first login has nothing to compare with

    with committed():
        api_tokens(user.email, user_agent=CHROME, ip="10.0.0.2")

    [message] = sent_emails
    assert (template_of(message), message.to) == ("new_device_login", [user.email])
    assert "Chrome on Windows" in message.body
    assert "10.0.0.2" in message.body
    assert "/accounts/sessions/" in message.body

    with committed():
        api_tokens(user.email, user_agent=CHROME, ip="10.0.0.3")
        api_tokens(user.email, user_agent=FIREFOX, ip="10.0.0.4")
    assert len(sent_emails) == 1


def test_a_failed_login_from_a_new_device_sends_no_email(sent_emails, committed, user):
    with committed():
        api_tokens(user.email, user_agent=FIREFOX)
        api_login(user.email, "wrong-password", user_agent=CHROME)
    assert sent_emails == []
    # A failure does not make the device known: its first success is still new.
    with committed():
        api_tokens(user.email, user_agent=CHROME)
    assert len(mails(sent_emails, "new_device_login")) == 1


def test_a_page_login_from_a_new_device_emails_the_owner(sent_emails, committed, user):
    with committed():
        api_tokens(user.email, user_agent=FIREFOX)
        page_login(user.email, user_agent=SAFARI)
        page_login(user.email, user_agent=SAFARI)

    [message] = mails(sent_emails, "new_device_login", to=user.email)
    assert "Safari on macOS" in message.body
    assert len(sent_emails) == 1


def test_a_frozen_accounts_refused_login_is_in_its_history(user):
    user.frozen_at = user.created_at
    user.save(update_fields=["frozen_at"])

    assert_error(api_login(user.email, DEFAULT_PASSWORD), 403, "ACCOUNT_FROZEN")

    assert list(user.login_events.values_list("outcome", flat=True)) == ["frozen"]


def test_logging_out_on_the_page_ends_its_session(user):
    browser = page_login(user.email)
    mine = api_tokens(user.email)
    web_id = web_session_id(browser)

    browser.post("/accounts/logout/")

    assert [row["id"] for row in session_list(bearer(mine["access_token"]))] == [sid(mine)]
    assert AuthSession.objects.get(pk=web_id).revoked_reason == "logout"


def test_a_device_unused_for_half_a_year_is_new_again(sent_emails, committed, user):
    with committed():
        api_tokens(user.email, user_agent=FIREFOX)
        api_tokens(user.email, user_agent=CHROME)
    assert len(sent_emails) == 1
    user.login_events.update(created_at=timezone.now() - timedelta(days=181))

    with committed():
        api_tokens(user.email, user_agent=CHROME)

    assert len(mails(sent_emails, "new_device_login")) == 2


def test_pruning_drops_old_history_and_long_ended_sessions_only(settings):
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import AuthSession, LoginEvent
    from accounts.sessions import auth_history_prune
    from accounts.tests.factories import UserFactory

    settings.LOGIN_HISTORY_DAYS = 365
    settings.AUTH_SESSION_KEEP_DAYS = 30
    user = UserFactory()
    now = timezone.now()
    old_event = LoginEvent.objects.create(
        user=user, account_key="k", channel="api", outcome="success"
    )
    LoginEvent.objects.filter(pk=old_event.pk).update(created_at=now - timedelta(days=366))
    recent_event = LoginEvent.objects.create(
        user=user, account_key="k", channel="api", outcome="success"
    )
    long_revoked, recently_revoked, long_expired, live = (
        AuthSession.objects.create(user=user, kind="api", last_used_at=now, **fields)
        for fields in (
            {"revoked_at": now - timedelta(days=31)},
            {"revoked_at": now - timedelta(days=2)},
            {"expires_at": now - timedelta(days=31)},
            {"expires_at": now + timedelta(days=7)},
        )
    )

    assert auth_history_prune() == {"login_events": 1, "sessions": 2}

    assert list(LoginEvent.objects.values_list("pk", flat=True)) == [recent_event.pk]
    assert set(AuthSession.objects.values_list("pk", flat=True)) == {
        recently_revoked.pk,
        live.pk,
    }
    assert not AuthSession.objects.filter(pk__in=[long_revoked.pk, long_expired.pk]).exists()


def test_pruning_is_on_the_beat_schedule():
    from accounts.tasks import auth_history_prune_task
    from exchange_site.celery import app

    tasks = [entry["task"] for entry in app.conf.beat_schedule.values()]
    assert auth_history_prune_task.name in tasks

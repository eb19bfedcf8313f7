"""The account pages of email verification, password reset and change, email change and the
session list, driven with Django's test client the way a browser follows the emailed links."""

import pytest
from django.test import Client

from accounts.api.recovery_views import RESET_SENT, VERIFICATION_SENT
from accounts.models import AuthSession, User
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from accounts.tests.recovery_helpers import (
    API_PROFILE,
    CHROME,
    EMAIL_CHANGE_LINK,
    PAGE_LOGIN,
    RESET_LINK,
    VERIFY_LINK,
    api_tokens,
    bearer,
    link_in,
    mails,
    page_is_logged_in,
    page_login,
    template_of,
    templates_sent,
)
from accounts.tests.twofactor_helpers import enable_two_factor, fresh_code
from testsupport.helpers import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("login_limits")]

SIGNUP = "/accounts/signup/"
RESEND = "/accounts/verify-email/resend/"
RESET = "/accounts/password/reset/"
PASSWORD_CHANGE = "/accounts/password/change/"
EMAIL_CHANGE = "/accounts/email/change/"
SESSIONS = "/accounts/sessions/"
PROFILE = "/accounts/profile/"

NEW_PASSWORD = "a-brand-new-long-passphrase-77"


def logs_in_with(login: str, password: str) -> bool:
    """Whether the login page accepts the password (a fresh browser)."""
    client = Client()
    response = client.post(PAGE_LOGIN, {"username": login, "password": password})
    return response.status_code == 302 and bool(client.session.get("_auth_user_id"))


def reset_link_path(sent, user) -> str:
    [message] = mails(sent, "password_reset", to=user.email)
    return link_in(message, RESET_LINK)["path"]


def set_password_page(browser: Client, link_path: str) -> str:
    """Follow a reset link: Django moves the token into the session and redirects to the
    link's ``set-password`` form; returns the form's path."""
    response = browser.get(link_path)
    assert response.status_code == 302, response.content
    form_path = response["Location"]
    assert form_path == link_path.rsplit("/", 2)[0] + "/set-password/"
    page = browser.get(form_path)
    assert page.status_code == 200
    assert b'name="new_password1"' in page.content
    return form_path


def new_password(password: str, again: str | None = None) -> dict:
    return {"new_password1": password, "new_password2": again or password}


# --- email verification ----------------------------------------------------------------------


def test_signup_page_emails_a_link_whose_page_confirms_the_address(sent_emails, committed):
    browser = Client()
    with committed():
        response = browser.post(
            SIGNUP,
            {
                "email": "Ada@Example.com",
                "username": "ada",
                "full_name": "Ada L.",
                "password1": DEFAULT_PASSWORD,
                "password2": DEFAULT_PASSWORD,
            },
        )
    assert response.status_code == 302, response.content
    user = User.objects.get(email="ada@example.com")
    assert not user.is_verified
    [message] = sent_emails
    assert (template_of(message), message.to) == ("verify_email", ["ada@example.com"])
    link = link_in(message, VERIFY_LINK)["path"]

    response = browser.get(link)

    assert response.status_code == 302
    assert response["Location"] == PROFILE
    user.refresh_from_db()
    assert user.is_verified
    assert user.email_verified_at is not None
    # Signed out, the same link still answers (confirming again is harmless) and sends the
    # visitor to log in.
    assert Client().get(link)["Location"] == PAGE_LOGIN


def test_verify_page_refuses_an_altered_link(sent_emails, committed):
    user = UserFactory(is_verified=False)
    browser = page_login(user.email)
    with committed():
        browser.post(RESEND)
    token = link_in(mails(sent_emails, "verify_email")[0], VERIFY_LINK)["token"]

    response = Client().get(f"/accounts/verify-email/{token[:-3]}abc/")

    assert response.status_code == 400
    assert b'id="link-invalid"' in response.content
    user.refresh_from_db()
    assert not user.is_verified


def test_profile_resend_button_emails_a_logged_in_unverified_user(sent_emails, committed):
    user = UserFactory(is_verified=False)
    browser = page_login(user.email)

    with committed():
        response = browser.post(RESEND)

    assert response.status_code == 302
    assert response["Location"] == PROFILE
    assert templates_sent(sent_emails) == [("verify_email", user.email)]


def test_anonymous_resend_page_answers_alike_and_mails_only_the_unverified(sent_emails, committed):
    unverified, verified = UserFactory(is_verified=False), UserFactory()

    with committed():
        pages = [
            Client().post(RESEND, {"email": address})
            for address in (unverified.email, verified.email, "nobody@example.com")
        ]

    assert [page.status_code for page in pages] == [200, 200, 200]
    assert all(VERIFICATION_SENT.encode() in page.content for page in pages)
    assert templates_sent(sent_emails) == [("verify_email", unverified.email)]


# --- password reset --------------------------------------------------------------------------


def test_password_reset_page_answers_alike_and_mails_only_a_known_address(
    sent_emails, committed, user
):
    with committed():
        known = Client().post(RESET, {"email": user.email})
        unknown = Client().post(RESET, {"email": "nobody@example.com"})

    assert known.status_code == unknown.status_code == 200
    assert RESET_SENT.encode() in known.content
    assert RESET_SENT.encode() in unknown.content
    assert templates_sent(sent_emails) == [("password_reset", user.email)]


def test_password_reset_link_sets_a_new_password_on_the_page(sent_emails, committed, user):
    with committed():
        Client().post(RESET, {"email": user.email})
    browser = Client()
    form_path = set_password_page(browser, reset_link_path(sent_emails, user))

    with committed():
        response = browser.post(form_path, new_password(NEW_PASSWORD))

    assert response.status_code == 302, response.content
    assert response["Location"] == PAGE_LOGIN
    assert logs_in_with(user.email, NEW_PASSWORD)
    assert not logs_in_with(user.email, DEFAULT_PASSWORD)
    [notice] = mails(sent_emails, "password_changed", to=user.email)
    assert "reset with a link" in notice.body


def test_password_reset_link_works_once_on_the_page(sent_emails, committed, user):
    with committed():
        Client().post(RESET, {"email": user.email})
    link_path = reset_link_path(sent_emails, user)
    browser = Client()
    form_path = set_password_page(browser, link_path)
    assert browser.post(form_path, new_password(NEW_PASSWORD)).status_code == 302

    again = Client().get(link_path)

    assert again.status_code == 200
    assert b'id="link-invalid"' in again.content
    assert b'name="new_password1"' not in again.content
    # Nor does the form take a second password from the browser that used the link.
    browser.post(form_path, new_password("yet-another-passphrase-99"))
    assert logs_in_with(user.email, NEW_PASSWORD)


def test_password_reset_page_refuses_a_weak_password_and_changes_nothing(
    sent_emails, committed, user
):
    with committed():
        Client().post(RESET, {"email": user.email})
    browser = Client()
    form_path = set_password_page(browser, reset_link_path(sent_emails, user))

    with committed():
        response = browser.post(form_path, new_password("password"))
        mismatch = browser.post(form_path, new_password(NEW_PASSWORD, NEW_PASSWORD + "x"))

    assert response.status_code == 200
    assert b"This password is too common." in response.content
    assert mismatch.status_code == 200
    assert b"The two passwords differ." in mismatch.content
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)
    assert sent_emails[1:] == []  # the reset link only
    # The form still takes a good one.
    assert browser.post(form_path, new_password(NEW_PASSWORD)).status_code == 302
    assert logs_in_with(user.email, NEW_PASSWORD)


def test_password_reset_ends_an_open_web_session(sent_emails, committed, user):
    other_browser = page_login(user.email, user_agent=CHROME)
    with committed():
        Client().post(RESET, {"email": user.email})
    browser = Client()
    form_path = set_password_page(browser, reset_link_path(sent_emails, user))

    assert browser.post(form_path, new_password(NEW_PASSWORD)).status_code == 302

    assert not page_is_logged_in(other_browser)
    assert not AuthSession.objects.filter(user=user, revoked_at__isnull=True).exists()


def test_password_reset_from_the_logged_in_browser_itself_logs_it_out(sent_emails, committed, user):
    # The owner, still logged in, follows the link in the same browser.
    browser = page_login(user.email)
    with committed():
        browser.post(RESET, {"email": user.email})
    form_path = set_password_page(browser, reset_link_path(sent_emails, user))

    response = browser.post(form_path, new_password(NEW_PASSWORD))

    assert response.status_code == 302, response.content
    assert response["Location"] == PAGE_LOGIN
    assert b"Your password is changed" in browser.get(PAGE_LOGIN).content
    assert not page_is_logged_in(browser)
    assert logs_in_with(user.email, NEW_PASSWORD)


# --- password change -------------------------------------------------------------------------


def change_password(browser, current=DEFAULT_PASSWORD, new=NEW_PASSWORD, **extra):
    return browser.post(
        PASSWORD_CHANGE, {"current_password": current, **new_password(new), **extra}
    )


def test_password_change_page_keeps_this_browser_and_ends_the_others(sent_emails, committed, user):
    browser = page_login(user.email)
    other_browser = page_login(user.email, user_agent=CHROME)
    tokens = api_tokens(user.email)

    with committed():
        response = change_password(browser)

    assert response.status_code == 302, response.content
    assert response["Location"] == PROFILE
    assert page_is_logged_in(browser)
    assert not page_is_logged_in(other_browser)
    assert_error(bearer(tokens["access_token"]).get(API_PROFILE), 401, "SESSION_REVOKED")
    live = AuthSession.objects.filter(user=user, revoked_at__isnull=True)
    assert list(live.values_list("pk", flat=True)) == [browser.session["auth_session_id"]]
    [notice] = mails(sent_emails, "password_changed", to=user.email)
    assert "changed from your profile" in notice.body
    assert logs_in_with(user.email, NEW_PASSWORD)
    # This browser stays in on later requests too, under the new password.
    assert page_is_logged_in(browser)


def test_password_change_page_with_a_wrong_current_password_changes_nothing(
    sent_emails, committed, user
):
    browser = page_login(user.email)
    other_browser = page_login(user.email, user_agent=CHROME)

    with committed():
        response = change_password(browser, current="not-my-password")

    assert response.status_code == 200
    assert b"The password is wrong." in response.content
    assert page_is_logged_in(other_browser)
    assert logs_in_with(user.email, DEFAULT_PASSWORD)
    assert sent_emails == []


def test_password_change_page_with_two_factor_on_needs_a_code(sent_emails, committed, user):
    secret, _codes = enable_two_factor(user)
    browser = Client()
    browser.post(PAGE_LOGIN, {"username": user.email, "password": DEFAULT_PASSWORD})
    browser.post("/accounts/login/code/", {"otp_code": fresh_code(user, secret)})
    assert page_is_logged_in(browser)
    assert b'name="otp_code"' in browser.get(PASSWORD_CHANGE).content

    with committed():
        wrong = change_password(browser, otp_code="000000x")
    assert wrong.status_code == 200
    assert b"wrong, expired or already used" in wrong.content
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)

    with committed():
        right = change_password(browser, otp_code=fresh_code(user, secret))
    assert right.status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert templates_sent(sent_emails) == [("password_changed", user.email)]


# --- email change ----------------------------------------------------------------------------


def test_email_change_page_moves_the_account_only_on_the_confirming_post(sent_emails, committed):
    user = UserFactory(is_verified=False, email="old@example.com")
    browser = page_login(user.email)

    with committed():
        response = browser.post(
            EMAIL_CHANGE, {"new_email": "new@example.com", "password": DEFAULT_PASSWORD}
        )

    assert response.status_code == 302, response.content
    assert templates_sent(sent_emails) == [
        ("email_change_confirm", "new@example.com"),
        ("email_change_notice", "old@example.com"),
    ]
    link = link_in(sent_emails[0], EMAIL_CHANGE_LINK)["path"]
    # A GET (a mail scanner, a preview) only asks.
    page = Client().get(link)
    assert page.status_code == 200
    assert b"Confirm the change" in page.content
    user.refresh_from_db()
    assert (user.email, user.is_verified) == ("old@example.com", False)

    with committed():
        confirmed = browser.post(link)

    assert confirmed.status_code == 302
    assert confirmed["Location"] == PROFILE
    user.refresh_from_db()
    assert user.email == "new@example.com"
    assert user.is_verified
    assert templates_sent(sent_emails)[2:] == [("email_changed", "old@example.com")]
    again = Client().post(link)
    assert again.status_code == 400
    assert b'id="link-invalid"' in again.content
    assert logs_in_with("new@example.com", DEFAULT_PASSWORD)
    assert not logs_in_with("old@example.com", DEFAULT_PASSWORD)


def test_email_change_page_with_a_wrong_password_sends_nothing(sent_emails, committed, user):
    browser = page_login(user.email)
    old_email = user.email

    with committed():
        response = browser.post(EMAIL_CHANGE, {"new_email": "new@example.com", "password": "no"})

    assert response.status_code == 200
    assert b"The password is wrong." in response.content
    user.refresh_from_db()
    assert user.email == old_email
    assert sent_emails == []


# --- the sessions page -----------------------------------------------------------------------


def test_sessions_page_signs_another_browser_out(user):
    browser = page_login(user.email)
    other_browser = page_login(user.email, user_agent=CHROME)
    other_id = other_browser.session["auth_session_id"]

    response = browser.post(SESSIONS, {"action": "revoke", "session_id": other_id})

    assert response.status_code == 302
    assert response["Location"] == SESSIONS
    assert not page_is_logged_in(other_browser)
    assert page_is_logged_in(browser)


def test_sessions_page_signs_out_everywhere_else(user):
    browser = page_login(user.email)
    other_browser = page_login(user.email, user_agent=CHROME)
    tokens = api_tokens(user.email)

    response = browser.post(SESSIONS, {"action": "revoke_others"})

    assert response.status_code == 302
    assert not page_is_logged_in(other_browser)
    assert_error(bearer(tokens["access_token"]).get(API_PROFILE), 401, "SESSION_REVOKED")
    assert page_is_logged_in(browser)


def test_sessions_page_signing_out_this_browser_logs_it_out(user):
    browser = page_login(user.email)

    response = browser.post(
        SESSIONS, {"action": "revoke", "session_id": browser.session["auth_session_id"]}
    )

    assert response.status_code == 302
    assert response["Location"] == PAGE_LOGIN
    assert not page_is_logged_in(browser)


def test_sessions_page_cannot_sign_out_another_accounts_session(user):
    browser = page_login(user.email)
    stranger = page_login(UserFactory().email, user_agent=CHROME)

    browser.post(SESSIONS, {"action": "revoke", "session_id": stranger.session["auth_session_id"]})

    assert page_is_logged_in(stranger)

"""Email verification, password reset and change, email change and the security emails, over
the API. Links are read out of the emails really sent (Celery eager, the locmem outbox) and
followed the way their owner would."""

import time

import pytest
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import AuthSession, User
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from accounts.tests.recovery_helpers import (
    API_PROFILE,
    EMAIL_CHANGE_LINK,
    RESET_LINK,
    VERIFY_LINK,
    api_client,
    api_login,
    api_tokens,
    bearer,
    link_in,
    mails,
    page_is_logged_in,
    page_login,
    refresh,
    template_of,
    templates_sent,
)
from accounts.tests.twofactor_helpers import code_at, enable_two_factor, fresh_code
from testsupport.helpers import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("login_limits")]

REGISTER = "/api/v1/auth/register"
VERIFY = "/api/v1/auth/email/verify"
RESEND = "/api/v1/auth/email/verify/resend"
OWN_RESEND = "/api/v1/users/email/verify/resend"
RESET = "/api/v1/auth/password/reset"
RESET_CONFIRM = "/api/v1/auth/password/reset/confirm"
PASSWORD = "/api/v1/users/password"
EMAIL = "/api/v1/users/email"
EMAIL_CONFIRM = "/api/v1/auth/email/change/confirm"
API_KEYS = "/api/v1/api-keys"
TWO_FA = "/api/v1/users/2fa"

NEW_PASSWORD = "a-brand-new-long-passphrase-77"


def register(email="satoshi@example.com", username="satoshi"):
    payload = {"email": email, "username": username, "password": DEFAULT_PASSWORD}
    response = api_client().post(REGISTER, payload, format="json")
    assert response.status_code == 201, response.content
    return User.objects.get(email=email)


def post(path, body, *, ip="10.0.0.1"):
    return api_client(ip=ip).post(path, body, format="json")


def tampered(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


def reset_link(sent, user):
    [message] = mails(sent, "password_reset", to=user.email)
    return link_in(message, RESET_LINK)


def email_change_confirm(message):
    """Follow the confirmation link of an ``email_change_confirm`` email over the API."""
    return post(EMAIL_CONFIRM, {"token": link_in(message, EMAIL_CHANGE_LINK)["token"]})


def still_logs_in_with(user, password) -> bool:
    return api_login(user.email, password).status_code == 200


# --- email verification ----------------------------------------------------------------------


def test_register_emails_a_link_that_confirms_the_address(sent_emails, committed):
    with committed():
        user = register()
    assert not user.is_verified
    assert user.email_verified_at is None
    [message] = sent_emails
    assert template_of(message) == "verify_email"
    assert message.to == ["satoshi@example.com"]
    token = link_in(message, VERIFY_LINK)["token"]

    before = timezone.now()
    response = post(VERIFY, {"token": token})

    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert user.is_verified
    assert before <= user.email_verified_at <= timezone.now()
    # Following it again is harmless and keeps the first confirmation time.
    verified_at = user.email_verified_at
    assert post(VERIFY, {"token": token}).status_code == 200
    user.refresh_from_db()
    assert user.email_verified_at == verified_at


@pytest.mark.parametrize(
    "alter",
    [tampered, lambda token: "x" + token, lambda token: token.rsplit(":", 1)[0], lambda _t: "x"],
    ids=["signature", "payload", "no-signature", "garbage"],
)
def test_verify_refuses_an_altered_link(sent_emails, committed, alter):
    with committed():
        user = register()
    token = link_in(sent_emails[0], VERIFY_LINK)["token"]

    assert_error(post(VERIFY, {"token": alter(token)}), 400, "LINK_INVALID")

    user.refresh_from_db()
    assert not user.is_verified
    assert user.email_verified_at is None


def test_verify_refuses_an_expired_link(sent_emails, committed, settings):
    settings.EMAIL_VERIFICATION_TTL_SECONDS = 1
    with committed():
        user = register()
    token = link_in(sent_emails[0], VERIFY_LINK)["token"]
    time.sleep(1.1)  # timestamps count whole seconds: the link is now older than its TTL

    assert_error(post(VERIFY, {"token": token}), 400, "LINK_INVALID")

    user.refresh_from_db()
    assert not user.is_verified


def test_verify_refuses_a_link_for_an_address_the_account_no_longer_has(sent_emails, committed):
    with committed():
        user = register()
    old_link_token = link_in(sent_emails[0], VERIFY_LINK)["token"]
    client = bearer(api_tokens(user.email)["access_token"])
    with committed():
        response = client.post(
            EMAIL, {"new_email": "nakamoto@example.com", "password": DEFAULT_PASSWORD}
        )
    assert response.status_code == 202, response.content
    [confirm] = mails(sent_emails, "email_change_confirm")
    assert email_change_confirm(confirm).status_code == 200

    assert_error(post(VERIFY, {"token": old_link_token}), 400, "LINK_INVALID")

    user.refresh_from_db()
    assert user.email == "nakamoto@example.com"


# --- resending the link ----------------------------------------------------------------------


def test_own_resend_sends_an_unverified_account_a_working_link(sent_emails, committed):
    user = UserFactory(is_verified=False)
    client = bearer(api_tokens(user.email)["access_token"])

    with committed():
        response = client.post(OWN_RESEND)

    assert response.status_code == 202, response.content
    assert response.json()["detail"] == "A new confirmation link is on its way."
    [message] = mails(sent_emails, "verify_email", to=user.email)
    assert len(sent_emails) == 1
    assert post(VERIFY, {"token": link_in(message, VERIFY_LINK)["token"]}).status_code == 200
    user.refresh_from_db()
    assert user.is_verified


def test_own_resend_sends_nothing_to_a_verified_account(sent_emails, committed, user):
    client = bearer(api_tokens(user.email)["access_token"])

    with committed():
        response = client.post(OWN_RESEND)

    assert response.status_code == 202, response.content
    assert response.json()["detail"].startswith("Nothing sent")
    assert sent_emails == []


def test_own_resend_needs_a_login():
    assert_error(api_client().post(OWN_RESEND), 401, "NOT_AUTHENTICATED")


def test_anonymous_resend_answers_alike_and_mails_only_the_unverified_address(
    sent_emails, committed
):
    unverified = UserFactory(is_verified=False)
    verified = UserFactory()

    with committed():
        answers = [
            post(RESEND, {"email": address})
            for address in (unverified.email, verified.email, "nobody@example.com")
        ]

    assert [answer.status_code for answer in answers] == [202, 202, 202]
    assert answers[0].content == answers[1].content == answers[2].content
    assert templates_sent(sent_emails) == [("verify_email", unverified.email)]


def test_anonymous_resend_matches_the_address_in_any_case(sent_emails, committed):
    user = UserFactory(is_verified=False)

    with committed():
        response = post(RESEND, {"email": user.email.upper()})

    assert response.status_code == 202
    assert templates_sent(sent_emails) == [("verify_email", user.email)]


def test_resend_past_the_per_address_limit_answers_alike_and_sends_nothing(
    sent_emails, committed, settings
):
    settings.ACCOUNT_EMAILS_PER_ADDRESS = 2
    user = UserFactory(is_verified=False)

    # From three client addresses: the limit is the typed address's, not the client's.
    with committed():
        answers = [post(RESEND, {"email": user.email}, ip=f"10.0.0.{i}") for i in (1, 2, 3)]

    assert [answer.status_code for answer in answers] == [202, 202, 202]
    assert answers[0].content == answers[2].content
    assert len(mails(sent_emails, "verify_email", to=user.email)) == 2
    # The account's own resend spends from the same budget.
    client = bearer(api_tokens(user.email)["access_token"])
    with committed():
        response = client.post(OWN_RESEND)
    assert response.json()["detail"].startswith("Nothing sent")
    assert len(sent_emails) == 2


@pytest.mark.parametrize(
    ("path", "template"), [(RESEND, "verify_email"), (RESET, "password_reset")]
)
def test_emailing_requests_past_the_per_client_limit_are_429_for_known_and_unknown_alike(
    sent_emails, committed, settings, path, template
):
    settings.ACCOUNT_EMAIL_REQUESTS_PER_IP = 2
    known = UserFactory(is_verified=False)
    with committed():
        assert post(path, {"email": "first@example.com"}).status_code == 202
        assert post(path, {"email": "second@example.com"}).status_code == 202

        for_known = post(path, {"email": known.email})
        for_unknown = post(path, {"email": "nobody@example.com"})

    error = assert_error(for_known, 429, "THROTTLED")
    assert error["details"] == {"retry_after": 3600}
    assert for_known["Retry-After"] == "3600"
    assert for_known.content == for_unknown.content
    assert for_unknown.status_code == 429
    assert sent_emails == []
    # Another client is not held back.
    with committed():
        assert post(path, {"email": known.email}, ip="10.9.9.9").status_code == 202
    assert templates_sent(sent_emails) == [(template, known.email)]


# --- password reset --------------------------------------------------------------------------


def test_password_reset_answers_alike_and_mails_only_a_known_address(sent_emails, committed, user):
    with committed():
        known = post(RESET, {"email": user.email})
        unknown = post(RESET, {"email": "nobody@example.com"})

    assert known.status_code == unknown.status_code == 202
    assert known.content == unknown.content
    assert templates_sent(sent_emails) == [("password_reset", user.email)]


def test_password_reset_link_sets_a_new_password(sent_emails, committed, user):
    with committed():
        post(RESET, {"email": user.email})
    link = reset_link(sent_emails, user)

    response = post(
        RESET_CONFIRM, {"uid": link["uid"], "token": link["token"], "new_password": NEW_PASSWORD}
    )

    assert response.status_code == 200, response.content
    assert still_logs_in_with(user, NEW_PASSWORD)
    assert_error(api_login(user.email, DEFAULT_PASSWORD), 401, "INVALID_CREDENTIALS")


def test_password_reset_link_works_once(sent_emails, committed, user):
    with committed():
        post(RESET, {"email": user.email})
    link = reset_link(sent_emails, user)
    body = {"uid": link["uid"], "token": link["token"], "new_password": NEW_PASSWORD}
    assert post(RESET_CONFIRM, body).status_code == 200

    again = post(RESET_CONFIRM, {**body, "new_password": "yet-another-passphrase-99"})

    assert_error(again, 400, "LINK_INVALID")
    assert still_logs_in_with(user, NEW_PASSWORD)


def _uid_of(user) -> str:
    return urlsafe_base64_encode(force_bytes(user.pk))


@pytest.mark.parametrize(
    "alter",
    [
        lambda link, _other: {**link, "token": tampered(link["token"])},
        # Another account's uid with this account's token.
        lambda link, other: {**link, "uid": _uid_of(other)},
        lambda link, _other: {**link, "uid": "!!"},
    ],
    ids=["token", "other-uid", "garbage-uid"],
)
def test_password_reset_refuses_an_altered_link(sent_emails, committed, user, alter):
    other = UserFactory()
    with committed():
        post(RESET, {"email": user.email})
    link = alter(reset_link(sent_emails, user).groupdict(), other)

    response = post(RESET_CONFIRM, {**link, "new_password": NEW_PASSWORD})

    assert_error(response, 400, "LINK_INVALID")
    assert still_logs_in_with(user, DEFAULT_PASSWORD)
    assert still_logs_in_with(other, DEFAULT_PASSWORD)


def test_password_reset_refuses_a_weak_password_and_changes_nothing(sent_emails, committed, user):
    tokens = api_tokens(user.email)  # before the link: a login ends earlier reset links
    with committed():
        post(RESET, {"email": user.email})
    link = reset_link(sent_emails, user)

    with committed():
        response = post(
            RESET_CONFIRM, {"uid": link["uid"], "token": link["token"], "new_password": "password"}
        )

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "This password is too common." in error["details"]["new_password"]
    user.refresh_from_db()  # not a login: that would end the link (it hashes the last login)
    assert user.check_password(DEFAULT_PASSWORD)
    assert bearer(tokens["access_token"]).get(API_PROFILE).status_code == 200
    assert not AuthSession.objects.filter(user=user, revoked_at__isnull=False).exists()
    assert mails(sent_emails, "password_changed") == []
    # The link was not spent by the refusal.
    body = {"uid": link["uid"], "token": link["token"], "new_password": NEW_PASSWORD}
    assert post(RESET_CONFIRM, body).status_code == 200


def test_password_reset_ends_every_session_and_tells_the_owner(sent_emails, committed, user):
    first = api_tokens(user.email)
    second = api_tokens(user.email)
    browser = page_login(user.email)
    assert AuthSession.objects.filter(user=user, revoked_at__isnull=True).count() == 3
    with committed():
        post(RESET, {"email": user.email})
    link = reset_link(sent_emails, user)

    with committed():
        response = post(
            RESET_CONFIRM,
            {"uid": link["uid"], "token": link["token"], "new_password": NEW_PASSWORD},
        )

    assert response.status_code == 200, response.content
    assert not AuthSession.objects.filter(user=user, revoked_at__isnull=True).exists()
    for tokens in (first, second):
        assert_error(bearer(tokens["access_token"]).get(API_PROFILE), 401, "SESSION_REVOKED")
        assert_error(refresh(tokens["refresh_token"]), 401, "TOKEN_INVALID")
    assert not page_is_logged_in(browser)
    [notice] = mails(sent_emails, "password_changed", to=user.email)
    assert "reset with a link sent to this address" in notice.body


def test_password_reset_lifts_the_login_lockout(sent_emails, committed, user):
    for _ in range(5):
        assert_error(api_login(user.email, "wrong-password"), 401, "INVALID_CREDENTIALS")
    assert_error(api_login(user.email, DEFAULT_PASSWORD), 429, "LOGIN_LOCKED")
    with committed():
        post(RESET, {"email": user.email})
    link = reset_link(sent_emails, user)

    response = post(
        RESET_CONFIRM, {"uid": link["uid"], "token": link["token"], "new_password": NEW_PASSWORD}
    )

    assert response.status_code == 200, response.content
    assert still_logs_in_with(user, NEW_PASSWORD)


def test_password_reset_past_the_per_address_limit_answers_alike_and_sends_nothing(
    sent_emails, committed, settings, user
):
    settings.ACCOUNT_EMAILS_PER_ADDRESS = 2

    with committed():
        answers = [post(RESET, {"email": user.email}, ip=f"10.0.0.{i}") for i in (1, 2, 3)]

    assert [answer.status_code for answer in answers] == [202, 202, 202]
    assert answers[0].content == answers[2].content
    assert len(mails(sent_emails, "password_reset", to=user.email)) == 2


# --- password change -------------------------------------------------------------------------


def test_password_change_with_a_wrong_current_password_is_403_and_changes_nothing(
    sent_emails, committed, user
):
    mine, other = api_tokens(user.email), api_tokens(user.email)

    with committed():
        response = bearer(mine["access_token"]).post(
            PASSWORD, {"current_password": "not-my-password", "new_password": NEW_PASSWORD}
        )

    error = assert_error(response, 403, "PASSWORD_INVALID")
    assert error["details"] == {"field": "current_password"}
    assert still_logs_in_with(user, DEFAULT_PASSWORD)
    assert bearer(other["access_token"]).get(API_PROFILE).status_code == 200
    assert refresh(other["refresh_token"]).status_code == 200
    assert sent_emails == []


def test_password_change_refuses_a_weak_new_password(sent_emails, committed, user):
    tokens = api_tokens(user.email)

    with committed():
        response = bearer(tokens["access_token"]).post(
            PASSWORD, {"current_password": DEFAULT_PASSWORD, "new_password": "12345678"}
        )

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "This password is entirely numeric." in error["details"]["new_password"]
    assert still_logs_in_with(user, DEFAULT_PASSWORD)
    assert sent_emails == []


def test_password_change_with_two_factor_on_needs_a_code(sent_emails, committed, user):
    secret, _codes = enable_two_factor(user)
    client = bearer(api_tokens(user.email, otp_code=fresh_code(user, secret))["access_token"])
    body = {"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD}

    with committed():
        missing = client.post(PASSWORD, body)
        wrong = client.post(PASSWORD, {**body, "otp_code": "000000x"})

    assert_error(missing, 403, "OTP_REQUIRED")
    assert_error(wrong, 403, "OTP_INVALID")
    assert (
        api_login(user.email, DEFAULT_PASSWORD, otp_code=fresh_code(user, secret)).status_code
        == 200
    )
    assert sent_emails == []

    with committed():
        response = client.post(PASSWORD, {**body, "otp_code": fresh_code(user, secret)})

    assert response.status_code == 200, response.content
    assert api_login(user.email, NEW_PASSWORD, otp_code=fresh_code(user, secret)).status_code == 200


def test_password_change_ends_the_other_sessions_but_keeps_the_callers(
    sent_emails, committed, user
):
    mine, other = api_tokens(user.email), api_tokens(user.email)
    browser = page_login(user.email)

    with committed():
        response = bearer(mine["access_token"]).post(
            PASSWORD, {"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD}
        )

    assert response.status_code == 200, response.content
    # The caller's access token and refresh token keep working.
    assert bearer(mine["access_token"]).get(API_PROFILE).status_code == 200
    rotated = refresh(mine["refresh_token"])
    assert rotated.status_code == 200, rotated.content
    assert bearer(rotated.json()["access_token"]).get(API_PROFILE).status_code == 200
    # Every other session is over.
    assert_error(bearer(other["access_token"]).get(API_PROFILE), 401, "SESSION_REVOKED")
    assert_error(refresh(other["refresh_token"]), 401, "TOKEN_INVALID")
    assert not page_is_logged_in(browser)
    assert AuthSession.objects.filter(user=user, revoked_at__isnull=True).count() == 1
    [notice] = mails(sent_emails, "password_changed", to=user.email)
    assert "changed from your profile" in notice.body
    assert len(sent_emails) == 1
    assert still_logs_in_with(user, NEW_PASSWORD)
    assert not still_logs_in_with(user, DEFAULT_PASSWORD)


def test_password_change_guesses_of_the_current_password_lock_like_logins(user):
    client = bearer(api_tokens(user.email)["access_token"])
    body = {"current_password": "guess", "new_password": NEW_PASSWORD}
    for _ in range(5):
        assert_error(client.post(PASSWORD, body), 403, "PASSWORD_INVALID")

    locked = client.post(PASSWORD, {**body, "current_password": DEFAULT_PASSWORD})

    error = assert_error(locked, 429, "LOGIN_LOCKED")
    assert int(locked["Retry-After"]) == error["details"]["retry_after"] > 0
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)


# --- email change ----------------------------------------------------------------------------


def test_email_change_needs_the_password(sent_emails, committed, user):
    client = bearer(api_tokens(user.email)["access_token"])

    with committed():
        response = client.post(EMAIL, {"new_email": "new@example.com", "password": "wrong"})

    assert_error(response, 403, "PASSWORD_INVALID")
    user.refresh_from_db()
    assert user.email != "new@example.com"
    assert sent_emails == []


def test_email_change_with_two_factor_on_needs_a_code(sent_emails, committed, user):
    secret, _codes = enable_two_factor(user)
    client = bearer(api_tokens(user.email, otp_code=fresh_code(user, secret))["access_token"])
    body = {"new_email": "new@example.com", "password": DEFAULT_PASSWORD}

    with committed():
        missing = client.post(EMAIL, body)
    assert_error(missing, 403, "OTP_REQUIRED")
    assert sent_emails == []

    with committed():
        response = client.post(EMAIL, {**body, "otp_code": fresh_code(user, secret)})
    assert response.status_code == 202, response.content
    assert [to for _template, to in templates_sent(sent_emails)] == ["new@example.com", user.email]


@pytest.mark.parametrize("taken", ["taken@example.com", "Taken@Example.COM"])
def test_email_change_to_a_taken_address_is_409(sent_emails, committed, user, taken):
    UserFactory(email="taken@example.com")
    client = bearer(api_tokens(user.email)["access_token"])

    with committed():
        response = client.post(EMAIL, {"new_email": taken, "password": DEFAULT_PASSWORD})

    assert_error(response, 409, "EMAIL_TAKEN")
    assert sent_emails == []


def test_email_change_to_the_current_address_is_400(sent_emails, committed, user):
    client = bearer(api_tokens(user.email)["access_token"])

    response = client.post(EMAIL, {"new_email": user.email, "password": DEFAULT_PASSWORD})

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "new_email" in error["details"]


def test_email_change_moves_the_account_once_the_new_address_confirms(sent_emails, committed):
    user = UserFactory(is_verified=False, email="old@example.com")
    old_email = user.email
    client = bearer(api_tokens(old_email)["access_token"])

    with committed():
        response = client.post(
            EMAIL, {"new_email": "New@Example.com", "password": DEFAULT_PASSWORD}
        )

    assert response.status_code == 202, response.content
    assert templates_sent(sent_emails) == [
        ("email_change_confirm", "new@example.com"),
        ("email_change_notice", old_email),
    ]
    assert "new@example.com" in sent_emails[1].body
    # Nothing changes until the link is followed.
    user.refresh_from_db()
    assert (user.email, user.is_verified) == (old_email, False)
    assert still_logs_in_with(user, DEFAULT_PASSWORD)
    token = link_in(sent_emails[0], EMAIL_CHANGE_LINK)["token"]

    with committed():
        confirmed = post(EMAIL_CONFIRM, {"token": token})

    assert confirmed.status_code == 200, confirmed.content
    assert confirmed.json()["email"] == "new@example.com"
    assert confirmed.json()["is_verified"] is True
    user.refresh_from_db()
    assert user.email == "new@example.com"
    assert user.is_verified
    assert user.email_verified_at is not None
    [changed] = mails(sent_emails, "email_changed")
    assert changed.to == [old_email]
    assert "new@example.com" in changed.body
    assert_error(post(EMAIL_CONFIRM, {"token": token}), 400, "LINK_INVALID")
    assert api_login("new@example.com", DEFAULT_PASSWORD).status_code == 200
    assert_error(api_login(old_email, DEFAULT_PASSWORD), 401, "INVALID_CREDENTIALS")


def test_email_change_link_dies_once_another_change_went_through(sent_emails, committed, user):
    client = bearer(api_tokens(user.email)["access_token"])
    with committed():
        for address in ("first@example.com", "second@example.com"):
            body = {"new_email": address, "password": DEFAULT_PASSWORD}
            assert client.post(EMAIL, body).status_code == 202
    first, second = mails(sent_emails, "email_change_confirm")
    assert email_change_confirm(second).status_code == 200

    response = email_change_confirm(first)

    assert_error(response, 400, "LINK_INVALID")
    user.refresh_from_db()
    assert user.email == "second@example.com"


def test_email_change_link_for_an_address_taken_meanwhile_is_409(sent_emails, committed, user):
    client = bearer(api_tokens(user.email)["access_token"])
    old_email = user.email
    with committed():
        client.post(EMAIL, {"new_email": "wanted@example.com", "password": DEFAULT_PASSWORD})
    token = link_in(mails(sent_emails, "email_change_confirm")[0], EMAIL_CHANGE_LINK)["token"]
    UserFactory(email="wanted@example.com")

    assert_error(post(EMAIL_CONFIRM, {"token": token}), 409, "EMAIL_TAKEN")

    user.refresh_from_db()
    assert user.email == old_email


def test_email_change_refuses_an_altered_link(sent_emails, committed, user):
    client = bearer(api_tokens(user.email)["access_token"])
    old_email = user.email
    with committed():
        client.post(EMAIL, {"new_email": "new@example.com", "password": DEFAULT_PASSWORD})
    token = link_in(mails(sent_emails, "email_change_confirm")[0], EMAIL_CHANGE_LINK)["token"]

    assert_error(post(EMAIL_CONFIRM, {"token": tampered(token)}), 400, "LINK_INVALID")

    user.refresh_from_db()
    assert user.email == old_email


# --- security emails -------------------------------------------------------------------------


def test_creating_an_api_key_emails_the_owner(sent_emails, committed, user):
    client = bearer(api_tokens(user.email)["access_token"])

    with committed():
        response = client.post(API_KEYS, {"label": "my bot", "permissions": ["read", "trade"]})

    assert response.status_code == 201, response.content
    [message] = sent_emails
    assert (template_of(message), message.to) == ("api_key_created", [user.email])
    assert "my bot" in message.body
    assert response.json()["key"][:8] in message.body
    assert response.json()["secret"] not in message.body


def test_turning_two_factor_on_and_off_emails_the_owner(sent_emails, committed, user):
    client = bearer(api_tokens(user.email)["access_token"])
    secret = client.post(f"{TWO_FA}/enrol").json()["secret"]
    assert sent_emails == []  # a pending enrolment changes nothing yet

    with committed():
        on = client.post(f"{TWO_FA}/confirm", {"otp_code": code_at(secret, -1)})
    assert on.status_code == 200, on.content
    with committed():
        off = client.post(
            f"{TWO_FA}/disable", {"password": DEFAULT_PASSWORD, "otp_code": code_at(secret)}
        )
    assert off.status_code == 200, off.content

    assert templates_sent(sent_emails) == [
        ("two_factor_changed", user.email),
        ("two_factor_changed", user.email),
    ]
    assert "turned on" in sent_emails[0].subject
    assert "turned off" in sent_emails[1].subject


# --- no account enumeration ------------------------------------------------------------------


def test_login_answers_an_unknown_email_like_a_wrong_password(user):
    unknown = api_login("nobody@example.com", "some-password", ip="10.0.0.1")
    wrong = api_login(user.email, "some-password", ip="10.0.0.2")

    assert_error(unknown, 401, "INVALID_CREDENTIALS")
    assert unknown.status_code == wrong.status_code
    assert unknown.content == wrong.content


# --- the API's documentation -----------------------------------------------------------------


def test_every_account_security_endpoint_is_in_the_schema(client):
    response = client.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    paths = response.json()["paths"]
    expected = {
        RESET: "post",
        RESET_CONFIRM: "post",
        VERIFY: "post",
        RESEND: "post",
        EMAIL_CONFIRM: "post",
        OWN_RESEND: "post",
        PASSWORD: "post",
        EMAIL: "post",
        "/api/v1/users/sessions": "get",
        "/api/v1/users/sessions/{session_id}": "delete",
        "/api/v1/users/sessions/revoke-others": "post",
        "/api/v1/users/login-history": "get",
    }
    missing = {
        path: method
        for path, method in expected.items()
        if method not in paths.get(path, paths.get(path + "/", {}))
    }
    assert missing == {}, sorted(paths)


def test_password_change_over_the_api_from_a_browser_keeps_that_browser_in(
    sent_emails, committed, user
):
    # The site's scripts call the API with the browser's session (session authentication).
    browser = page_login(user.email)
    other_browser = page_login(user.email)

    with committed():
        response = browser.post(
            PASSWORD,
            {"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
            content_type="application/json",
        )

    assert response.status_code == 200, response.content
    assert page_is_logged_in(browser)
    assert browser.get(API_PROFILE).status_code == 200
    assert not page_is_logged_in(other_browser)
    assert len(mails(sent_emails, "password_changed", to=user.email)) == 1

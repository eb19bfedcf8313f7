import time

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import User
from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
PROFILE = "/api/v1/users/profile"


def register_payload(**overrides):
    payload = {
        "email": "satoshi@example.com",
        "username": "satoshi",
        "password": "a-long-unusual-passphrase-42",
        "full_name": "Satoshi Nakamoto",
    }
    payload.update(overrides)
    return payload


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]


# --- register ------------------------------------------------------------------------


@pytest.mark.parametrize("path", [REGISTER, REGISTER + "/"])
def test_register_creates_user_and_returns_it_without_password(api_client, path):
    response = api_client.post(path, register_payload(), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["email"] == "satoshi@example.com"
    assert body["username"] == "satoshi"
    assert body["full_name"] == "Satoshi Nakamoto"
    assert body["is_verified"] is False
    assert "password" not in body
    assert not any("pbkdf2" in str(v) for v in body.values())
    user = User.objects.get(email="satoshi@example.com")
    assert user.check_password("a-long-unusual-passphrase-42")


def test_register_lowercases_email(api_client):
    response = api_client.post(
        REGISTER, register_payload(email="Satoshi@Example.COM"), format="json"
    )

    assert response.status_code == 201
    assert User.objects.filter(email="satoshi@example.com").count() == 1


def test_register_with_taken_email_is_409_in_any_case(api_client):
    UserFactory(email="satoshi@example.com", username="someone")

    response = api_client.post(
        REGISTER, register_payload(email="SATOSHI@example.com"), format="json"
    )

    assert_error(response, 409, "EMAIL_TAKEN")
    assert User.objects.filter(is_system=False).count() == 1


def test_register_with_taken_username_is_409_in_any_case(api_client):
    UserFactory(email="other@example.com", username="satoshi")

    response = api_client.post(REGISTER, register_payload(username="SaToShi"), format="json")

    assert_error(response, 409, "USERNAME_TAKEN")
    assert User.objects.filter(is_system=False).count() == 1


@pytest.mark.parametrize(
    ("password", "fragment"),
    [
        ("short", "too short"),
        ("password123", "too common"),
        ("83749201847362", "entirely numeric"),
        ("satoshi@example.com", "too similar"),
    ],
)
def test_register_refuses_weak_password(api_client, password, fragment):
    response = api_client.post(REGISTER, register_payload(password=password), format="json")

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert any(fragment in message for message in error["details"]["password"])
    assert User.objects.filter(is_system=False).count() == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-email"),
        ("email", "x" * 10_000 + "@example.com"),
        ("username", "u" * 10_000),
        ("username", "has spaces"),
        ("username", "ab"),
        ("full_name", "n" * 10_000),
        ("password", "p" * 10_000),
        ("email", None),
        ("username", ["a", "list"]),
        ("username", "nul\x00byte"),
    ],
)
def test_register_refuses_bad_field_with_nothing_created(api_client, field, value):
    response = api_client.post(REGISTER, register_payload(**{field: value}), format="json")

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert field in error["details"]
    assert User.objects.filter(is_system=False).count() == 0


@pytest.mark.parametrize("missing", ["email", "username", "password"])
def test_register_refuses_missing_field(api_client, missing):
    payload = register_payload()
    del payload[missing]

    response = api_client.post(REGISTER, payload, format="json")

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert missing in error["details"]
    assert User.objects.filter(is_system=False).count() == 0


def test_register_refuses_body_that_is_not_json(api_client):
    response = api_client.post(REGISTER, '{"email": "a@b.c",', content_type="application/json")

    assert_error(response, 400, "MALFORMED_REQUEST")
    assert User.objects.filter(is_system=False).count() == 0


@pytest.mark.parametrize("body", ["[1, 2]", '"text"', "null", "42"])
def test_register_refuses_json_that_is_not_an_object(api_client, body):
    response = api_client.post(REGISTER, body, content_type="application/json")

    assert_error(response, 400, "VALIDATION_ERROR")
    assert User.objects.filter(is_system=False).count() == 0


def test_register_refuses_wrong_content_type(api_client):
    response = api_client.post(REGISTER, "email=a@b.c", content_type="text/plain")

    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert User.objects.filter(is_system=False).count() == 0


def test_register_refuses_get(api_client):
    assert_error(api_client.get(REGISTER), 405, "METHOD_NOT_ALLOWED")


# --- login ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", [LOGIN, LOGIN + "/"])
def test_login_with_email_returns_bearer_token_pair(api_client, user, password, path):
    response = api_client.post(path, {"email": user.email, "password": password}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["access_token"]
    assert body["refresh_token"]
    user.refresh_from_db()
    assert user.last_login is not None


def test_login_with_username_or_uppercased_email_works(api_client, user, password):
    by_username = api_client.post(
        LOGIN, {"username": user.username.upper(), "password": password}, format="json"
    )
    by_email = api_client.post(
        LOGIN, {"email": user.email.upper(), "password": password}, format="json"
    )

    assert by_username.status_code == 200
    assert by_email.status_code == 200


def test_login_accepts_a_form_post(api_client, user, password):
    response = api_client.post(LOGIN, {"email": user.email, "password": password})

    assert response.status_code == 200


def test_login_wrong_password_and_unknown_email_give_the_same_401(api_client, user):
    wrong = api_client.post(LOGIN, {"email": user.email, "password": "nope-nope"}, format="json")
    unknown = api_client.post(
        LOGIN, {"email": "ghost@example.com", "password": "nope-nope"}, format="json"
    )

    first = assert_error(wrong, 401, "INVALID_CREDENTIALS")
    second = assert_error(unknown, 401, "INVALID_CREDENTIALS")
    assert first == second


def test_login_of_deactivated_user_is_the_same_401(api_client, user, password):
    user.is_active = False
    user.save()

    response = api_client.post(LOGIN, {"email": user.email, "password": password}, format="json")

    assert_error(response, 401, "INVALID_CREDENTIALS")


def test_login_without_login_field_is_400(api_client):
    response = api_client.post(LOGIN, {"password": "whatever"}, format="json")

    assert_error(response, 400, "VALIDATION_ERROR")


# --- tokens --------------------------------------------------------------------------


def test_access_token_reads_profile(api_client, tokens, user):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")

    response = api_client.get(PROFILE)

    assert response.status_code == 200
    assert response.json()["email"] == user.email


def test_profile_without_credentials_is_401(api_client):
    assert_error(api_client.get(PROFILE), 401, "NOT_AUTHENTICATED")


def test_garbage_bearer_token_is_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")

    assert_error(api_client.get(PROFILE), 401, "TOKEN_INVALID")


def test_access_token_expires(api_client, user, password, settings):
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "ACCESS_TOKEN_LIFETIME": _seconds(1)}
    tokens = api_client.post(
        LOGIN, {"email": user.email, "password": password}, format="json"
    ).json()
    assert tokens["expires_in"] == 1
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    assert client.get(PROFILE).status_code == 200

    time.sleep(2.1)

    assert_error(client.get(PROFILE), 401, "TOKEN_INVALID")


def _seconds(n):
    from datetime import timedelta

    return timedelta(seconds=n)


@pytest.mark.parametrize("path", [REFRESH, REFRESH + "/"])
def test_refresh_rotates_and_blacklists_the_old_token(api_client, tokens, path):
    response = api_client.post(path, {"refresh_token": tokens["refresh_token"]}, format="json")

    assert response.status_code == 200, response.content
    pair = response.json()
    assert pair["refresh_token"] != tokens["refresh_token"]
    assert pair["token_type"] == "bearer"
    again = api_client.post(REFRESH, {"refresh_token": tokens["refresh_token"]}, format="json")
    assert_error(again, 401, "TOKEN_INVALID")
    newer = api_client.post(REFRESH, {"refresh_token": pair["refresh_token"]}, format="json")
    assert newer.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access_token']}")
    assert client.get(PROFILE).status_code == 200


def test_refresh_with_an_access_token_is_401(api_client, tokens):
    response = api_client.post(REFRESH, {"refresh_token": tokens["access_token"]}, format="json")

    assert_error(response, 401, "TOKEN_INVALID")
    assert BlacklistedToken.objects.count() == 0


def test_refresh_with_garbage_is_401(api_client):
    assert_error(
        api_client.post(REFRESH, {"refresh_token": "garbage"}, format="json"), 401, "TOKEN_INVALID"
    )


def test_refresh_for_deactivated_user_is_401(api_client, tokens, user):
    User.objects.filter(pk=user.pk).update(is_active=False)

    response = api_client.post(REFRESH, {"refresh_token": tokens["refresh_token"]}, format="json")

    assert_error(response, 401, "TOKEN_INVALID")


@pytest.mark.parametrize("path", [LOGOUT, LOGOUT + "/"])
def test_logout_revokes_the_refresh_token(api_client, tokens, path):
    response = api_client.post(path, {"refresh_token": tokens["refresh_token"]}, format="json")

    assert response.status_code == 204
    after = api_client.post(REFRESH, {"refresh_token": tokens["refresh_token"]}, format="json")
    assert_error(after, 401, "TOKEN_INVALID")
    twice = api_client.post(LOGOUT, {"refresh_token": tokens["refresh_token"]}, format="json")
    assert_error(twice, 401, "TOKEN_INVALID")


def test_logout_of_another_users_token_is_refused(api_client, tokens, password):
    other = UserFactory()
    other_tokens = api_client.post(
        LOGIN, {"email": other.email, "password": password}, format="json"
    ).json()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")

    response = client.post(LOGOUT, {"refresh_token": other_tokens["refresh_token"]}, format="json")

    assert_error(response, 403, "PERMISSION_DENIED")
    assert BlacklistedToken.objects.count() == 0


def test_logout_without_token_is_400(api_client):
    assert_error(api_client.post(LOGOUT, {}, format="json"), 400, "VALIDATION_ERROR")


def test_login_records_outstanding_refresh_token(api_client, tokens, user):
    assert OutstandingToken.objects.filter(user=user).count() == 1

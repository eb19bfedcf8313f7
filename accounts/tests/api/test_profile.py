import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PROFILE = "/api/v1/users/profile"


@pytest.mark.parametrize("path", [PROFILE, PROFILE + "/"])
def test_profile_get_returns_own_data(auth_client, user, path):
    response = auth_client.get(path)

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == user.id
    assert body["username"] == user.username
    assert "password" not in body


def test_profile_patch_changes_full_name_only(auth_client, user):
    response = auth_client.patch(PROFILE, {"full_name": "New Name"}, format="json")

    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert user.full_name == "New Name"
    assert response.json()["username"] == user.username


def test_profile_put_needs_every_field(auth_client, user):
    old_name = user.full_name

    response = auth_client.put(PROFILE, {"username": "renamed"}, format="json")

    assert response.status_code == 400
    assert "full_name" in response.json()["error"]["details"]
    user.refresh_from_db()
    assert (user.username, user.full_name) == (user.username, old_name)
    assert user.username != "renamed"


def test_profile_put_replaces_username_and_full_name(auth_client, user):
    response = auth_client.put(
        PROFILE, {"username": "renamed", "full_name": "Re Named"}, format="json"
    )

    assert response.status_code == 200
    user.refresh_from_db()
    assert (user.username, user.full_name) == ("renamed", "Re Named")


def test_profile_cannot_change_email_or_verification(auth_client, user):
    user.is_verified = False
    user.save(update_fields=["is_verified"])
    email = user.email

    response = auth_client.patch(
        PROFILE, {"email": "new@example.com", "is_verified": True, "id": 999}, format="json"
    )

    assert response.status_code == 200
    user.refresh_from_db()
    assert user.email == email
    assert user.is_verified is False
    assert user.id != 999


def test_user_cannot_take_another_users_username(auth_client, user):
    other = UserFactory(username="taken")

    response = auth_client.patch(PROFILE, {"username": "TAKEN"}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "USERNAME_TAKEN"
    user.refresh_from_db()
    other.refresh_from_db()
    assert user.username != "TAKEN"
    assert other.username == "taken"


def test_user_a_cannot_read_or_change_user_b(auth_client, user):
    other = UserFactory(full_name="Bob Original")

    read = auth_client.get(PROFILE)
    change = auth_client.patch(PROFILE, {"full_name": "Hacked"}, format="json")

    assert read.json()["id"] == user.id
    assert change.json()["id"] == user.id
    other.refresh_from_db()
    assert other.full_name == "Bob Original"
    assert auth_client.get(f"/api/v1/users/{other.id}").status_code == 404


def test_profile_rejects_oversized_and_invalid_values(auth_client, user):
    before = User.objects.values_list("username", "full_name").get(pk=user.pk)

    for payload in (
        {"full_name": "x" * 10_000},
        {"username": "bad name!"},
        {"username": ""},
    ):
        response = auth_client.patch(PROFILE, payload, format="json")
        assert response.status_code == 400, payload
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"

    assert User.objects.values_list("username", "full_name").get(pk=user.pk) == before


def test_session_authentication_works_for_the_profile(user, password):
    client = APIClient()
    assert client.login(username=user.email, password=password)

    response = client.get(PROFILE)

    assert response.status_code == 200
    assert response.json()["email"] == user.email


def test_session_write_without_csrf_token_is_refused(user, password):
    client = APIClient(enforce_csrf_checks=True)
    client.login(username=user.email, password=password)

    response = client.patch(PROFILE, {"full_name": "CSRF"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "PERMISSION_DENIED"
    user.refresh_from_db()
    assert user.full_name != "CSRF"

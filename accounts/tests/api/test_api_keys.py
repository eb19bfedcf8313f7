"""/api/v1/api-keys: create (the secret shown once), list, revoke; only ever the caller's."""

import pytest
from django.db import connection

from accounts.crypto import secret_decrypt
from accounts.models import ApiKey
from accounts.services import API_KEYS_PER_USER, api_key_create
from accounts.tests.factories import UserFactory
from testsupport.helpers import assert_error

pytestmark = pytest.mark.django_db

FIELDS = {"id", "label", "key", "permissions", "ip_allowlist", "created_at", "last_used_at"}


def create(client, **body):
    body.setdefault("label", "my bot")
    return client.post("/api/v1/api-keys", body, format="json")


def test_create_returns_the_secret_once(auth_client, user):
    response = create(auth_client, permissions=["read", "trade"], ip_allowlist=["10.0.0.1"])
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == FIELDS | {"secret"}
    assert body["permissions"] == ["read", "trade"]
    assert body["ip_allowlist"] == ["10.0.0.1"]
    assert len(body["key"]) == 64
    assert body["key"].isalnum()
    assert len(body["secret"]) == 64
    assert body["last_used_at"] is None

    listed = auth_client.get("/api/v1/api-keys").json()["results"]
    assert [set(item) for item in listed] == [FIELDS]
    assert listed[0]["key"] == body["key"]
    assert body["secret"] not in str(listed)


def test_the_secret_is_stored_only_encrypted(auth_client):
    secret = create(auth_client, permissions=["read"]).json()["secret"]
    stored = ApiKey.objects.get().secret_encrypted
    assert secret not in stored
    assert secret_decrypt(stored) == secret
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM accounts_apikey WHERE secret_encrypted LIKE %s",
                       [f"%{secret}%"])  # fmt: skip
        assert cursor.fetchone()[0] == 0


def test_another_encryption_key_cannot_read_the_secret(auth_client, settings):
    create(auth_client, permissions=["read"])
    settings.API_KEY_ENCRYPTION_KEY = ["a-different-key"]
    assert secret_decrypt(ApiKey.objects.get().secret_encrypted) is None


def test_a_rotated_encryption_key_still_decrypts_old_secrets(auth_client, settings):
    secret = create(auth_client, permissions=["read"]).json()["secret"]
    settings.API_KEY_ENCRYPTION_KEY = ["the-new-key", *settings.API_KEY_ENCRYPTION_KEY]
    assert secret_decrypt(ApiKey.objects.get().secret_encrypted) == secret


def test_permissions_default_to_read(auth_client):
    assert create(auth_client).json()["permissions"] == ["read"]


@pytest.mark.parametrize(
    "body",
    [
        {"permissions": ["withdraw"]},
        {"permissions": []},
        {"ip_allowlist": ["not-an-ip"]},
        {"ip_allowlist": ["10.0.0.0/33"]},
        {"label": ""},
        {"label": "x" * 65},
    ],
)
def test_bad_input_is_refused_and_creates_nothing(auth_client, body):
    assert_error(create(auth_client, **body), 400, "VALIDATION_ERROR")
    assert ApiKey.objects.count() == 0


def test_networks_are_kept_in_canonical_form(auth_client):
    body = create(auth_client, ip_allowlist=["10.1.2.3/16", "::1", "10.1.0.0/16"]).json()
    assert body["ip_allowlist"] == ["10.1.0.0/16", "::1"]


def test_revoke_removes_the_key_from_the_list(auth_client):
    key_id = create(auth_client).json()["id"]
    response = auth_client.delete(f"/api/v1/api-keys/{key_id}")
    assert response.status_code == 204
    assert auth_client.get("/api/v1/api-keys").json() == {"results": []}
    assert ApiKey.objects.get(pk=key_id).revoked_at is not None
    assert_error(auth_client.delete(f"/api/v1/api-keys/{key_id}"), 404, "API_KEY_NOT_FOUND")


def test_another_users_key_is_invisible_and_cannot_be_revoked(auth_client):
    other, _secret = api_key_create(user=UserFactory(), label="theirs", permissions=["read"])
    assert auth_client.get("/api/v1/api-keys").json() == {"results": []}
    assert_error(auth_client.delete(f"/api/v1/api-keys/{other.pk}"), 404, "API_KEY_NOT_FOUND")
    other.refresh_from_db()
    assert other.revoked_at is None


def test_keys_per_user_are_limited(auth_client, user):
    for _ in range(API_KEYS_PER_USER):
        api_key_create(user=user, label="bot", permissions=["read"])
    assert_error(create(auth_client), 422, "API_KEY_LIMIT")
    assert ApiKey.objects.filter(user=user).count() == API_KEYS_PER_USER


def test_anonymous_callers_get_401(api_client):
    assert api_client.get("/api/v1/api-keys").status_code == 401
    assert create(api_client).status_code == 401

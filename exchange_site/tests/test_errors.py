"""Every error leaves in one shape (ARCHITECTURE §7), whichever layer produced it."""

import pytest
from rest_framework.throttling import ScopedRateThrottle

pytestmark = pytest.mark.django_db


def assert_error_shape(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert isinstance(error["details"], dict)
    return error


def test_unknown_api_path_is_json_404(client):
    assert_error_shape(client.get("/api/v1/does-not-exist"), 404, "NOT_FOUND")


def test_unknown_page_is_html_404(client):
    response = client.get("/no-such-page", HTTP_ACCEPT="text/html")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_wrong_method_is_405(client):
    assert_error_shape(client.delete("/api/v1/auth/login"), 405, "METHOD_NOT_ALLOWED")


def test_throttled_login_is_429_with_retry_after(client, monkeypatch):
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "auth", "2/min")
    for _ in range(2):
        client.post("/api/v1/auth/login", {"email": "a@b.c", "password": "x"})

    response = client.post("/api/v1/auth/login", {"email": "a@b.c", "password": "x"})

    error = assert_error_shape(response, 429, "THROTTLED")
    assert error["details"]["retry_after"] >= 1
    assert int(response["Retry-After"]) >= 1


def test_body_over_the_upload_limit_is_400_not_500(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = '{"email": "' + "a" * 5000 + '@example.com", "password": "x"}'

    response = client.post("/api/v1/auth/register", body, content_type="application/json")

    assert response.status_code in (400, 413)
    assert "error" in response.json()


def test_invalid_utf8_body_is_400(client):
    response = client.post(
        "/api/v1/auth/register", b'{"email": "\xff\xfe"}', content_type="application/json"
    )

    assert_error_shape(response, 400, "MALFORMED_REQUEST")


def test_home_page_renders(client):
    response = client.get("/")

    assert response.status_code == 200
    assert b"API documentation" in response.content

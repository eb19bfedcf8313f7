import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/health", "/health/", "/api/v1/health", "/api/v1/health/"])
def test_health_is_200_when_database_and_redis_answer(client, path):
    response = client.get(path)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["database"]["status"] == "ok"
    assert body["redis"]["status"] == "ok"
    assert body["matcher"]["status"] in ("ok", "down"), body
    assert body["matcher"]["pending_commands"] == 0


def test_health_is_503_when_redis_is_unreachable(client, settings):
    closed_port_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": closed_port_url,
            "OPTIONS": {**settings.CACHES["default"]["OPTIONS"], "SOCKET_CONNECT_TIMEOUT": 0.5},
        }
    }

    response = client.get("/health")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["redis"]["status"] == "down"
    assert "error" in body["redis"]
    assert body["database"]["status"] == "ok"


def test_health_is_503_when_the_database_is_unreachable(client, monkeypatch):
    from exchange_site import health

    def refuse():
        from django.db import OperationalError

        raise OperationalError("connection refused")

    monkeypatch.setattr(health, "_database_ping", refuse)

    response = client.get("/health")

    assert response.status_code == 503
    assert response.json()["database"]["status"] == "down"

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_openapi_schema_generates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"

    # --fail-on-warn turns every drf-spectacular warning into a failure; --validate checks
    # the document against the OpenAPI 3 meta-schema.
    call_command("spectacular", "--file", str(out), "--validate", "--fail-on-warn")

    text = out.read_text()
    for path in ("/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/users/profile"):
        assert path in text


@pytest.mark.parametrize(
    ("path", "marker"),
    [
        ("/api/schema/", b"openapi"),
        ("/api/docs/", b"swagger-ui"),
        ("/api/redoc/", b"redoc"),
    ],
)
def test_docs_are_served(client, path, marker):
    response = client.get(path)

    assert response.status_code == 200
    assert marker in response.content.lower()


def test_docs_load_their_assets_locally(client):
    page = client.get("/api/docs/").content.decode()

    assert "cdn.jsdelivr.net" not in page
    assert "unpkg.com" not in page
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    asset = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert asset.status_code == 200


def test_browsable_api_renders_html(client):
    response = client.get("/api/v1/health", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert b"<html" in response.content.lower()

"""GET /api/v1/wallets/statements/<kind>: the caller's statement, streamed as CSV or JSON."""

import csv
import io
import json

import pytest
from django.http import StreamingHttpResponse

from wallets.models import LedgerEntry
from wallets.statements_export import KINDS
from wallets.tests.helpers import assert_error

pytestmark = pytest.mark.django_db

URL = "/api/v1/wallets/statements"
WIDE = {"start": "2020-01-01", "end": "2030-01-01"}


@pytest.fixture
def both_funded(user, other_user, btc, usd, fund):
    fund(user, btc, "1.5")
    fund(user, usd, "20")
    fund(other_user, btc, "7")


def _body(response) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode()


def test_csv_is_the_default_and_parses_back(auth_client, user, both_funded):
    response = auth_client.get(f"{URL}/ledger", {**WIDE})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="statement-ledger-2020-01-01-2030-01-01.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(_body(response))))
    assert [(row["asset"], row["available_delta"]) for row in rows] == [
        ("BTC", "1.50000000"),
        ("USD", "20.00"),
    ]


def test_format_json_is_a_json_document_not_drfs_renderer_override(auth_client, both_funded):
    response = auth_client.get(f"{URL}/ledger", {**WIDE, "format": "json"})
    as_csv = auth_client.get(f"{URL}/deposits/", {**WIDE, "format": "csv"})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].endswith('.json"')
    document = json.loads(_body(response))
    assert document["kind"] == "ledger"
    assert (document["start"], document["end"]) == ("2020-01-01T00:00:00Z", "2030-01-01T00:00:00Z")
    assert document["columns"] == list(KINDS["ledger"].columns)
    assert [row["available_delta"] for row in document["rows"]] == ["1.50000000", "20.00"]
    assert as_csv.status_code == 200
    assert _body(as_csv).startswith("id,created_at,confirmed_at,asset,amount")


def test_only_the_callers_rows_are_exported(auth_client, user, other_user, both_funded):
    theirs = set(LedgerEntry.objects.filter(user=other_user).values_list("id", flat=True))

    for kind in KINDS:
        document = json.loads(_body(auth_client.get(f"{URL}/{kind}", {**WIDE, "format": "json"})))
        assert not theirs & {row["id"] for row in document["rows"]}, kind
    ledger = json.loads(_body(auth_client.get(f"{URL}/ledger", {**WIDE, "format": "json"})))
    assert {row["id"] for row in ledger["rows"]} == set(
        LedgerEntry.objects.filter(user=user).values_list("id", flat=True)
    )


@pytest.mark.parametrize(
    ("kind", "query", "field"),
    [
        ("ledger", {"start": "last week"}, "start"),
        ("ledger", {"end": "2026-02-30"}, "end"),
        ("ledger", {"start": "2026-12-01", "end": "2026-11-01"}, "end"),
        ("ledger", {"start": "2010-01-01", "end": "2026-01-01"}, "end"),
        ("ledger", {"format": "xlsx"}, "format"),
        ("balances", {}, "kind"),
    ],
)
def test_bad_input_is_a_400_in_the_error_shape(auth_client, kind, query, field):
    response = auth_client.get(f"{URL}/{kind}", query)

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert list(error["details"]) == [field]


def test_errors_are_json_whatever_the_client_accepts(auth_client):
    response = auth_client.get(f"{URL}/ledger", {"start": "x"}, HTTP_ACCEPT="text/csv")

    assert_error(response, 400, "VALIDATION_ERROR")


def test_anonymous_callers_are_refused(api_client):
    assert_error(api_client.get(f"{URL}/ledger"), 401, "NOT_AUTHENTICATED")


def test_a_session_works_as_for_the_other_wallet_endpoints(api_client, user, both_funded):
    api_client.force_login(user)

    response = api_client.get(f"{URL}/ledger", {**WIDE, "format": "json"})

    assert response.status_code == 200
    assert len(json.loads(_body(response))["rows"]) == 2


def test_statements_have_their_own_rate_limit(auth_client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "statements": "1/min",
        },
    }

    first = auth_client.get(f"{URL}/orders")
    second = auth_client.get(f"{URL}/orders")

    assert first.status_code == 200
    assert_error(second, 429, "THROTTLED")
    assert int(second["Retry-After"]) >= 1


def test_the_schema_documents_the_endpoint(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    operation = schema.json()["paths"]["/api/v1/wallets/statements/{kind}/"]["get"]
    assert operation["tags"] == ["wallets"]
    assert set(operation["responses"]["200"]["content"]) == {"text/csv", "application/json"}
    names = {parameter["name"] for parameter in operation["parameters"]}
    assert {"kind", "start", "end", "format"} <= names

"""Every public market-data path answers with and without a trailing slash, and is in the
OpenAPI schema as a public operation."""

import pytest
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.django_db

PATHS = [
    "/api/v1/markets",
    "/api/v1/markets/BTC-USD",
    "/api/v1/market/tickers",
    "/api/v1/market/BTC-USD/orderbook",
    "/api/v1/market/BTC-USD/trades",
    "/api/v1/market/BTC-USD/ticker",
    "/api/v1/market/BTC-USD/candles",
    "/api/v1/orders/book/BTC-USD",
    "/api/v1/orders/trades/BTC-USD",
]


@pytest.mark.parametrize("slash", ["", "/"])
@pytest.mark.parametrize("path", PATHS)
def test_every_path_answers_with_and_without_a_trailing_slash(public, market, path, slash):
    response = public.get(path + slash)

    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"


def test_every_endpoint_is_documented_as_public_and_legacy_ones_as_deprecated():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = {
        path: methods["get"]
        for path, methods in schema["paths"].items()
        if path.startswith(("/api/v1/market", "/api/v1/orders/book", "/api/v1/orders/trades"))
    }

    assert len(operations) == len(PATHS)
    for path, operation in operations.items():
        assert operation.get("security") in (None, [{}], []), path
        assert operation.get("deprecated", False) == path.startswith("/api/v1/orders/"), path

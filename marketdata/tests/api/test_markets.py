"""GET /api/v1/markets and /api/v1/markets/{symbol}: public, every symbol spelling."""

import pytest
from rest_framework.settings import api_settings

from trading.tests.helpers import assert_error, drain, place

pytestmark = pytest.mark.django_db

BTC_USD = {
    "symbol": "BTC-USD",
    "status": "trading",
    "base_asset": "BTC",
    "base_precision": 8,
    "quote_asset": "USD",
    "quote_precision": 2,
    "tick_size": "0.01",
    "lot_size": "0.00001",
    "min_qty": "0.00001",
    "max_qty": "1000",
    "min_notional": "1",
    "maker_fee": "0.001",
    "taker_fee": "0.002",
    "last_price": None,
}


def test_markets_list_gives_rules_fees_status_assets_and_last_price(public, market, trader):
    buyer, seller = trader(market, usd="1000"), trader(market, btc="1")
    place(seller, side="sell", price="100.5", quantity="0.1")
    place(buyer, side="buy", price="100.5", quantity="0.1")
    drain(market)

    response = public.get("/api/v1/markets")

    assert response.status_code == 200, response.content
    assert response.json() == [{**BTC_USD, "last_price": "100.50"}]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/markets/BTC-USD",
        "/api/v1/markets/BTC-USD/",
        "/api/v1/markets/BTC_USD",
        "/api/v1/markets/BTC%2FUSD",
        "/api/v1/markets/BTC%2FUSD/",
        "/api/v1/markets/btc-usd",
        "/api/v1/markets/",
    ],
)
def test_market_detail_and_list_answer_every_symbol_spelling_with_or_without_slash(
    public, market, path
):
    response = public.get(path)

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body[0] if isinstance(body, list) else body) == BTC_USD


@pytest.mark.parametrize("symbol", ["DOGE-USD", "NOPE", "BTC%2FEUR", "x" * 200])
def test_market_detail_of_an_unknown_symbol_is_a_404_unknown_symbol(public, market, symbol):
    assert_error(public.get(f"/api/v1/markets/{symbol}"), 404, "UNKNOWN_SYMBOL")


def test_public_endpoints_ignore_credentials_even_bad_ones(public, market):
    public.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    assert public.get("/api/v1/markets").status_code == 200
    assert public.get("/api/v1/market/BTC-USD/orderbook").status_code == 200


def test_public_endpoints_are_throttled_per_address(public, market, monkeypatch):
    monkeypatch.setitem(api_settings.DEFAULT_THROTTLE_RATES, "market_data", "2/min")

    assert public.get("/api/v1/markets").status_code == 200
    assert public.get("/api/v1/market/BTC-USD/trades").status_code == 200
    error = assert_error(public.get("/api/v1/market/BTC-USD/ticker"), 429, "THROTTLED")
    assert error["details"]["retry_after"] > 0


def test_writes_to_public_endpoints_are_405(public, market):
    assert_error(public.post("/api/v1/markets", {}), 405, "METHOD_NOT_ALLOWED")
    assert_error(public.delete("/api/v1/market/BTC-USD/orderbook"), 405, "METHOD_NOT_ALLOWED")

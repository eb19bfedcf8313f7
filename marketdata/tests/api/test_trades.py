"""GET /api/v1/market/{symbol}/trades (and the legacy /orders/trades/{symbol})."""

import pytest

from marketdata.selectors import millis
from trading.models import Trade
from trading.tests.helpers import drain, place

pytestmark = pytest.mark.django_db


@pytest.fixture
def trades(market, trader):
    buyer, seller = trader(market, usd="100000"), trader(market, btc="10")
    for price, quantity in [("100", "0.5"), ("101.25", "0.12345"), ("99.5", "2")]:
        place(seller, side="sell", price=price, quantity=quantity)
        place(buyer, side="buy", price=price, quantity=quantity)
        drain(market)
    return list(Trade.objects.order_by("-id"))


def test_trades_are_newest_first_with_price_quantity_notional_side_and_time(public, trades):
    response = public.get("/api/v1/market/BTC-USD/trades")

    assert response.status_code == 200, response.content
    assert response.json() == [
        {
            "id": trade.pk,
            "price": price,
            "quantity": quantity,
            "quote_quantity": quote,
            "taker_side": "buy",
            "time": millis(trade.created_at),
        }
        for trade, (price, quantity, quote) in zip(
            trades,
            [
                ("99.50", "2.00000", "199.00"),
                ("101.25", "0.12345", "12.4993125"),
                ("100.00", "0.50000", "50.00"),
            ],
            strict=True,
        )
    ]


def test_trades_limit_keeps_the_newest(public, trades):
    body = public.get("/api/v1/market/BTC_USD/trades/?limit=2").json()

    assert [trade["id"] for trade in body] == [trade.pk for trade in trades[:2]]


@pytest.mark.parametrize(
    "path",
    ["/api/v1/orders/trades/BTC-USD", "/api/v1/orders/trades/BTC%2FUSD/"],
)
def test_legacy_trades_path_gives_the_same_trades(public, trades, path):
    expected = public.get("/api/v1/market/BTC-USD/trades?limit=2").json()

    response = public.get(f"{path}?limit=2")

    assert response.status_code == 200, response.content
    assert response.json() == expected


def test_trades_of_a_market_without_trades_are_empty(public, market):
    assert public.get("/api/v1/market/BTC-USD/trades").json() == []

"""GET /api/v1/market/{symbol}/ticker and /api/v1/market/tickers: rolling 24 h from the 1m
candles, best bid and ask from the book, cached for about a second."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from marketdata.services import candles_apply_trades
from marketdata.tests.fixtures import fake_trade, publish_book, redis_down
from trading.models import Market
from trading.tests.factories import MarketFactory
from trading.tests.helpers import drain, place
from wallets.tests.factories import AssetFactory

pytestmark = pytest.mark.django_db

EMPTY_STATS = {
    "open": None,
    "high": None,
    "low": None,
    "last": None,
    "change": None,
    "change_percent": None,
    "volume": "0.00000",
    "quote_volume": "0.00",
    "trade_count": 0,
}


def ticker_of(response) -> dict:
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["close_time"] - body["open_time"] <= 24 * 3600 * 1000
    return body


def test_ticker_gives_24h_open_high_low_last_volumes_change_and_best_bid_ask(
    public, market, trader
):
    now = timezone.now()
    candles_apply_trades(
        market_id=market.pk,
        trades=[
            fake_trade(market, "90", "9", now - timedelta(hours=25)),  # outside the window
            fake_trade(market, "100", "1", now - timedelta(hours=23, minutes=50)),
            fake_trade(market, "120", "0.5", now - timedelta(hours=5)),
            fake_trade(market, "95", "2", now - timedelta(hours=1)),
        ],
    )
    # The book, and the last price, from real trading.
    buyer, seller = trader(market, usd="100000"), trader(market, btc="10")
    place(seller, side="sell", price="110", quantity="1")
    place(buyer, side="buy", price="110", quantity="1")
    place(seller, side="sell", price="112.5", quantity="0.75")
    place(buyer, side="buy", price="108", quantity="0.3")
    publish_book(drain(market))
    Market.objects.filter(pk=market.pk).update(last_price=Decimal("110"))

    body = ticker_of(public.get("/api/v1/market/BTC-USD/ticker"))

    # Real trading added one 1m candle of now: 1 BTC at 110.
    assert body == {
        **body,
        "symbol": "BTC-USD",
        "open": "100.00",
        "high": "120.00",
        "low": "95.00",
        "last": "110.00",
        "change": "10.00",
        "change_percent": "10.00",
        "volume": "4.50000",
        "quote_volume": "460.00",
        "trade_count": 4,
        "best_bid": "108.00",
        "best_bid_quantity": "0.30000",
        "best_ask": "112.50",
        "best_ask_quantity": "0.75000",
    }


def test_ticker_of_a_market_without_trades_has_no_prices(public, market):
    body = ticker_of(public.get("/api/v1/market/BTC%2FUSD/ticker/"))

    assert body == {
        **body,
        **EMPTY_STATS,
        "best_bid": None,
        "best_bid_quantity": None,
        "best_ask": None,
        "best_ask_quantity": None,
    }


def test_tickers_list_every_market(public, market):
    MarketFactory(
        symbol="ETH-USD",
        base_asset=AssetFactory(code="ETH", precision=8),
        quote_asset=market.quote_asset,
    )

    response = public.get("/api/v1/market/tickers")

    assert response.status_code == 200, response.content
    assert [ticker["symbol"] for ticker in response.json()] == ["BTC-USD", "ETH-USD"]


def test_ticker_is_cached_for_about_a_second(public, market):
    first = ticker_of(public.get("/api/v1/market/BTC-USD/ticker"))
    candles_apply_trades(
        market_id=market.pk, trades=[fake_trade(market, "100", "1", timezone.now())]
    )

    assert ticker_of(public.get("/api/v1/market/BTC-USD/ticker")) == first
    assert public.get("/api/v1/market/tickers").json() == [first]
    cache.clear()
    assert ticker_of(public.get("/api/v1/market/BTC-USD/ticker"))["trade_count"] == 1


def test_ticker_answers_when_redis_is_down(public, book, settings):
    redis_down(settings)

    body = ticker_of(public.get("/api/v1/market/BTC-USD/ticker"))

    assert (body["best_bid"], body["best_ask"], body["trade_count"]) == ("99.00", "101.00", 1)

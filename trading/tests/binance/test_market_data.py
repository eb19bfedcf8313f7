"""Public /api/v3 endpoints: Binance's shapes over the same market data as /api/v1."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.settings import api_settings

from trading.models import Market, Trade
from trading.tests.binance.test_signing import assert_binance_error
from trading.tests.helpers import drain, place

pytestmark = pytest.mark.django_db


@pytest.fixture
def traded(market, trader):
    """BTC-USD with two resting bids, one ask and one trade of 0.1 at 30000."""
    maker = trader(market, usd="100000", btc="5")
    taker = trader(market, usd="100000", btc="5")
    place(maker, side="sell", price="30000", quantity="0.1")
    place(maker, side="sell", price="31000", quantity="0.2")
    place(maker, side="buy", price="29000", quantity="0.3")
    place(maker, side="buy", price="28000.5", quantity="0.4")
    drain(market)
    place(taker, side="buy", price="30000", quantity="0.1")
    drain(market)
    market.refresh_from_db()
    return market


def test_ping_and_time(public_client):
    assert public_client.public("ping").json() == {}
    server_time = public_client.public("time").json()["serverTime"]
    assert isinstance(server_time, int)
    assert server_time > 1_700_000_000_000


def test_exchange_info_describes_each_market(public_client, market):
    Market.objects.filter(pk=market.pk).update(status=Market.Status.CANCEL_ONLY)
    body = public_client.public("exchangeInfo").json()
    (symbol,) = body["symbols"]
    assert symbol["symbol"] == "BTCUSD"
    assert symbol["status"] == "BREAK"
    assert (symbol["baseAsset"], symbol["quoteAsset"]) == ("BTC", "USD")
    assert {"LIMIT", "MARKET", "LIMIT_MAKER"} <= set(symbol["orderTypes"])
    filters = {item["filterType"]: item for item in symbol["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert filters["LOT_SIZE"]["minQty"] == "0.00001000"
    assert filters["NOTIONAL"]["minNotional"] == "1.00000000"
    assert body["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"
    assert public_client.public("exchangeInfo", {"symbol": "BTCUSD"}).json()["symbols"] == [symbol]
    assert_binance_error(
        public_client.public("exchangeInfo", {"symbol": "DOGEUSD"}), 400, -1121, "Invalid symbol."
    )


def test_depth_carries_the_book_seq_as_last_update_id(public_client, traded):
    body = public_client.public("depth", {"symbol": "BTCUSD", "limit": 5}).json()
    assert body["lastUpdateId"] == traded.seq > 0
    assert body["bids"] == [["29000.00", "0.30000"], ["28000.50", "0.40000"]]
    assert body["asks"] == [["31000.00", "0.20000"]]
    one = public_client.public("depth", {"symbol": "BTCUSD", "limit": 1}).json()
    assert len(one["bids"]) == 1


@pytest.mark.parametrize(
    ("path", "limit"),
    [("depth", 5001), ("trades", 12000), ("aggTrades", 12000), ("historicalTrades", 1001)],
)
def test_a_limit_above_the_maximum_is_cut_to_it_as_binance_does(public_client, traded, path, limit):
    # CCXT's own fetch_trades test asks for 12,000 trades; Binance answers a full page.
    response = public_client.public(path, {"symbol": "BTCUSD", "limit": limit})

    assert response.status_code == 200, response.content
    body = response.json()
    rows = body["bids"] + body["asks"] if path == "depth" else body
    assert len(rows) == (3 if path == "depth" else 1)


def test_trades_agg_trades_and_tickers(public_client, traded):
    (trade,) = public_client.public("trades", {"symbol": "BTCUSD"}).json()
    assert trade["price"] == "30000.00000000"
    assert trade["qty"] == "0.10000000"
    assert trade["quoteQty"] == "3000.00000000"
    assert trade["isBuyerMaker"] is False
    (agg,) = public_client.public("aggTrades", {"symbol": "BTCUSD"}).json()
    assert agg["a"] == trade["id"]
    assert agg["p"] == trade["price"]
    assert agg["m"] is False
    assert agg["T"] == trade["time"]
    assert (
        public_client.public("aggTrades", {"symbol": "BTCUSD", "fromId": agg["a"] + 1}).json() == []
    )

    cache.clear()
    ticker = public_client.public("ticker/24hr", {"symbol": "BTCUSD"}).json()
    assert ticker["lastPrice"] == "30000.00000000"
    assert ticker["volume"] == "0.10000000"
    assert ticker["quoteVolume"] == "3000.00000000"
    assert ticker["bidPrice"] == "29000.00000000"
    assert ticker["askPrice"] == "31000.00000000"
    assert ticker["count"] == 1
    assert ticker["firstId"] == ticker["lastId"] == trade["id"]
    assert ticker["lastQty"] == "0.10000000"
    assert isinstance(ticker["closeTime"], int)
    assert isinstance(public_client.public("ticker/24hr").json(), list)
    price = public_client.public("ticker/price", {"symbol": "BTCUSD"}).json()
    assert price == {"symbol": "BTCUSD", "price": "30000.00000000"}
    book = public_client.public("ticker/bookTicker", {"symbols": '["BTCUSD"]'}).json()
    assert book == [
        {
            "symbol": "BTCUSD",
            "bidPrice": "29000.00000000",
            "bidQty": "0.30000000",
            "askPrice": "31000.00000000",
            "askQty": "0.20000000",
        }
    ]


def test_klines_have_twelve_fields(public_client, traded):
    (row,) = public_client.public("klines", {"symbol": "BTCUSD", "interval": "1m"}).json()
    assert len(row) == 12
    open_time, open_, high, low, close, volume, close_time, quote, count, buy_base, buy_quote, _ = (
        row
    )
    assert close_time == open_time + 59_999
    assert (open_, high, low, close) == ("30000.00000000",) * 4
    assert (volume, quote, count) == ("0.10000000", "3000.00000000", 1)
    # The taker bought: the whole candle is taker-buy volume.
    assert (buy_base, buy_quote) == ("0.10000000", "3000.00000000")
    more = public_client.public("klines", {"symbol": "BTCUSD", "interval": "1m", "limit": 1500})
    assert more.status_code == 200
    assert_binance_error(
        public_client.public("klines", {"symbol": "BTCUSD", "interval": "3m"}), 400, -1120
    )


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("depth", {}, -1102),
        ("depth", {"symbol": "NOPE"}, -1121),
        ("depth", {"symbol": "BTCUSD", "limit": "abc"}, -1100),
        ("trades", {"symbol": "BTCUSD", "limit": 0}, -1100),
        ("klines", {"symbol": "BTCUSD"}, -1102),
        ("ticker/price", {"symbols": "not json"}, -1100),
        ("ticker/price", {"symbols": '["BTCUSD","NOPE"]'}, -1121),
    ],
)
def test_bad_parameters_get_binance_codes(public_client, market, path, params, code):
    assert_binance_error(public_client.public(path, params), 400, code)


def test_unknown_paths_and_trailing_slashes_answer_in_binance_shape(public_client):
    assert_binance_error(public_client.public("nothing/here"), 404, -1000)
    assert_binance_error(public_client.public("ping/"), 404, -1000)


def test_too_many_requests_is_1003_with_retry_after(public_client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**api_settings.DEFAULT_THROTTLE_RATES, "binance": "2/min"},
    }
    assert public_client.public("ping").status_code == 200
    assert public_client.public("ping").status_code == 200
    response = public_client.public("ping")
    assert_binance_error(response, 429, -1003)
    assert int(response["Retry-After"]) > 0


def test_avg_price_weights_the_last_five_minutes_trades(public_client, traded, trader):
    taker = trader(traded, usd="100000", btc="5")
    place(taker, side="buy", price="31000", quantity="0.1")
    drain(traded)
    body = public_client.public("avgPrice", {"symbol": "BTCUSD"}).json()
    last = public_client.public("trades", {"symbol": "BTCUSD"}).json()[-1]["time"]
    assert body == {"mins": 5, "price": "30500.00000000", "closeTime": last}

    # No trade in the window: the last price, as Binance keeps its last average.
    Trade.objects.update(created_at=timezone.now() - timedelta(minutes=6))
    assert public_client.public("avgPrice", {"symbol": "BTCUSD"}).json()["price"] == (
        "31000.00000000"
    )
    assert_binance_error(
        public_client.public("avgPrice", {"symbol": "DOGEUSD"}), 400, -1121, "Invalid symbol."
    )

"""GET /api/v1/market/{symbol}/candles: OHLCV oldest first, by interval and time range."""

from datetime import UTC, datetime, timedelta

import pytest

from marketdata.selectors import millis
from marketdata.services import candles_apply_trades
from marketdata.tests.fixtures import fake_trade

pytestmark = pytest.mark.django_db

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def history(market):
    """Trades at 12:00:10, 12:00:50, 12:01:00, 12:04:59.999999, 12:05:00 and 13:00."""
    batches = [
        [
            fake_trade(market, "100", "1", T0 + timedelta(seconds=10)),
            fake_trade(market, "105", "0.5", T0 + timedelta(seconds=10)),
        ],
        [fake_trade(market, "98", "2", T0 + timedelta(seconds=50))],
        [fake_trade(market, "101", "1", T0 + timedelta(minutes=1))],
        [fake_trade(market, "99", "0.1", T0 + timedelta(minutes=5, microseconds=-1))],
        [fake_trade(market, "102", "3", T0 + timedelta(minutes=5))],
        [fake_trade(market, "110", "1", T0 + timedelta(hours=1))],
    ]
    for trades in batches:
        candles_apply_trades(market_id=market.pk, trades=trades)


def candles(public, query: str = "") -> list[dict]:
    response = public.get(f"/api/v1/market/BTC-USD/candles{query}")
    assert response.status_code == 200, response.content
    return response.json()


def test_candles_are_ohlcv_rows_oldest_first(public, history):
    body = candles(public, "?interval=5m")

    assert body == [
        {
            "open_time": millis(T0),
            "open": "100.00",
            "high": "105.00",
            "low": "98.00",
            "close": "99.00",
            "volume": "4.60000",
            "quote_volume": "459.40",
            "trade_count": 5,
        },
        {
            "open_time": millis(T0 + timedelta(minutes=5)),
            "open": "102.00",
            "high": "102.00",
            "low": "102.00",
            "close": "102.00",
            "volume": "3.00000",
            "quote_volume": "306.00",
            "trade_count": 1,
        },
        {
            "open_time": millis(T0 + timedelta(hours=1)),
            "open": "110.00",
            "high": "110.00",
            "low": "110.00",
            "close": "110.00",
            "volume": "1.00000",
            "quote_volume": "110.00",
            "trade_count": 1,
        },
    ]


@pytest.mark.parametrize(
    ("interval", "count"), [("1m", 5), ("5m", 3), ("15m", 2), ("1h", 2), ("4h", 1), ("1d", 1)]
)
def test_candles_of_each_interval(public, history, interval, count):
    body = candles(public, f"?interval={interval}")

    assert len(body) == count
    assert sum(row["trade_count"] for row in body) == 7
    assert [row["open_time"] for row in body] == sorted(row["open_time"] for row in body)


def test_candles_default_to_1m(public, history):
    assert candles(public) == candles(public, "?interval=1m")


@pytest.mark.parametrize(
    "query",
    [
        "?start=2024-05-01T12:01:00Z&end=2024-05-01T12:05:00Z",
        "?start=2024-05-01T12:01:00%2B00:00&end=2024-05-01T14:05:00%2B02:00",
        "?start=2024-05-01T12:01:00+00:00&end=2024-05-01T12:05:00",  # "+" left unencoded
        f"?start={millis(T0 + timedelta(minutes=1))}&end={millis(T0 + timedelta(minutes=5))}",
        "?start=2024-05-01T12:00:30Z&end=2024-05-01T12:05:00.5Z",
    ],
)
def test_candles_between_start_and_end_inclusive(public, history, query):
    body = candles(public, query)

    assert [row["open_time"] for row in body] == [
        millis(T0 + timedelta(minutes=1)),
        millis(T0 + timedelta(minutes=4)),
        millis(T0 + timedelta(minutes=5)),
    ]


def test_candles_limit_takes_the_first_from_start_or_else_the_last(public, history):
    from_start = candles(public, f"?start={millis(T0)}&limit=2")
    latest = candles(public, "?limit=2")

    assert [row["open_time"] for row in from_start] == [millis(T0), millis(T0) + 60_000]
    assert [row["open_time"] for row in latest] == [
        millis(T0 + timedelta(minutes=5)),
        millis(T0 + timedelta(hours=1)),
    ]


def test_candles_before_any_trade_are_empty(public, history):
    assert candles(public, "?end=2024-05-01") == []

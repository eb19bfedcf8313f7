"""Every public endpoint refuses bad input with a 4xx in the error shape, never a 500."""

import pytest

from trading.tests.helpers import assert_error

pytestmark = pytest.mark.django_db

BOOK = "/api/v1/market/BTC-USD/orderbook"
TRADES = "/api/v1/market/BTC-USD/trades"
CANDLES = "/api/v1/market/BTC-USD/candles"


@pytest.mark.parametrize(
    "path",
    [
        *(f"{BOOK}?depth={depth}" for depth in ["0", "-1", "1001", "1000000000", "abc", "1.5"]),
        f"{BOOK}?depth={'9' * 5000}",
        "/api/v1/orders/book/BTC-USD?depth=0",
        *(f"{TRADES}?limit={limit}" for limit in ["0", "1001", "99999999999999999999", "x"]),
        "/api/v1/orders/trades/BTC-USD?limit=0",
        *(f"{CANDLES}?interval={interval}" for interval in ["7m", "1M", "1m%00", "1m,5m"]),
        f"{CANDLES}?start=2024-05-02&end=2024-05-01",
        f"{CANDLES}?start=1714600000001&end=1714600000000",
        *(f"{CANDLES}?limit={limit}" for limit in ["0", "1001", "10e9"]),
        *(
            f"{CANDLES}?start={start}"
            for start in [
                "yesterday",
                "2024-13-45T00:00:00",
                "2024-02-30",
                "999999999999999",
                "1" * 16,
                "-5",
                "2024-05-01T25:00:00Z",
                "x" * 100,
            ]
        ),
    ],
)
def test_bad_parameters_are_400_validation_error(public, market, path):
    assert_error(public.get(path), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/markets/DOGE-USD",
        "/api/v1/market/DOGE-USD/orderbook",
        "/api/v1/market/DOGE%2FUSD/trades",
        "/api/v1/market/DOGE_USD/ticker",
        "/api/v1/market/DOGE-USD/candles",
        "/api/v1/orders/book/DOGE-USD",
        "/api/v1/orders/trades/DOGE-USD",
        "/api/v1/market/%20/orderbook",
        "/api/v1/market/BTC-USD-X/ticker",
    ],
)
def test_unknown_symbols_are_404_unknown_symbol(public, market, path):
    assert_error(public.get(path), 404, "UNKNOWN_SYMBOL")


def test_an_empty_parameter_means_its_default(public, market):
    assert public.get(f"{BOOK}?depth=").status_code == 200
    assert public.get(f"{CANDLES}?interval=&limit=").status_code == 200

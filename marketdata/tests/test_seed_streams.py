"""Seed 003's stream messages, translated from the hub's (marketdata.seed_streams); the
streams themselves are replayed over daphne in exchange_site/tests/test_seed_documents_live.py."""

from marketdata.seed_streams import STREAM_NAME, depth_data, ticker_data, trade_data

UPDATE = {
    "type": "update", "channel": "orderbook", "symbol": "BTC-USD", "first_seq": 4, "seq": 6,
    "bids": [["100.00", "1.00000"]], "asks": [["101.00", "0.00000"]], "ts": 1765068000000,
}  # fmt: skip
TRADE = {
    "type": "trade", "channel": "trades", "symbol": "BTC-USD", "id": 9, "price": "100.00",
    "quantity": "0.50000", "taker_side": "buy", "buy_order_id": 1, "sell_order_id": 2,
    "time": 1765068000000, "ts": 1765068000001,
}  # fmt: skip
TICKER = {
    "type": "ticker", "channel": "ticker", "symbol": "ETH-BTC", "open": "0.05", "high": "0.06",
    "low": "0.04", "last": "0.055", "change": "0.005", "change_percent": "10.00",
    "volume": "3", "quote_volume": "0.165", "trade_count": 2, "ts": 5,
}  # fmt: skip


def test_depth_trade_and_ticker_data_are_the_documents_fields():
    assert depth_data(UPDATE) == {
        "e": "depth", "s": "BTC_USD", "b": [["100.00", "1.00000"]],
        "a": [["101.00", "0.00000"]], "U": 4, "u": 6, "E": 1765068000000,
    }  # fmt: skip
    assert trade_data(TRADE) == {
        "e": "trade", "s": "BTC_USD", "t": 9, "p": "100.00", "q": "0.50000",
        "T": 1765068000000, "m": False,
    }  # fmt: skip
    assert ticker_data(TICKER) == {
        "e": "ticker", "s": "ETH_BTC", "o": "0.05", "h": "0.06", "l": "0.04", "c": "0.055",
        "v": "3", "V": "0.165", "p": "0.005", "P": "10.00", "n": 2, "E": 5,
    }  # fmt: skip


def test_other_messages_of_a_stream_translate_to_nothing():
    assert depth_data({"type": "snapshot"}) is None
    assert trade_data(UPDATE) is None
    assert ticker_data(TRADE) is None


def test_stream_names():
    assert STREAM_NAME.fullmatch("depth@TATA_INR")["symbol"] == "TATA_INR"
    assert STREAM_NAME.fullmatch("trade@btc-usd")["kind"] == "trade"
    assert STREAM_NAME.fullmatch("ticker@BTC/USD")["kind"] == "ticker"
    for name in ("kline@BTC_USD", "depth@BTCUSD", "depth@", "btcusd@depth"):
        assert STREAM_NAME.fullmatch(name) is None, name

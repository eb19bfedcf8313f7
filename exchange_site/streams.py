"""Names of every stream and of the Redis keys that go with them, in one place (STYLE: group
names come from one helper).

The matcher (``trading.matcher.publish``) writes under these names and the market-data
readers (``marketdata``) read them, and marketdata imports trading: so the names live here,
below both, importing no app.

Public market data travels over the Channels layer (channels-redis's pub/sub layer), one
group per market and stream (``md.BTC-USD.orderbook``), published once by the matcher and
received once per ws process by its hub (``marketdata.hub``). Private events (orders,
balances) go to one group per user (``user.42``).
"""

PUBLIC_CHANNELS = ("orderbook", "trades", "ticker", "candles")
PRIVATE_CHANNELS = ("orders", "balances")
CANDLE_INTERVALS = ("1m", "5m", "15m", "1h", "4h", "1d")

# Message types on the layer. A public message carries the text every client gets, ready.
PUBLIC_MESSAGE = "md.message"
USER_EVENT = "user.event"

HEARTBEAT_KEY = "exchange:matcher:heartbeat:{symbol}"
BOOK_KEY = "exchange:book:{symbol}"
TICKER_KEY = "exchange:ticker:{symbol}"


def stream_key(channel: str, symbol: str, interval: str | None = None) -> str:
    """A hub's key for one public stream: ``orderbook:BTC-USD``, ``candles:BTC-USD:1m``."""
    return f"{channel}:{symbol}:{interval}" if interval else f"{channel}:{symbol}"


def public_group(channel: str, symbol: str, interval: str | None = None) -> str:
    """The layer group of one public stream: ``md.BTC-USD.orderbook``,
    ``md.BTC-USD.candles.1m`` (group names allow letters, digits, ``-``, ``_`` and ``.``)."""
    group = f"md.{symbol}.{channel}"
    return f"{group}.{interval}" if interval else group


def stream_group(stream: str) -> str:
    """The layer group of a hub stream key (``orderbook:BTC-USD`` → ``md.BTC-USD.orderbook``)."""
    channel, symbol, *interval = stream.split(":")
    return public_group(channel, symbol, interval[0] if interval else None)


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def heartbeat_key(symbol: str) -> str:
    return HEARTBEAT_KEY.format(symbol=symbol)


def book_key(symbol: str) -> str:
    """The matcher's latest full book of ``symbol`` (JSON with its ``seq``)."""
    return BOOK_KEY.format(symbol=symbol)


def ticker_key(symbol: str) -> str:
    """The last ticker message the matcher published for ``symbol``."""
    return TICKER_KEY.format(symbol=symbol)

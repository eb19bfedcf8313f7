"""Names of every stream, in one place (STYLE: group names come from one helper).

Public market data travels over plain Redis pub/sub channels, one per stream, published
once by the matcher and received once per ws process (``marketdata.hub``). Private events
(orders, balances) go through the Channels layer to one group per user.
"""

from django.conf import settings

PUBLIC_PREFIX = settings.REDIS_PUBSUB_PREFIX + "md:"
PUBLIC_PATTERN = PUBLIC_PREFIX + "*"

PUBLIC_CHANNELS = ("orderbook", "trades", "ticker", "candles")
PRIVATE_CHANNELS = ("orders", "balances")
CANDLE_INTERVALS = ("1m", "5m", "15m", "1h", "4h", "1d")


def stream_key(channel: str, symbol: str, interval: str | None = None) -> str:
    """The hub's key for one public stream: ``orderbook:BTC-USD``, ``candles:BTC-USD:1m``."""
    return f"{channel}:{symbol}:{interval}" if interval else f"{channel}:{symbol}"


def public_redis_channel(channel: str, symbol: str, interval: str | None = None) -> str:
    return PUBLIC_PREFIX + stream_key(channel, symbol, interval)


def user_group(user_id: int) -> str:
    return f"user.{user_id}"

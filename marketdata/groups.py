"""Stream and group names for marketdata's callers; defined once, in ``exchange_site.streams``
(below both trading and marketdata, so the matcher can use them without importing marketdata)."""

from exchange_site.streams import (
    CANDLE_INTERVALS,
    PRIVATE_CHANNELS,
    PUBLIC_CHANNELS,
    public_group,
    stream_group,
    stream_key,
    user_group,
)

__all__ = [
    "CANDLE_INTERVALS",
    "PRIVATE_CHANNELS",
    "PUBLIC_CHANNELS",
    "public_group",
    "stream_group",
    "stream_key",
    "user_group",
]

"""What the matcher tells the world after a batch commits: book snapshot and heartbeat.

Only committed facts are published, and a failure here (Redis down) never touches the
database: readers fall back to the database and the next batch publishes again.
"""

import json
import logging
import time

from django_redis import get_redis_connection

logger = logging.getLogger("trading.matcher")

HEARTBEAT_KEY = "exchange:matcher:heartbeat:{symbol}"
HEARTBEAT_TTL_SECONDS = 120
BOOK_KEY = "exchange:book:{symbol}"
SNAPSHOT_LEVELS = 1000


def heartbeat_key(symbol: str) -> str:
    return HEARTBEAT_KEY.format(symbol=symbol)


def book_key(symbol: str) -> str:
    return BOOK_KEY.format(symbol=symbol)


def heartbeat_write(*, symbols: list[str], payload: str) -> None:
    try:
        pipe = get_redis_connection("default").pipeline(transaction=False)
        for symbol in symbols:
            pipe.set(heartbeat_key(symbol), payload, ex=HEARTBEAT_TTL_SECONDS)
        pipe.execute()
    except Exception:
        logger.debug("heartbeat not written (Redis unavailable)", exc_info=True)


def book_snapshot(book, scale, symbol: str, levels: int = SNAPSHOT_LEVELS) -> dict:
    """The book's top levels as decimal strings, with the seq they reflect."""
    bids, asks = book.depth(levels)

    def side(rows):
        return [
            [str(scale.ticks_to_price(price)), str(scale.lots_to_qty(qty)), count]
            for price, qty, count in rows
        ]

    return {
        "symbol": symbol,
        "seq": book.seq,
        "bids": side(bids),
        "asks": side(asks),
        "timestamp": time.time(),
    }


def publish_batch(result, matcher) -> None:
    """After commit: refresh the depth snapshot in Redis (read by the REST order book)."""
    if matcher.book is None or not result.level_changes:
        return
    try:
        snapshot = book_snapshot(matcher.book, matcher.scale, result.symbol)
        get_redis_connection("default").set(book_key(result.symbol), json.dumps(snapshot))
    except Exception:
        logger.warning("book snapshot of %s not published", result.symbol, exc_info=True)

"""Wake-ups from order entry to the matcher through Redis (ARCHITECTURE §3).

A wake-up is only a hint: the matcher also polls the database, so an order accepted while
Redis is down is matched anyway, just later. Nothing here may fail an accepted order.
"""

import logging

from django_redis import get_redis_connection

from exchange_site.background import after_commit

logger = logging.getLogger(__name__)

WAKE_KEY = "exchange:matcher:wake:{symbol}"


def wake_key(symbol: str) -> str:
    return WAKE_KEY.format(symbol=symbol)


def matcher_wake_soon(symbol: str) -> None:
    """``matcher_wake`` from the background loop (exchange_site.background): the request
    that committed the command does not wait for Redis."""
    after_commit.submit(matcher_wake, symbol)


def matcher_wake(symbol: str) -> None:
    """Tell the matcher of ``symbol`` there is work (after the command's commit)."""
    try:
        client = get_redis_connection("default")
        pipe = client.pipeline(transaction=False)
        pipe.rpush(wake_key(symbol), 1)
        # One pending wake-up is as good as many; keep the list from growing.
        pipe.ltrim(wake_key(symbol), -1, -1)
        pipe.execute()
    except Exception:  # Redis down: the matcher's database polling picks the command up
        logger.warning("matcher wake-up for %s not sent", symbol, exc_info=True)


def matcher_wait(symbols: list[str], timeout_seconds: float) -> set[str]:
    """Block until a wake-up for one of ``symbols`` arrives or the timeout passes.

    Returns the symbols woken (empty on timeout), so the matcher runs only the markets
    that have work instead of opening a transaction for each of them. Raises the Redis
    error when Redis is unreachable, so the caller can fall back to sleeping and polling.
    """
    client = get_redis_connection("default")
    by_key = {wake_key(symbol): symbol for symbol in symbols}
    got = client.blpop(list(by_key), timeout=timeout_seconds)
    if not got:
        return set()
    pipe = client.pipeline(transaction=False)
    for key in by_key:
        pipe.lpop(key)
    popped = pipe.execute()
    woken = {by_key[got[0].decode()]}
    woken.update(symbol for symbol, value in zip(by_key.values(), popped, strict=True) if value)
    return woken

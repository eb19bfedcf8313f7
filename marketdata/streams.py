"""What a WebSocket needs beyond forwarding: symbol checks, snapshots, the last ticker."""

import asyncio
import json
import time

import redis.asyncio as aioredis
from channels.db import database_sync_to_async
from django.conf import settings

from exchange_site.redis_clients import async_redis_client
from exchange_site.streams import book_key, ticker_key
from marketdata.selectors import orderbook_from_database, orderbook_get, trade_list_recent
from trading.models import Market
from trading.selectors import market_get_by_symbol, normalize_symbol

SYMBOLS_TTL_SECONDS = 10.0
_symbols: set[str] = set()
_symbols_at = 0.0
_symbols_loading: dict[int, asyncio.Task] = {}  # per event loop: the load in flight
_redis_clients: dict[int, aioredis.Redis] = {}


def _redis() -> aioredis.Redis:
    # One client per event loop: an asyncio connection belongs to the loop that made it.
    loop = asyncio.get_running_loop()
    client = _redis_clients.get(id(loop))
    if client is None:
        client = _redis_clients[id(loop)] = async_redis_client(
            settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
        )
    return client


@database_sync_to_async
def _load_symbols() -> set[str]:
    return set(Market.objects.values_list("symbol", flat=True))


async def _symbols_reload() -> None:
    global _symbols, _symbols_at
    _symbols = await _load_symbols()
    _symbols_at = time.monotonic()


async def _symbols_refresh() -> bool:
    """Reload the known symbols; True when it joined a load already in flight. One query
    serves every subscriber asking meanwhile: a thousand clients connecting at once (or
    when the cache expires) queued a thousand of them on the process's one database
    thread, holding every subscription up for seconds. The load stores what it read
    itself, so a waiter resuming late never finds the cache still empty."""
    loop = asyncio.get_running_loop()
    loading = _symbols_loading.get(id(loop))
    joined = loading is not None and not loading.done()
    if not joined:
        loading = _symbols_loading[id(loop)] = loop.create_task(_symbols_reload())
    # Shielded: a client leaving while it waits does not cancel the others' answer.
    await asyncio.shield(loading)
    return joined


async def symbol_known(symbol) -> str | None:
    """The normalized symbol when such a market exists (cached for a few seconds)."""
    if not isinstance(symbol, str) or len(symbol) > 30:
        return None
    normalized = normalize_symbol(symbol)
    if normalized not in _symbols or time.monotonic() - _symbols_at > SYMBOLS_TTL_SECONDS:
        joined = await _symbols_refresh()
        if normalized not in _symbols and joined:
            # The load we joined began before we asked: the market may be newer than it.
            await _symbols_refresh()
    return normalized if normalized in _symbols else None


def _snapshot_message(book: dict) -> str:
    return json.dumps(
        {
            "type": "snapshot",
            "channel": "orderbook",
            "symbol": book["symbol"],
            "seq": book["seq"],
            "bids": [level[:2] for level in book["bids"]],
            "asks": [level[:2] for level in book["asks"]],
        }
    )


class _BookRead:
    """One read of a book from the database, shared by every caller that asks before it
    begins (``begun`` is set on the database thread when it does)."""

    __slots__ = ("begun", "task")

    def __init__(self):
        self.begun = False
        self.task: asyncio.Task | None = None


_book_reads: dict[tuple[int, str], _BookRead] = {}  # (event loop, symbol) → newest read


@database_sync_to_async
def _snapshot_from_database(read: _BookRead, symbol: str) -> dict:
    read.begun = True
    return orderbook_from_database(symbol=symbol, depth=None)


async def _book_from_database(symbol: str) -> dict:
    """The book from the database. Without a snapshot in Redis (the matcher not started
    yet, Redis restarted: every subscriber resyncs at once) each subscriber asked on its
    own, a thousand reads queued on the process's one database thread. A caller joins a
    read that has not begun: it will see everything committed before the caller asked,
    so no diff the caller skips is newer than its snapshot."""
    loop = asyncio.get_running_loop()
    key = (id(loop), symbol)
    read = _book_reads.get(key)
    if read is None or read.begun or read.task.done():
        read = _book_reads[key] = _BookRead()
        read.task = loop.create_task(_snapshot_from_database(read, symbol))
    # Shielded: a client leaving while it waits does not cancel the others' answer.
    return await asyncio.shield(read.task)


async def orderbook_snapshot_text(symbol: str) -> str:
    """Every level of the book with the seq it reflects: the matcher's snapshot in Redis,
    or the database when Redis has none."""
    try:
        raw = await _redis().get(book_key(symbol))
    except Exception:  # Redis down: the database has the same book
        raw = None
    book = json.loads(raw) if raw else await _book_from_database(symbol)
    return _snapshot_message(book)


async def ticker_text(symbol: str) -> str | None:
    """The last ticker message the matcher published, if any."""
    try:
        raw = await _redis().get(ticker_key(symbol))
    except Exception:
        return None
    return raw.decode() if raw else None


@database_sync_to_async
def legacy_order_book(symbol: str, depth: int) -> dict:
    """The book as the old protocol shapes it: levels of price, total_quantity, order_count."""
    book = orderbook_get(market=market_get_by_symbol(symbol=symbol), depth=depth)

    def levels(rows):
        return [
            {"price": price, "total_quantity": quantity, "order_count": count}
            for price, quantity, count in rows
        ]

    return {
        "symbol": book["symbol"],
        "seq": book["seq"],
        "bids": levels(book["bids"]),
        "asks": levels(book["asks"]),
    }


@database_sync_to_async
def recent_trades(symbol: str, limit: int) -> list[dict]:
    return trade_list_recent(market=market_get_by_symbol(symbol=symbol), limit=limit)

"""Reads of public market data: markets, the order book, recent trades, tickers, candles.

Each returns plain data ready for JSON (decimal strings, times in unix milliseconds): the
REST views render it as is and the WebSocket streams can send it without another pass.
Amounts show at least their grid's places: prices the tick's, quantities the lot's,
notionals the quote asset's precision (as the orders API does).
"""

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.core.cache import cache
from django.db import connection
from django.db.models import Max, Min, Sum
from django.utils import timezone
from django_redis import get_redis_connection

from exchange_site.db_router import replica_safe
from exchange_site.decimals import decimal_places, decimal_to_str
from exchange_site.streams import book_key
from marketdata.models import Candle
from marketdata.services import bucket_start, epoch_seconds
from trading.models import Market, Order, Trade
from trading.selectors import market_get_by_symbol

logger = logging.getLogger("marketdata")

ORDERBOOK_MAX_DEPTH = 1000
TICKER_CACHE_SECONDS = 1.0
TICKER_WINDOW_MINUTES = 24 * 60
_HUNDRED = Decimal(100)
_PERCENT_PLACES = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Places:
    """Least decimal places shown for a market's prices, quantities and notionals."""

    price: int
    quantity: int
    quote: int

    @classmethod
    def of(cls, market: Market) -> "Places":
        return cls(
            decimal_places(market.tick_size),
            decimal_places(market.lot_size),
            market.quote_asset.precision,
        )


def _text(value: Decimal | None, places: int = 0) -> str | None:
    return None if value is None else decimal_to_str(value, places)


def millis(moment: datetime) -> int:
    """Unix time in whole milliseconds."""
    return epoch_seconds(moment) * 1000 + moment.microsecond // 1000


# --- markets ---------------------------------------------------------------------------------


def market_list() -> list[Market]:
    return list(Market.objects.select_related("base_asset", "quote_asset").order_by("symbol"))


def market_data(market: Market) -> dict:
    """A market's rules, fees, status, assets and last price."""
    return {
        "symbol": market.symbol,
        "status": market.status,
        "base_asset": market.base_asset.code,
        "base_precision": market.base_asset.precision,
        "quote_asset": market.quote_asset.code,
        "quote_precision": market.quote_asset.precision,
        "tick_size": decimal_to_str(market.tick_size),
        "lot_size": decimal_to_str(market.lot_size),
        "min_qty": decimal_to_str(market.min_qty),
        "max_qty": decimal_to_str(market.max_qty),
        "min_notional": decimal_to_str(market.min_notional),
        "maker_fee": decimal_to_str(market.maker_fee),
        "taker_fee": decimal_to_str(market.taker_fee),
        "last_price": _text(market.last_price, Places.of(market).price),
    }


# --- the order book --------------------------------------------------------------------------


def _levels_text(levels, places: Places) -> list[list]:
    return [
        [
            decimal_to_str(Decimal(price), places.price),
            decimal_to_str(Decimal(qty), places.quantity),
            count,
        ]
        for price, qty, count in levels
    ]


def _book_from_redis(market: Market) -> dict | None:
    try:
        raw = get_redis_connection("default").get(book_key(market.symbol))
    except Exception as exc:
        logger.warning("book of %s read from the database: Redis failed (%s)", market.symbol, exc)
        return None
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        logger.error("book snapshot of %s in Redis is not JSON; using the database", market.symbol)
        return None


# Bids and asks of one market with the market's seq, in ONE statement: PostgreSQL and
# SQLite read a statement from one snapshot, so the levels are exactly the book at that seq.
# An iceberg counts with what it shows (``iceberg_visible``, kept by the matcher), as in the
# matcher's own book.
_BOOK_SQL = (
    "SELECT 'seq', NULL, NULL, seq FROM \"{market}\" WHERE id = %s "
    "UNION ALL SELECT * FROM ("
    "  SELECT 'buy', price, SUM(COALESCE(iceberg_visible, quantity - filled_quantity)), "
    "  COUNT(*) "
    "  FROM \"{order}\" WHERE market_id = %s AND side = 'buy' AND status IN ({live}) "
    "  GROUP BY price ORDER BY price DESC {limit}) AS bids "
    "UNION ALL SELECT * FROM ("
    "  SELECT 'sell', price, SUM(COALESCE(iceberg_visible, quantity - filled_quantity)), "
    "  COUNT(*) "
    "  FROM \"{order}\" WHERE market_id = %s AND side = 'sell' AND status IN ({live}) "
    "  GROUP BY price ORDER BY price ASC {limit}) AS asks"
)
_RESTING = [Order.Status.OPEN.value, Order.Status.PARTIALLY_FILLED.value]


def _book_from_database(market: Market, depth: int | None) -> dict:
    limit = "" if depth is None else "LIMIT %s"
    sql = _BOOK_SQL.format(
        market=Market._meta.db_table,
        order=Order._meta.db_table,
        live=", ".join(["%s"] * len(_RESTING)),
        limit=limit,
    )
    per_side = [market.pk, *_RESTING, *([] if depth is None else [depth])]
    with connection.cursor() as cursor:
        cursor.execute(sql, [market.pk, *per_side, *per_side])
        rows = cursor.fetchall()
    places = Places.of(market)
    # SQLite sums decimals as floats (0.31000000000000005): back onto the market's grid.
    tick, lot = Decimal(1).scaleb(-places.price), Decimal(1).scaleb(-places.quantity)
    book = {"symbol": market.symbol, "seq": 0, "bids": [], "asks": [], "timestamp": time.time()}
    for side, price, quantity, count in rows:
        if side == "seq":
            book["seq"] = int(count)
            continue
        level = [
            decimal_to_str(Decimal(str(price)).quantize(tick), places.price),
            decimal_to_str(Decimal(str(quantity)).quantize(lot), places.quantity),
            int(count),
        ]
        book["bids" if side == "buy" else "asks"].append(level)
    return book


def orderbook_from_database(*, symbol: str, depth: int | None = None) -> dict:
    """The book as the database has it, in the snapshot's shape: ``{"symbol", "seq",
    "bids", "asks", "timestamp"}``, levels ``[price, total_qty, order_count]`` best first,
    all levels when ``depth`` is None. Raises ``MarketNotFound``."""
    return _book_from_database(market_get_by_symbol(symbol=symbol), depth)


def orderbook_get(*, market: Market, depth: int) -> dict:
    """The top ``depth`` levels per side with the seq they reflect and when they were taken
    (``timestamp``, unix seconds): the matcher's snapshot in Redis, or, when Redis has none
    or is down, the database."""
    snapshot = _book_from_redis(market)
    if snapshot is None:
        return _book_from_database(market, depth)
    places = Places.of(market)
    return {
        "symbol": market.symbol,
        "seq": snapshot["seq"],
        "bids": _levels_text(snapshot["bids"][:depth], places),
        "asks": _levels_text(snapshot["asks"][:depth], places),
        "timestamp": snapshot["timestamp"],
    }


# --- trades ----------------------------------------------------------------------------------


@replica_safe
def trade_list_recent(*, market: Market, limit: int) -> list[dict]:
    """The market's last ``limit`` trades, newest first (from a read replica when one is fit:
    public history tolerates a moment's staleness, ``exchange_site.db_router``)."""
    places = Places.of(market)
    rows = (
        Trade.objects.filter(market=market)
        .order_by("-id")
        .values_list("id", "price", "quantity", "quote_quantity", "taker_side", "created_at")[
            :limit
        ]
    )
    return [
        {
            "id": trade_id,
            "price": decimal_to_str(price, places.price),
            "quantity": decimal_to_str(quantity, places.quantity),
            "quote_quantity": decimal_to_str(quote, places.quote),
            "taker_side": taker_side,
            "time": millis(created_at),
        }
        for trade_id, price, quantity, quote, taker_side, created_at in rows
    ]


# --- tickers ---------------------------------------------------------------------------------


def _ticker_key(symbol: str) -> str:
    return f"marketdata:ticker:{symbol}"


def _ticker_compute(market: Market) -> dict:
    now = timezone.now()
    window_start = bucket_start(now, Candle.Interval.M1) - timedelta(
        minutes=TICKER_WINDOW_MINUTES - 1
    )
    stats, open_price = _ticker_window(market=market, window_start=window_start)
    last = market.last_price
    change = change_percent = None
    if open_price is not None and last is not None:
        change = last - open_price
        change_percent = (change / open_price * _HUNDRED).quantize(
            _PERCENT_PLACES, rounding=ROUND_HALF_UP
        )
    book = orderbook_get(market=market, depth=1)
    best_bid = book["bids"][0] if book["bids"] else [None, None]
    best_ask = book["asks"][0] if book["asks"] else [None, None]
    places = Places.of(market)
    return {
        "symbol": market.symbol,
        "open": _text(open_price, places.price),
        "high": _text(stats["high"], places.price),
        "low": _text(stats["low"], places.price),
        "last": _text(last, places.price),
        "change": _text(change, places.price),
        "change_percent": _text(change_percent, 2),
        "volume": decimal_to_str(stats["volume"] or Decimal(0), places.quantity),
        "quote_volume": decimal_to_str(stats["quote_volume"] or Decimal(0), places.quote),
        "trade_count": stats["trade_count"] or 0,
        "best_bid": best_bid[0],
        "best_bid_quantity": best_bid[1],
        "best_ask": best_ask[0],
        "best_ask_quantity": best_ask[1],
        "open_time": millis(window_start),
        "close_time": millis(now),
    }


@replica_safe
def _ticker_window(*, market: Market, window_start: datetime) -> tuple[dict, Decimal | None]:
    """The 1m candles' figures since ``window_start`` and the first one's open, from a
    replica when one is fit (the last price and the book come from the primary)."""
    candles = Candle.objects.filter(
        market=market, interval=Candle.Interval.M1, open_time__gte=window_start
    )
    stats = candles.aggregate(
        first=Min("open_time"),
        high=Max("high"),
        low=Min("low"),
        volume=Sum("volume"),
        quote_volume=Sum("quote_volume"),
        trade_count=Sum("trade_count"),
    )
    open_price = None
    if stats["first"] is not None:
        open_price = candles.filter(open_time=stats["first"]).values_list("open", flat=True)[0]
    return stats, open_price


def _cache_get_many(keys: list[str]) -> dict:
    try:
        return cache.get_many(keys)
    except Exception as exc:
        logger.warning("tickers computed without the cache: Redis failed (%s)", exc)
        return {}


def _cache_set_many(values: dict) -> None:
    try:
        cache.set_many(values, timeout=TICKER_CACHE_SECONDS)
    except Exception as exc:
        logger.warning("tickers not cached: Redis failed (%s)", exc)


def ticker_list(*, markets: list[Market]) -> list[dict]:
    """Each market's rolling 24 h ticker: open, high, low, volumes and trade count from the
    1m candles of the last 1440 minutes (the current one included), ``last`` the last trade
    price, best bid and ask from the book. ``open``/``high``/``low``/``change`` are null
    when no trade happened in the window. Cached for ``TICKER_CACHE_SECONDS``."""
    keys = {market.symbol: _ticker_key(market.symbol) for market in markets}
    cached = _cache_get_many(list(keys.values()))
    tickers, fresh = [], {}
    for market in markets:
        ticker = cached.get(keys[market.symbol])
        if ticker is None:
            ticker = fresh[keys[market.symbol]] = _ticker_compute(market)
        tickers.append(ticker)
    if fresh:
        _cache_set_many(fresh)
    return tickers


def ticker_get(*, market: Market) -> dict:
    """One market's ticker (see ``ticker_list``)."""
    return ticker_list(markets=[market])[0]


# --- candles ---------------------------------------------------------------------------------


@replica_safe
def candle_list(
    *,
    market: Market,
    interval: str,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 500,
) -> list[dict]:
    """Candles oldest first with ``open_time`` in [start, end]: the first ``limit`` from
    ``start`` when it is given, else the last ``limit`` up to ``end`` (or now). Buckets
    without trades have no candle. From a read replica when one is fit."""
    candles = Candle.objects.filter(market=market, interval=interval)
    if start is not None:
        candles = candles.filter(open_time__gte=start)
    if end is not None:
        candles = candles.filter(open_time__lte=end)
    columns = (
        "open_time",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "quote_volume",
        "trade_count",
    )
    if start is not None:
        rows = list(candles.order_by("open_time").values_list(*columns)[:limit])
    else:
        rows = list(candles.order_by("-open_time").values_list(*columns)[:limit])[::-1]
    places = Places.of(market)
    return [candle_data(row, places) for row in rows]


def candle_data(row: tuple, places: Places) -> dict:
    """A candle for the wire, from (open_time, open, high, low, close, volume,
    quote_volume, trade_count)."""
    open_time, open_, high, low, close, volume, quote_volume, trade_count = row
    return {
        "open_time": millis(open_time),
        "open": decimal_to_str(open_, places.price),
        "high": decimal_to_str(high, places.price),
        "low": decimal_to_str(low, places.price),
        "close": decimal_to_str(close, places.price),
        "volume": decimal_to_str(volume, places.quantity),
        "quote_volume": decimal_to_str(quote_volume, places.quote),
        "trade_count": trade_count,
    }

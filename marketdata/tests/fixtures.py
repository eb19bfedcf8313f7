"""Shared by the market-data tests: an anonymous client, a book with known levels, the
matcher's snapshot in Redis, Redis down, and a clock for the matcher. The fixtures here
use the trading ones (``market``, ``trader``), which each conftest imports."""

import json
import random
import socket
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from marketdata.models import Candle
from trading.matcher import market as market_module
from trading.matcher.market import MarketMatcher
from trading.matcher.publish import book_key, book_snapshot
from trading.models import Trade
from trading.tests.helpers import drain, place

D = Decimal

CANDLE_COLUMNS = (
    "market_id",
    "interval",
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trade_count",
)


@pytest.fixture
def public():
    """A client with no credentials at all."""
    return APIClient()


def publish_book(matcher: MarketMatcher) -> dict:
    """Store the matcher's book in Redis as the matcher does after a batch."""
    snapshot = book_snapshot(matcher.book, matcher.scale, matcher.symbol)
    get_redis_connection("default").set(book_key(matcher.symbol), json.dumps(snapshot))
    return snapshot


def drop_book(symbol: str) -> None:
    get_redis_connection("default").delete(book_key(symbol))


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def redis_down(settings) -> None:
    """Point the cache (and so every Redis client of the app) at a closed port."""
    caches = {alias: dict(config) for alias, config in settings.CACHES.items()}
    caches["default"]["LOCATION"] = f"redis://127.0.0.1:{closed_port()}/0"
    settings.CACHES = caches


@pytest.fixture
def book(market, trader):
    """BTC-USD with two levels a side, one of them partly filled; returns the matcher.

    bids 99.00 × 1.25 (2 orders), 98.00 × 3 (1); asks 101.00 × 1.2 (2), 102.50 × 2 (1).
    """
    buyer = trader(market, usd="100000")
    seller = trader(market, btc="100")
    place(seller, side="sell", price="101", quantity="1")
    place(seller, side="sell", price="101", quantity="0.5")
    place(seller, side="sell", price="102.5", quantity="2")
    place(buyer, side="buy", price="99", quantity="1")
    place(buyer, side="buy", price="99", quantity="0.25")
    place(buyer, side="buy", price="98", quantity="3")
    place(buyer, side="buy", price="101", quantity="0.3")  # takes 0.3 of the first ask
    return drain(market)


def candle_rows(**filters) -> list[tuple]:
    return list(
        Candle.objects.filter(**filters)
        .order_by("market_id", "interval", "open_time")
        .values_list(*CANDLE_COLUMNS)
    )


def fake_trade(market, price, quantity, at: datetime) -> Trade:
    """An unsaved trade with what candles read from it."""
    price, quantity = D(str(price)), D(str(quantity))
    return Trade(
        market_id=market.pk,
        price=price,
        quantity=quantity,
        quote_quantity=price * quantity,
        created_at=at,
    )


def spread_matcher_clock(monkeypatch, rng: random.Random) -> list[datetime]:
    """Give the matcher a clock that jumps between batches (seconds to hours, landing on
    bucket edges too, and once backwards), so a short run fills candles of every interval.
    Returns the times it handed out."""
    moments: list[datetime] = []
    state = {"now": datetime(2024, 3, 9, 23, 58, 59, 999_999, tzinfo=UTC), "calls": 0}

    def now():
        state["calls"] += 1
        step = rng.choice([0, 1, 59, 60, 61, 299, 900, 3599, 3600, 14_400, 86_399])
        if state["calls"] == 7:
            step = -4000  # a clock set back: candles must still match a rebuild
        state["now"] += timedelta(seconds=step, microseconds=rng.choice([0, 1, 999_999]))
        moments.append(state["now"])
        return state["now"]

    monkeypatch.setattr(market_module, "timezone", SimpleNamespace(now=now))
    return moments

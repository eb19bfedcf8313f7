"""GET /api/v1/market/{symbol}/orderbook (and the legacy /orders/book/{symbol}): the
matcher's snapshot, or the database when there is none or Redis is down (ARCHITECTURE §6)."""

import random

import pytest

from marketdata.selectors import orderbook_from_database
from marketdata.tests.fixtures import drop_book, publish_book, redis_down
from trading.tests.helpers import assert_error, drain, place
from trading.tests.matcher.random_orders import random_flow

pytestmark = pytest.mark.django_db

BIDS = [["99.00", "1.25000", 2], ["98.00", "3.00000", 1]]
ASKS = [["101.00", "1.20000", 2], ["102.50", "2.00000", 1]]


def book_of(response) -> dict:
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"symbol", "seq", "bids", "asks", "timestamp"}
    assert isinstance(body["timestamp"], str)
    return {key: body[key] for key in ("symbol", "seq", "bids", "asks")}


def test_orderbook_gives_levels_best_first_with_the_seq_they_reflect(public, book):
    publish_book(book)

    body = book_of(public.get("/api/v1/market/BTC-USD/orderbook"))

    assert body == {"symbol": "BTC-USD", "seq": book.book.seq, "bids": BIDS, "asks": ASKS}
    assert body["seq"] > 0


def test_orderbook_from_the_database_equals_the_snapshot(public, book):
    publish_book(book)
    from_snapshot = book_of(public.get("/api/v1/market/BTC-USD/orderbook"))
    drop_book("BTC-USD")

    from_database = book_of(public.get("/api/v1/market/BTC-USD/orderbook"))

    assert from_database == from_snapshot


def test_orderbook_answers_from_the_database_when_redis_is_down(public, book, settings):
    publish_book(book)
    from_snapshot = book_of(public.get("/api/v1/market/BTC-USD/orderbook?depth=1"))
    redis_down(settings)

    from_database = book_of(public.get("/api/v1/market/BTC-USD/orderbook?depth=1"))

    assert from_database == from_snapshot == {**from_snapshot, "bids": BIDS[:1], "asks": ASKS[:1]}


@pytest.mark.parametrize("snapshot", [True, False])
def test_orderbook_depth_limits_the_levels_per_side(public, book, snapshot):
    if snapshot:
        publish_book(book)

    body = book_of(public.get("/api/v1/market/BTC-USD/orderbook?depth=1"))

    assert (body["bids"], body["asks"]) == (BIDS[:1], ASKS[:1])


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/orders/book/BTC-USD",
        "/api/v1/orders/book/BTC_USD/",
        "/api/v1/orders/book/BTC%2FUSD",
        "/api/v1/market/btc_usd/orderbook/",
        "/api/v1/market/BTC%2FUSD/orderbook",
    ],
)
def test_every_orderbook_path_and_spelling_gives_the_same_book(public, book, path):
    publish_book(book)
    expected = book_of(public.get("/api/v1/market/BTC-USD/orderbook?depth=2"))

    assert book_of(public.get(f"{path}?depth=2")) == expected


def test_orderbook_of_an_empty_market_has_no_levels(public, market):
    body = book_of(public.get("/api/v1/market/BTC-USD/orderbook"))

    assert body == {"symbol": "BTC-USD", "seq": 0, "bids": [], "asks": []}


def test_database_book_for_the_streams_holds_every_level(book):
    full = orderbook_from_database(symbol="btc/usd")

    assert (full["symbol"], full["seq"], full["bids"], full["asks"]) == (
        "BTC-USD",
        book.book.seq,
        BIDS,
        ASKS,
    )


def test_orderbook_of_an_unknown_symbol_is_a_404(public, market):
    assert_error(public.get("/api/v1/market/ETH-USD/orderbook"), 404, "UNKNOWN_SYMBOL")


def test_after_a_random_run_the_database_book_equals_the_matchers_snapshot(public, market, trader):
    users = [trader(market, usd="1000000", btc="5000") for _ in range(5)]
    rng = random.Random(99)
    for user in users:
        random_flow(user, rng, steps=60)
    matcher = drain(market, batch_size=50)
    for user in users:  # deep levels of several orders each
        place(user, side="buy", price="90", quantity="0.5")
        place(user, side="sell", price="110", quantity="0.25")
    snapshot = publish_book(drain(market, matcher))
    assert len(snapshot["bids"]) + len(snapshot["asks"]) > 10
    assert snapshot["bids"][-1][2] == snapshot["asks"][-1][2] == 5
    from_snapshot = book_of(public.get("/api/v1/market/BTC-USD/orderbook?depth=1000"))
    drop_book("BTC-USD")

    from_database = book_of(public.get("/api/v1/market/BTC-USD/orderbook?depth=1000"))

    assert from_database == from_snapshot
    assert len(from_snapshot["bids"]) == len(snapshot["bids"])

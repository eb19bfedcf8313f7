"""Binance's market streams over the real hub, Redis and channel layer; the matcher runs
in-process and publishes exactly as in production (see marketdata/tests/test_streams.py)."""

import json
import random
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from exchange_site.asgi import application
from marketdata import binance_consumers
from marketdata.hub import hub
from marketdata.tests.test_streams import (
    NO_CAPS,
    apply_diff,
    engine_book,
    match_all,
    place_random,
    receive_all,
    start_matcher,
)
from trading.models import Market, Trade
from trading.tests.factories import MarketFactory
from wallets.services import deposit_demo_create
from wallets.tests.factories import AssetFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_stopped")]

# Redis pub/sub channels are server-wide, not per database: other suites running on the same
# Redis server publish BTC-USD messages too. A symbol of its own keeps these tests' streams
# their own.
SYMBOL = "BNZ-USD"
STREAM = "bnzusd"


def make_market_and_traders(count: int = 6) -> tuple[Market, list]:
    market = MarketFactory(
        symbol=SYMBOL,
        base_asset=AssetFactory(code="BNZ"),
        tick_size=Decimal(1),
        lot_size=Decimal(1),
        min_qty=Decimal(1),
        max_qty=Decimal(1000),
        min_notional=Decimal(1),
    )
    users = [UserFactory() for _ in range(count)]
    with override_settings(
        DEMO_DEPOSITS=True, DEMO_DEPOSIT_MAX_PER_REQUEST=NO_CAPS, DEMO_DEPOSIT_MAX_PER_DAY=NO_CAPS
    ):
        for user in users:
            deposit_demo_create(
                user=user, asset_code=market.quote_asset.code, amount=Decimal(10**8)
            )
            deposit_demo_create(user=user, asset_code=market.base_asset.code, amount=Decimal(10**6))
    return market, users


@pytest.fixture(autouse=True)
async def _close_thread_connection():
    yield
    await sync_to_async(lambda: connection.close())()


async def connect(path: str = "/api/v3/ws/0") -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path)
    connected, _ = await communicator.connect()
    assert connected
    await hub.ready()
    return communicator


async def request(communicator, method: str, params=None, request_id=1) -> dict:
    frame = {"method": method, "id": request_id}
    if params is not None:
        frame["params"] = params
    await communicator.send_json_to(frame)
    return await communicator.receive_json_from(timeout=5)


def rest_depth() -> dict:
    return APIClient().get("/api/v3/depth?symbol=BNZUSD&limit=1000").json()


async def test_depth_updates_keep_a_book_equal_to_the_engines_from_a_rest_snapshot():
    market, users = await sync_to_async(make_market_and_traders)()
    matcher = await sync_to_async(start_matcher)(market)
    rng = random.Random(11)
    await sync_to_async(place_random)(market, users, 150, rng)
    await sync_to_async(match_all)(matcher)
    communicator = await connect()
    assert await request(communicator, "SUBSCRIBE", [f"{STREAM}@depth@100ms"]) == {
        "result": None,
        "id": 1,
    }
    # As CCXT does: subscribe, then take the REST snapshot, then apply buffered events.
    snapshot = await sync_to_async(rest_depth)()
    for _ in range(6):
        await sync_to_async(place_random)(market, users, 80, rng)
        await sync_to_async(match_all)(matcher)
    events = await receive_all(communicator)
    await communicator.disconnect()

    assert events
    assert all(event["e"] == "depthUpdate" for event in events)
    assert all(event["s"] == "BNZUSD" for event in events)
    book = {side: {Decimal(p): Decimal(q) for p, q in snapshot[side]} for side in ("bids", "asks")}
    last = snapshot["lastUpdateId"]
    applied = [event for event in events if event["u"] > last]
    assert len(applied) >= 6
    assert applied[0]["U"] <= last + 1 <= applied[0]["u"]
    for event in applied:
        assert event["U"] == last + 1 or event is applied[0], "sequence gap"
        apply_diff(book, {"bids": event["b"], "asks": event["a"]})
        last = event["u"]
    assert last == await sync_to_async(lambda: Market.objects.get(pk=market.pk).seq)()
    assert book == await sync_to_async(engine_book)(matcher)
    final = await sync_to_async(rest_depth)()
    assert final["lastUpdateId"] == last


async def test_combined_stream_wraps_each_trade_once():
    market, users = await sync_to_async(make_market_and_traders)()
    matcher = await sync_to_async(start_matcher)(market)
    combined = await connect(f"/api/v3/stream?streams={STREAM}@trade/{STREAM}@aggTrade")
    raw = await connect(f"/api/v3/ws/{STREAM}@trade")
    rng = random.Random(5)
    for _ in range(4):
        await sync_to_async(place_random)(market, users, 60, rng)
        await sync_to_async(match_all)(matcher)
    wrapped = await receive_all(combined)
    plain = await receive_all(raw)
    await combined.disconnect()
    await raw.disconnect()

    stored = await sync_to_async(lambda: list(Trade.objects.filter(market=market).order_by("id")))()
    assert stored
    trades = [m["data"] for m in wrapped if m["stream"] == f"{STREAM}@trade"]
    aggs = [m["data"] for m in wrapped if m["stream"] == f"{STREAM}@aggTrade"]
    assert [t["t"] for t in trades] == [t.pk for t in stored]
    assert [a["a"] for a in aggs] == [t.pk for t in stored]
    assert plain == trades
    first = stored[0]
    assert trades[0]["e"] == "trade"
    assert trades[0]["s"] == "BNZUSD"
    assert Decimal(trades[0]["p"]) == first.price
    assert Decimal(trades[0]["q"]) == first.quantity
    assert trades[0]["m"] is (first.taker_side == "sell")
    assert set(trades[0]) == {"e", "E", "s", "t", "p", "q", "T", "m", "M"}


async def test_each_message_is_translated_once_per_process(monkeypatch):
    market, users = await sync_to_async(make_market_and_traders)()
    matcher = await sync_to_async(start_matcher)(market)
    calls = []
    original = binance_consumers.trade_event
    monkeypatch.setattr(
        binance_consumers, "trade_event", lambda message: calls.append(1) or original(message)
    )
    clients = [await connect(f"/api/v3/ws/{i}") for i in range(5)]
    for client in clients:
        assert (await request(client, "SUBSCRIBE", [f"{STREAM}@trade"]))["result"] is None
    await sync_to_async(place_random)(market, users, 40, random.Random(2))
    await sync_to_async(match_all)(matcher)
    received = [await receive_all(client) for client in clients]
    for client in clients:
        await client.disconnect()
    trades = await sync_to_async(lambda: Trade.objects.filter(market=market).count())()
    assert trades
    assert all(len(messages) == trades for messages in received)
    assert len(calls) == trades


async def test_subscription_requests_and_errors():
    await sync_to_async(make_market_and_traders)(1)
    communicator = await connect("/api/v3/ws")
    assert await request(
        communicator, "SUBSCRIBE", [f"{STREAM}@trade", f"{STREAM}@kline_1m"], 7
    ) == {
        "result": None,
        "id": 7,
    }
    assert await request(communicator, "LIST_SUBSCRIPTIONS", request_id=8) == {
        "result": [f"{STREAM}@trade", f"{STREAM}@kline_1m"],
        "id": 8,
    }
    assert await request(communicator, "UNSUBSCRIBE", [f"{STREAM}@trade"], 9) == {
        "result": None,
        "id": 9,
    }
    assert (await request(communicator, "LIST_SUBSCRIPTIONS", request_id=10))["result"] == [
        f"{STREAM}@kline_1m"
    ]
    assert await request(communicator, "SET_PROPERTY", ["combined", True], 11) == {
        "result": None,
        "id": 11,
    }
    assert await request(communicator, "GET_PROPERTY", ["combined"], 12) == {
        "result": True,
        "id": 12,
    }
    for params in (["dogeusd@trade"], [f"{STREAM}@depth@50ms"], [f"{STREAM}@kline_3m"]):
        reply = await request(communicator, "SUBSCRIBE", params, 13)
        assert reply["id"] == 13
        assert reply["error"]["code"] == 2
    assert (await request(communicator, "DANCE", [], 14))["error"]["code"] == 2
    await communicator.send_to(text_data="not json")
    assert (await communicator.receive_json_from())["error"]["code"] == 3
    assert (await request(communicator, "LIST_SUBSCRIPTIONS", request_id=15))["result"] == [
        f"{STREAM}@kline_1m"
    ]
    await communicator.disconnect()


async def test_an_unknown_stream_in_the_path_closes_the_connection():
    await sync_to_async(make_market_and_traders)(1)
    communicator = WebsocketCommunicator(application, "/api/v3/stream?streams=nope@trade")
    connected, _ = await communicator.connect()
    assert connected
    reply = json.loads(await communicator.receive_from())
    assert reply["error"]["code"] == 2
    assert (await communicator.receive_output())["type"] == "websocket.close"

"""Live streams over /ws/ with the hub on the real channel layer (channels-redis, Redis).

The matcher runs in-process (sync, in a worker thread) and publishes exactly as in
production; clients are Channels' WebsocketCommunicator against the ASGI application.
"""

import asyncio
import json
import random
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import override_settings

from accounts.services import auth_tokens_issue
from accounts.tests.factories import UserFactory
from exchange_site.asgi import application
from exchange_site.redis_clients import async_redis_client
from exchange_site.streams import public_group
from marketdata.hub import hub
from trading.matcher.market import MarketMatcher
from trading.matcher.publish import _numbering, public_message, public_send
from trading.matcher.runner import Matcher
from trading.models import Market, Order, Trade
from trading.services import OrderRequest, order_place
from trading.tests.factories import MarketFactory
from wallets.services import deposit_demo_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_stopped")]

NO_CAPS = {"*": "1000000000"}


def make_market_and_traders(count: int = 6) -> tuple[Market, list]:
    market = MarketFactory(
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


def start_matcher(market: Market) -> Matcher:
    matcher = Matcher([market.symbol])
    matcher.matchers = [MarketMatcher(market)]
    matcher._restore_books()  # stores the starting snapshot, as run() does
    return matcher


def place_random(market: Market, users: list, count: int, rng: random.Random) -> None:
    for _ in range(count):
        order_place(
            user=rng.choice(users),
            request=OrderRequest(
                symbol=market.symbol,
                side=rng.choice(("buy", "sell")),
                order_type="limit",
                quantity=Decimal(rng.randint(1, 20)),
                price=Decimal(rng.randint(95, 105)),
                time_in_force=rng.choice(("GTC", "GTC", "IOC")),
            ),
        )


def match_all(matcher: Matcher) -> None:
    while matcher.run_once():
        pass
    matcher.publisher.flush_due(matcher.matchers, force=True)


async def connect(path: str = "/ws/") -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path)
    connected, _ = await communicator.connect()
    assert connected
    await hub.ready()
    return communicator


async def receive_all(communicator, quiet: float = 0.5) -> list[dict]:
    """Every message until the connection has been quiet for ``quiet`` seconds.

    (``receive_from`` with a timeout would cancel the application when it expires.)
    """
    messages = []
    while not await communicator.receive_nothing(timeout=quiet):
        messages.append(json.loads(await communicator.receive_from()))
    return messages


async def subscribe(communicator, **message) -> dict:
    await communicator.send_json_to({"type": "subscribe", **message})
    return await communicator.receive_json_from(timeout=5)


def apply_diff(book: dict, diff: dict) -> None:
    for side in ("bids", "asks"):
        for price, quantity in diff[side]:
            if Decimal(quantity) == 0:
                book[side].pop(Decimal(price), None)
            else:
                book[side][Decimal(price)] = Decimal(quantity)


def engine_book(matcher: Matcher) -> dict:
    market_matcher = matcher.matchers[0]
    bids, asks = market_matcher.book.depth(10_000)
    scale = market_matcher.scale
    return {
        "bids": {scale.ticks_to_price(p): scale.lots_to_qty(q) for p, q, _ in bids},
        "asks": {scale.ticks_to_price(p): scale.lots_to_qty(q) for p, q, _ in asks},
    }


async def test_subscriber_keeps_the_exact_book_from_snapshot_and_diffs():
    market, users = await sync_to_async(make_market_and_traders)()
    matcher = await sync_to_async(start_matcher)(market)
    rng = random.Random(7)
    await sync_to_async(place_random)(market, users, 200, rng)
    await sync_to_async(match_all)(matcher)
    communicator = await connect()

    assert (await subscribe(communicator, channel="orderbook", symbol="btc_usd"))["type"] == (
        "subscribed"
    )
    for _ in range(8):
        await sync_to_async(place_random)(market, users, 100, rng)
        await sync_to_async(match_all)(matcher)
    messages = await receive_all(communicator)
    await communicator.disconnect()

    snapshot = messages[0]
    assert snapshot["type"] == "snapshot"
    book = {side: {Decimal(p): Decimal(q) for p, q in snapshot[side]} for side in ("bids", "asks")}
    seq = snapshot["seq"]
    diffs = [m for m in messages[1:] if m["type"] == "update" and m["seq"] > seq]
    assert len(diffs) >= 8
    for diff in diffs:
        assert diff["first_seq"] <= seq + 1 <= diff["seq"], "sequence gap"
        apply_diff(book, diff)
        seq = diff["seq"]
    final_seq = await sync_to_async(lambda: Market.objects.get(pk=market.pk).seq)()
    assert seq == final_seq
    assert book == await sync_to_async(engine_book)(matcher)


async def test_every_trade_arrives_once_on_the_trades_channel():
    market, users = await sync_to_async(make_market_and_traders)()
    matcher = await sync_to_async(start_matcher)(market)
    communicator = await connect()
    await subscribe(communicator, channel="trades", symbol=market.symbol)

    rng = random.Random(3)
    for _ in range(5):
        await sync_to_async(place_random)(market, users, 60, rng)
        await sync_to_async(match_all)(matcher)
    messages = await receive_all(communicator)
    await communicator.disconnect()

    received = [m["id"] for m in messages if m["type"] == "trade"]
    stored = await sync_to_async(
        lambda: list(
            Trade.objects.filter(market=market).order_by("id").values_list("id", flat=True)
        )
    )()
    assert stored
    assert received == stored


async def test_private_events_reach_only_their_owner():
    market, users = await sync_to_async(make_market_and_traders)(2)
    alice = users[0]
    matcher = await sync_to_async(start_matcher)(market)
    tokens = await sync_to_async(
        lambda: [auth_tokens_issue(user=u)["access_token"] for u in users]
    )()
    alice_ws = await connect(f"/ws/?token={tokens[0]}")
    bob_ws = await connect(f"/ws/?token={tokens[1]}")
    for communicator in (alice_ws, bob_ws):
        assert (await subscribe(communicator, channel="orders"))["type"] == "subscribed"
        assert (await subscribe(communicator, channel="balances"))["type"] == "subscribed"

    def alice_places_an_order():
        order_place(
            user=alice,
            request=OrderRequest(
                symbol=market.symbol,
                side="buy",
                order_type="limit",
                quantity=Decimal(2),
                price=Decimal(100),
            ),
        )
        match_all(matcher)

    await sync_to_async(alice_places_an_order)()
    alice_messages = await receive_all(alice_ws)
    bob_messages = await receive_all(bob_ws)
    await alice_ws.disconnect()
    await bob_ws.disconnect()

    orders = [m for m in alice_messages if m["type"] == "order"]
    balances = [m for m in alice_messages if m["type"] == "balance"]
    assert orders
    assert orders[-1]["status"] == "open"
    assert any(
        b["asset"] == market.quote_asset.code and Decimal(b["locked"]) == 200 for b in balances
    )
    assert bob_messages == []


async def test_private_channel_without_auth_is_an_error_and_the_connection_stays():
    communicator = await connect()

    error = await subscribe(communicator, channel="orders")
    await communicator.send_json_to({"type": "ping"})

    assert error["type"] == "error"
    assert error["code"] == "AUTH_REQUIRED"
    assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()


async def test_unknown_symbol_and_interval_are_errors():
    market, _ = await sync_to_async(make_market_and_traders)(1)
    communicator = await connect()

    unknown_symbol = await subscribe(communicator, channel="trades", symbol="NOPE-USD")
    unknown_interval = await subscribe(
        communicator, channel="candles", symbol=market.symbol, interval="7m"
    )

    assert unknown_symbol["code"] == "UNKNOWN_SYMBOL"
    assert unknown_interval["code"] == "UNKNOWN_INTERVAL"
    await communicator.disconnect()


async def test_oversized_message_gets_an_error_then_close_1008():
    communicator = await connect()

    await communicator.send_to(text_data=json.dumps({"type": "ping", "pad": "x" * 10_000}))
    error = await communicator.receive_json_from()
    closed = await communicator.receive_output(timeout=2)

    assert error["code"] == "MESSAGE_TOO_LARGE"
    assert closed == {"type": "websocket.close", "code": 1008}


async def test_message_flood_gets_an_error_then_close_1008(settings):
    settings.WS_RATE_BURST = 5
    settings.WS_RATE_PER_SECOND = 1
    communicator = await connect()

    for _ in range(6):
        await communicator.send_json_to({"type": "ping"})
    replies = [await communicator.receive_output(timeout=2) for _ in range(7)]

    assert [json.loads(r["text"]) for r in replies[:5]] == [{"type": "pong"}] * 5
    assert json.loads(replies[5]["text"])["code"] == "RATE_LIMIT"
    assert replies[6] == {"type": "websocket.close", "code": 1008}


async def test_too_many_subscriptions_get_an_error_then_close_1008(settings):
    settings.WS_MAX_SUBSCRIPTIONS = 2
    market, _ = await sync_to_async(make_market_and_traders)(1)
    communicator = await connect()

    await subscribe(communicator, channel="trades", symbol=market.symbol)
    await subscribe(communicator, channel="ticker", symbol=market.symbol)
    error = await subscribe(communicator, channel="candles", symbol=market.symbol, interval="1m")
    closed = await communicator.receive_output(timeout=2)

    assert error["code"] == "SUBSCRIPTION_LIMIT"
    assert closed == {"type": "websocket.close", "code": 1008}


async def _hub_subscriber(stream: str):
    # The reply to a subscribe can overtake the hub's own bookkeeping of it (a full run saw
    # the set still empty): wait for the consumer to be registered.
    for _ in range(200):
        if hub.subscribers.get(stream):
            return next(iter(hub.subscribers[stream]))
        await asyncio.sleep(0.01)
    raise AssertionError(f"no subscriber of {stream} registered with the hub")


async def test_slow_consumer_is_resynced_with_a_snapshot(settings):
    settings.WS_OUTBOX_LIMIT = 3
    market, _ = await sync_to_async(make_market_and_traders)()
    await sync_to_async(start_matcher)(market)  # stores the snapshot a resync sends
    communicator = await connect()
    await subscribe(communicator, channel="orderbook", symbol=market.symbol)
    await subscribe(communicator, channel="trades", symbol=market.symbol)
    consumer = await _hub_subscriber(f"trades:{market.symbol}")

    # Flood the connection's outbox faster than it may hold.
    for n in range(10):
        consumer.deliver(f"trades:{market.symbol}", json.dumps({"type": "trade", "n": n}))
    messages = await receive_all(communicator)
    await communicator.disconnect()

    kinds = [m["type"] for m in messages]
    assert "error" in kinds
    assert next(m for m in messages if m["type"] == "error")["code"] == "SLOW_CONSUMER"
    after_error = kinds[kinds.index("error") + 1 :]
    assert "snapshot" in after_error
    assert len([m for m in messages if m["type"] == "trade"]) < 10


async def test_ticker_and_candles_follow_trades():
    market, users = await sync_to_async(make_market_and_traders)(2)
    matcher = await sync_to_async(start_matcher)(market)
    communicator = await connect()
    await subscribe(communicator, channel="ticker", symbol=market.symbol)
    await subscribe(communicator, channel="candles", symbol=market.symbol, interval="1m")

    def cross_at_101():
        for side, user in (("sell", users[0]), ("buy", users[1])):
            order_place(
                user=user,
                request=OrderRequest(
                    symbol=market.symbol,
                    side=side,
                    order_type="limit",
                    quantity=Decimal(3),
                    price=Decimal(101),
                ),
            )
        match_all(matcher)

    await sync_to_async(cross_at_101)()
    messages = await receive_all(communicator)
    await communicator.disconnect()

    ticker = next(m for m in messages if m["type"] == "ticker")
    candle = next(m for m in messages if m["type"] == "candle")
    assert Decimal(ticker["last"]) == 101
    assert Decimal(ticker["volume"]) == 3
    assert candle["interval"] == "1m"
    assert Decimal(candle["close"]) == 101
    assert Decimal(candle["volume"]) == 3
    assert candle["trade_count"] == 1


async def test_legacy_orderbook_endpoint_speaks_the_seed_documents_protocol():
    """The messages of the seed's document (../shared/seeds/000…: "WebSocket Message
    Types"), each in its ``{"type", "data"}`` envelope, with its documented fields."""
    market, users = await sync_to_async(make_market_and_traders)(2)
    matcher = await sync_to_async(start_matcher)(market)
    token = await sync_to_async(lambda: auth_tokens_issue(user=users[1])["access_token"])()
    communicator = await connect(f"/api/v1/ws/orderbook/BTC%2FUSD?token={token}")
    [on_connect] = await receive_all(communicator)

    def rest_then_cross():
        for side, user, price in (("sell", users[0], 102), ("sell", users[0], 101)):
            order_place(
                user=user,
                request=OrderRequest(
                    symbol=market.symbol,
                    side=side,
                    order_type="limit",
                    quantity=Decimal(2),
                    price=Decimal(price),
                ),
            )
        order_place(
            user=users[1],
            request=OrderRequest(
                symbol=market.symbol,
                side="buy",
                order_type="limit",
                quantity=Decimal(1),
                price=Decimal(101),
            ),
        )
        match_all(matcher)

    await sync_to_async(rest_then_cross)()
    await communicator.send_json_to({"type": "ping"})
    await communicator.send_json_to({"type": "get_order_book", "depth": 10})
    await communicator.send_json_to({"type": "get_recent_trades", "limit": 50})
    await communicator.send_json_to({"type": "get_order_book", "depth": 0})
    messages = await receive_all(communicator)
    await communicator.disconnect()

    assert on_connect["type"] == "order_book_snapshot"
    assert set(on_connect["data"]) == {"symbol", "bids", "asks", "timestamp", "seq"}
    assert on_connect["data"]["symbol"] == "BTC/USD"
    assert on_connect["data"]["timestamp"].endswith("Z")
    kinds = [m["type"] for m in messages]
    assert {"pong", "order_update", "trade_execution", "order_book_snapshot"} <= set(kinds)
    book = next(m["data"] for m in messages if m["type"] == "order_book_snapshot")
    assert book["asks"][0] == {"price": "101", "total_quantity": "1", "order_count": 1}
    [trade] = [m["data"] for m in messages if m["type"] == "trade_execution"]
    orders = await sync_to_async(lambda: {o.user_id: o.pk for o in Order.objects.all()})()
    assert set(trade) == {
        "id", "symbol", "buy_order_id", "sell_order_id", "quantity", "price", "executed_at"
    }  # fmt: skip
    assert (trade["symbol"], trade["quantity"], trade["price"]) == ("BTC/USD", "1", "101")
    assert trade["buy_order_id"] == orders[users[1].pk]
    # Only the authenticated caller's own order, with its status.
    updates = [m["data"] for m in messages if m["type"] == "order_update"]
    assert {u["order_id"] for u in updates} == {orders[users[1].pk]}
    assert updates[-1]["status"] == "filled"
    assert set(updates[-1]) == {
        "order_id", "symbol", "side", "status", "quantity", "filled_quantity", "price",
        "timestamp",
    }  # fmt: skip
    assert "recent_trades" in kinds
    assert any(m["type"] == "error" and m["code"] == "BAD_DEPTH" for m in messages)


def group_channel(group: str) -> str:
    """The Redis pub/sub channel channels-redis's pub/sub layer uses for ``group``."""
    return settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] + "__group__" + group


async def redis_subscribers(group: str) -> int:
    client = async_redis_client(settings.REDIS_URL)
    try:
        return dict(await client.pubsub_numsub(group_channel(group)))[group_channel(group).encode()]
    finally:
        await client.aclose()


async def test_the_hub_joins_a_stream_group_while_someone_here_subscribes():
    market, _ = await sync_to_async(make_market_and_traders)(1)
    await sync_to_async(start_matcher)(market)
    group = public_group("orderbook", market.symbol)
    first, second = await connect(), await connect()
    assert await redis_subscribers(group) == 0

    await subscribe(first, channel="orderbook", symbol=market.symbol)
    await subscribe(second, channel="orderbook", symbol=market.symbol)
    assert await redis_subscribers(group) == 1  # one hub channel, however many clients

    await first.disconnect()
    await asyncio.sleep(0.2)
    assert await redis_subscribers(group) == 1
    await receive_all(second)  # the snapshot
    await second.send_json_to(
        {"type": "unsubscribe", "channel": "orderbook", "symbol": market.symbol}
    )
    assert (await second.receive_json_from(timeout=5))["type"] == "unsubscribed"
    await asyncio.sleep(0.2)
    assert await redis_subscribers(group) == 0
    await second.disconnect()


async def test_a_message_sent_to_the_group_reaches_subscribers_as_sent():
    market, _ = await sync_to_async(make_market_and_traders)(1)
    communicator = await connect()
    await subscribe(communicator, channel="trades", symbol=market.symbol)

    text = json.dumps({"type": "trade", "channel": "trades", "symbol": market.symbol, "id": 1})
    await sync_to_async(public_send)([public_message("trades", market.symbol, text)])

    assert await communicator.receive_from(timeout=5) == text  # the very same text
    await communicator.disconnect()


async def test_the_hub_resyncs_a_stream_whose_message_was_lost_on_the_way():
    market, users = await sync_to_async(make_market_and_traders)(2)
    matcher = await sync_to_async(start_matcher)(market)
    rng = random.Random(1)
    communicator = await connect()
    await subscribe(communicator, channel="orderbook", symbol=market.symbol)
    await sync_to_async(place_random)(market, users, 20, rng)
    await sync_to_async(match_all)(matcher)
    assert [m["type"] for m in await receive_all(communicator)] == ["snapshot", "update"]

    # A message the matcher numbered that never arrived (as across the layer's silent
    # reconnect below): the next one shows the gap.
    _numbering.stamp([public_message("orderbook", market.symbol, "{}")])
    await sync_to_async(place_random)(market, users, 20, rng)
    await sync_to_async(match_all)(matcher)
    messages = await receive_all(communicator)
    await communicator.disconnect()

    assert [m["type"] for m in messages] == ["snapshot", "update"], "it starts over"
    final_seq = await sync_to_async(lambda: Market.objects.get(pk=market.pk).seq)()
    assert messages[0]["seq"] == final_seq or messages[1]["seq"] == final_seq


async def test_trades_and_candles_streams_that_lost_a_message_are_told_to_read_again():
    """They have no snapshot: the client gets ``resync`` and reads them over REST; a ticker
    stream gets the current ticker instead."""
    market, users = await sync_to_async(make_market_and_traders)(2)
    matcher = await sync_to_async(start_matcher)(market)
    communicator = await connect()
    subscribed = [
        await subscribe(communicator, channel="trades", symbol=market.symbol),
        await subscribe(communicator, channel="candles", symbol=market.symbol, interval="1m"),
        await subscribe(communicator, channel="ticker", symbol=market.symbol),
    ]
    await sync_to_async(place_random)(market, users, 30, random.Random(3))
    await sync_to_async(match_all)(matcher)
    before = await receive_all(communicator)
    assert "resync" not in [m["type"] for m in before]  # nothing lost yet
    assert {m["type"] for m in before} == {"trade", "candle", "ticker"}
    assert [m["type"] for m in before].count("ticker") == 1

    # One trades and one candle message numbered but never sent: the next ones show the gaps.
    _numbering.stamp(
        [
            public_message("trades", market.symbol, "{}"),
            public_message("candles", market.symbol, "{}", "1m"),
            public_message("ticker", market.symbol, "{}"),
        ]
    )
    await sync_to_async(place_random)(market, users, 30, random.Random(4))
    await sync_to_async(match_all)(matcher)
    messages = await receive_all(communicator)
    await communicator.disconnect()

    symbol = market.symbol
    assert subscribed == [
        {"type": "subscribed", "channel": "trades", "symbol": symbol},
        {"type": "subscribed", "channel": "candles", "symbol": symbol, "interval": "1m"},
        {"type": "subscribed", "channel": "ticker", "symbol": symbol},
    ]
    tickers = [m for m in messages if m["type"] == "ticker"]
    assert len(tickers) == 2  # the current one (queued at the gap) and the one that showed it
    assert tickers[0] == tickers[1]
    resyncs = [m for m in messages if m["type"] == "resync"]
    assert resyncs == [
        {"type": "resync", "channel": "trades", "symbol": symbol},
        {"type": "resync", "channel": "candles", "symbol": symbol, "interval": "1m"},
    ]
    assert [m["type"] for m in messages].count("trade") >= 1  # and the stream goes on


async def test_the_stream_goes_on_after_the_hub_subscription_is_dropped():
    market, users = await sync_to_async(make_market_and_traders)(2)
    matcher = await sync_to_async(start_matcher)(market)
    rng = random.Random(1)
    communicator = await connect()
    await subscribe(communicator, channel="orderbook", symbol=market.symbol)
    assert [m["type"] for m in await receive_all(communicator)] == ["snapshot"]

    # Closed from the server side, as a Redis failover or a proxy's idle timeout would: the
    # layer reconnects and subscribes again by itself, within milliseconds.
    connection = hub.layer._get_layer()._shards[0]._pubsub.connection
    host, port = connection._writer.get_extra_info("sockname")[:2]
    client = async_redis_client(settings.REDIS_URL)
    try:
        await client.client_kill_filter(_type="pubsub", addr=f"{host}:{port}")
    finally:
        await client.aclose()
    await asyncio.sleep(1)
    await sync_to_async(place_random)(market, users, 20, rng)
    await sync_to_async(match_all)(matcher)
    messages = await receive_all(communicator)
    await communicator.disconnect()

    # Nothing was sent while it was away and no probe was missed (the reconnect took less
    # than their interval), yet the hub cannot know that: the stream starts over, then goes on.
    assert [m["type"] for m in messages][:2] == ["snapshot", "update"], messages
    assert hub._subscriptions == [connection]
    assert hub.resubscribes == 1  # redis-py said so (a probe lost meanwhile would also do)

"""The streams over a real daphne (``live_stack``), where the matcher process publishes
through channels-redis and messages take the direct path of ``marketdata.fastsend``: frames
are valid, the book stays exact, no trade is lost."""

import asyncio
import json
import random
import re
from decimal import Decimal

import httpx
import pytest
import websockets
from django.conf import settings
from django.db import connection
from websockets.frames import Frame, Opcode

from exchange_site.redis_clients import redis_client
from marketdata.fastsend import text_frame
from trading.models import Market, Trade
from trading.services import OrderRequest, order_place


@pytest.mark.parametrize("size", [0, 5, 125, 126, 65535, 65536, 200_000])
def test_text_frame_matches_the_websocket_reference_framing(size):
    text = ("é" * size)[:size]
    expected = Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
    assert text_frame(text) == expected


def apply_diff(book: dict, diff: dict) -> None:
    for side in ("bids", "asks"):
        for price, qty in diff[side]:
            if Decimal(qty) == 0:
                book[side].pop(price, None)
            else:
                book[side][price] = qty


async def follow_book_and_trades(ws_url: str, stop: asyncio.Event, out: dict) -> None:
    """Keep the BTC-USD book from snapshot + diffs and collect trade ids until ``stop``."""
    async with websockets.connect(f"{ws_url}/ws/") as ws:
        for channel in ("orderbook", "trades"):
            await ws.send(
                json.dumps({"type": "subscribe", "channel": channel, "symbol": "BTC-USD"})
            )
        book, seq, early = None, None, []
        out["gaps"], out["trades"] = 0, []
        while not (stop.is_set() and out.get("quiet")):
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout=1.5))
            except TimeoutError:
                out["quiet"] = stop.is_set()
                continue
            kind = message["type"]
            if kind == "trade":
                out["trades"].append(message["id"])
            elif kind == "snapshot":
                book = {
                    "bids": dict(message["bids"]),
                    "asks": dict(message["asks"]),
                }
                seq = message["seq"]
                for diff in early:
                    if diff["seq"] > seq:
                        apply_diff(book, diff)
                        seq = diff["seq"]
            elif kind == "update":
                if book is None:
                    early.append(message)
                    continue
                if message["seq"] <= seq:
                    continue
                if message["first_seq"] != seq + 1:
                    out["gaps"] += 1
                apply_diff(book, message)
                seq = message["seq"]
        out["book"], out["seq"] = book, seq


def test_book_and_trades_over_daphne_stay_exact_through_random_orders(live_stack):
    rng = random.Random(7)
    users = [
        live_stack.create_user(
            email=f"trader{i}@example.com",
            username=f"trader{i}",
            funds={"USD": "1000000", "BTC": "100"},
        )
        for i in range(4)
    ]

    def place_orders_and_wait() -> None:
        try:
            for _ in range(300):
                side = rng.choice(["buy", "sell"])
                price = Decimal(rng.randint(9_900, 10_100)) / 100
                quantity = Decimal(rng.randint(2, 50)) / 100
                order_place(
                    user=rng.choice(users),
                    request=OrderRequest(
                        symbol="BTC-USD",
                        side=side,
                        order_type="limit",
                        price=price,
                        quantity=quantity,
                    ),
                )
            live_stack.wait_matcher_idle(30)
        finally:
            connection.close()  # this thread's own connection

    async def scenario() -> dict:
        stop, out = asyncio.Event(), {}
        follower = asyncio.create_task(follow_book_and_trades(live_stack.ws_url, stop, out))
        await asyncio.sleep(0.5)
        await asyncio.to_thread(place_orders_and_wait)
        stop.set()
        await asyncio.wait_for(follower, timeout=30)
        return out

    out = asyncio.run(scenario())
    rest = httpx.get(f"{live_stack.web_url}/api/v1/market/BTC-USD/orderbook?depth=1000").json()
    assert out["gaps"] == 0
    assert out["seq"] == rest["seq"] == Market.objects.get(symbol="BTC-USD").seq
    assert out["book"]["bids"] == {p: q for p, q, _count in rest["bids"]}
    assert out["book"]["asks"] == {p: q for p, q, _count in rest["asks"]}
    trade_ids = list(Trade.objects.order_by("id").values_list("id", flat=True))
    assert trade_ids, "the random orders should have crossed"
    assert sorted(out["trades"]) == trade_ids


# --- the channel layer and the fastsend seam, on a real daphne ------------------------------


def send_paths(stack) -> dict[str, float]:
    """``exchange_ws_send_path_total`` by path, from the stack's /metrics (every process)."""
    text = httpx.get(f"{stack.web_url}/metrics").text
    paths = {"direct": 0.0, "asgi": 0.0}
    for line in text.splitlines():
        match = re.fullmatch(r'exchange_ws_send_path_total\{path="(\w+)"\} (\S+)', line)
        if match:
            paths[match[1]] = float(match[2])
    return paths


def redis_subscribers(group: str) -> int:
    """Subscribers of ``group``'s Redis channel under channels-redis's pub/sub layer."""
    channel = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] + "__group__" + group
    client = redis_client(settings.REDIS_URL)
    try:
        return dict(client.pubsub_numsub(channel))[channel.encode()]
    finally:
        client.close()


def in_thread_with_own_connection(function):
    try:
        return function()
    finally:
        connection.close()


def test_public_book_and_trade_messages_reach_a_real_daphne_through_channels_redis(live_stack):
    maker = live_stack.create_user(email="maker@example.com", username="maker", funds={"BTC": "1"})
    taker = live_stack.create_user(
        email="taker@example.com", username="taker", funds={"USD": "1000"}
    )

    def cross() -> None:
        for user, side in ((maker, "sell"), (taker, "buy")):
            order_place(
                user=user,
                request=OrderRequest(
                    symbol="BTC-USD",
                    side=side,
                    order_type="limit",
                    price=Decimal("100.00"),
                    quantity=Decimal("0.10"),
                ),
            )

    async def scenario() -> tuple[list[dict], dict[str, int]]:
        received = []
        async with websockets.connect(f"{live_stack.ws_url}/ws/") as ws:
            for channel in ("orderbook", "trades"):
                await ws.send(
                    json.dumps({"type": "subscribe", "channel": channel, "symbol": "BTC-USD"})
                )
            while len([m for m in received if m["type"] in ("subscribed", "snapshot")]) < 3:
                received.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=10)))
            # daphne's hub channel is the one member of each group: the matcher's messages
            # can reach it only through the layer.
            members = {
                group: await asyncio.to_thread(redis_subscribers, group)
                for group in ("md.BTC-USD.orderbook", "md.BTC-USD.trades")
            }
            await asyncio.to_thread(in_thread_with_own_connection, cross)
            while not {"trade", "update"} <= {m["type"] for m in received}:
                received.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=15)))
        return received, members

    received, members = asyncio.run(scenario())

    assert members == {"md.BTC-USD.orderbook": 1, "md.BTC-USD.trades": 1}
    trade = Trade.objects.get()
    trades = [m for m in received if m["type"] == "trade"]
    assert [(m["id"], Decimal(m["price"]), Decimal(m["quantity"])) for m in trades] == [
        (trade.pk, Decimal("100.00"), Decimal("0.10"))
    ]
    update = next(m for m in received if m["type"] == "update")
    snapshot = next(m for m in received if m["type"] == "snapshot")
    assert update["first_seq"] == snapshot["seq"] + 1


def test_fastsend_finds_the_shape_it_relies_on_in_a_real_daphne_connection(live_stack):
    """Fails when a daphne, autobahn or Twisted upgrade moves what ``marketdata.fastsend``
    reaches for: connections would silently take the slower ASGI path."""
    before = send_paths(live_stack)

    async def connect_and_subscribe() -> None:
        async with websockets.connect(f"{live_stack.ws_url}/ws/") as ws:
            subscribe = {"type": "subscribe", "channel": "trades", "symbol": "BTC-USD"}
            await ws.send(json.dumps(subscribe))
            reply = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
            assert reply["type"] == "subscribed"

    asyncio.run(connect_and_subscribe())
    after = send_paths(live_stack)

    assert after["direct"] - before["direct"] == 1
    assert after["asgi"] == before["asgi"]

"""The WebSocket API (``/ws-api/v3``) and the listenKey stream with signed raw frames, over
the real channel layer and Redis; the matcher runs in-process and publishes as in production.
Each method's answer and Binance's error codes; events in order with their ``seq``; and the
private events of a batch committed by a matcher that died before publishing them,
republished by the next one."""

import hashlib
import hmac
import time
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.test import override_settings
from rest_framework.settings import api_settings

from accounts import services as account_services
from accounts.tests.factories import UserFactory
from exchange_site.asgi import application
from marketdata.tests.test_streams import NO_CAPS, match_all, start_matcher
from trading.binance import listen_keys
from trading.matcher.market import MarketMatcher
from trading.models import Order, Trade
from trading.services import OrderRequest, order_place
from trading.tests.factories import MarketFactory
from wallets.services import deposit_demo_create
from wallets.tests.factories import AssetFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_stopped")]

SYMBOL = "WSA-USD"


@pytest.fixture(autouse=True)
async def _close_thread_connection():
    yield
    await sync_to_async(lambda: connection.close())()


class Account:
    def __init__(self, user, permissions=("read", "trade")):
        self.user = user
        api_key, self.secret = account_services.api_key_create(
            user=user, label="bot", permissions=list(permissions)
        )
        self.key = api_key.key

    def sign(self, params: dict, *, secret: str | None = None) -> dict:
        """``params`` with apiKey, timestamp and the signature of them all, sorted by name."""
        signed = {"apiKey": self.key, "timestamp": int(time.time() * 1000), **params}

        def text(value):
            return ("true" if value else "false") if isinstance(value, bool) else str(value)

        payload = "&".join(f"{name}={text(value)}" for name, value in sorted(signed.items()))
        key = (secret or self.secret).encode()
        signed["signature"] = hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()
        return signed


def setup_market():
    market = MarketFactory(
        symbol=SYMBOL,
        base_asset=AssetFactory(code="WSA"),
        tick_size=Decimal(1),
        lot_size=Decimal(1),
        min_qty=Decimal(1),
        max_qty=Decimal(1000),
        min_notional=Decimal(1),
    )
    users = [UserFactory(), UserFactory()]
    with override_settings(
        DEMO_DEPOSITS=True, DEMO_DEPOSIT_MAX_PER_REQUEST=NO_CAPS, DEMO_DEPOSIT_MAX_PER_DAY=NO_CAPS
    ):
        for user in users:
            deposit_demo_create(user=user, asset_code="USD", amount=Decimal(100000))
            deposit_demo_create(user=user, asset_code="WSA", amount=Decimal(1000))
    return market, [Account(user) for user in users]


async def ws_api(path: str = "/ws-api/v3") -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path)
    connected, _ = await communicator.connect()
    assert connected
    communicator.events = []  # events that arrived while waiting for an answer
    return communicator


async def call(communicator, method: str, params: dict | None = None, request_id="r1") -> dict:
    request = {"id": request_id, "method": method}
    if params is not None:
        request["params"] = params
    await communicator.send_json_to(request)
    while True:
        answer = await communicator.receive_json_from(timeout=5)
        if "subscriptionId" not in answer:
            return answer
        communicator.events.append(answer)


async def events(communicator, quiet: float = 0.5) -> list[dict]:
    """Every event until the connection has been quiet for ``quiet`` seconds (a receive
    with a timeout would cancel the application when it expires)."""
    received, communicator.events = communicator.events, []
    while not await communicator.receive_nothing(timeout=quiet):
        received.append(await communicator.receive_json_from())
    return received


def limit(side: str, quantity: int, price: int) -> OrderRequest:
    return OrderRequest(
        symbol=SYMBOL,
        side=side,
        order_type="limit",
        quantity=Decimal(quantity),
        price=Decimal(price),
    )


@override_settings(BINANCE_ORDER_WAIT_MS=0)
async def test_each_method_answers_in_binances_envelope_and_events_follow_in_order():
    market, (bot, other) = await sync_to_async(setup_market)()
    matcher = await sync_to_async(start_matcher)(market)
    ws = await ws_api()

    assert await call(ws, "ping", request_id=1) == {
        "id": 1,
        "status": 200,
        "result": {},
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": 6000,
                "count": 1,
            }
        ],
    }
    answer = await call(ws, "time", {"returnRateLimits": False})
    assert set(answer) == {"id", "status", "result"}
    assert abs(answer["result"]["serverTime"] - time.time() * 1000) < 5000

    subscribed = await call(ws, "userDataStream.subscribe.signature", bot.sign({}))
    assert subscribed["status"] == 200
    assert subscribed["result"] == {"subscriptionId": 0}
    again = await call(ws, "userDataStream.subscribe.signature", bot.sign({}))
    assert again["status"] == 400
    assert again["error"]["code"] == -2035

    placed = await call(
        ws,
        "order.place",
        bot.sign(
            {
                "symbol": "WSAUSD",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "5",
                "price": "100",
                "newClientOrderId": "bot-1",
            }
        ),
    )
    assert placed["status"] == 200, placed
    order = placed["result"]
    assert (order["clientOrderId"], order["status"], order["origQty"]) == (
        "bot-1",
        "NEW",
        "5.00000000",
    )
    await sync_to_async(order_place)(user=other.user, request=limit("sell", 2, 100))
    await sync_to_async(match_all)(matcher)

    status = await call(
        ws, "order.status", bot.sign({"symbol": "WSAUSD", "orderId": order["orderId"]})
    )
    assert (status["result"]["status"], status["result"]["executedQty"]) == (
        "PARTIALLY_FILLED",
        "2.00000000",
    )
    opened = await call(ws, "openOrders.status", bot.sign({"symbol": "WSAUSD"}))
    assert [o["orderId"] for o in opened["result"]] == [order["orderId"]]
    account = await call(ws, "account.status", bot.sign({}))
    usd = next(b for b in account["result"]["balances"] if b["asset"] == "USD")
    assert usd == {"asset": "USD", "free": "99500.00000000", "locked": "300.00000000"}

    cancel = await call(
        ws, "order.cancel", bot.sign({"symbol": "WSAUSD", "orderId": order["orderId"]})
    )
    assert cancel["status"] == 200
    await sync_to_async(match_all)(matcher)
    assert (
        await call(ws, "order.status", bot.sign({"symbol": "WSAUSD", "origClientOrderId": "bot-1"}))
    )["result"]["status"] == "CANCELED"

    received = [e for e in await events(ws) if "subscriptionId" in e]
    assert {e["subscriptionId"] for e in received} == {0}
    kinds = [e["event"]["e"] for e in received]
    reports = [e["event"] for e in received if e["event"]["e"] == "executionReport"]
    assert [(r["x"], r["X"], r["z"]) for r in reports] == [
        ("NEW", "NEW", "0.00000000"),
        ("TRADE", "PARTIALLY_FILLED", "2.00000000"),
        ("CANCELED", "CANCELED", "2.00000000"),
    ]
    trade = await sync_to_async(Trade.objects.get)()
    fill = reports[1]
    assert (fill["t"], fill["l"], fill["L"], fill["m"], fill["N"]) == (
        trade.pk,
        "2.00000000",
        "100.00000000",
        True,
        "WSA",
    )
    assert Decimal(fill["n"]) == trade.buyer_fee
    # Not an iceberg, not in an order list, not trailing.
    assert (fill["F"], fill["g"], "d" in fill) == ("0.00000000", -1, False)
    assert (fill["c"], fill["s"], fill["S"], fill["o"], fill["f"]) == (
        "bot-1",
        "WSAUSD",
        "BUY",
        "LIMIT",
        "GTC",
    )
    assert "outboundAccountPosition" in kinds
    positions = [e["event"] for e in received if e["event"]["e"] == "outboundAccountPosition"]
    assert positions[-1]["B"][0]["l"] == "0.00000000"  # the cancel released the rest
    seqs = [e["event"]["seq"] for e in received]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # in order, none missing

    assert (await call(ws, "userDataStream.unsubscribe", {"subscriptionId": 0}))["result"] == {}
    assert (await call(ws, "userDataStream.unsubscribe", {"subscriptionId": 0}))["error"][
        "code"
    ] == -2036
    await ws.disconnect()


@override_settings(BINANCE_ORDER_WAIT_MS=0)
async def test_reports_carry_the_iceberg_part_the_order_list_and_the_trailing_delta():
    market, (bot, _other) = await sync_to_async(setup_market)()
    matcher = await sync_to_async(start_matcher)(market)
    ws = await ws_api()
    assert (await call(ws, "userDataStream.subscribe.signature", bot.sign({})))["status"] == 200
    iceberg = {"symbol": "WSAUSD", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC"}
    placed = await call(
        ws,
        "order.place",
        bot.sign({**iceberg, "quantity": "10", "price": "120", "icebergQty": "2"}),
    )
    assert placed["status"] == 200, placed
    iceberg_id = placed["result"]["orderId"]
    trailing = {"symbol": "WSAUSD", "side": "SELL", "type": "STOP_LOSS", "trailingDelta": "100"}
    placed = await call(ws, "order.place", bot.sign({**trailing, "quantity": "1"}))
    assert placed["status"] == 200, placed
    trailing_id = placed["result"]["orderId"]
    oco = await sync_to_async(services_oco_place)(bot.user)
    await sync_to_async(match_all)(matcher)

    reports = [e["event"] for e in await events(ws) if e["event"]["e"] == "executionReport"]
    new = {r["i"]: r for r in reports if r["x"] == "NEW"}
    assert (new[iceberg_id]["F"], new[iceberg_id]["g"]) == ("2.00000000", -1)
    assert (new[trailing_id]["d"], new[trailing_id]["g"]) == (100, -1)
    oco_reports = [r for r in reports if r["g"] != -1]
    assert {r["g"] for r in oco_reports} == {oco.pk}
    legs = await sync_to_async(lambda: set(oco.orders.values_list("pk", flat=True)))()
    assert len(legs) == 2
    assert {r["i"] for r in oco_reports} == legs
    assert {r["g"] for r in oco_reports} == {oco.pk}
    await ws.disconnect()


def services_oco_place(user):
    from trading.services import OcoRequest, oco_place

    return oco_place(
        user=user,
        request=OcoRequest(
            symbol=SYMBOL,
            side="sell",
            quantity=Decimal(1),
            limit_price=Decimal(150),
            stop_price=Decimal(50),
        ),
    )


async def test_new_orders_count_against_the_keys_order_limit(monkeypatch):
    monkeypatch.setitem(api_settings.DEFAULT_THROTTLE_RATES, "binance_orders", "2/10s")
    _market, (bot, _other) = await sync_to_async(setup_market)()
    ws = await ws_api()
    order = {"symbol": "WSAUSD", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    order |= {"quantity": "1", "price": "10", "newOrderRespType": "ACK"}
    answers = [await call(ws, "order.place", bot.sign(order)) for _ in range(3)]
    assert [a["status"] for a in answers] == [200, 200, 429]
    assert answers[2]["error"]["code"] == -1015
    assert await sync_to_async(Order.objects.count)() == 2
    await ws.disconnect()


async def test_errors_have_binances_codes_and_change_nothing():
    _market, (bot, _other) = await sync_to_async(setup_market)()
    read_only = await sync_to_async(Account)(bot.user, ("read",))
    ws = await ws_api()
    order = {"symbol": "WSAUSD", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    order |= {"quantity": "1", "price": "10"}

    def code(answer):
        return answer["status"], answer["error"]["code"]

    assert code(await call(ws, "order.place", bot.sign(order, secret="0" * 64))) == (400, -1022)
    assert code(await call(ws, "no.such.method", {})) == (400, -1020)
    assert code(
        await call(ws, "order.place", {k: v for k, v in bot.sign(order).items() if k != "apiKey"})
    ) == (
        400,
        -1102,
    )
    missing_symbol = {k: v for k, v in order.items() if k != "symbol"}
    assert code(await call(ws, "order.place", bot.sign(missing_symbol))) == (400, -1102)
    assert code(await call(ws, "order.place", bot.sign({**order, "symbol": "NOPEUSD"}))) == (
        400,
        -1121,
    )
    stale = bot.sign({**order, "timestamp": int(time.time() * 1000) - 70_000})
    assert code(await call(ws, "order.place", stale)) == (400, -1021)
    assert code(await call(ws, "order.place", read_only.sign(order))) == (401, -2015)
    assert code(await call(ws, "order.status", bot.sign({"symbol": "WSAUSD", "orderId": 999}))) == (
        400,
        -2013,
    )
    assert code(await call(ws, "order.cancel", bot.sign({"symbol": "WSAUSD", "orderId": 999}))) == (
        400,
        -2011,
    )
    assert code(
        await call(ws, "order.place", bot.sign({**order, "quantity": "900", "price": "1000"}))
    ) == (
        400,
        -2010,
    )
    assert code(await call(ws, "userDataStream.subscribe", {})) == (401, -2015)  # no session
    await ws.send_to(text_data="{not json")
    assert (await ws.receive_json_from(timeout=5))["error"]["code"] == -1100
    assert await sync_to_async(Order.objects.count)() == 0
    await ws.disconnect()


async def test_session_logon_then_subscribe_and_sign_nothing_more():
    _market, (bot, _other) = await sync_to_async(setup_market)()
    ws = await ws_api()
    logon = await call(ws, "session.logon", bot.sign({}))
    assert logon["result"]["apiKey"] == bot.key
    assert (await call(ws, "userDataStream.subscribe"))["result"] == {"subscriptionId": 0}
    answer = await call(ws, "account.status", {"timestamp": int(time.time() * 1000)})
    assert answer["status"] == 200
    assert (await call(ws, "session.status"))["result"]["userDataStream"] is True
    out = await call(ws, "session.logout")
    assert (out["result"]["apiKey"], out["result"]["userDataStream"]) == (None, False)
    after = await call(ws, "account.status", {"timestamp": int(time.time() * 1000)})
    assert after["error"]["code"] == -1102  # unsigned again: apiKey is mandatory
    await ws.disconnect()


async def test_an_unknown_or_expired_listen_key_ends_the_stream():
    _market, (bot, _other) = await sync_to_async(setup_market)()
    bogus = WebsocketCommunicator(application, "/api/v3/ws/" + "x" * 60)
    await bogus.connect()
    assert (await bogus.receive_json_from(timeout=5))["e"] == "listenKeyExpired"
    assert (await bogus.receive_output(timeout=5))["type"] == "websocket.close"
    assert await sync_to_async(listen_keys.listen_key_user)("x" * 60) is None

    with override_settings(LISTEN_KEY_TTL_SECONDS=1, LISTEN_KEY_CHECK_SECONDS=0.2):
        key = await sync_to_async(listen_keys.listen_key_create)(user_id=bot.user.pk)
        stream = WebsocketCommunicator(application, f"/ws/{key}")
        await stream.connect()
        expired = await stream.receive_json_from(timeout=5)
        assert (expired["e"], expired["listenKey"]) == ("listenKeyExpired", key)
        assert (await stream.receive_output(timeout=5))["type"] == "websocket.close"


async def test_a_batch_committed_by_a_matcher_that_died_unpublished_is_republished():
    market, (bot, other) = await sync_to_async(setup_market)()
    matcher = await sync_to_async(start_matcher)(market)
    ws = await ws_api()
    await call(ws, "userDataStream.subscribe.signature", bot.sign({}))
    await sync_to_async(order_place)(user=bot.user, request=limit("buy", 3, 100))
    await sync_to_async(match_all)(matcher)
    before = [e["event"] for e in await events(ws)]
    assert [e.get("x") for e in before if e["e"] == "executionReport"] == ["NEW"]

    await sync_to_async(order_place)(user=other.user, request=limit("sell", 3, 100))
    # The batch commits, and the process dies before it publishes anything.
    await sync_to_async(lambda: MarketMatcher(market).run_batch(100))()
    assert [e for e in await events(ws) if e["event"]["e"] == "executionReport"] == []

    restarted = await sync_to_async(start_matcher)(market)  # restores: republishes
    after = [e["event"] for e in await events(ws)]
    reports = [e for e in after if e["e"] == "executionReport"]
    assert [(r["x"], r["X"], r["z"]) for r in reports] == [("TRADE", "FILLED", "3.00000000")]
    usd = [
        e["B"][0] for e in after if e["e"] == "outboundAccountPosition" and e["B"][0]["a"] == "USD"
    ]
    assert usd[-1] == {"a": "USD", "f": "99700.00000000", "l": "0.00000000"}
    seqs = [e["seq"] for e in before + after]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    # Published once: the next restart has nothing to add.
    await sync_to_async(start_matcher)(market)
    assert await events(ws) == []
    del restarted
    await ws.disconnect()


async def test_a_deposit_is_a_balance_update_then_the_account_position():
    _market, (bot, _other) = await sync_to_async(setup_market)()
    key = await sync_to_async(listen_keys.listen_key_create)(user_id=bot.user.pk)
    stream = WebsocketCommunicator(application, f"/api/v3/ws/{key}")
    connected, _ = await stream.connect()
    assert connected
    await stream.receive_nothing(timeout=0.3)  # joined the user's group

    def deposit():
        with override_settings(
            DEMO_DEPOSITS=True,
            DEMO_DEPOSIT_MAX_PER_REQUEST=NO_CAPS,
            DEMO_DEPOSIT_MAX_PER_DAY=NO_CAPS,
        ):
            deposit_demo_create(user=bot.user, asset_code="WSA", amount=Decimal("2.5"))

    await sync_to_async(deposit)()
    update = await stream.receive_json_from(timeout=5)
    position = await stream.receive_json_from(timeout=5)
    assert (update["e"], update["a"], update["d"]) == ("balanceUpdate", "WSA", "2.50000000")
    assert (position["e"], position["B"]) == (
        "outboundAccountPosition",
        [{"a": "WSA", "f": "1002.50000000", "l": "0.00000000"}],
    )
    assert position["seq"] == update["seq"] + 1
    await stream.disconnect()


async def test_a_batch_whose_send_redis_refused_is_republished_with_the_next(monkeypatch):
    from trading.matcher import publish

    market, (bot, other) = await sync_to_async(setup_market)()
    matcher = await sync_to_async(start_matcher)(market)
    ws = await ws_api()
    await call(ws, "userDataStream.subscribe.signature", bot.sign({}))
    await sync_to_async(order_place)(user=bot.user, request=limit("buy", 3, 100))
    await sync_to_async(match_all)(matcher)
    assert [e["event"]["x"] for e in await events(ws) if "x" in e["event"]] == ["NEW"]

    with monkeypatch.context() as redis_away:
        redis_away.setattr(publish._pipe, "send", lambda *args, **kwargs: False)
        await sync_to_async(order_place)(user=other.user, request=limit("sell", 1, 100))
        await sync_to_async(match_all)(matcher)
    assert await events(ws) == []

    monkeypatch.setattr(publish, "REPLAY_RETRY_SECONDS", 0.0)
    # Redis is back and the market idle: the matcher's next look publishes what it missed.
    await sync_to_async(matcher.publisher.flush_due)(matcher.matchers)
    caught_up = [e["event"] for e in await events(ws)]
    assert [(e["x"], e["z"]) for e in caught_up if e["e"] == "executionReport"] == [
        ("TRADE", "1.00000000")
    ]
    await sync_to_async(order_place)(user=other.user, request=limit("sell", 1, 100))
    await sync_to_async(match_all)(matcher)
    received = caught_up + [e["event"] for e in await events(ws)]
    reports = [e for e in received if e["e"] == "executionReport"]
    trades = await sync_to_async(lambda: list(Trade.objects.order_by("id")))()
    assert [(r["x"], r["t"]) for r in reports] == [("TRADE", trade.pk) for trade in trades]
    assert reports[-1]["z"] == "2.00000000"
    seqs = [e["seq"] for e in received]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    await ws.disconnect()


def test_user_data_stream_rest_calls_and_their_errors():
    from rest_framework.test import APIClient

    _market, (bot, other) = setup_market()
    client = APIClient()
    url = "/api/v3/userDataStream"

    def as_(account):
        return {"HTTP_X_MBX_APIKEY": account.key}

    key = client.post(url, **as_(bot)).json()["listenKey"]
    assert client.post(url, **as_(bot)).json() == {"listenKey": key}  # one per user
    assert client.post(url, **as_(other)).json()["listenKey"] != key
    assert listen_keys.listen_key_user(key) == bot.user.pk

    def error(response):
        return response.status_code, response.json()["code"]

    assert error(client.post(url)) == (401, -2014)
    assert error(client.post(url, HTTP_X_MBX_APIKEY="A" * 64)) == (401, -2015)
    assert error(client.put(url, **as_(bot))) == (400, -1102)
    assert error(client.put(f"{url}?listenKey={key}", **as_(other))) == (400, -1125)
    assert error(client.delete(f"{url}?listenKey={key}", **as_(other))) == (400, -1125)
    assert error(client.post(f"{url}?foo=1", **as_(bot))) == (400, -1104)
    assert listen_keys.listen_key_user(key) == bot.user.pk  # none of that changed it
    assert client.put(f"{url}?listenKey={key}", **as_(bot)).json() == {}
    assert client.delete(f"{url}?listenKey={key}", **as_(bot)).json() == {}
    assert listen_keys.listen_key_user(key) is None
    assert error(client.put(f"{url}?listenKey={key}", **as_(bot))) == (400, -1125)


@override_settings(USER_STREAM_CHECK_SECONDS=0.2)
async def test_a_revoked_key_ends_its_subscription_with_event_stream_terminated():
    _market, (bot, _other) = await sync_to_async(setup_market)()
    ws = await ws_api()
    await call(ws, "userDataStream.subscribe.signature", bot.sign({}))
    api_key = await sync_to_async(lambda: bot.user.api_keys.get(key=bot.key))()
    await sync_to_async(account_services.api_key_revoke)(user=bot.user, key_id=api_key.pk)
    (ended,) = await events(ws, quiet=1.0)
    assert ended["subscriptionId"] == 0
    assert ended["event"]["e"] == "eventStreamTerminated"
    assert (await call(ws, "session.status"))["result"]["userDataStream"] is False
    await ws.disconnect()

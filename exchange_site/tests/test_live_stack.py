"""The end-to-end fixture itself: the real processes answer and the matcher matches."""

import asyncio
import json

import httpx
import websockets

from trading.models import Order, Trade


def _login(base: str, email: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=10)
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    return client


def test_orders_through_gunicorn_match_in_the_matcher_and_stream_on_daphne(live_stack):
    live_stack.create_user(email="maker@example.com", username="maker", funds={"BTC": "1"})
    live_stack.create_user(email="taker@example.com", username="taker", funds={"USD": "1000"})
    maker = _login(live_stack.web_url, "maker@example.com", "correct-horse-battery")
    taker = _login(live_stack.web_url, "taker@example.com", "correct-horse-battery")

    async def first_trade() -> dict:
        async with websockets.connect(f"{live_stack.ws_url}/ws/") as ws:
            await ws.send(
                json.dumps({"type": "subscribe", "channel": "trades", "symbol": "BTC-USD"})
            )
            sell = maker.post(
                "/api/v1/orders/",
                json={
                    "symbol": "BTC-USD",
                    "side": "sell",
                    "order_type": "limit",
                    "price": "100.00",
                    "quantity": "0.5",
                },
            )
            assert sell.status_code == 201, sell.text
            buy = taker.post(
                "/api/v1/orders/",
                json={
                    "symbol": "BTC-USD",
                    "side": "buy",
                    "order_type": "limit",
                    "price": "100.00",
                    "quantity": "0.5",
                },
            )
            assert buy.status_code == 201, buy.text
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
                if message.get("type") == "trade":
                    return message

    trade = asyncio.run(first_trade())
    assert trade["symbol"] == "BTC-USD"
    assert trade["price"] == "100.00"
    assert trade["quantity"] == "0.50000"
    live_stack.wait_matcher_idle()
    assert Trade.objects.count() == 1
    assert set(Order.objects.values_list("status", flat=True)) == {"filled"}
    health = httpx.get(f"{live_stack.web_url}/health").json()
    assert health["matcher"]["status"] == "ok"

"""CCXT itself (``ccxt==4.5.90``) against the real web, ws and matcher processes
(``live_stack``): the configuration a trader's bot would use: CCXT's default options, only
the URL table and keys set.

SOL-USD is used throughout: Redis pub/sub channels are shared by every suite on the Redis
server, and the other suites trade BTC-USD.
"""

import asyncio
import time
from decimal import Decimal

import ccxt
import ccxt.async_support
import ccxt.pro
import pytest
import requests
from django.db import connection

from trading.models import Trade
from trading.tests.helpers import assert_ledger_ok

pytestmark = pytest.mark.django_db(transaction=True)

SYMBOL = "SOL/USD"
PASSWORD = "correct-horse-battery-42"


def configure(exchange, stack):
    """The URL table a bot sets (BINANCE.md): every API family ccxt.binance calls with its
    default options, on this exchange. No option is changed."""
    exchange.urls["api"] = {
        "public": stack.web_url + "/api/v3",
        "private": stack.web_url + "/api/v3",
        "sapi": stack.web_url + "/sapi/v1",
        "fapiPublic": stack.web_url + "/fapi/v1",
        "dapiPublic": stack.web_url + "/dapi/v1",
        "ws": {"spot": stack.ws_url + "/api/v3/ws"},
    }
    return exchange


def exchange_for(stack, credentials=None, cls=ccxt.binance):
    config = {}
    if credentials:
        config.update(apiKey=credentials["key"], secret=credentials["secret"])
    return configure(cls(config), stack)


class Trader:
    """A user of the live exchange who made an API key on it, as a person would."""

    def __init__(self, stack, name: str, funds: dict):
        self.stack = stack
        stack.create_user(
            email=f"{name}@example.com", username=name, password=PASSWORD, funds=funds
        )
        login = requests.post(
            f"{stack.web_url}/api/v1/auth/login",
            json={"email": f"{name}@example.com", "password": PASSWORD},
            timeout=10,
        )
        assert login.status_code == 200, login.text
        self.auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        self.credentials = self.new_key()

    def new_key(self, permissions=("read", "trade")) -> dict:
        response = requests.post(
            f"{self.stack.web_url}/api/v1/api-keys",
            json={"label": "ccxt", "permissions": list(permissions)},
            headers=self.auth,
            timeout=10,
        )
        assert response.status_code == 201, response.text
        return response.json()

    def revoke(self, credentials: dict) -> None:
        response = requests.delete(
            f"{self.stack.web_url}/api/v1/api-keys/{credentials['id']}",
            headers=self.auth,
            timeout=10,
        )
        assert response.status_code == 204, response.text


async def in_thread(function):
    """Run a database read off the event loop, closing the thread's connection after."""

    def run():
        try:
            return function()
        finally:
            connection.close()

    return await asyncio.to_thread(run)


@pytest.fixture
def traders(live_stack):
    funds = {"USD": "100000", "SOL": "1000"}
    return Trader(live_stack, "alice", funds), Trader(live_stack, "bob", funds)


def test_a_ccxt_session(live_stack, traders):
    alice, bob = traders
    ex = exchange_for(live_stack, alice.credentials)
    other = exchange_for(live_stack, bob.credentials)

    markets = ex.load_markets()
    market = markets[SYMBOL]
    assert market["id"] == "SOLUSD"
    assert market["active"] is True
    assert market["precision"]["price"] == 0.001
    assert market["precision"]["amount"] == 0.01
    assert market["limits"]["cost"]["min"] == 1
    other.load_markets()

    balance = ex.fetch_balance()
    assert balance["USD"]["free"] == 100000
    assert balance["SOL"]["total"] == 1000

    bid = ex.create_order(SYMBOL, "limit", "buy", 2, 100)
    assert bid["status"] == "open"
    assert bid["price"] == 100
    assert bid["amount"] == 2
    assert ex.fetch_balance()["USD"]["used"] == 200

    book = ex.fetch_order_book(SYMBOL, 10)
    assert book["bids"][0][:2] == [100, 2]
    assert book["nonce"] > 0
    assert [order["id"] for order in ex.fetch_open_orders(SYMBOL)] == [bid["id"]]

    # A fill by a second client: its FULL answer carries the fill and the fee.
    sold = other.create_order(SYMBOL, "market", "sell", 0.5)
    assert sold["status"] == "closed"
    assert sold["filled"] == 0.5
    assert sold["average"] == 100
    assert sold["trades"][0]["price"] == 100
    assert sold["fee"]["currency"] == "USD"
    assert sold["fee"]["cost"] == pytest.approx(0.1)
    live_stack.wait_matcher_idle()

    fetched = ex.fetch_order(bid["id"], SYMBOL)
    assert fetched["status"] == "open"
    assert fetched["filled"] == 0.5
    assert fetched["remaining"] == 1.5
    (mine,) = ex.fetch_my_trades(SYMBOL)
    assert mine["order"] == bid["id"]
    assert mine["side"] == "buy"
    assert mine["takerOrMaker"] == "maker"
    assert mine["amount"] == 0.5
    assert mine["fee"]["currency"] == "SOL"
    trades = ex.fetch_trades(SYMBOL)
    assert [trade["id"] for trade in trades] == [mine["id"]]
    assert trades[0]["side"] == "sell"
    ticker = ex.fetch_ticker(SYMBOL)
    assert ticker["last"] == 100
    assert ticker["baseVolume"] == 0.5
    assert ticker["bid"] == 100
    candles = ex.fetch_ohlcv(SYMBOL, "1m")
    assert candles[-1][1:] == [100, 100, 100, 100, 0.5]

    # A market buy by cost (quoteOrderQty) against a resting ask.
    other.create_order(SYMBOL, "limit", "sell", 1, 101)
    bought = ex.create_order(SYMBOL, "market", "buy", 0.5, 101)
    assert bought["status"] == "closed"
    assert bought["cost"] == pytest.approx(50.5)

    cancelled = ex.cancel_order(bid["id"], SYMBOL)
    assert cancelled["status"] == "canceled"
    assert cancelled["filled"] == 0.5
    assert ex.fetch_open_orders(SYMBOL) == []
    live_stack.wait_matcher_idle()
    assert ex.fetch_balance()["USD"]["used"] == 0

    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order(SYMBOL, "limit", "buy", 5000, 100)
    with pytest.raises(ccxt.OrderNotFound):
        ex.fetch_order("999999999", SYMBOL)
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order("999999999", SYMBOL)
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order(bid["id"], SYMBOL)  # already cancelled
    with pytest.raises(ccxt.BadSymbol):
        ex.public_get_depth({"symbol": "DOGEUSD"})
    with pytest.raises(ccxt.InvalidOrder):
        ex.create_order(SYMBOL, "limit", "buy", 0.001, 100)  # below LOT_SIZE minQty

    stale = exchange_for(live_stack, alice.credentials)
    stale.load_markets()
    stale.options["timeDifference"] = 70_000  # its clock 70 s behind
    with pytest.raises(ccxt.InvalidNonce):
        stale.fetch_balance()

    # With keys, loading the markets already makes signed requests (the currencies from
    # sapi capital/config/getall), so a bad secret or a revoked key fails there.
    wrong = exchange_for(live_stack, {**alice.credentials, "secret": "0" * 64})
    with pytest.raises(ccxt.AuthenticationError):
        wrong.load_markets()

    spare = alice.new_key()
    alice.revoke(spare)
    revoked = exchange_for(live_stack, spare)
    with pytest.raises(ccxt.AuthenticationError):
        revoked.load_markets()

    read_only = exchange_for(live_stack, alice.new_key(permissions=("read",)))
    read_only.load_markets()
    # First: after one successful private call CCXT reads -2015 as a temporary ban.
    with pytest.raises(ccxt.AuthenticationError):
        read_only.create_order(SYMBOL, "limit", "buy", 1, 90)
    assert read_only.fetch_balance()["USD"]["total"] > 0

    live_stack.wait_matcher_idle()
    assert_ledger_ok()


def test_an_async_ccxt_session(live_stack, traders):
    alice, bob = traders

    async def session():
        ex = exchange_for(live_stack, alice.credentials, ccxt.async_support.binance)
        other = exchange_for(live_stack, bob.credentials, ccxt.async_support.binance)
        try:
            await ex.load_markets()
            await other.load_markets()
            assert (await ex.fetch_balance())["USD"]["free"] == 100000
            ask = await other.create_order(SYMBOL, "limit", "sell", 3, 120)
            assert ask["status"] == "open"
            bought = await ex.create_order(SYMBOL, "limit", "buy", 1, 120)
            assert bought["status"] == "closed"
            assert bought["filled"] == 1
            assert (await other.fetch_order(ask["id"], SYMBOL))["filled"] == 1
            assert [o["id"] for o in await other.fetch_open_orders(SYMBOL)] == [ask["id"]]
            assert len(await ex.fetch_my_trades(SYMBOL)) == 1
            assert (await other.cancel_order(ask["id"], SYMBOL))["status"] == "canceled"
            with pytest.raises(ccxt.InsufficientFunds):
                await ex.create_order(
                    SYMBOL, "market", "buy", None, 10_000_000, {"quoteOrderQty": 10_000_000}
                )
        finally:
            await ex.close()
            await other.close()

    asyncio.run(session())
    live_stack.wait_matcher_idle()
    assert_ledger_ok()


def test_ccxt_pro_watches_the_book_and_every_trade(live_stack, traders):
    alice, bob = traders
    prices = [Decimal("99.5") + Decimal("0.25") * (i % 5) for i in range(30)]

    async def session():
        watcher = exchange_for(live_stack, None, ccxt.pro.binance)
        trader_a = exchange_for(live_stack, alice.credentials, ccxt.async_support.binance)
        trader_b = exchange_for(live_stack, bob.credentials, ccxt.async_support.binance)
        seen_trades: dict[str, dict] = {}
        try:
            await watcher.load_markets()
            await trader_a.load_markets()
            await trader_b.load_markets()
            book = await asyncio.wait_for(watcher.watch_order_book(SYMBOL), 10)
            first_nonce = book["nonce"]

            async def watch_trades():
                while True:
                    for trade in await watcher.watch_trades(SYMBOL):
                        seen_trades[trade["id"]] = trade

            trade_task = asyncio.create_task(watch_trades())
            await asyncio.sleep(0.5)  # the trade subscription is acknowledged

            async def place_orders():
                for i, price in enumerate(prices):
                    maker, taker = (trader_a, trader_b) if i % 2 else (trader_b, trader_a)
                    await maker.create_order(SYMBOL, "limit", "sell", 1, float(price))
                    await maker.create_order(SYMBOL, "limit", "buy", 1, float(price - 2))
                    if i % 3 == 0:
                        await taker.create_order(SYMBOL, "market", "buy", 0.5)
                    if i % 4 == 0:
                        await taker.create_order(SYMBOL, "market", "sell", 0.3)

            placing = asyncio.create_task(place_orders())
            updates = 0
            while not placing.done():
                try:  # raises on a sequence gap
                    book = await asyncio.wait_for(watcher.watch_order_book(SYMBOL), 1)
                except TimeoutError:
                    # The last update can come before the last order's answer: then no
                    # update follows, and only the loop's condition has changed.
                    continue
                updates += 1
            await placing
            await in_thread(live_stack.wait_matcher_idle)

            rest = await trader_a.fetch_order_book(SYMBOL, 1000)
            deadline = time.monotonic() + 10
            while book["nonce"] < rest["nonce"] and time.monotonic() < deadline:
                book = await asyncio.wait_for(watcher.watch_order_book(SYMBOL), 5)
            assert book["nonce"] == rest["nonce"] > first_nonce
            assert updates > 5
            assert book["bids"][: len(rest["bids"])] == rest["bids"]
            assert book["asks"][: len(rest["asks"])] == rest["asks"]

            stored = await in_thread(
                lambda: sorted(
                    Trade.objects.filter(market__symbol="SOL-USD").values_list("id", flat=True)
                )
            )
            deadline = time.monotonic() + 10
            while len(seen_trades) < len(stored) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            trade_task.cancel()
            assert stored
            assert sorted(int(trade_id) for trade_id in seen_trades) == stored
        finally:
            await watcher.close()
            await trader_a.close()
            await trader_b.close()

    asyncio.run(session())
    assert_ledger_ok()

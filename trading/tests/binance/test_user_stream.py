"""ccxt.pro (``ccxt==4.5.90``, the ``binance`` class, only its URLs changed) watching a bot's
own orders, fills and balances over the WebSocket API's user-data stream, and trading over
it, against the real web, ws and matcher processes (``live_stack``); and the same view kept
across a matcher killed mid-stream.
"""

import asyncio
import time

import ccxt.async_support
import ccxt.pro
import pytest
import requests

from trading.tests.binance.test_ccxt import SYMBOL, Trader, configure
from trading.tests.helpers import assert_ledger_ok

pytestmark = pytest.mark.django_db(transaction=True)


def pro_exchange(stack, credentials, cls=ccxt.pro.binance):
    """ccxt.pro with its default options: only the URL table (test_ccxt's, plus the
    WebSocket API's address) and the keys are set."""
    exchange = configure(
        cls({"apiKey": credentials["key"], "secret": credentials["secret"]}), stack
    )
    exchange.urls["api"]["ws"] = {
        "spot": stack.ws_url + "/api/v3/ws",
        "ws-api": {"spot": stack.ws_url + "/ws-api/v3"},
    }
    return exchange


class BotView:
    """What a bot learns from ``watch_orders``, ``watch_my_trades`` and ``watch_balance``."""

    def __init__(self, exchange):
        self.exchange = exchange
        self.orders: dict[str, dict] = {}
        self.trades: dict[str, dict] = {}
        self.balance: dict = {}
        self.seqs: list[int] = []
        self.tasks: list[asyncio.Task] = []

    async def start(self):
        async def orders():
            while True:
                for order in await self.exchange.watch_orders(SYMBOL):
                    self.orders[order["id"]] = order
                    self.seqs.append(order["info"]["seq"])

        async def trades():
            while True:
                for trade in await self.exchange.watch_my_trades(SYMBOL):
                    self.trades[trade["id"]] = trade

        async def balance():
            while True:
                self.balance = await self.exchange.watch_balance()

        self.tasks = [asyncio.create_task(job()) for job in (orders, trades, balance)]
        await asyncio.sleep(1.0)  # subscribed (userDataStream.subscribe.signature answered)
        for task in self.tasks:
            if task.done():
                task.result()  # raises what the watch raised

    def stop(self):
        for task in self.tasks:
            task.cancel()

    def differences(self, rest_orders, rest_trades, rest_balance) -> list:
        """How the watched view differs from REST's (empty when equal)."""
        found = []
        for order in rest_orders:
            seen = self.orders.get(order["id"])
            if seen is None:
                found.append(("missing order", order["id"]))
            elif (seen["status"], seen["filled"]) != (order["status"], order["filled"]):
                found.append(("order", order["id"], seen["status"], seen["filled"], order))
        if sorted(self.trades) != sorted(trade["id"] for trade in rest_trades):
            found.append(("trades", sorted(self.trades), [t["id"] for t in rest_trades]))
        for code in ("USD", "SOL"):
            watched = self.balance.get(code) or {}
            expected = rest_balance[code]
            if (watched.get("free"), watched.get("used")) != (expected["free"], expected["used"]):
                found.append(("balance", code, watched, expected))
        return found


async def converge(view: BotView, rest, timeout: float = 15.0) -> list:
    """Wait until the bot's view equals REST; the differences left at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        orders = await rest.fetch_orders(SYMBOL)
        trades = await rest.fetch_my_trades(SYMBOL)
        balance = await rest.fetch_balance()
        differences = view.differences(orders, trades, balance)
        if not differences or time.monotonic() > deadline:
            return differences
        await asyncio.sleep(0.3)


@pytest.fixture
def traders(live_stack):
    funds = {"USD": "100000", "SOL": "1000"}
    return Trader(live_stack, "bot", funds), Trader(live_stack, "other", funds)


def test_a_ccxt_pro_bot_watches_its_orders_fills_and_balance_while_another_user_trades(
    live_stack, traders
):
    bot, other = traders

    async def session():
        ex = pro_exchange(live_stack, bot.credentials)
        rest = pro_exchange(live_stack, bot.credentials, ccxt.async_support.binance)
        them = pro_exchange(live_stack, other.credentials, ccxt.async_support.binance)
        view = BotView(ex)
        try:
            for exchange in (ex, rest, them):
                await exchange.load_markets()
            await view.start()

            # Orders over the WebSocket API (order.place), filled by the other user over REST.
            bid = await ex.create_order_ws(SYMBOL, "limit", "buy", 3, 100)
            assert bid["status"] == "open"
            assert bid["amount"] == 3
            ask = await ex.create_order_ws(SYMBOL, "limit", "sell", 2, 110)
            await them.create_order(SYMBOL, "market", "sell", 1)
            await them.create_order(SYMBOL, "limit", "sell", 1.5, 100)
            await them.create_order(SYMBOL, "limit", "buy", 2, 110)  # fills the bot's ask
            fetched = await ex.fetch_order_ws(bid["id"], SYMBOL)
            assert fetched["filled"] == 2.5
            assert fetched["status"] == "open"
            assert [o["id"] for o in await ex.fetch_open_orders_ws(SYMBOL)] == [bid["id"]]
            cancelled = await ex.cancel_order_ws(bid["id"], SYMBOL)
            assert cancelled["status"] == "canceled"
            assert cancelled["filled"] == 2.5
            # A taker order of the bot over REST, and an IOC that expires part-filled.
            await them.create_order(SYMBOL, "limit", "sell", 1, 105)
            taker = await rest.create_order(SYMBOL, "limit", "buy", 2, 105, {"timeInForce": "IOC"})
            assert taker["status"] == "expired"
            # account.status: ccxt 4.5.90 parses a spot answer's balances only into "info"
            # (its parser reads the futures "assets" there; Binance's answer is the same).
            status = await ex.fetch_balance_ws()
            sol = next(b for b in status["info"]["balances"] if b["asset"] == "SOL")
            assert float(sol["free"]) + float(sol["locked"]) == pytest.approx(
                1000 + 2.5 - 2 + 1, abs=0.01
            )  # less fees

            differences = await converge(view, rest)
            assert differences == []
            assert view.orders[ask["id"]]["status"] == "closed"
            assert view.orders[bid["id"]]["status"] == "canceled"
            assert view.orders[taker["id"]]["status"] == "expired"
            assert view.orders[taker["id"]]["filled"] == 1
            assert len(view.trades) == 4
            maker_fill = next(t for t in view.trades.values() if t["order"] == ask["id"])
            assert maker_fill["takerOrMaker"] == "maker"
            assert maker_fill["fee"]["currency"] == "USD"
            # Private events arrive in order: each one's number is above the one before.
            assert view.seqs == sorted(set(view.seqs))
        finally:
            view.stop()
            for exchange in (ex, rest, them):
                await exchange.close()

    asyncio.run(session())
    live_stack.wait_matcher_idle()
    assert_ledger_ok()


def test_the_bots_view_equals_rest_across_a_matcher_killed_mid_stream(live_stack, traders):
    bot, other = traders

    async def session():
        ex = pro_exchange(live_stack, bot.credentials)
        rest = pro_exchange(live_stack, bot.credentials, ccxt.async_support.binance)
        them = pro_exchange(live_stack, other.credentials, ccxt.async_support.binance)
        view = BotView(ex)
        try:
            for exchange in (ex, rest, them):
                await exchange.load_markets()
            await view.start()

            async def trade(rounds: int, first_price: int):
                for i in range(rounds):
                    price = first_price + i
                    await rest.create_order(SYMBOL, "limit", "sell", 1, price, {})
                    await them.create_order(SYMBOL, "limit", "buy", 0.5, price)
                    await them.create_order(SYMBOL, "market", "buy", 0.25)

            await trade(4, 100)
            # Killed while orders keep coming: what it committed but never published is
            # republished by the next matcher, rebuilt from the database.
            placing = asyncio.create_task(trade(6, 120))
            await asyncio.sleep(0.3)
            await asyncio.to_thread(live_stack.stop_matcher, True)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(live_stack.start_matcher)
            await placing
            await asyncio.to_thread(live_stack.wait_matcher_idle)

            differences = await converge(view, rest, timeout=20)
            assert differences == []
            assert len(view.trades) >= 10
        finally:
            view.stop()
            for exchange in (ex, rest, them):
                await exchange.close()

    asyncio.run(session())
    live_stack.wait_matcher_idle()
    assert_ledger_ok()


def test_a_listen_key_stream_delivers_the_users_events(live_stack, traders):
    """The listenKey flow (what python-binance and older bots use): POST, the stream at
    ``/api/v3/ws/<listenKey>``, PUT, DELETE, and its end."""
    import json

    import websockets

    bot, other = traders
    headers = {"X-MBX-APIKEY": bot.credentials["key"]}
    url = live_stack.web_url + "/api/v3/userDataStream"
    key = requests.post(url, headers=headers, timeout=10).json()["listenKey"]
    assert len(key) == 60
    assert requests.post(url, headers=headers, timeout=10).json()["listenKey"] == key

    async def session():
        them = pro_exchange(live_stack, other.credentials, ccxt.async_support.binance)
        mine = pro_exchange(live_stack, bot.credentials, ccxt.async_support.binance)
        try:
            await them.load_markets()
            await mine.load_markets()
            async with websockets.connect(f"{live_stack.ws_url}/api/v3/ws/{key}") as ws:
                await asyncio.sleep(0.3)
                order = await mine.create_order(SYMBOL, "limit", "buy", 1, 100)
                await them.create_order(SYMBOL, "market", "sell", 1)
                events = []
                while not any(e.get("X") == "FILLED" for e in events):
                    events.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
                reports = [e for e in events if e["e"] == "executionReport"]
                assert [(e["x"], e["X"]) for e in reports] == [
                    ("NEW", "NEW"),
                    ("TRADE", "FILLED"),
                ]
                assert reports[1]["i"] == int(order["id"])
                assert reports[1]["l"] == "1.00000000"
                assert reports[1]["m"] is True
                assert any(e["e"] == "outboundAccountPosition" for e in events)
                seqs = [e["seq"] for e in events]
                assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
                keep = requests.put(url, params={"listenKey": key}, headers=headers, timeout=10)
                assert keep.json() == {}
                closed = requests.delete(
                    url, params={"listenKey": key}, headers=headers, timeout=10
                )
                assert closed.json() == {}
                while True:  # the stream ends with listenKeyExpired
                    event = json.loads(await asyncio.wait_for(ws.recv(), 15))
                    if event["e"] == "listenKeyExpired":
                        break
                assert event["listenKey"] == key
        finally:
            await them.close()
            await mine.close()

    asyncio.run(session())
    gone = requests.put(url, params={"listenKey": key}, headers=headers, timeout=10)
    assert gone.json()["code"] == -1125

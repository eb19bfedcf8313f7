"""python-binance (``python-binance==1.0.37``) against the real web and matcher processes
(``live_stack``), pointed at the exchange by its base URL only.

ETH-USD is used: Redis pub/sub channels are shared by every suite on the Redis server, and
the CCXT suite trades SOL-USD, the others BTC-USD.
"""

from decimal import Decimal

import pytest
from binance.client import Client
from binance.exceptions import BinanceAPIException

from trading.tests.binance.test_ccxt import Trader
from trading.tests.helpers import assert_ledger_ok

pytestmark = pytest.mark.django_db(transaction=True)

SYMBOL = "ETHUSD"


def client_for(stack, credentials: dict | None = None) -> Client:
    """The two lines of the docs: ``ping=False`` only stops the constructor pinging
    api.binance.com before the URL is set."""
    credentials = credentials or {}
    client = Client(credentials.get("key"), credentials.get("secret"), ping=False)
    client.API_URL = stack.web_url + "/api"
    return client


@pytest.fixture
def traders(live_stack):
    funds = {"USD": "100000", "ETH": "100"}
    return Trader(live_stack, "alice", funds), Trader(live_stack, "bob", funds)


def test_a_python_binance_session(live_stack, traders):
    alice, bob = traders
    client = client_for(live_stack, alice.credentials)
    other = client_for(live_stack, bob.credentials)

    assert client.ping() == {}
    assert client.get_server_time()["serverTime"] > 0
    info = client.get_symbol_info(SYMBOL)
    assert info["baseAsset"] == "ETH"
    assert info["quoteAsset"] == "USD"
    filters = {f["filterType"]: f for f in info["filters"]}
    assert Decimal(filters["PRICE_FILTER"]["tickSize"]) == Decimal("0.01")
    assert client.get_asset_balance(asset="USD") == {
        "asset": "USD",
        "free": "100000.00000000",
        "locked": "0.00000000",
    }

    bid = client.order_limit_buy(symbol=SYMBOL, quantity="2", price="1000")
    assert bid["status"] == "NEW"
    assert bid["clientOrderId"].startswith(Client.SPOT_ORDER_PREFIX)
    assert Decimal(client.get_asset_balance(asset="USD")["locked"]) == 2000
    assert [o["orderId"] for o in client.get_open_orders(symbol=SYMBOL)] == [bid["orderId"]]

    # Bob's market sell fills half of the bid; the FULL answer carries the fill and its fee.
    sold = other.order_market_sell(symbol=SYMBOL, quantity="1")
    assert sold["status"] == "FILLED"
    assert Decimal(sold["executedQty"]) == 1
    (fill,) = sold["fills"]
    assert Decimal(fill["price"]) == 1000
    assert fill["commissionAsset"] == "USD"
    assert Decimal(fill["commission"]) == Decimal("2")
    live_stack.wait_matcher_idle()

    status = client.get_order(symbol=SYMBOL, orderId=bid["orderId"])
    assert status["status"] == "PARTIALLY_FILLED"
    assert Decimal(status["executedQty"]) == 1
    assert client.get_avg_price(symbol=SYMBOL)["price"] == "1000.00000000"
    (mine,) = client.get_my_trades(symbol=SYMBOL)
    assert mine["orderId"] == bid["orderId"]
    assert mine["isBuyer"] is True
    assert mine["isMaker"] is True
    assert Decimal(mine["qty"]) == 1
    assert mine["commissionAsset"] == "ETH"
    assert Decimal(mine["commission"]) > 0
    eth = client.get_asset_balance(asset="ETH")
    assert Decimal(eth["free"]) == Decimal(101) - Decimal(mine["commission"])

    cancelled = client.cancel_order(symbol=SYMBOL, orderId=bid["orderId"])
    assert cancelled["status"] == "CANCELED"
    assert Decimal(cancelled["executedQty"]) == 1
    assert client.get_open_orders(symbol=SYMBOL) == []
    by_client_id = client.get_order(symbol=SYMBOL, origClientOrderId=bid["clientOrderId"])
    assert by_client_id["status"] == "CANCELED"
    live_stack.wait_matcher_idle()
    assert Decimal(client.get_asset_balance(asset="USD")["locked"]) == 0

    with pytest.raises(BinanceAPIException) as poor:
        client.order_limit_buy(symbol=SYMBOL, quantity="5000", price="1000")
    assert poor.value.code == -2010
    assert poor.value.status_code == 400
    with pytest.raises(BinanceAPIException) as unknown:
        client.get_order_book(symbol="DOGEUSD")
    assert unknown.value.code == -1121
    with pytest.raises(BinanceAPIException) as missing:
        client.get_order(symbol=SYMBOL, orderId=999999999)
    assert missing.value.code == -2013
    with pytest.raises(BinanceAPIException) as again:
        client.cancel_order(symbol=SYMBOL, orderId=bid["orderId"])
    assert again.value.code == -2011
    wrong = client_for(live_stack, {**alice.credentials, "secret": "0" * 64})
    with pytest.raises(BinanceAPIException) as forged:
        wrong.get_account()
    assert forged.value.code == -1022

    # An OCO and a cancel-replace through python-binance's own methods.
    oco = client.create_oco_order(
        symbol=SYMBOL,
        side="SELL",
        quantity="1",
        aboveType="LIMIT_MAKER",
        abovePrice="1100",
        belowType="STOP_LOSS",
        belowStopPrice="900",
    )
    assert oco["contingencyType"] == "OCO"
    assert oco["listClientOrderId"].startswith(Client.SPOT_ORDER_PREFIX)
    assert [o["orderListId"] for o in client.get_open_oco_orders()] == [oco["orderListId"]]
    live_stack.wait_matcher_idle()
    assert Decimal(client.get_asset_balance(asset="ETH")["locked"]) == 1
    client.cancel_order(symbol=SYMBOL, orderId=oco["orders"][0]["orderId"])  # ends both legs
    assert client.get_open_oco_orders() == []
    bid = client.order_limit_buy(symbol=SYMBOL, quantity="1", price="900")
    replaced = client.cancel_replace_order(
        symbol=SYMBOL,
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="2",
        price="950",
        cancelReplaceMode="STOP_ON_FAILURE",
        cancelOrderId=bid["orderId"],
    )
    assert (replaced["cancelResult"], replaced["newOrderResult"]) == ("SUCCESS", "SUCCESS")
    assert Decimal(client.get_asset_balance(asset="USD")["locked"]) == 1900
    client.cancel_order(symbol=SYMBOL, orderId=replaced["newOrderResponse"]["orderId"])
    with pytest.raises(BinanceAPIException) as failed:
        client.cancel_replace_order(
            symbol=SYMBOL,
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="2",
            price="950",
            cancelReplaceMode="STOP_ON_FAILURE",
            cancelOrderId=bid["orderId"],
        )
    assert failed.value.code == -2022

    live_stack.wait_matcher_idle()
    assert Decimal(client.get_asset_balance(asset="USD")["locked"]) == 0
    assert Decimal(client.get_asset_balance(asset="ETH")["locked"]) == 0
    assert_ledger_ok()

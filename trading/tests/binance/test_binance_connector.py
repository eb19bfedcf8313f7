"""Binance's own connector (``binance-connector==3.13.0``, ``binance.spot.Spot``) against the
real web and matcher processes (``live_stack``), pointed at the exchange by ``base_url`` only.

It sends every signed parameter in the query string, a POST included, under a JSON
content type and with no body. ETH-USD is used, as in ``test_python_binance``.
"""

from decimal import Decimal

import pytest
from binance.error import ClientError
from binance.spot import Spot

from trading.tests.binance.test_ccxt import Trader
from trading.tests.helpers import assert_ledger_ok

pytestmark = pytest.mark.django_db(transaction=True)

SYMBOL = "ETHUSD"


def spot_for(stack, credentials: dict | None = None) -> Spot:
    credentials = credentials or {}
    return Spot(
        api_key=credentials.get("key"),
        api_secret=credentials.get("secret"),
        base_url=stack.web_url,
    )


def balance(spot: Spot, asset: str) -> dict:
    (row,) = [b for b in spot.account()["balances"] if b["asset"] == asset]
    return row


@pytest.fixture
def traders(live_stack):
    funds = {"USD": "100000", "ETH": "100"}
    return Trader(live_stack, "carol", funds), Trader(live_stack, "dave", funds)


def test_a_binance_connector_session(live_stack, traders):
    carol, dave = traders
    spot = spot_for(live_stack, carol.credentials)
    other = spot_for(live_stack, dave.credentials)
    public = spot_for(live_stack)

    assert public.ping() == {}
    assert public.time()["serverTime"] > 0
    (info,) = public.exchange_info(symbol=SYMBOL)["symbols"]
    assert (info["baseAsset"], info["quoteAsset"]) == ("ETH", "USD")
    assert info["status"] == "TRADING"
    assert balance(spot, "USD") == {
        "asset": "USD",
        "free": "100000.00000000",
        "locked": "0.00000000",
    }

    # Dave's ask rests; Carol's limit buy crosses part of it and fills at once.
    ask = other.new_order(
        symbol=SYMBOL, side="SELL", type="LIMIT", timeInForce="GTC", quantity=3, price=1500
    )
    assert ask["status"] == "NEW"
    assert [o["orderId"] for o in other.get_open_orders(symbol=SYMBOL)] == [ask["orderId"]]
    assert Decimal(balance(other, "ETH")["locked"]) == 3

    bought = spot.new_order(
        symbol=SYMBOL,
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity=1,
        price=1500,
        newOrderRespType="FULL",
    )
    assert bought["status"] == "FILLED"
    (fill,) = bought["fills"]
    assert Decimal(fill["price"]) == 1500
    assert Decimal(fill["qty"]) == 1
    assert fill["commissionAsset"] == "ETH"
    assert Decimal(fill["commission"]) > 0
    live_stack.wait_matcher_idle()

    status = other.get_order(symbol=SYMBOL, orderId=ask["orderId"])
    assert status["status"] == "PARTIALLY_FILLED"
    assert Decimal(status["executedQty"]) == 1
    assert public.avg_price(SYMBOL)["price"] == "1500.00000000"
    (theirs,) = other.my_trades(symbol=SYMBOL)
    assert theirs["orderId"] == ask["orderId"]
    assert theirs["isBuyer"] is False
    assert theirs["isMaker"] is True
    assert theirs["commissionAsset"] == "USD"
    assert Decimal(theirs["commission"]) > 0
    assert Decimal(theirs["quoteQty"]) == 1500
    (mine,) = spot.my_trades(symbol=SYMBOL)
    assert mine["id"] == theirs["id"]
    assert mine["isBuyer"] is True
    usd = Decimal(balance(other, "USD")["free"])
    assert usd == Decimal(100000) + 1500 - Decimal(theirs["commission"])

    cancelled = other.cancel_order(symbol=SYMBOL, orderId=ask["orderId"])
    assert cancelled["status"] == "CANCELED"
    assert Decimal(cancelled["executedQty"]) == 1
    assert other.get_open_orders(symbol=SYMBOL) == []
    live_stack.wait_matcher_idle()
    assert Decimal(balance(other, "ETH")["locked"]) == 0

    with pytest.raises(ClientError) as poor:
        spot.new_order(
            symbol=SYMBOL, side="BUY", type="LIMIT", timeInForce="GTC", quantity=500, price=1500
        )
    assert poor.value.error_code == -2010
    assert poor.value.status_code == 400
    with pytest.raises(ClientError) as unknown:
        public.depth(symbol="DOGEUSD")
    assert unknown.value.error_code == -1121
    with pytest.raises(ClientError) as missing:
        spot.get_order(symbol=SYMBOL, orderId=999999999)
    assert missing.value.error_code == -2013
    with pytest.raises(ClientError) as again:
        other.cancel_order(symbol=SYMBOL, orderId=ask["orderId"])
    assert again.value.error_code == -2011
    wrong = spot_for(live_stack, {**carol.credentials, "secret": "0" * 64})
    with pytest.raises(ClientError) as forged:
        wrong.account()
    assert forged.value.error_code == -1022

    # An OCO placed, read and cancelled, and a cancel-replace, with the connector's methods.
    oco = other.new_oco_order(
        symbol=SYMBOL,
        side="SELL",
        quantity=1,
        aboveType="LIMIT_MAKER",
        abovePrice=1600,
        belowType="STOP_LOSS_LIMIT",
        belowStopPrice=1400,
        belowPrice=1390,
        belowTimeInForce="GTC",
    )
    assert oco["listOrderStatus"] == "EXECUTING"
    assert [o["orderListId"] for o in other.get_oco_open_orders()] == [oco["orderListId"]]
    assert other.get_oco_order(orderListId=oco["orderListId"])["orders"] == oco["orders"]
    gone = other.cancel_oco_order(symbol=SYMBOL, orderListId=oco["orderListId"])
    assert {r["status"] for r in gone["orderReports"]} == {"CANCELED"}
    assert other.get_oco_open_orders() == []
    assert [o["listOrderStatus"] for o in other.get_oco_orders()] == ["ALL_DONE"]
    bid = spot.new_order(
        symbol=SYMBOL, side="BUY", type="LIMIT", timeInForce="GTC", quantity=1, price=1000
    )
    replaced = spot.cancel_and_replace(
        SYMBOL,
        "BUY",
        "LIMIT",
        "STOP_ON_FAILURE",
        cancelOrderId=bid["orderId"],
        timeInForce="GTC",
        quantity=1,
        price=1100,
    )
    assert replaced["newOrderResponse"]["price"] == "1100.00000000"
    spot.cancel_order(symbol=SYMBOL, orderId=replaced["newOrderResponse"]["orderId"])

    live_stack.wait_matcher_idle()
    assert Decimal(balance(other, "ETH")["locked"]) == 0
    assert_ledger_ok()

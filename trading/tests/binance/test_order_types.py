"""/api/v3's order types: iceberg and trailing-stop orders, OCO order lists, cancel-replace and
amend, over the real services and matcher; and CCXT itself using them against the live stack.
"""

import threading
import time
from decimal import Decimal

import ccxt
import pytest
from django.db import connection

from trading.models import Market, Order, OrderList
from trading.tests.binance.test_ccxt import SYMBOL, Trader, exchange_for
from trading.tests.binance.test_signing import assert_binance_error
from trading.tests.helpers import assert_ledger_ok, balance_of, drain, state

pytestmark = pytest.mark.django_db


def limit(side="BUY", price="20000", quantity="0.01", **extra):
    return {
        "symbol": "BTCUSD",
        "side": side,
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": quantity,
        "price": price,
        **extra,
    }


def market_order(side, quantity="0.01"):
    return {"symbol": "BTCUSD", "side": side, "type": "MARKET", "quantity": quantity}


@pytest.fixture
def alice(market, trader, binance_for):
    return binance_for(trader(market, usd="10000", btc="1"))


@pytest.fixture
def bob(market, trader, binance_for):
    return binance_for(trader(market, usd="10000", btc="1"))


@pytest.fixture
def carol(market, trader, binance_for):
    return binance_for(trader(market, usd="10000", btc="1"))


@pytest.fixture
def running_matcher(transactional_db, market, settings):
    """The market's matcher in a thread, as run_matcher runs it beside the web process."""
    settings.BINANCE_ORDER_WAIT_MS = 5000
    stop = threading.Event()

    def loop():
        try:
            while not stop.is_set():
                drain(market)
                stop.wait(0.005)
        finally:
            connection.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=10)


def ok(response) -> dict:
    assert response.status_code == 200, response.content
    return response.json()


def get_order(client, order_id) -> dict:
    return ok(client.signed("GET", "order", {"symbol": "BTCUSD", "orderId": order_id}))


def trade_at(market, seller, buyer, price, quantity="0.01", *, in_process=True):
    """A trade at ``price``: ``seller`` rests a sell, ``buyer`` takes it. ``in_process``:
    drain the matcher here; else a ``running_matcher`` runs it (and the answers wait)."""
    ok(seller.signed("POST", "order", limit(side="SELL", price=price, quantity=quantity)))
    if in_process:
        drain(market)
    ok(buyer.signed("POST", "order", market_order("BUY", quantity)))
    if in_process:
        drain(market)


def test_exchange_info_announces_the_order_types_and_their_filters(public_client, market):
    (symbol,) = ok(public_client.public("exchangeInfo"))["symbols"]
    for flag in (
        "icebergAllowed",
        "ocoAllowed",
        "cancelReplaceAllowed",
        "allowTrailingStop",
        "amendAllowed",
    ):
        assert symbol[flag] is True, flag
    assert symbol["otoAllowed"] is False
    assert set(symbol["orderTypes"]) == {
        "LIMIT",
        "LIMIT_MAKER",
        "MARKET",
        "STOP_LOSS",
        "STOP_LOSS_LIMIT",
        "TAKE_PROFIT",
        "TAKE_PROFIT_LIMIT",
    }
    filters = {item["filterType"]: item for item in symbol["filters"]}
    assert filters["ICEBERG_PARTS"] == {"filterType": "ICEBERG_PARTS", "limit": 100}
    assert filters["TRAILING_DELTA"] == {
        "filterType": "TRAILING_DELTA",
        "minTrailingAboveDelta": 10,
        "maxTrailingAboveDelta": 2000,
        "minTrailingBelowDelta": 10,
        "maxTrailingBelowDelta": 2000,
    }


# --- iceberg ------------------------------------------------------------------------------


def test_an_iceberg_shows_a_part_and_fills_whole(market, alice, bob, no_order_wait):
    placed = ok(
        alice.signed(
            "POST",
            "order",
            limit(side="SELL", quantity="0.05", icebergQty="0.01", newOrderRespType="RESULT"),
        )
    )
    assert placed["icebergQty"] == "0.01000000"
    assert placed["type"] == "LIMIT"
    assert placed["orderListId"] == -1
    drain(market)
    assert Order.objects.get(pk=placed["orderId"]).iceberg_visible == Decimal("0.01")

    ok(bob.signed("POST", "order", market_order("BUY", "0.03")))
    drain(market)
    order = get_order(alice, placed["orderId"])
    assert order["status"] == "PARTIALLY_FILLED"
    assert order["executedQty"] == "0.03000000"
    assert order["icebergQty"] == "0.01000000"
    assert order["origQty"] == "0.05000000"
    assert balance_of(alice.api_key.user, market.base_asset) == (Decimal("0.95"), Decimal("0.02"))
    # A plain order reports no icebergQty of its own but shows 0 in a query.
    plain = ok(bob.signed("POST", "order", limit(price="15000", newOrderRespType="RESULT")))
    assert "icebergQty" not in plain
    assert get_order(bob, plain["orderId"])["icebergQty"] == "0.00000000"
    assert_ledger_ok()


@pytest.mark.parametrize(
    ("params", "code", "msg"),
    [
        (limit(icebergQty="0.01"), -2010, "IcebergQty exceeds QTY."),
        (limit(icebergQty="0.02"), -2010, "IcebergQty exceeds QTY."),
        (limit(quantity="1", icebergQty="0.00999"), -1013, "Filter failure: ICEBERG_PARTS"),
        (limit(quantity="0.0002", icebergQty="0.000015"), -1013, "Filter failure: LOT_SIZE"),
        (limit(icebergQty="0.005", timeInForce="IOC"), -1014, "Unsupported order combination."),
        (
            {**market_order("BUY"), "icebergQty": "0.005"},
            -1106,
            "Parameter 'icebergQty' sent when not required.",
        ),
        (
            {**limit(), "type": "STOP_LOSS_LIMIT", "stopPrice": "21000", "icebergQty": "0.005"},
            -1014,
            "Unsupported order combination.",
        ),
        (limit(icebergQty="a lot"), -1100, None),
    ],
)
def test_bad_iceberg_orders_change_nothing(alice, params, code, msg):
    before = state()
    assert_binance_error(alice.signed("POST", "order", params), 400, code, msg)
    assert_binance_error(alice.signed("POST", "order/test", params), 400, code, msg)
    assert state() == before


def test_an_iceberg_order_test_places_nothing(alice):
    before = state()
    assert ok(alice.signed("POST", "order/test", limit(quantity="0.05", icebergQty="0.01"))) == {}
    assert state() == before


# --- trailing stops -------------------------------------------------------------------------


def test_a_trailing_stop_loss_follows_the_price_then_sells(
    market, alice, bob, carol, no_order_wait
):
    trade_at(market, bob, carol, "20000")
    placed = ok(
        alice.signed(
            "POST",
            "order",
            {
                "symbol": "BTCUSD",
                "side": "SELL",
                "type": "STOP_LOSS",
                "quantity": "0.01",
                "trailingDelta": "100",
                "newOrderRespType": "RESULT",
            },
        )
    )
    assert placed["type"] == "STOP_LOSS"
    assert placed["trailingDelta"] == 100
    assert placed["stopPrice"] == "0.00000000"
    drain(market)
    assert get_order(alice, placed["orderId"])["trailingTime"] > 0  # trailing from placement

    trade_at(market, bob, carol, "20400")  # the peak: it now triggers at 20196 or below
    ok(bob.signed("POST", "order", limit(side="BUY", price="20300", quantity="0.01")))
    drain(market)
    ok(carol.signed("POST", "order", market_order("SELL")))  # trades at 20300: no trigger
    drain(market)
    assert get_order(alice, placed["orderId"])["status"] == "NEW"

    ok(bob.signed("POST", "order", limit(side="BUY", price="20100", quantity="0.02")))
    drain(market)
    ok(carol.signed("POST", "order", market_order("SELL")))  # 20100 <= 20400 × 0.99
    drain(market)
    order = get_order(alice, placed["orderId"])
    assert order["status"] == "FILLED"
    assert order["cummulativeQuoteQty"] == "201.00000000"
    assert balance_of(alice.api_key.user, market.base_asset) == (Decimal("0.99"), Decimal(0))
    assert_ledger_ok()


def test_a_trailing_stop_limit_buy_follows_the_price_down_then_buys(
    market, alice, bob, carol, no_order_wait
):
    trade_at(market, bob, carol, "20000")
    placed = ok(
        alice.signed(
            "POST",
            "order",
            {
                **limit(price="20500"),
                "type": "STOP_LOSS_LIMIT",
                "trailingDelta": "100",
                "newOrderRespType": "RESULT",
            },
        )
    )
    assert (placed["type"], placed["trailingDelta"]) == ("STOP_LOSS_LIMIT", 100)
    drain(market)
    trade_at(market, bob, carol, "19600")  # the trough: it now triggers at 19796 or above
    ok(bob.signed("POST", "order", limit(side="SELL", price="19800", quantity="0.02")))
    drain(market)
    ok(carol.signed("POST", "order", market_order("BUY")))  # 19800 >= 19600 × 1.01
    drain(market)
    order = get_order(alice, placed["orderId"])
    assert (order["status"], order["cummulativeQuoteQty"]) == ("FILLED", "198.00000000")
    assert balance_of(alice.api_key.user, market.quote_asset) == (Decimal("9802"), Decimal(0))
    assert_ledger_ok()


def test_a_trailing_take_profit_with_an_activation_price_is_reported_as_such(
    market, alice, bob, carol, no_order_wait
):
    trade_at(market, bob, carol, "20000")
    placed = ok(
        alice.signed(
            "POST",
            "order",
            {
                **limit(side="SELL", price="20900"),
                "type": "TAKE_PROFIT_LIMIT",
                "stopPrice": "21000",
                "trailingDelta": "250",
                "newOrderRespType": "RESULT",
            },
        )
    )
    assert placed["type"] == "TAKE_PROFIT_LIMIT"
    assert placed["stopPrice"] == "21000.00000000"
    assert placed["trailingTime"] == -1
    drain(market)
    order = get_order(alice, placed["orderId"])
    assert (order["type"], order["trailingDelta"], order["trailingTime"]) == (
        "TAKE_PROFIT_LIMIT",
        250,
        -1,  # not active until the price reaches 21000
    )
    stored = Order.objects.get(pk=placed["orderId"])
    assert (stored.order_type, stored.trailing_delta) == (Order.Type.STOP_LIMIT, 250)
    assert_ledger_ok()


@pytest.mark.parametrize(
    ("params", "code", "msg"),
    [
        (
            {**market_order("SELL"), "type": "STOP_LOSS", "trailingDelta": "5"},
            -1013,
            "Filter failure: TRAILING_DELTA",
        ),
        (
            {**market_order("SELL"), "type": "STOP_LOSS", "trailingDelta": "2001"},
            -1013,
            "Filter failure: TRAILING_DELTA",
        ),
        (
            {**market_order("SELL"), "type": "STOP_LOSS", "trailingDelta": "1.5"},
            -1100,
            None,
        ),
        (limit(trailingDelta="100"), -1106, "Parameter 'trailingDelta' sent when not required."),
        (
            {**market_order("SELL"), "type": "STOP_LOSS", "trailingDelta": "100",
             "stopPrice": "19000"},
            -1014,
            "Unsupported order combination.",
        ),
        (
            {**market_order("SELL"), "type": "TAKE_PROFIT", "stopPrice": "21000"},
            -1014,
            "Unsupported order combination.",
        ),
        (
            {**market_order("SELL"), "type": "STOP_LOSS"},
            -1102,
            "Mandatory parameter 'stopPrice' was not sent, was empty/null, or malformed.",
        ),
    ],
)  # fmt: skip
def test_bad_trailing_stops_change_nothing(market, alice, params, code, msg):
    before = state()
    assert_binance_error(alice.signed("POST", "order", params), 400, code, msg)
    assert state() == before


# --- OCO ----------------------------------------------------------------------------------


def sell_oco(**extra):
    return {
        "symbol": "BTCUSD",
        "side": "SELL",
        "quantity": "0.01",
        "aboveType": "LIMIT_MAKER",
        "abovePrice": "21000",
        "belowType": "STOP_LOSS_LIMIT",
        "belowStopPrice": "19000",
        "belowPrice": "18900",
        "belowTimeInForce": "GTC",
        **extra,
    }


def test_an_oco_fills_one_leg_and_expires_the_other(market, alice, bob, carol, no_order_wait):
    trade_at(market, bob, carol, "20000")
    body = ok(alice.signed("POST", "orderList/oco", sell_oco(listClientOrderId="my-oco")))
    assert body["contingencyType"] == "OCO"
    assert (body["listStatusType"], body["listOrderStatus"]) == ("EXEC_STARTED", "EXECUTING")
    assert body["listClientOrderId"] == "my-oco"
    assert body["symbol"] == "BTCUSD"
    list_id = body["orderListId"]
    reports = {report["type"]: report for report in body["orderReports"]}
    assert set(reports) == {"LIMIT_MAKER", "STOP_LOSS_LIMIT"}
    assert reports["LIMIT_MAKER"]["price"] == "21000.00000000"
    assert reports["STOP_LOSS_LIMIT"]["stopPrice"] == "19000.00000000"
    assert {report["orderListId"] for report in reports.values()} == {list_id}
    assert sorted(o["orderId"] for o in body["orders"]) == sorted(
        r["orderId"] for r in body["orderReports"]
    )
    drain(market)
    # One reserve for the pair.
    assert balance_of(alice.api_key.user, market.base_asset) == (Decimal("0.99"), Decimal("0.01"))

    by_id = ok(alice.signed("GET", "orderList", {"orderListId": list_id}))
    assert by_id["orderListId"] == list_id
    assert "orderReports" not in by_id
    by_client_id = ok(alice.signed("GET", "orderList", {"origClientOrderId": "my-oco"}))
    assert by_client_id["orders"] == by_id["orders"]
    (open_list,) = ok(alice.signed("GET", "openOrderList"))
    assert open_list["orderListId"] == list_id
    open_orders = ok(alice.signed("GET", "openOrders", {"symbol": "BTCUSD"}))
    assert {o["orderListId"] for o in open_orders} == {list_id}
    assert len(open_orders) == 2

    ok(bob.signed("POST", "order", market_order("BUY")))  # takes the limit leg at 21000
    drain(market)
    done = ok(alice.signed("GET", "orderList", {"orderListId": list_id}))
    assert (done["listStatusType"], done["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
    assert get_order(alice, reports["LIMIT_MAKER"]["orderId"])["status"] == "FILLED"
    assert get_order(alice, reports["STOP_LOSS_LIMIT"]["orderId"])["status"] == "EXPIRED"
    assert ok(alice.signed("GET", "openOrderList")) == []
    (mine,) = ok(alice.signed("GET", "myTrades", {"symbol": "BTCUSD"}))
    assert (mine["orderId"], mine["orderListId"]) == (reports["LIMIT_MAKER"]["orderId"], list_id)
    (theirs,) = [t for t in ok(bob.signed("GET", "myTrades", {"symbol": "BTCUSD"})) if t["isBuyer"]]
    assert theirs["orderListId"] == -1
    (listed,) = ok(alice.signed("GET", "allOrderList"))
    assert listed["listOrderStatus"] == "ALL_DONE"
    assert balance_of(alice.api_key.user, market.base_asset) == (Decimal("0.99"), Decimal(0))
    assert balance_of(alice.api_key.user, market.quote_asset)[1] == 0
    assert_ledger_ok()


def test_a_triggered_stop_leg_expires_the_limit_leg(market, alice, bob, carol, no_order_wait):
    trade_at(market, bob, carol, "20000")
    body = ok(alice.signed("POST", "orderList/oco", sell_oco()))
    legs = {report["type"]: report["orderId"] for report in body["orderReports"]}
    drain(market)
    ok(bob.signed("POST", "order", limit(side="BUY", price="19000", quantity="0.02")))
    drain(market)
    ok(carol.signed("POST", "order", market_order("SELL")))  # 19000: the stop triggers
    drain(market)
    stop = get_order(alice, legs["STOP_LOSS_LIMIT"])
    assert (stop["status"], stop["executedQty"]) == ("FILLED", "0.01000000")
    assert get_order(alice, legs["LIMIT_MAKER"])["status"] == "EXPIRED"
    listed = ok(alice.signed("GET", "orderList", {"orderListId": body["orderListId"]}))
    assert listed["listOrderStatus"] == "ALL_DONE"
    assert balance_of(alice.api_key.user, market.base_asset) == (Decimal("0.99"), Decimal(0))
    assert_ledger_ok()


def test_an_oco_the_engine_refuses_is_an_error_and_holds_nothing(
    market, alice, bob, carol, running_matcher
):
    trade_at(market, bob, carol, "20000", in_process=False)
    ok(bob.signed("POST", "order", limit(side="BUY", price="21500")))  # above the limit leg
    response = alice.signed("POST", "orderList/oco", sell_oco())
    assert_binance_error(response, 400, -2010, "Order would immediately match and take.")
    (listed,) = ok(alice.signed("GET", "allOrderList"))
    assert listed["listOrderStatus"] == "REJECT"
    assert balance_of(alice.api_key.user, market.base_asset) == (Decimal(1), Decimal(0))
    assert_ledger_ok()


def test_cancelling_one_leg_cancels_the_list(market, alice, bob, carol, running_matcher):
    trade_at(market, bob, carol, "20000", in_process=False)
    body = ok(alice.signed("POST", "orderList/oco", sell_oco()))
    leg = body["orders"][0]["orderId"]
    ok(alice.signed("DELETE", "order", {"symbol": "BTCUSD", "orderId": leg}))
    for other in body["orders"]:
        assert get_order(alice, other["orderId"])["status"] == "CANCELED"
    assert ok(alice.signed("GET", "openOrderList")) == []
    assert balance_of(alice.api_key.user, market.base_asset) == (Decimal(1), Decimal(0))
    assert_ledger_ok()


def test_cancelling_an_oco_cancels_both_legs(market, alice, bob, carol, no_order_wait):
    trade_at(market, bob, carol, "20000")
    body = ok(
        alice.signed(
            "POST",
            "orderList/oco",
            {
                "symbol": "BTCUSD",
                "side": "BUY",
                "quantity": "0.01",
                "belowType": "LIMIT_MAKER",
                "belowPrice": "19000",
                "aboveType": "STOP_LOSS",
                "aboveStopPrice": "21000",
                "newOrderRespType": "ACK",
            },
        )
    )
    assert set(body["orderReports"][0]) == {
        "symbol",
        "orderId",
        "orderListId",
        "clientOrderId",
        "transactTime",
    }
    drain(market)
    assert balance_of(alice.api_key.user, market.quote_asset)[1] > 0
    cancelled = ok(
        alice.signed(
            "DELETE", "orderList", {"symbol": "BTCUSD", "orderListId": body["orderListId"]}
        )
    )
    assert cancelled["orderListId"] == body["orderListId"]
    assert len(cancelled["orderReports"]) == 2
    drain(market)
    listed = ok(alice.signed("GET", "orderList", {"orderListId": body["orderListId"]}))
    assert listed["listOrderStatus"] == "ALL_DONE"
    for leg in listed["orders"]:
        assert get_order(alice, leg["orderId"])["status"] == "CANCELED"
    assert balance_of(alice.api_key.user, market.quote_asset) == (Decimal("10000"), Decimal(0))
    assert_binance_error(
        alice.signed(
            "DELETE", "orderList", {"symbol": "BTCUSD", "orderListId": body["orderListId"]}
        ),
        400,
        -2011,
    )
    assert_ledger_ok()


def test_cancel_all_open_orders_answers_an_oco_once_in_its_list_shape(
    market, alice, bob, carol, no_order_wait
):
    trade_at(market, bob, carol, "20000")
    plain = ok(alice.signed("POST", "order", limit(price="19000")))
    oco = ok(alice.signed("POST", "orderList/oco", sell_oco()))
    drain(market)
    rows = ok(alice.signed("DELETE", "openOrders", {"symbol": "BTCUSD"}))
    assert len(rows) == 2
    single, listed = rows
    assert single["orderId"] == plain["orderId"]
    assert listed["orderListId"] == oco["orderListId"]
    assert {r["orderId"] for r in listed["orderReports"]} == {o["orderId"] for o in oco["orders"]}
    assert single["clientOrderId"] == listed["orderReports"][0]["clientOrderId"]
    drain(market)
    assert ok(alice.signed("GET", "openOrders", {"symbol": "BTCUSD"})) == []
    assert ok(alice.signed("GET", "openOrderList")) == []
    assert balance_of(alice.api_key.user, market.base_asset) == (Decimal(1), Decimal(0))
    assert balance_of(alice.api_key.user, market.quote_asset) == (Decimal(10000), Decimal(0))
    assert_ledger_ok()


def test_the_deprecated_oco_endpoint_places_the_same_pair(market, alice, bob, carol, no_order_wait):
    trade_at(market, bob, carol, "20000")
    body = ok(
        alice.signed(
            "POST",
            "order/oco",
            {
                "symbol": "BTCUSD",
                "side": "SELL",
                "quantity": "0.01",
                "price": "21000",
                "stopPrice": "19000",
                "stopLimitPrice": "18900",
                "stopLimitTimeInForce": "GTC",
                "limitClientOrderId": "tp-leg",
            },
        )
    )
    assert {r["type"] for r in body["orderReports"]} == {"LIMIT_MAKER", "STOP_LOSS_LIMIT"}
    assert "tp-leg" in {o["clientOrderId"] for o in body["orders"]}
    assert OrderList.objects.get().orders.count() == 2
    assert_ledger_ok()


@pytest.mark.parametrize(
    ("params", "code", "msg"),
    [
        (sell_oco(abovePrice=""), -1102, None),
        (sell_oco(aboveType="LIMIT"), -1158, "Order type not supported in OCO."),
        (sell_oco(aboveType="TAKE_PROFIT"), -1158, "Order type not supported in OCO."),
        (sell_oco(belowType="LIMIT_MAKER"), -1168, "At least one OCO order must be contingent."),
        (
            sell_oco(aboveType="STOP_LOSS", belowType="LIMIT_MAKER", belowPrice="21000"),
            -1166,
            "A limit order in a sell OCO must be above.",
        ),
        (sell_oco(side="BUY"), -1165, "A limit order in a buy OCO must be below."),
        (
            sell_oco(abovePrice="19500"),
            -2010,
            "The relationship of the prices for the orders is not correct.",
        ),
        (
            sell_oco(belowStopPrice="20500"),
            -2010,
            "The relationship of the prices for the orders is not correct.",
        ),
        (sell_oco(belowTrailingDelta="100"), -1014, "Unsupported order combination."),
        (sell_oco(belowTimeInForce=""), -1102, None),
        (sell_oco(aboveIcebergQty="0.01"), -2010, "IcebergQty exceeds QTY."),
        (sell_oco(belowIcebergQty="0.005"), -1014, "Unsupported order combination."),
        (sell_oco(quantity="5"), -2010, "Account has insufficient balance for requested action."),
        (sell_oco(colour="red"), -1104, None),
    ],
)
def test_bad_ocos_change_nothing(market, alice, params, code, msg):
    Market.objects.filter(pk=market.pk).update(last_price=Decimal("20000"))
    before = state()
    assert_binance_error(alice.signed("POST", "orderList/oco", params), 400, code, msg)
    assert state() == before
    assert not OrderList.objects.exists()


def legacy_oco(**extra):
    return {
        "symbol": "BTCUSD",
        "side": "SELL",
        "quantity": "0.01",
        "price": "21000",
        "stopPrice": "19000",
        **extra,
    }


@pytest.mark.parametrize(
    ("params", "code", "word"),
    [
        (legacy_oco(price=""), -1102, "'price'"),
        (legacy_oco(stopPrice=""), -1102, "'stopPrice'"),
        (legacy_oco(stopLimitPrice="18900"), -1102, "'stopLimitTimeInForce'"),
        (legacy_oco(stopLimitTimeInForce="GTC"), -1106, "'stopLimitTimeInForce'"),
        (legacy_oco(trailingDelta="100"), -1014, "Unsupported order combination."),
        (legacy_oco(stopIcebergQty="0.005"), -1106, "'stopIcebergQty'"),
        (legacy_oco(price="19500"), -2010, "relationship of the prices"),
        (legacy_oco(aboveType="LIMIT_MAKER"), -1104, "read"),
    ],
)
def test_bad_deprecated_ocos_change_nothing(market, alice, params, code, word):
    Market.objects.filter(pk=market.pk).update(last_price=Decimal("20000"))
    before = state()
    response = alice.signed("POST", "order/oco", params)
    assert_binance_error(response, 400, code)
    assert word in response.json()["msg"]
    assert state() == before


def test_unknown_order_lists(alice):
    assert_binance_error(alice.signed("GET", "orderList", {"orderListId": 999}), 400, -2013)
    assert_binance_error(alice.signed("GET", "orderList"), 400, -1102)
    assert_binance_error(
        alice.signed("DELETE", "orderList", {"symbol": "BTCUSD", "orderListId": 999}), 400, -2011
    )


# --- cancel-replace -------------------------------------------------------------------------


def cancel_replace(order_id, mode="STOP_ON_FAILURE", **new):
    return {
        **limit(price="19500", quantity="0.02"),
        "cancelReplaceMode": mode,
        "cancelOrderId": order_id,
        **new,
    }


def test_cancel_replace_swaps_an_order(market, alice, running_matcher):
    old = ok(alice.signed("POST", "order", limit(price="19000")))
    body = ok(
        alice.signed(
            "POST", "order/cancelReplace", cancel_replace(old["orderId"], newClientOrderId="new-1")
        )
    )
    assert (body["cancelResult"], body["newOrderResult"]) == ("SUCCESS", "SUCCESS")
    assert body["cancelResponse"]["orderId"] == old["orderId"]
    assert body["cancelResponse"]["status"] == "CANCELED"
    assert body["cancelResponse"]["origClientOrderId"] == old["clientOrderId"]
    assert body["newOrderResponse"]["clientOrderId"] == "new-1"
    assert body["newOrderResponse"]["status"] == "NEW"
    assert body["newOrderResponse"]["origQty"] == "0.02000000"
    assert balance_of(alice.api_key.user, market.quote_asset)[1] == Decimal("390")
    assert_ledger_ok()


def test_cancel_replace_failures_in_binance_shape(market, alice, running_matcher):
    before = state()
    response = alice.signed("POST", "order/cancelReplace", cancel_replace(999999))
    assert response.status_code == 400, response.content
    assert response.json() == {
        "code": -2022,
        "msg": "Order cancel-replace failed.",
        "data": {
            "cancelResult": "FAILURE",
            "newOrderResult": "NOT_ATTEMPTED",
            "cancelResponse": {"code": -2011, "msg": "Unknown order sent."},
            "newOrderResponse": None,
        },
    }
    assert state() == before

    # ALLOW_FAILURE places the new order anyway: partly failed.
    response = alice.signed(
        "POST", "order/cancelReplace", cancel_replace(999999, mode="ALLOW_FAILURE")
    )
    assert response.status_code == 409, response.content
    body = response.json()
    assert (body["code"], body["msg"]) == (-2021, "Order cancel-replace partially failed.")
    assert (body["data"]["cancelResult"], body["data"]["newOrderResult"]) == (
        "FAILURE",
        "SUCCESS",
    )
    assert body["data"]["newOrderResponse"]["status"] == "NEW"

    # The cancel succeeds, the new order is refused: the old one stays cancelled.
    old = ok(alice.signed("POST", "order", limit(price="19000")))
    response = alice.signed(
        "POST", "order/cancelReplace", cancel_replace(old["orderId"], quantity="1")
    )
    assert response.status_code == 409, response.content
    data = response.json()["data"]
    assert (data["cancelResult"], data["newOrderResult"]) == ("SUCCESS", "FAILURE")
    assert data["newOrderResponse"] == {
        "code": -2010,
        "msg": "Account has insufficient balance for requested action.",
    }
    assert Order.objects.get(pk=old["orderId"]).status == Order.Status.CANCELLED

    # Both fail.
    response = alice.signed(
        "POST",
        "order/cancelReplace",
        cancel_replace(old["orderId"], mode="ALLOW_FAILURE", quantity="1"),
    )
    assert response.status_code == 400, response.content
    data = response.json()["data"]
    assert (data["cancelResult"], data["newOrderResult"]) == ("FAILURE", "FAILURE")
    assert_ledger_ok()


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"price": ""}, -1102),
        ({"cancelReplaceMode": ""}, -1102),
        ({"cancelReplaceMode": "MAYBE"}, -1100),
        ({"cancelOrderId": ""}, -1102),
        ({"cancelRestrictions": "NEVER"}, -1145),
        ({"icebergQty": "0.02"}, -2010),
        ({"quantity": "0.000001"}, -1013),  # LOT_SIZE: checked before the cancel
        ({"price": "1"}, -1013),  # NOTIONAL
    ],
)
def test_a_bad_cancel_replace_cancels_nothing(market, alice, params, code, no_order_wait):
    old = ok(alice.signed("POST", "order", limit(price="19000")))
    before = state()
    assert_binance_error(
        alice.signed("POST", "order/cancelReplace", {**cancel_replace(old["orderId"]), **params}),
        400,
        code,
    )
    assert state() == before


def test_cancel_restrictions(market, alice, running_matcher):
    old = ok(alice.signed("POST", "order", limit(price="19000")))
    response = alice.signed(
        "POST",
        "order/cancelReplace",
        cancel_replace(old["orderId"], cancelRestrictions="ONLY_PARTIALLY_FILLED"),
    )
    assert response.status_code == 400, response.content
    assert response.json()["data"]["cancelResponse"] == {
        "code": -2011,
        "msg": "Order was not canceled due to cancel restrictions.",
    }
    assert Order.objects.get(pk=old["orderId"]).is_live


# --- amend --------------------------------------------------------------------------------


def test_amend_keeps_priority_and_releases_the_reserve(market, alice, bob, carol, running_matcher):
    first = ok(alice.signed("POST", "order", limit(price="19000", quantity="0.03")))
    second = ok(carol.signed("POST", "order", limit(price="19000", quantity="0.01")))
    body = ok(
        alice.signed(
            "PUT",
            "order/amend/keepPriority",
            {"symbol": "BTCUSD", "orderId": first["orderId"], "newQty": "0.02"},
        )
    )
    amended = body["amendedOrder"]
    assert (amended["orderId"], amended["qty"], amended["status"]) == (
        first["orderId"],
        "0.02000000",
        "NEW",
    )
    assert amended["clientOrderId"] == amended["origClientOrderId"] == first["clientOrderId"]
    assert isinstance(body["executionId"], int)
    assert body["transactTime"] > 0
    assert "listStatus" not in body
    assert balance_of(alice.api_key.user, market.quote_asset)[1] == Decimal("380")

    ok(bob.signed("POST", "order", market_order("SELL")))
    assert get_order(alice, first["orderId"])["executedQty"] == "0.01000000"
    assert get_order(carol, second["orderId"])["executedQty"] == "0.00000000"
    assert_ledger_ok()


@pytest.mark.parametrize(
    ("params", "code", "msg"),
    [
        ({"newQty": "0.05"}, -2038, "Order amend (quantity increase) is not supported."),
        ({"newQty": "0.03"}, -2038, "The requested action would change no state; rejecting"),
        ({"newQty": "0.000015"}, -1013, "Filter failure: LOT_SIZE"),
        ({"newQty": ""}, -1102, None),
        ({"orderId": "999999"}, -2013, "Order does not exist."),
        ({"newClientOrderId": "renamed"}, -1130, None),
    ],
)
def test_bad_amends_change_nothing(market, alice, params, code, msg, no_order_wait):
    order = ok(alice.signed("POST", "order", limit(price="19000", quantity="0.03")))
    before = state()
    request = {"symbol": "BTCUSD", "orderId": order["orderId"], "newQty": "0.02", **params}
    assert_binance_error(alice.signed("PUT", "order/amend/keepPriority", request), 400, code, msg)
    assert state() == before


def test_amending_an_oco_leg_reports_the_list(market, alice, bob, carol, running_matcher):
    trade_at(market, bob, carol, "20000", in_process=False)
    body = ok(alice.signed("POST", "orderList/oco", sell_oco(quantity="0.02")))
    leg = body["orders"][0]["orderId"]
    amended = ok(
        alice.signed(
            "PUT",
            "order/amend/keepPriority",
            {"symbol": "BTCUSD", "orderId": leg, "newQty": "0.01"},
        )
    )
    assert amended["amendedOrder"]["qty"] == "0.01000000"
    assert amended["listStatus"]["orderListId"] == body["orderListId"]
    assert amended["listStatus"]["contingencyType"] == "OCO"
    for other in body["orders"]:
        assert get_order(alice, other["orderId"])["origQty"] == "0.01000000"
    assert_ledger_ok()


# --- CCXT -----------------------------------------------------------------------------------


@pytest.fixture
def traders(live_stack):
    funds = {"USD": "100000", "SOL": "1000"}
    return (
        Trader(live_stack, "alice", funds),
        Trader(live_stack, "bob", funds),
        Trader(live_stack, "carol", funds),
    )


def test_ccxt_uses_the_order_types(live_stack, traders):
    alice, bob, carol = (exchange_for(live_stack, t.credentials) for t in traders)
    for exchange in (alice, bob, carol):
        exchange.load_markets()
    assert alice.markets[SYMBOL]["info"]["ocoAllowed"] is True

    def settled():
        live_stack.wait_matcher_idle()

    # A price to start from.
    bob.create_order(SYMBOL, "limit", "sell", 1, 100)
    carol.create_order(SYMBOL, "market", "buy", 1)
    settled()

    # An iceberg through create_order's params.
    iceberg = alice.create_order(SYMBOL, "limit", "sell", 3, 105, {"icebergQty": "1"})
    assert iceberg["info"]["icebergQty"] == "1.00000000"
    settled()
    # The book snapshot is refreshed once per diff interval: wait for the one with the ask.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        asks = alice.fetch_order_book(SYMBOL)["asks"]
        if asks and asks[0][0] == 105:
            break
        time.sleep(0.05)
    assert asks[0][:2] == [105, 1]  # only the visible part
    bought = bob.create_order(SYMBOL, "market", "buy", 2)
    assert bought["filled"] == 2
    settled()
    assert alice.fetch_order(iceberg["id"], SYMBOL)["filled"] == 2
    alice.cancel_order(iceberg["id"], SYMBOL)

    # edit_order is Binance's cancelReplace.
    bid = alice.create_order(SYMBOL, "limit", "buy", 1, 95)
    edited = alice.edit_order(bid["id"], SYMBOL, "limit", "buy", 2, 96)
    assert edited["id"] != bid["id"]
    assert (edited["amount"], edited["price"], edited["status"]) == (2, 96, "open")
    settled()
    assert alice.fetch_order(bid["id"], SYMBOL)["status"] == "canceled"
    assert alice.fetch_balance()["USD"]["used"] == 192
    with pytest.raises(ccxt.ExchangeError):
        alice.edit_order(bid["id"], SYMBOL, "limit", "buy", 2, 96)  # -2022: already cancelled

    # Amend keeps the order and its place; CCXT has no method, so the request is raw.
    amended = alice.request(
        "order/amend/keepPriority",
        ["private"],
        "PUT",
        {"symbol": "SOLUSD", "orderId": edited["id"], "newQty": "1.5"},
    )
    assert amended["amendedOrder"]["qty"] == "1.50000000"
    settled()
    assert alice.fetch_order(edited["id"], SYMBOL)["amount"] == 1.5
    assert alice.fetch_balance()["USD"]["used"] == 144
    alice.cancel_order(edited["id"], SYMBOL)

    # A trailing stop-loss: sells once the price falls 1 % from its highest.
    trailing = alice.create_order(SYMBOL, "STOP_LOSS", "sell", 1, None, {"trailingDelta": 100})
    assert trailing["info"]["trailingDelta"] == 100
    settled()
    bob.create_order(SYMBOL, "limit", "buy", 2, 98)
    settled()
    carol.create_order(SYMBOL, "market", "sell", 1)  # trades at 98, below 105 × 0.99
    settled()
    assert alice.fetch_order(trailing["id"], SYMBOL)["status"] == "closed"
    # CCXT's unified trailing parameters: a trailing take-profit that starts trailing at 120.
    take_profit = alice.create_order(
        SYMBOL,
        "market",
        "sell",
        1,
        None,
        {"trailingPercent": 2, "stopLossOrTakeProfit": "takeProfit", "trailingTriggerPrice": 120},
    )
    assert take_profit["info"]["type"] == "TAKE_PROFIT"
    assert (take_profit["info"]["trailingDelta"], take_profit["triggerPrice"]) == (200, 120)
    assert alice.cancel_order(take_profit["id"], SYMBOL)["status"] == "canceled"

    # An OCO that one leg fills, another user trading against it.
    before = alice.fetch_balance()
    oco = alice.privatePostOrderListOco(
        {
            "symbol": "SOLUSD",
            "side": "SELL",
            "quantity": "2",
            "aboveType": "LIMIT_MAKER",
            "abovePrice": "110",
            "belowType": "STOP_LOSS_LIMIT",
            "belowStopPrice": "90",
            "belowPrice": "89",
            "belowTimeInForce": "GTC",
        }
    )
    assert oco["listOrderStatus"] == "EXECUTING"
    legs = {report["type"]: report["orderId"] for report in oco["orderReports"]}
    settled()
    assert alice.fetch_balance()["SOL"]["used"] == 2
    carol.create_order(SYMBOL, "limit", "buy", 2, 110)
    settled()
    assert alice.fetch_order(str(legs["LIMIT_MAKER"]), SYMBOL)["status"] == "closed"
    assert alice.fetch_order(str(legs["STOP_LOSS_LIMIT"]), SYMBOL)["status"] == "expired"
    done = alice.privateGetOrderList({"orderListId": oco["orderListId"]})
    assert done["listOrderStatus"] == "ALL_DONE"
    after = alice.fetch_balance()
    assert after["SOL"]["total"] == before["SOL"]["total"] - 2
    assert after["SOL"]["used"] == 0
    fill = alice.fetch_my_trades(SYMBOL)[-1]
    assert fill["order"] == str(legs["LIMIT_MAKER"])
    assert after["USD"]["total"] == pytest.approx(
        before["USD"]["total"] + 220 - fill["fee"]["cost"]
    )

    settled()
    assert_ledger_ok()


def test_a_read_only_key_may_read_order_lists_but_not_trade(market, trader, binance_for):
    reader = binance_for(trader(market, usd="10000", btc="1"), permissions=("read",))
    before = state()
    for method, path, params in (
        ("POST", "orderList/oco", sell_oco()),
        ("POST", "order/oco", {"symbol": "BTCUSD"}),
        ("POST", "order/cancelReplace", cancel_replace(1)),
        ("PUT", "order/amend/keepPriority", {"symbol": "BTCUSD", "orderId": 1, "newQty": "1"}),
        ("DELETE", "orderList", {"symbol": "BTCUSD", "orderListId": 1}),
    ):
        assert_binance_error(reader.signed(method, path, params), 401, -2015)
    assert ok(reader.signed("GET", "allOrderList")) == []
    assert ok(reader.signed("GET", "openOrderList")) == []
    assert state() == before


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", "orderList", {"orderListId": "9" * 20}),
        ("GET", "orderList", {"origClientOrderId": "a\x00b"}),
        ("DELETE", "orderList", {"symbol": "BTCUSD", "orderListId": "9" * 20}),
        ("GET", "allOrderList", {"startTime": "9" * 20}),
        ("GET", "allOrderList", {"limit": "0"}),
        ("POST", "order/cancelReplace", cancel_replace("9" * 20)),
        ("PUT", "order/amend/keepPriority",
         {"symbol": "BTCUSD", "orderId": "9" * 20, "newQty": "1"}),
        ("PUT", "order/amend/keepPriority",
         {"symbol": "BTCUSD", "orderId": "1", "newQty": "9" * 30}),
        ("POST", "orderList/oco", sell_oco(quantity="9" * 30)),
        ("POST", "orderList/oco", sell_oco(quantity="9" * 31, aboveIcebergQty="9" * 30)),
        ("POST", "order", limit(quantity="9" * 31, icebergQty="9" * 30)),
        ("POST", "order", limit(quantity="1e999999", icebergQty="1e999990")),
        ("POST", "order", limit(icebergQty="1e-30")),
        ("POST", "order", limit(icebergQty="-0.001")),
        ("POST", "order/cancelReplace", {**cancel_replace(1), "icebergQty": "9" * 30}),
        ("POST", "orderList/oco", sell_oco(belowTrailingDelta="9" * 20, belowStopPrice="")),
        ("POST", "orderList/oco", sell_oco(listClientOrderId="x" * 40)),
    ],
)  # fmt: skip
def test_odd_values_are_refused_not_server_errors(market, alice, method, path, params):
    before = state()
    response = alice.signed(method, path, params)
    assert 400 <= response.status_code < 500, response.content
    assert response.json()["code"] < 0
    assert state() == before


ODD_VALUES = ("-1", "0", "1e999999", "9" * 30, "1e-30", "abc", "1.5", "NaN")
VALID_REQUESTS = [
    ("POST", "order", {**limit(quantity="0.05"), "icebergQty": "0.01"}),
    ("POST", "order", {**market_order("SELL"), "type": "STOP_LOSS", "trailingDelta": "100"}),
    ("POST", "orderList/oco", sell_oco(aboveIcebergQty="0.005")),
    ("POST", "order/oco", {**sell_oco(), "price": "21000", "stopPrice": "19000"}),
    ("POST", "order/cancelReplace", cancel_replace(1)),
    ("PUT", "order/amend/keepPriority", {"symbol": "BTCUSD", "orderId": "1", "newQty": "1"}),
    ("GET", "allOrderList", {"fromId": "1", "startTime": "1", "endTime": "2", "limit": "5"}),
]


@pytest.mark.parametrize(("method", "path", "params"), VALID_REQUESTS)
def test_every_parameter_with_odd_values_is_never_a_server_error(
    market, alice, method, path, params, no_order_wait
):
    Market.objects.filter(pk=market.pk).update(last_price=Decimal("20000"))
    for name in params:
        if name == "symbol":
            continue
        for value in ODD_VALUES:
            response = alice.signed(method, path, {**params, name: value})
            assert response.status_code < 500, (name, value, response.content)
            body = response.json()
            assert "code" not in body or body["code"] < 0, (name, value, body)

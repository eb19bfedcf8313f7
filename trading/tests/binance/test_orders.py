"""Signed order endpoints: the same order_place / order_cancel services, rules, balances and
ledger as /api/v1, in Binance's shapes and with Binance's error codes."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from trading.models import Market, Order, Trade
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


@pytest.fixture
def alice(market, trader, binance_for):
    return binance_for(trader(market, usd="10000", btc="1"))


@pytest.fixture
def bob(market, trader, binance_for):
    return binance_for(trader(market, usd="10000", btc="1"))


def test_a_limit_order_rests_then_fills_against_a_second_client(market, alice, bob, no_order_wait):
    placed = alice.signed("POST", "order", limit(newClientOrderId="alice-1"))
    assert placed.status_code == 200, placed.content
    body = placed.json()
    assert body["status"] == "NEW"
    assert body["type"] == "LIMIT"
    assert body["side"] == "BUY"
    assert body["price"] == "20000.00000000"
    assert body["origQty"] == "0.01000000"
    assert body["clientOrderId"] == "alice-1"
    assert body["fills"] == []
    order_id = body["orderId"]
    drain(market)

    open_orders = alice.signed("GET", "openOrders", {"symbol": "BTCUSD"}).json()
    assert [order["orderId"] for order in open_orders] == [order_id]
    assert open_orders[0]["isWorking"] is True

    sold = bob.signed(
        "POST", "order", {"symbol": "BTCUSD", "side": "SELL", "type": "MARKET", "quantity": "0.01"}
    )
    assert sold.status_code == 200, sold.content
    drain(market)

    order = alice.signed("GET", "order", {"symbol": "BTCUSD", "orderId": order_id}).json()
    assert order["status"] == "FILLED"
    assert order["executedQty"] == "0.01000000"
    assert order["cummulativeQuoteQty"] == "200.00000000"
    by_client_id = alice.signed(
        "GET", "order", {"symbol": "BTCUSD", "origClientOrderId": "alice-1"}
    ).json()
    assert by_client_id["orderId"] == order_id

    (mine,) = alice.signed("GET", "myTrades", {"symbol": "BTCUSD"}).json()
    assert mine["orderId"] == order_id
    assert mine["isBuyer"] is True
    assert mine["isMaker"] is True
    assert mine["commissionAsset"] == "BTC"
    assert mine["commission"] == "0.00001000"
    (theirs,) = bob.signed("GET", "myTrades", {"symbol": "BTCUSD"}).json()
    assert theirs["isBuyer"] is False
    assert theirs["isMaker"] is False
    assert theirs["commissionAsset"] == "USD"
    assert theirs["commission"] == "0.40000000"
    assert alice.signed("GET", "openOrders").json() == []
    all_orders = alice.signed("GET", "allOrders", {"symbol": "BTCUSD"}).json()
    assert [o["orderId"] for o in all_orders] == [order_id]

    balances = {b["asset"]: b for b in bob.signed("GET", "account").json()["balances"]}
    assert balances["BTC"]["free"] == "0.99000000"
    assert balances["USD"]["free"] == "10199.60000000"
    assert_ledger_ok()


def test_market_buy_by_quote_order_qty(market, alice, bob, no_order_wait):
    bob.signed("POST", "order", limit(side="SELL", price="25000", quantity="0.1"))
    drain(market)
    response = alice.signed(
        "POST",
        "order",
        {"symbol": "BTCUSD", "side": "BUY", "type": "MARKET", "quoteOrderQty": "500"},
    )
    assert response.status_code == 200, response.content
    drain(market)
    order = Order.objects.get(pk=response.json()["orderId"])
    assert order.quote_quantity == Decimal("500")
    assert order.status == Order.Status.FILLED
    assert order.filled_quantity == Decimal("0.02")
    assert_ledger_ok()


def test_limit_maker_that_would_take_is_rejected(market, alice, bob, no_order_wait):
    bob.signed("POST", "order", limit(side="SELL", price="20000"))
    drain(market)
    response = alice.signed(
        "POST",
        "order",
        {"symbol": "BTCUSD", "side": "BUY", "type": "LIMIT_MAKER", "quantity": "0.01",
         "price": "20000", "newOrderRespType": "RESULT"},
    )  # fmt: skip
    assert response.json()["type"] == "LIMIT_MAKER"
    drain(market)
    order = alice.signed(
        "GET", "order", {"symbol": "BTCUSD", "orderId": response.json()["orderId"]}
    ).json()
    assert order["status"] == "REJECTED"
    assert Trade.objects.count() == 0


def test_insufficient_funds_is_2010_and_changes_nothing(alice):
    before = state()
    response = alice.signed("POST", "order", limit(price="20000", quantity="1"))
    assert_binance_error(
        response, 400, -2010, "Account has insufficient balance for requested action."
    )
    assert state() == before


@pytest.mark.parametrize(
    ("params", "filter_name"),
    [
        (limit(price="20000.001"), "PRICE_FILTER"),
        (limit(quantity="0.000001"), "LOT_SIZE"),
        (limit(quantity="2000"), "LOT_SIZE"),
        (limit(price="1", quantity="0.01"), "NOTIONAL"),
    ],
)
def test_filter_failures_name_the_filter(alice, params, filter_name):
    before = state()
    response = alice.signed("POST", "order", params)
    assert_binance_error(response, 400, -1013, f"Filter failure: {filter_name}")
    assert state() == before


@pytest.mark.parametrize(
    ("params", "code", "word"),
    [
        ({k: v for k, v in limit().items() if k != "timeInForce"}, -1102, "timeInForce"),
        ({k: v for k, v in limit().items() if k != "price"}, -1102, "price"),
        ({k: v for k, v in limit().items() if k != "side"}, -1102, "side"),
        (limit(side="HOLD"), -1117, "side"),
        ({**limit(), "type": "TRAILING_STOP_MARKET"}, -1116, "orderType"),
        (limit(timeInForce="GTD"), -1115, "timeInForce"),
        (
            {
                "symbol": "BTCUSD",
                "side": "BUY",
                "type": "MARKET",
                "quantity": "0.01",
                "timeInForce": "GTC",
            },
            -1106,
            "timeInForce",
        ),
        (
            {
                "symbol": "BTCUSD",
                "side": "BUY",
                "type": "MARKET",
                "quantity": "0.01",
                "price": "20000",
            },
            -1106,
            "price",
        ),
        (limit(quantity="abc"), -1100, "quantity"),
        (limit(quantity="-1"), -1100, "quantity"),
        (limit(newClientOrderId="x" * 37), -1100, "newClientOrderId"),
        (limit(newOrderRespType="ALL"), -1100, "newOrderRespType"),
        (limit(colour="blue"), -1104, "parameter"),
        (limit(symbol="DOGEUSD"), -1121, "symbol"),
    ],
)
def test_bad_order_parameters(alice, params, code, word):
    before = state()
    response = alice.signed("POST", "order", params)
    assert_binance_error(response, 400, code)
    assert word in response.json()["msg"]
    assert state() == before


def test_a_halted_market_is_closed(market, alice):
    Market.objects.filter(pk=market.pk).update(status=Market.Status.HALTED)
    assert_binance_error(alice.signed("POST", "order", limit()), 400, -1013, "Market is closed.")


def test_unknown_orders(alice, bob, no_order_wait):
    assert_binance_error(
        alice.signed("GET", "order", {"symbol": "BTCUSD", "orderId": 999999}),
        400, -2013, "Order does not exist.",
    )  # fmt: skip
    assert_binance_error(
        alice.signed("DELETE", "order", {"symbol": "BTCUSD", "orderId": 999999}),
        400, -2011, "Unknown order sent.",
    )  # fmt: skip
    assert_binance_error(alice.signed("GET", "order", {"symbol": "BTCUSD"}), 400, -1102)
    # Another user's order does not exist for this caller.
    theirs = bob.signed("POST", "order", limit()).json()["orderId"]
    assert_binance_error(
        alice.signed("GET", "order", {"symbol": "BTCUSD", "orderId": theirs}), 400, -2013
    )
    assert_binance_error(
        alice.signed("DELETE", "order", {"symbol": "BTCUSD", "orderId": theirs}), 400, -2011
    )
    assert Order.objects.get(pk=theirs).is_live


def test_cancelling_a_filled_order_is_unknown(market, alice, bob, no_order_wait):
    order_id = alice.signed("POST", "order", limit()).json()["orderId"]
    drain(market)
    bob.signed("POST", "order", limit(side="SELL"))
    drain(market)
    assert_binance_error(
        alice.signed("DELETE", "order", {"symbol": "BTCUSD", "orderId": order_id}), 400, -2011
    )


def test_order_test_validates_and_places_nothing(alice):
    before = state()
    assert alice.signed("POST", "order/test", limit()).json() == {}
    assert state() == before
    assert_binance_error(alice.signed("POST", "order/test", limit(quantity="1")), 400, -2010)


def test_cancel_all_open_orders_of_a_symbol(market, alice, no_order_wait):
    for price in ("19000", "19500"):
        alice.signed("POST", "order", limit(price=price))
    drain(market)
    response = alice.signed("DELETE", "openOrders", {"symbol": "BTCUSD"})
    assert response.status_code == 200, response.content
    assert len(response.json()) == 2
    drain(market)
    assert alice.signed("GET", "openOrders", {"symbol": "BTCUSD"}).json() == []
    assert balance_of(alice.api_key.user, market.quote_asset)[1] == 0
    assert_binance_error(alice.signed("DELETE", "openOrders", {"symbol": "BTCUSD"}), 400, -2011)
    assert_ledger_ok()


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


def test_full_and_cancel_answers_report_the_state_after_matching(
    market, alice, bob, running_matcher
):
    resting = alice.signed("POST", "order", limit(price="20000", quantity="0.02")).json()
    assert resting["status"] == "NEW"
    taken = bob.signed(
        "POST",
        "order",
        {"symbol": "BTCUSD", "side": "SELL", "type": "MARKET", "quantity": "0.01"},
    ).json()
    assert taken["status"] == "FILLED", taken
    assert taken["executedQty"] == "0.01000000"
    (fill,) = taken["fills"]
    assert fill["price"] == "20000.00000000"
    assert fill["qty"] == "0.01000000"
    assert fill["commissionAsset"] == "USD"
    assert fill["commission"] == "0.40000000"

    cancelled = alice.signed(
        "DELETE", "order", {"symbol": "BTCUSD", "orderId": resting["orderId"]}
    ).json()
    assert cancelled["status"] == "CANCELED", cancelled
    assert cancelled["executedQty"] == "0.01000000"
    assert cancelled["orderId"] == resting["orderId"]
    assert cancelled["origClientOrderId"] == resting["clientOrderId"]
    assert_ledger_ok()


def test_a_nul_character_in_a_parameter_is_refused_not_a_server_error(market, alice):
    response = alice.signed("DELETE", "order", {"symbol": "BTCUSD", "origClientOrderId": "a\x00b"})
    assert_binance_error(response, 400, -1100)
    response = alice.signed("POST", "order", limit(newClientOrderId="x\x00y"))
    assert response.status_code == 400
    assert response.json()["code"] < 0
    assert not Order.objects.exists()


def test_cancel_all_on_a_halted_market_cancels_nothing_and_says_so(market, alice, no_order_wait):
    placed = alice.signed("POST", "order", limit())
    assert placed.status_code == 200, placed.content
    drain(market)
    Market.objects.filter(pk=market.pk).update(status=Market.Status.HALTED)
    response = alice.signed("DELETE", "openOrders", {"symbol": "BTCUSD"})
    assert_binance_error(response, 400, -2011)
    assert Order.objects.get().status == Order.Status.OPEN

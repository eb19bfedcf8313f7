"""Icebergs, trailing stops, OCO lists, amend and cancel-replace over /api/v1 (ARCHITECTURE §5)."""

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection

from trading.matcher.market import MarketMatcher
from trading.models import Order, OrderCommand, OrderList
from trading.tests.helpers import (
    assert_error,
    assert_ledger_ok,
    balance_of,
    drain,
    place,
    reload,
    state,
)

pytestmark = pytest.mark.django_db

D = Decimal
ORDERS = "/api/v1/orders"
OCO = "/api/v1/orders/oco"


@pytest.fixture
def alice(market, trader):
    return trader(market, usd="100000", btc="10")


@pytest.fixture
def api(alice, client_for):
    return client_for(alice)


def sell_oco(**extra):
    return {
        "symbol": "BTC-USD",
        "side": "sell",
        "quantity": "0.5",
        "limit_price": "120.00",
        "stop_price": "90.00",
        **extra,
    }


def test_post_order_accepts_an_iceberg_and_shows_the_new_fields(api, alice):
    response = api.post(
        ORDERS,
        {
            "symbol": "BTC-USD",
            "side": "buy",
            "price": "100.00",
            "quantity": "0.5",
            "iceberg_quantity": "0.1",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["iceberg_quantity"], body["trailing_delta"], body["order_list_id"]) == (
        "0.10000",
        None,
        None,
    )
    assert body["trailing_peak"] is None
    assert Order.objects.get().iceberg_quantity == D("0.1")


def test_post_order_accepts_a_trailing_stop_without_stop_price(api, market):
    market.last_price = D("100")
    market.save()
    response = api.post(
        ORDERS,
        {
            "symbol": "BTC-USD",
            "side": "sell",
            "order_type": "stop",
            "quantity": "0.5",
            "trailing_delta": 150,
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    assert (response.json()["trailing_delta"], response.json()["stop_price"]) == (150, None)


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"iceberg_quantity": "0.5"}, "INVALID_ICEBERG"),
        ({"iceberg_quantity": "0.1", "time_in_force": "IOC"}, "INVALID_ICEBERG"),
        ({"trailing_delta": 100}, "INVALID_TRAILING_DELTA"),
        ({"trailing_delta": "ten"}, "VALIDATION_ERROR"),
        ({"iceberg_quantity": "-1"}, "VALIDATION_ERROR"),
    ],
)
def test_post_order_refuses_bad_new_fields_and_changes_nothing(api, extra, code):
    before = state()
    response = api.post(
        ORDERS,
        {"symbol": "BTC-USD", "side": "buy", "price": "100.00", "quantity": "0.5", **extra},
        format="json",
    )

    assert_error(response, 400, code)
    assert state() == before


def test_post_oco_creates_the_list_with_both_legs_and_one_reserve(api, alice, btc):
    response = api.post(OCO, sell_oco(list_client_id="my-oco"), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["kind"], body["status"], body["list_client_id"], body["symbol"]) == (
        "oco",
        "executing",
        "my-oco",
        "BTC-USD",
    )
    limit, stop = body["orders"]
    assert (limit["order_type"], limit["post_only"], limit["price"]) == ("limit", True, "120.00")
    assert (stop["order_type"], stop["stop_price"]) == ("stop", "90.00")
    assert limit["order_list_id"] == stop["order_list_id"] == body["id"]
    assert balance_of(alice, btc) == (D("9.5"), D("0.5"))

    again = api.post(OCO, sell_oco(list_client_id="my-oco"), format="json")
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    assert balance_of(alice, btc) == (D("9.5"), D("0.5"))

    listed = api.get(OCO).json()
    assert [item["id"] for item in listed["results"]] == [body["id"]]
    assert api.get(f"{OCO}/{body['id']}").json()["orders"][0]["id"] == limit["id"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (sell_oco(limit_price="80.00"), 400, "INVALID_OCO_PRICES"),
        (sell_oco(stop_price=None), 400, "VALIDATION_ERROR"),
        ({k: v for k, v in sell_oco().items() if k != "stop_price"}, 400, "MISSING_FIELD"),
        (sell_oco(quantity="500"), 422, "INSUFFICIENT_BALANCE"),
        (sell_oco(trailing_delta=1), 400, "INVALID_TRAILING_DELTA"),
        (sell_oco(symbol="NOPE-USD"), 400, "UNKNOWN_SYMBOL"),
        ([1, 2], 400, "VALIDATION_ERROR"),
    ],
)
def test_post_oco_refuses_bad_input_and_changes_nothing(api, body, status, code):
    before = state()
    response = api.post(OCO, body, format="json")

    assert_error(response, status, code)
    assert state() == before
    assert not OrderList.objects.exists()


def test_another_users_list_is_not_found(api, market, trader, client_for):
    response = api.post(OCO, sell_oco(), format="json")
    bob = client_for(trader(market, usd="10"))

    assert_error(bob.get(f"{OCO}/{response.json()['id']}"), 404, "ORDER_LIST_NOT_FOUND")
    assert bob.get(OCO).json()["results"] == []


def test_amend_queues_a_smaller_quantity_and_the_matcher_releases_the_reserve(
    api, alice, market, usd
):
    order = place(alice, side="buy", price="100.00", quantity="0.5")
    drain(market)

    response = api.post(f"{ORDERS}/{order.pk}/amend", {"quantity": "0.2"}, format="json")

    assert response.status_code == 202, response.content
    assert response.json()["quantity"] == "0.50000"
    assert OrderCommand.objects.latest("id").kind == "amend"
    drain(market)
    order = reload(order)
    assert (order.quantity, order.reserved, order.status) == (D("0.2"), D("20"), "open")
    assert balance_of(alice, usd) == (D("99980"), D("20"))
    assert api.get(f"{ORDERS}/{order.pk}").json()["quantity"] == "0.20000"
    assert_ledger_ok()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"quantity": "0.5"}, 400, "INVALID_QUANTITY"),
        ({"quantity": "0.000001"}, 400, "INVALID_QUANTITY_STEP"),
        ({"quantity": "x"}, 400, "VALIDATION_ERROR"),
        ({}, 400, "VALIDATION_ERROR"),
    ],
)
def test_amend_refuses_bad_input_and_changes_nothing(api, alice, body, status, code):
    order = place(alice, side="buy", price="100.00", quantity="0.5")
    before = state()

    assert_error(api.post(f"{ORDERS}/{order.pk}/amend", body, format="json"), status, code)
    assert state() == before


def test_amend_and_replace_of_another_users_order_are_not_found(api, market, trader, client_for):
    bob = trader(market, usd="1000")
    order = place(bob, side="buy", price="100.00", quantity="0.5")
    before = state()

    assert_error(
        api.post(f"{ORDERS}/{order.pk}/amend", {"quantity": "0.1"}, format="json"),
        404,
        "ORDER_NOT_FOUND",
    )
    assert_error(
        api.post(f"{ORDERS}/{order.pk}/replace", {"side": "buy"}, format="json"),
        404,
        "ORDER_NOT_FOUND",
    )
    assert state() == before


def test_replace_refuses_an_unknown_mode_before_cancelling(api, alice):
    order = place(alice, side="buy", price="100.00", quantity="0.5")
    before = state()

    response = api.post(
        f"{ORDERS}/{order.pk}/replace",
        {"side": "buy", "price": "101.00", "quantity": "0.5", "mode": "SOMETIMES"},
        format="json",
    )

    assert_error(response, 400, "VALIDATION_ERROR")
    assert state() == before


def _matcher_thread(market, stop: threading.Event) -> threading.Thread:
    """A matcher draining the market until ``stop``, on its own connection."""

    def run():
        matcher = MarketMatcher(market)
        try:
            while not stop.is_set():
                if matcher.run_batch(500) is None:
                    time.sleep(0.01)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_replace_cancels_then_places_the_new_order(market, trader, client_for, usd):
    alice = trader(market, usd="1000")
    api = client_for(alice)
    order = place(alice, side="buy", price="100.00", quantity="2")
    stop = threading.Event()
    thread = _matcher_thread(market, stop)
    try:
        response = api.post(
            f"{ORDERS}/{order.pk}/replace",
            {"side": "buy", "price": "99.00", "quantity": "3"},
            format="json",
        )
        assert response.status_code == 200, response.content
        body = response.json()
        assert (body["cancelled"]["id"], body["cancelled"]["status"]) == (order.pk, "cancelled")
        assert (body["placed"]["price"], body["placed"]["symbol"]) == ("99.00", "BTC-USD")

        # The old order is done now: STOP_ON_FAILURE places nothing, ALLOW_FAILURE does.
        failed = api.post(
            f"{ORDERS}/{order.pk}/replace",
            {"side": "buy", "price": "98.00", "quantity": "1"},
            format="json",
        )
        error = assert_error(failed, 409, "CANCEL_REPLACE_FAILED")
        assert error["details"]["cancel"]["error"]["code"] == "ORDER_NOT_CANCELLABLE"
        assert error["details"]["place"] is None
        allowed = api.post(
            f"{ORDERS}/{order.pk}/replace",
            {"side": "buy", "price": "98.00", "quantity": "1", "mode": "ALLOW_FAILURE"},
            format="json",
        )
        error = assert_error(allowed, 409, "CANCEL_REPLACE_FAILED")
        assert error["details"]["place"]["status"] == 200
    finally:
        stop.set()
        thread.join(10)
    assert Order.objects.filter(user=alice, status__in=Order.LIVE).count() == 2
    # 99 × 3 + 98 × 1 reserved; the cancelled order's 200 came back.
    assert balance_of(alice, usd) == (D("1000") - D("395"), D("395"))
    assert_ledger_ok()

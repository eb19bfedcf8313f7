"""POST /api/v1/orders/batch: up to 20 orders, each accepted or refused on its own."""

from decimal import Decimal

import pytest

from trading.models import Order
from trading.tests.helpers import assert_error, assert_ledger_ok, balance_of, state

pytestmark = pytest.mark.django_db

D = Decimal


def order(**fields):
    return {"symbol": "BTC-USD", "side": "buy", "price": "100", "quantity": "1", **fields}


@pytest.fixture
def alice(market, trader):
    return trader(market, usd="250", btc="1")


@pytest.mark.parametrize("path", ["/api/v1/orders/batch", "/api/v1/orders/batch/"])
def test_a_batch_accepts_and_refuses_each_order_on_its_own(alice, client_for, usd, btc, path):
    batch = [
        order(client_order_id="b-1"),
        order(price="100.001"),
        order(side="sell", price="200"),
        order(symbol="NOPE-USD"),
        order(quantity="2"),  # 200 more USD than the 150 left
        order(price="abc"),
        order(client_order_id="b-1"),  # the first order again
        order(price="50"),
    ]

    response = client_for(alice).post(path, {"orders": batch}, format="json")

    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 400, 201, 400, 422, 400, 200, 201]
    assert [r["error"]["code"] for r in results if "error" in r] == [
        "INVALID_PRICE_TICK",
        "UNKNOWN_SYMBOL",
        "INSUFFICIENT_BALANCE",
        "VALIDATION_ERROR",
    ]
    for result in results:
        assert set(result) in ({"status", "order"}, {"status", "error"}), result
    assert results[6]["order"]["id"] == results[0]["order"]["id"]
    assert Order.objects.count() == 3
    assert balance_of(alice, usd) == (D(100), D(150))
    assert balance_of(alice, btc) == (D(0), D(1))
    assert_ledger_ok()


def test_a_batch_of_21_is_refused_whole(alice, client_for):
    before = state()

    response = client_for(alice).post(
        "/api/v1/orders/batch", {"orders": [order(price="1")] * 21}, format="json"
    )

    assert_error(response, 400, "VALIDATION_ERROR")
    assert state() == before


@pytest.mark.parametrize(
    "body", [{}, {"orders": []}, {"orders": "x"}, {"orders": [1, 2]}, {"orders": None}]
)
def test_a_malformed_batch_is_refused_whole(alice, client_for, body):
    before = state()

    response = client_for(alice).post("/api/v1/orders/batch", body, format="json")

    assert_error(response, 400, "VALIDATION_ERROR")
    assert state() == before


def test_a_batch_of_20_is_accepted(alice, client_for):
    batch = [order(price="1", quantity="1") for _ in range(20)]

    response = client_for(alice).post("/api/v1/orders/batch", {"orders": batch}, format="json")

    assert [r["status"] for r in response.json()["results"]] == [201] * 20
    assert_ledger_ok()

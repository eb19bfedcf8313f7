"""One user never sees or touches another's orders and fills: a 404, never a 403."""

import pytest

from trading.models import OrderCommand, Trade
from trading.tests.helpers import assert_error, drain, place, reload, state

pytestmark = pytest.mark.django_db


@pytest.fixture
def traded(market, trader):
    """Alice's buy traded with Bob's sell; each also has a resting order."""
    alice = trader(market, usd="10000")
    bob = trader(market, btc="10")
    alice_buy = place(alice, side="buy", price="100", quantity="1")
    alice_rest = place(alice, side="buy", price="90", quantity="1")
    bob_sell = place(bob, side="sell", price="100", quantity="1")
    bob_rest = place(bob, side="sell", price="150", quantity="1")
    drain(market)
    return alice, bob, alice_buy, alice_rest, bob_sell, bob_rest


@pytest.mark.parametrize("suffix", ["", "/"])
def test_another_users_order_is_404_for_get_and_delete(traded, client_for, suffix):
    alice, _bob, _, _, _, bob_rest = traded
    api = client_for(alice)
    before = state()

    got = api.get(f"/api/v1/orders/{bob_rest.pk}{suffix}")
    deleted = api.delete(f"/api/v1/orders/{bob_rest.pk}{suffix}")

    assert_error(got, 404, "ORDER_NOT_FOUND")
    assert_error(deleted, 404, "ORDER_NOT_FOUND")
    assert state() == before
    assert reload(bob_rest).status == "open"
    assert not OrderCommand.objects.filter(order=bob_rest, kind="cancel").exists()


def test_an_order_that_does_not_exist_is_the_same_404(traded, client_for):
    alice = traded[0]

    assert_error(client_for(alice).get("/api/v1/orders/999999999"), 404, "ORDER_NOT_FOUND")


def test_the_order_list_shows_only_the_callers_orders(traded, client_for):
    alice, bob, alice_buy, alice_rest, bob_sell, bob_rest = traded

    mine = client_for(alice).get("/api/v1/orders").json()["results"]
    theirs = client_for(bob).get("/api/v1/orders/").json()["results"]

    assert [o["id"] for o in mine] == [alice_rest.pk, alice_buy.pk]
    assert [o["id"] for o in theirs] == [bob_rest.pk, bob_sell.pk]


@pytest.mark.parametrize("path", ["/api/v1/trades", "/api/v1/trades/"])
def test_the_trade_list_shows_each_side_its_own_fill(traded, client_for, trader, market, path):
    alice, bob, alice_buy, _, bob_sell, _ = traded
    outsider = trader(market)
    trade = Trade.objects.get()

    alice_fills = client_for(alice).get(path).json()["results"]
    bob_fills = client_for(bob).get(path).json()["results"]
    outsider_fills = client_for(outsider).get(path).json()["results"]

    assert len(alice_fills) == 1
    assert alice_fills[0]["id"] == trade.pk
    assert {k: alice_fills[0][k] for k in ("order_id", "side", "fee", "fee_asset", "is_maker")} == {
        "order_id": alice_buy.pk,
        "side": "buy",
        "fee": "0.001",
        "fee_asset": "BTC",
        "is_maker": True,
    }
    assert {k: bob_fills[0][k] for k in ("order_id", "side", "fee", "fee_asset", "is_maker")} == {
        "order_id": bob_sell.pk,
        "side": "sell",
        "fee": "0.2",
        "fee_asset": "USD",
        "is_maker": False,
    }
    assert (bob_fills[0]["price"], bob_fills[0]["quantity"]) == ("100.00", "1.00000")
    assert outsider_fills == []


def test_cancel_all_touches_only_the_callers_orders(traded, client_for):
    alice, _bob, _, alice_rest, _, bob_rest = traded

    response = client_for(alice).delete("/api/v1/orders")

    assert response.json() == {"cancelling": [alice_rest.pk]}
    assert not OrderCommand.objects.filter(order=bob_rest, kind="cancel").exists()

"""The order endpoints (ARCHITECTURE §3, §7): place, read, list, cancel, market states, paths."""

import time
from decimal import Decimal

import pytest
from django_redis import get_redis_connection

from trading.matcher.wakeup import wake_key
from trading.models import Market, Order, OrderCommand
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


@pytest.fixture
def alice(market, trader):
    return trader(market, usd="100000", btc="10")


@pytest.fixture
def api(alice, client_for):
    return client_for(alice)


def limit_buy(**extra):
    return {
        "symbol": "BTC-USD",
        "side": "buy",
        "order_type": "limit",
        "price": "100.00",
        "quantity": "0.5",
        **extra,
    }


@pytest.mark.parametrize("path", [ORDERS, ORDERS + "/"])
def test_post_order_accepts_it_as_new_and_reserves(api, alice, usd, path):
    response = api.post(path, limit_buy(client_order_id="c-1"), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    order = Order.objects.get()
    assert body["id"] == order.pk
    assert {k: body[k] for k in ("symbol", "side", "order_type", "status", "time_in_force")} == {
        "symbol": "BTC-USD",
        "side": "buy",
        "order_type": "limit",
        "status": "new",
        "time_in_force": "GTC",
    }
    # Decimals are strings with the market's places: tick 0.01, lot 0.00001.
    assert (body["price"], body["quantity"], body["filled_quantity"]) == (
        "100.00",
        "0.50000",
        "0.00000",
    )
    assert body["client_order_id"] == "c-1"
    assert balance_of(alice, usd) == (D("99950"), D("50"))


def test_post_order_accepts_json_numbers(api):
    response = api.post(
        ORDERS,
        data='{"symbol": "BTC-USD", "side": "sell", "price": 100.5, "quantity": 1}',
        content_type="application/json",
    )

    assert response.status_code == 201, response.content
    assert (response.json()["price"], response.json()["quantity"]) == ("100.50", "1.00000")


@pytest.mark.parametrize("symbol", ["BTC-USD", "BTC/USD", "BTC_USD", "btc_usd"])
def test_post_order_accepts_each_spelling_of_the_symbol(api, symbol):
    response = api.post(ORDERS, limit_buy(symbol=symbol), format="json")

    assert response.status_code == 201, response.content
    assert response.json()["symbol"] == "BTC-USD"


def test_the_order_is_readable_and_shows_its_fills_once_matched(api, alice, market, trader):
    order = place(alice, side="buy", price="100", quantity="10")
    drain(market)
    place(trader(market, btc="5"), side="sell", price="100", quantity="5")
    drain(market)

    for path in (f"{ORDERS}/{order.pk}", f"{ORDERS}/{order.pk}/"):
        response = api.get(path)
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["status"] == "partially_filled"
        assert (body["filled_quantity"], body["filled_quote"]) == ("5.00000", "500.00")
        assert (body["average_price"], body["fee"]) == ("100.00", "0.005")


def test_a_retry_with_the_same_client_order_id_is_200_with_the_first_order(api, alice, usd):
    first = api.post(ORDERS, limit_buy(client_order_id="retry-1"), format="json")
    before = state()

    again = api.post(ORDERS, limit_buy(client_order_id="retry-1"), format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert state() == before
    assert balance_of(alice, usd)[1] == D(50)


@pytest.mark.parametrize("path_suffix", ["", "/"])
def test_cancel_is_accepted_and_the_matcher_releases_the_reserve(
    api, alice, market, usd, path_suffix
):
    order = place(alice, side="buy", price="100", quantity="3")
    drain(market)

    response = api.delete(f"{ORDERS}/{order.pk}{path_suffix}")

    assert response.status_code == 202, response.content
    assert response.json()["id"] == order.pk
    assert OrderCommand.objects.filter(order=order, kind="cancel", processed_at=None).count() == 1
    assert balance_of(alice, usd) == (D(99700), D(300))  # nothing released until matched

    drain(market)

    order = reload(order)
    assert (order.status, order.reserved) == ("cancelled", 0)
    assert balance_of(alice, usd) == (D(100000), D(0))
    assert_ledger_ok()


def test_cancel_of_a_partially_filled_order_releases_only_the_remainder(
    api, alice, market, trader, usd, btc
):
    order = place(alice, side="buy", price="100", quantity="3")
    place(trader(market, btc="1"), side="sell", price="100", quantity="1")
    drain(market)

    api.delete(f"{ORDERS}/{order.pk}")
    drain(market)

    order = reload(order)
    assert (order.status, order.filled_quantity, order.reserved) == ("cancelled", 1, 0)
    assert balance_of(alice, usd) == (D(99900), D(0))
    assert balance_of(alice, btc) == (D("10.999"), D(0))  # maker fee 0.1 %
    assert_ledger_ok()


def test_cancel_before_the_matcher_saw_the_order_lands_after_its_place(
    api, alice, market, trader, usd
):
    place(trader(market, btc="1"), side="sell", price="100", quantity="1")
    drain(market)
    order = place(alice, side="buy", price="100", quantity="1")  # would trade at once

    assert api.delete(f"{ORDERS}/{order.pk}").status_code == 202
    drain(market)

    # Commands run in order: the place traded, so the cancel found nothing left to cancel.
    order = reload(order)
    assert (order.status, order.reserved) == ("filled", 0)
    assert_ledger_ok()


def test_cancel_of_a_queued_resting_order_cancels_it(api, alice, market, usd):
    order = place(alice, side="buy", price="100", quantity="1")

    assert api.delete(f"{ORDERS}/{order.pk}").status_code == 202
    drain(market)

    assert (reload(order).status, reload(order).reserved) == ("cancelled", 0)
    assert balance_of(alice, usd) == (D(100000), D(0))
    assert_ledger_ok()


def test_a_second_cancel_before_the_matcher_runs_queues_nothing_more(api, alice, market):
    order = place(alice, side="buy", price="100", quantity="1")
    drain(market)
    api.delete(f"{ORDERS}/{order.pk}")
    before = state()

    response = api.delete(f"{ORDERS}/{order.pk}")

    assert response.status_code == 202
    assert state() == before
    assert OrderCommand.objects.filter(order=order, kind="cancel").count() == 1


def test_cancel_of_a_done_order_is_409_and_changes_nothing(api, alice, market):
    order = place(alice, side="buy", price="100", quantity="1")
    drain(market)
    api.delete(f"{ORDERS}/{order.pk}")
    drain(market)
    before = state()

    response = api.delete(f"{ORDERS}/{order.pk}")

    error = assert_error(response, 409, "ORDER_NOT_CANCELLABLE")
    assert error["details"] == {"order_id": order.pk, "status": "cancelled"}
    assert state() == before


def test_cancel_all_queues_a_cancel_for_every_live_order(api, alice, market, usd, btc):
    buy = place(alice, side="buy", price="100", quantity="1")
    sell = place(alice, side="sell", price="200", quantity="1")
    drain(market)

    response = api.delete(f"{ORDERS}?symbol=BTC/USD")

    assert response.status_code == 202
    assert sorted(response.json()["cancelling"]) == sorted([buy.pk, sell.pk])
    drain(market)
    assert {reload(buy).status, reload(sell).status} == {"cancelled"}
    assert balance_of(alice, usd) == (D(100000), D(0))
    assert balance_of(alice, btc) == (D(10), D(0))
    assert_ledger_ok()


# --- market states -------------------------------------------------------------------------


def test_a_halted_market_refuses_new_orders_and_cancels(api, alice, market):
    order = place(alice, side="buy", price="100", quantity="1")
    drain(market)
    Market.objects.filter(pk=market.pk).update(status=Market.Status.HALTED)
    before = state()

    placed = api.post(ORDERS, limit_buy(), format="json")
    cancelled = api.delete(f"{ORDERS}/{order.pk}")

    assert_error(placed, 422, "MARKET_HALTED")
    assert_error(cancelled, 422, "MARKET_HALTED")
    assert state() == before


def test_a_cancel_only_market_takes_cancels_and_refuses_new_orders(api, alice, market, usd):
    order = place(alice, side="buy", price="100", quantity="1")
    drain(market)
    Market.objects.filter(pk=market.pk).update(status=Market.Status.CANCEL_ONLY)
    before = state()

    placed = api.post(ORDERS, limit_buy(), format="json")

    assert_error(placed, 422, "MARKET_CANCEL_ONLY")
    assert state() == before
    assert api.delete(f"{ORDERS}/{order.pk}").status_code == 202
    drain(market)
    assert reload(order).status == Order.Status.CANCELLED
    assert balance_of(alice, usd) == (D(100000), D(0))
    assert_ledger_ok()


def test_a_market_buy_with_nothing_to_estimate_from_is_422_no_liquidity(api, market):
    before = state()

    response = api.post(
        ORDERS,
        {"symbol": "BTC-USD", "side": "buy", "order_type": "market", "quantity": "1"},
        format="json",
    )

    assert_error(response, 422, "NO_LIQUIDITY")
    assert state() == before


def test_an_insufficient_balance_is_422_with_required_and_available(api, alice):
    before = state()

    response = api.post(ORDERS, limit_buy(price="100000.00", quantity="2"), format="json")

    error = assert_error(response, 422, "INSUFFICIENT_BALANCE")
    assert error["details"] == {
        "asset": "USD",
        "required": "200000.00",
        "available": "100000.00",
    }
    assert state() == before


def test_the_order_endpoints_need_authentication(api_client, market):
    assert api_client.get(ORDERS).status_code == 401
    assert api_client.post(ORDERS, limit_buy(), format="json").status_code == 401
    assert api_client.get("/api/v1/trades").status_code == 401
    assert not Order.objects.exists()


# --- listing -----------------------------------------------------------------------------


def test_the_order_list_is_newest_first_and_paginated(api, alice, market):
    orders = [place(alice, side="buy", price=str(90 + i), quantity="1") for i in range(7)]

    first = api.get(f"{ORDERS}/?page_size=3")
    third = api.get(f"{ORDERS}?page_size=3&page=3")

    assert first.status_code == 200
    body = first.json()
    assert body["count"] == 7
    assert [o["id"] for o in body["results"]] == [o.pk for o in orders[::-1][:3]]
    assert body["next"] is not None
    assert body["previous"] is None
    assert [o["id"] for o in third.json()["results"]] == [orders[0].pk]


def test_the_order_list_page_size_is_capped_at_500(api, alice, market):
    Order.objects.bulk_create(
        Order(
            user=alice,
            market=market,
            side="buy",
            order_type="limit",
            price=D(100),
            quantity=D(1),
            status=Order.Status.CANCELLED,
        )
        for _ in range(501)
    )

    response = api.get(f"{ORDERS}?page_size=100000")

    assert response.status_code == 200
    assert response.json()["count"] == 501
    assert len(response.json()["results"]) == 500


def test_the_order_list_filters_by_status_and_symbol(api, alice, market, trader):
    resting = place(alice, side="buy", price="90", quantity="1")
    cancelled = place(alice, side="buy", price="91", quantity="1")
    drain(market)
    api.delete(f"{ORDERS}/{cancelled.pk}")
    drain(market)
    queued = place(alice, side="sell", price="200", quantity="1")

    def ids(query):
        response = api.get(f"{ORDERS}{query}")
        assert response.status_code == 200, response.content
        return [o["id"] for o in response.json()["results"]]

    assert ids("?status=open") == [resting.pk]
    assert ids("?status=cancelled") == [cancelled.pk]
    assert ids("?status=new") == [queued.pk]
    assert ids("?status=live") == [queued.pk, resting.pk]
    assert ids("?symbol=BTC_USD") == [queued.pk, cancelled.pk, resting.pk]
    assert ids("?symbol=BTC-USD&status=open") == [resting.pk]
    assert_error(api.get(f"{ORDERS}?status=weird"), 400, "VALIDATION_ERROR")
    assert_error(api.get(f"{ORDERS}?symbol=NOPE-USD"), 404, "UNKNOWN_SYMBOL")


def _woken(redis, symbol: str, timeout: float = 2.0) -> bool:
    """The wake-up is sent from the background loop after the commit: give it a moment."""
    deadline = time.monotonic() + timeout
    while redis.llen(wake_key(symbol)) == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    return redis.llen(wake_key(symbol)) == 1


def test_placing_and_cancelling_wake_the_matcher_after_commit(
    api, alice, market, django_capture_on_commit_callbacks
):
    redis = get_redis_connection("default")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.post(ORDERS, limit_buy(), format="json")
    time.sleep(0.1)
    assert redis.llen(wake_key("BTC-USD")) == 0  # nothing before the commit
    for callback in callbacks:
        callback()
    assert _woken(redis, "BTC-USD")
    redis.delete(wake_key("BTC-USD"))

    with django_capture_on_commit_callbacks(execute=True):
        api.delete(f"{ORDERS}/{response.json()['id']}")

    assert _woken(redis, "BTC-USD")


def test_a_nul_character_is_bad_input_not_a_server_error(api):
    response = api.post(ORDERS, limit_buy(client_order_id="a\u0000b"), format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert not Order.objects.exists()

"""Accepting icebergs, trailing stops, OCO lists and amends (ARCHITECTURE §5): validation
codes, the reserve, the queued commands. Every refusal changes nothing."""

from decimal import Decimal

import pytest

from trading import services
from trading.exceptions import (
    DuplicateClientOrderId,
    InvalidOrder,
    MarketHalted,
    NoLiquidity,
    OrderNotAmendable,
    OrderNotFound,
)
from trading.models import Market, Order, OrderCommand, OrderList
from trading.tests.helpers import assert_ledger_ok, balance_of, state
from wallets.exceptions import InsufficientBalance

pytestmark = pytest.mark.django_db

D = Decimal


def request(**fields):
    fields.setdefault("symbol", "BTC-USD")
    fields.setdefault("side", "buy")
    fields.setdefault("order_type", "limit")
    for name in ("quantity", "price", "stop_price", "quote_quantity", "iceberg_quantity"):
        if fields.get(name) is not None:
            fields[name] = D(str(fields[name]))
    return services.OrderRequest(**fields)


def oco(**fields):
    fields.setdefault("symbol", "BTC-USD")
    fields.setdefault("side", "sell")
    for name in (
        "quantity",
        "limit_price",
        "stop_price",
        "stop_limit_price",
        "limit_iceberg_quantity",
    ):
        if fields.get(name) is not None:
            fields[name] = D(str(fields[name]))
    return services.OcoRequest(**fields)


@pytest.fixture
def rich(market, trader):
    return trader(market, usd="1000000", btc="100")


def refused(user, exc_type, code=None, call=None):
    before = state()
    with pytest.raises(exc_type) as caught:
        call()
    if code is not None:
        assert caught.value.code == code
    assert state() == before
    return caught.value


# --- icebergs -----------------------------------------------------------------------------


def test_an_iceberg_limit_reserves_like_a_limit_and_stores_its_shown_part(market, rich, usd):
    order, _ = services.order_place(
        user=rich, request=request(price="100", quantity="2", iceberg_quantity="0.5")
    )

    order.refresh_from_db()
    assert (order.iceberg_quantity, order.reserved) == (D("0.5"), D("200"))
    assert balance_of(rich, usd) == (D("999800"), D("200"))
    assert_ledger_ok()


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"order_type": "market", "quantity": "1"}, "INVALID_ICEBERG"),
        ({"price": "100", "quantity": "1", "time_in_force": "IOC"}, "INVALID_ICEBERG"),
        ({"order_type": "stop_limit", "stop_price": "90", "price": "100", "quantity": "1"},
         "INVALID_ICEBERG"),
        ({"price": "100", "quantity": "0.5"}, "INVALID_ICEBERG"),  # not below quantity
        ({"price": "100", "quantity": "0.4"}, "INVALID_ICEBERG"),
        ({"price": "100", "quantity": "1", "iceberg_quantity": "0.000001"}, "INVALID_ICEBERG"),
        ({"price": "100", "quantity": "1", "iceberg_quantity": "-1"}, "INVALID_NUMBER"),
        ({"price": "100", "quantity": "1", "iceberg_quantity": "NaN"}, "INVALID_NUMBER"),
    ],
)  # fmt: skip
def test_order_place_refuses_a_bad_iceberg(market, rich, fields, code):
    fields.setdefault("iceberg_quantity", "0.5")
    refused(
        rich, InvalidOrder, code, lambda: services.order_place(user=rich, request=request(**fields))
    )


# --- trailing stops -----------------------------------------------------------------------


def test_a_trailing_stop_sell_needs_no_stop_price_and_reserves_its_quantity(market, rich, btc):
    market.last_price = D("100")
    market.save()
    order, _ = services.order_place(
        user=rich,
        request=request(side="sell", order_type="stop", quantity="2", trailing_delta=100),
    )

    order.refresh_from_db()
    assert (order.trailing_delta, order.stop_price, order.reserved) == (100, None, D("2"))
    assert balance_of(rich, btc) == (D("98"), D("2"))


def test_a_trailing_stop_buy_reserves_its_reference_price_raised_by_the_delta(market, rich, usd):
    # 100 × 1.02 (200 bps) × 1 × 1.05 slippage = 107.10
    order, _ = services.order_place(
        user=rich,
        request=request(order_type="stop", stop_price="100", quantity="1", trailing_delta=200),
    )
    assert order.reserved == D("107.10")

    market.last_price = D("50")
    market.save()
    # No activation price: the trail starts from the last price, 50 × 1.01 × 1.05 = 53.03 (up).
    order, _ = services.order_place(
        user=rich, request=request(order_type="stop", quantity="1", trailing_delta=100)
    )
    assert order.reserved == D("53.03")
    # A trailing stop-limit buy reserves its limit price like any stop-limit.
    order, _ = services.order_place(
        user=rich,
        request=request(order_type="stop_limit", price="60", quantity="1", trailing_delta=100),
    )
    assert order.reserved == D("60")
    assert balance_of(rich, usd)[1] == D("107.10") + D("53.03") + D("60")
    assert_ledger_ok()


def test_a_trailing_stop_buy_without_any_price_is_refused(market, rich):
    refused(
        rich,
        NoLiquidity,
        call=lambda: services.order_place(
            user=rich, request=request(order_type="stop", quantity="1", trailing_delta=100)
        ),
    )


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"price": "100", "quantity": "1", "trailing_delta": 100}, "INVALID_TRAILING_DELTA"),
        ({"order_type": "stop", "stop_price": "100", "quantity": "1", "trailing_delta": 9},
         "INVALID_TRAILING_DELTA"),
        ({"order_type": "stop", "stop_price": "100", "quantity": "1", "trailing_delta": 2001},
         "INVALID_TRAILING_DELTA"),
        ({"order_type": "stop", "stop_price": "100", "quantity": "1", "trailing_delta": 10.5},
         "INVALID_TRAILING_DELTA"),
        ({"order_type": "stop", "quantity": "1"}, "MISSING_FIELD"),
    ],
)  # fmt: skip
def test_order_place_refuses_a_bad_trailing_delta(market, rich, fields, code):
    refused(
        rich, InvalidOrder, code, lambda: services.order_place(user=rich, request=request(**fields))
    )


# --- OCO ----------------------------------------------------------------------------------


def test_a_sell_oco_reserves_its_quantity_once_on_the_limit_leg(market, rich, btc):
    order_list = services.oco_place(
        user=rich, request=oco(quantity="2", limit_price="120", stop_price="90", list_client_id="x")
    )

    limit, stop = order_list.orders.order_by("id")
    assert (order_list.kind, order_list.status, order_list.client_list_id) == (
        "oco",
        "executing",
        "x",
    )
    assert (limit.order_type, limit.post_only, limit.price, limit.reserved) == (
        "limit", True, D("120"), D("2"),
    )  # fmt: skip
    assert (stop.order_type, stop.stop_price, stop.reserved) == ("stop", D("90"), D("0"))
    assert balance_of(rich, btc) == (D("98"), D("2"))
    command = OrderCommand.objects.get()
    assert (command.kind, command.order_id) == ("place_list", limit.pk)
    assert_ledger_ok()

    # A retry with the same list client id returns the first list and reserves nothing.
    again = services.oco_place(
        user=rich, request=oco(quantity="2", limit_price="120", stop_price="90", list_client_id="x")
    )
    assert again.pk == order_list.pk
    assert balance_of(rich, btc) == (D("98"), D("2"))


def test_a_buy_oco_reserves_the_larger_of_its_legs(market, rich, usd):
    order_list = services.oco_place(
        user=rich,
        request=oco(
            side="buy", quantity="2", limit_price="80", stop_price="110", stop_limit_price="115"
        ),
    )

    limit, stop = order_list.orders.order_by("id")
    assert (limit.reserved, stop.reserved) == (D("230"), D("0"))  # 115 × 2 > 80 × 2
    assert (stop.order_type, stop.price, stop.time_in_force) == ("stop_limit", D("115"), "GTC")
    assert balance_of(rich, usd) == (D("999770"), D("230"))
    assert_ledger_ok()


@pytest.mark.parametrize(
    ("fields", "exc", "code"),
    [
        ({"limit_price": "80", "stop_price": "90"}, InvalidOrder, "INVALID_OCO_PRICES"),
        ({"side": "buy", "limit_price": "120", "stop_price": "90"}, InvalidOrder,
         "INVALID_OCO_PRICES"),
        ({"limit_price": "120"}, InvalidOrder, "MISSING_FIELD"),
        ({"limit_price": "120.001", "stop_price": "90"}, InvalidOrder, "INVALID_PRICE_TICK"),
        ({"limit_price": "120", "stop_price": "90", "trailing_delta": 5}, InvalidOrder,
         "INVALID_TRAILING_DELTA"),
        ({"limit_price": "120", "stop_price": "90", "limit_iceberg_quantity": "3"}, InvalidOrder,
         "INVALID_ICEBERG"),
        ({"limit_price": "120", "stop_price": "90", "stop_limit_price": "89",
          "stop_time_in_force": "XYZ"}, InvalidOrder, "INVALID_TIME_IN_FORCE"),
        ({"limit_price": "120", "stop_price": "90", "quantity": "200"}, InsufficientBalance,
         "INSUFFICIENT_BALANCE"),
        ({"limit_price": "120", "stop_price": "90", "limit_client_order_id": "a",
          "stop_client_order_id": "a"}, DuplicateClientOrderId, "DUPLICATE_CLIENT_ORDER_ID"),
    ],
)  # fmt: skip
def test_oco_place_refuses_a_bad_pair_and_changes_nothing(market, rich, fields, exc, code):
    fields.setdefault("quantity", "2")
    refused(rich, exc, code, lambda: services.oco_place(user=rich, request=oco(**fields)))
    assert not OrderList.objects.exists()


def test_oco_place_refuses_a_leg_client_id_another_order_has(market, rich):
    services.order_place(user=rich, request=request(price="1", quantity="1", client_order_id="a"))
    refused(
        rich,
        DuplicateClientOrderId,
        call=lambda: services.oco_place(
            user=rich,
            request=oco(quantity="1", limit_price="120", stop_price="90", stop_client_order_id="a"),
        ),
    )


# --- amend --------------------------------------------------------------------------------


def test_order_amend_queues_the_new_total_quantity(market, rich):
    order, _ = services.order_place(user=rich, request=request(price="100", quantity="2"))

    services.order_amend(user=rich, order_id=order.pk, quantity=D("1.5"))

    command = OrderCommand.objects.latest("id")
    assert (command.kind, command.order_id, command.quantity) == ("amend", order.pk, D("1.5"))
    order.refresh_from_db()
    assert order.quantity == D("2")  # the matcher changes it


@pytest.mark.parametrize(
    ("quantity", "code"),
    [
        ("2", "INVALID_QUANTITY"),
        ("3", "INVALID_QUANTITY"),
        ("0", "INVALID_NUMBER"),
        ("1.000001", "INVALID_QUANTITY_STEP"),
        ("0.5", "INVALID_QUANTITY"),  # not above the iceberg part
    ],
)
def test_order_amend_refuses_a_bad_quantity(market, rich, quantity, code):
    order, _ = services.order_place(
        user=rich, request=request(price="100", quantity="2", iceberg_quantity="0.5")
    )
    refused(
        rich,
        InvalidOrder,
        code,
        lambda: services.order_amend(user=rich, order_id=order.pk, quantity=D(quantity)),
    )


def test_order_amend_refuses_what_it_cannot_amend(market, rich, trader):
    other = trader(market, usd="1000")
    order, _ = services.order_place(user=rich, request=request(price="100", quantity="2"))
    by_quote, _ = services.order_place(
        user=rich, request=request(order_type="stop", stop_price="100", quote_quantity="50")
    )
    refused(
        other,
        OrderNotFound,
        call=lambda: services.order_amend(user=other, order_id=order.pk, quantity=D(1)),
    )
    refused(
        rich,
        OrderNotAmendable,
        call=lambda: services.order_amend(user=rich, order_id=by_quote.pk, quantity=D(1)),
    )
    Order.objects.filter(pk=order.pk).update(status=Order.Status.CANCELLED, reserved=0)
    refused(
        rich,
        OrderNotAmendable,
        call=lambda: services.order_amend(user=rich, order_id=order.pk, quantity=D(1)),
    )
    live, _ = services.order_place(user=rich, request=request(price="100", quantity="2"))
    Market.objects.filter(pk=market.pk).update(status=Market.Status.HALTED)
    refused(
        rich,
        MarketHalted,
        call=lambda: services.order_amend(user=rich, order_id=live.pk, quantity=D(1)),
    )


def test_a_batch_validates_and_stores_the_new_fields_like_order_place(market, rich):
    results = services.order_place_batch(
        user=rich,
        requests=[
            request(price="100", quantity="2", iceberg_quantity="0.5"),
            request(price="100", quantity="2", iceberg_quantity="2"),
            request(order_type="stop", stop_price="90", quantity="1", trailing_delta=50),
        ],
    )

    (iceberg, _), refusal, (trailing, _) = results
    assert isinstance(refusal, InvalidOrder)
    assert refusal.code == "INVALID_ICEBERG"
    iceberg.refresh_from_db()
    trailing.refresh_from_db()
    assert (iceberg.iceberg_quantity, iceberg.reserved) == (D("0.5"), D("200"))
    assert (trailing.trailing_delta, trailing.stop_price) == (50, D("90"))
    assert_ledger_ok()

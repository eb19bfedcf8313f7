"""Accepting an order (ARCHITECTURE §3 step 1): validation codes, the reserve, the queued command.

Every refusal leaves balances, the ledger, orders and commands exactly as they were.
"""

from decimal import Decimal

import pytest

from trading import services
from trading.exceptions import (
    InvalidOrder,
    MarketCancelOnly,
    MarketHalted,
    NoLiquidity,
    UnknownSymbol,
)
from trading.models import Market, Order, OrderCommand
from trading.tests.helpers import assert_ledger_ok, balance_of, drain, place, state
from wallets.exceptions import InsufficientBalance
from wallets.models import LedgerEntry, LedgerKind

pytestmark = pytest.mark.django_db

D = Decimal


def request(**fields):
    fields.setdefault("symbol", "BTC-USD")
    fields.setdefault("side", "buy")
    fields.setdefault("order_type", "limit")
    for name in ("quantity", "price", "stop_price", "quote_quantity"):
        if fields.get(name) is not None:
            fields[name] = D(str(fields[name]))
    return services.OrderRequest(**fields)


@pytest.fixture
def rich(market, trader):
    return trader(market, usd="1000000", btc="100")


def test_order_place_reserves_the_quote_of_a_limit_buy_and_queues_a_place(market, rich, usd):
    ledger_before = LedgerEntry.objects.count()

    order, created = services.order_place(user=rich, request=request(price="100.5", quantity="2"))

    assert created
    assert (order.status, order.reserved, order.side) == ("new", D("201"), "buy")
    assert balance_of(rich, usd) == (D("999799"), D("201"))
    command = OrderCommand.objects.get()
    assert (command.order_id, command.kind, command.processed_at) == (order.pk, "place", None)
    entry = LedgerEntry.objects.latest("id")
    assert LedgerEntry.objects.count() == ledger_before + 1
    assert (entry.kind, entry.reference_type, entry.reference_id) == (
        LedgerKind.ORDER_RESERVE,
        "order",
        order.pk,
    )
    assert (entry.available_delta, entry.locked_delta) == (D(-201), D(201))
    assert_ledger_ok()


def test_order_place_reserves_the_base_of_a_sell(market, rich, btc):
    order = place(rich, side="sell", price="100", quantity="1.5")

    assert order.reserved == D("1.5")
    assert balance_of(rich, btc) == (D("98.5"), D("1.5"))
    assert_ledger_ok()


def test_order_place_reserves_the_quote_quantity_of_a_market_buy(market, rich, usd):
    order = place(rich, side="buy", order_type="market", quote_quantity="250.5")

    assert order.reserved == D("250.5")
    assert balance_of(rich, usd)[1] == D("250.5")


def test_order_place_reserves_a_market_buy_by_quantity_from_the_book_with_slippage(
    market, rich, trader, usd, settings
):
    settings.MARKET_ORDER_SLIPPAGE = D("0.05")
    seller = trader(market, btc="10")
    place(seller, side="sell", price="100", quantity="1")
    place(seller, side="sell", price="110", quantity="1")
    drain(market)

    order = place(rich, side="buy", order_type="market", quantity="2")

    assert order.reserved == D("220.50")  # (100 + 110) × 1.05
    # Beyond the book's depth it assumes the worst price seen for the rest.
    deeper = place(rich, side="buy", order_type="market", quantity="3")
    assert deeper.reserved == D("336.00")  # (100 + 110 + 110) × 1.05


def test_order_place_refuses_a_market_buy_with_nothing_to_estimate_from(market, rich):
    before = state()

    with pytest.raises(NoLiquidity):
        place(rich, side="buy", order_type="market", quantity="1")

    assert state() == before


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"price": "100.001", "quantity": "1"}, "INVALID_PRICE_TICK"),
        # 2**63 ticks of 0.01: more than the matcher's 64-bit tick counts hold.
        ({"side": "sell", "price": "92233720368547758.08", "quantity": "1"}, "PRICE_TOO_LARGE"),
        (
            {"order_type": "stop", "side": "sell", "stop_price": "1E+17", "quantity": "1"},
            "PRICE_TOO_LARGE",
        ),
        ({"price": "100", "quantity": "1.000001"}, "INVALID_QUANTITY_STEP"),
        ({"price": "100", "quantity": "0.00001"}, "MIN_NOTIONAL"),
        ({"price": "100", "quantity": "1000.00001"}, "QUANTITY_TOO_LARGE"),
        ({"price": "100"}, "MISSING_FIELD"),
        ({"quantity": "1"}, "MISSING_FIELD"),
        ({"price": "100", "quantity": "1", "stop_price": "90"}, "UNEXPECTED_FIELD"),
        ({"price": "100", "quantity": "1", "quote_quantity": "90"}, "UNEXPECTED_FIELD"),
        ({"order_type": "market", "price": "100", "quantity": "1"}, "UNEXPECTED_FIELD"),
        ({"order_type": "market"}, "MISSING_FIELD"),
        ({"order_type": "market", "quantity": "1", "quote_quantity": "10"}, "UNEXPECTED_FIELD"),
        ({"order_type": "market", "side": "sell", "quote_quantity": "10"}, "UNEXPECTED_FIELD"),
        (
            {"order_type": "market", "quote_quantity": "10", "time_in_force": "FOK"},
            "INVALID_TIME_IN_FORCE",
        ),
        ({"order_type": "market", "quote_quantity": "10.123456789"}, "INVALID_QUOTE_PRECISION"),
        ({"order_type": "market", "quote_quantity": "0.5"}, "MIN_NOTIONAL"),
        ({"order_type": "stop", "quantity": "1"}, "MISSING_FIELD"),
        (
            {"order_type": "stop", "stop_price": "90", "price": "90", "quantity": "1"},
            "UNEXPECTED_FIELD",
        ),
        ({"order_type": "stop", "stop_price": "90.001", "quantity": "1"}, "INVALID_PRICE_TICK"),
        ({"order_type": "stop_limit", "stop_price": "90", "quantity": "1"}, "MISSING_FIELD"),
        (
            {"order_type": "stop_limit", "stop_price": "90", "price": "91", "quote_quantity": "9"},
            "MISSING_FIELD",
        ),
        (
            {
                "price": "100",
                "quantity": "1",
                "post_only": True,
                "order_type": "stop_limit",
                "stop_price": "99",
            },
            "INVALID_POST_ONLY",
        ),
        ({"price": "100", "quantity": "1", "side": "hold"}, "INVALID_SIDE"),
        ({"price": "100", "quantity": "1", "order_type": "iceberg"}, "INVALID_ORDER_TYPE"),
        ({"price": "100", "quantity": "1", "time_in_force": "GTD"}, "INVALID_TIME_IN_FORCE"),
        ({"price": "-100", "quantity": "1"}, "INVALID_NUMBER"),
        ({"price": "100", "quantity": "0"}, "INVALID_NUMBER"),
        ({"price": "NaN", "quantity": "1"}, "INVALID_NUMBER"),
        ({"price": "Infinity", "quantity": "1"}, "INVALID_NUMBER"),
        ({"price": "1e400", "quantity": "1"}, "INVALID_NUMBER"),
        ({"price": "1e-30", "quantity": "1"}, "INVALID_NUMBER"),
        ({"price": "99999999999999999", "quantity": "999"}, "PRICE_TOO_LARGE"),
    ],
)
def test_order_place_refuses_a_broken_order_with_a_precise_code(market, rich, fields, code):
    before = state()

    with pytest.raises(InvalidOrder) as caught:
        services.order_place(user=rich, request=request(**fields))

    assert caught.value.code == code
    assert caught.value.status == 400
    assert state() == before


def test_order_place_refuses_a_quantity_under_the_minimum(market, rich):
    market.min_qty = D("0.001")
    market.save()
    before = state()

    with pytest.raises(InvalidOrder) as caught:
        place(rich, side="buy", price="100", quantity="0.0009")

    assert caught.value.code == "QUANTITY_TOO_SMALL"
    assert caught.value.details == {"min_qty": "0.001"}
    assert state() == before


def test_order_place_refuses_an_unknown_symbol(market, rich):
    before = state()

    with pytest.raises(UnknownSymbol) as caught:
        place(rich, symbol="DOGE-USD", side="buy", price="1", quantity="1")

    assert caught.value.status == 400
    assert state() == before


@pytest.mark.parametrize("symbol", ["BTC-USD", "BTC/USD", "BTC_USD", "btc-usd", " btc/usd "])
def test_order_place_accepts_every_spelling_of_the_symbol(market, rich, symbol):
    order = place(rich, symbol=symbol, side="buy", price="100", quantity="1")

    assert order.market == market


def test_order_place_refuses_more_than_is_available(market, trader, usd):
    poor = trader(market, usd="99.99")
    before = state()

    with pytest.raises(InsufficientBalance) as caught:
        place(poor, side="buy", price="100", quantity="1")

    assert caught.value.status == 422
    assert caught.value.details == {"asset": "USD", "required": "100.00", "available": "99.99"}
    assert state() == before


@pytest.mark.parametrize(
    ("status", "error"),
    [(Market.Status.HALTED, MarketHalted), (Market.Status.CANCEL_ONLY, MarketCancelOnly)],
)
def test_order_place_refuses_orders_on_a_market_not_trading(market, rich, status, error):
    Market.objects.filter(pk=market.pk).update(status=status)
    before = state()

    with pytest.raises(error) as caught:
        place(rich, side="buy", price="100", quantity="1")

    assert caught.value.status == 422
    assert state() == before


def test_order_place_retry_with_the_same_client_order_id_returns_the_first_order(market, rich, usd):
    first, created = services.order_place(
        user=rich, request=request(price="100", quantity="1", client_order_id="abc-1")
    )
    assert created
    before = state()

    again, created_again = services.order_place(
        user=rich, request=request(price="100", quantity="1", client_order_id="abc-1")
    )

    assert (again.pk, created_again) == (first.pk, False)
    assert state() == before
    assert balance_of(rich, usd)[1] == D(100)


def test_client_order_ids_are_per_user(market, rich, trader):
    other = trader(market, usd="1000")
    mine = place(rich, side="buy", price="100", quantity="1", client_order_id="same")

    theirs = place(other, side="buy", price="100", quantity="1", client_order_id="same")

    assert theirs.pk != mine.pk
    assert Order.objects.filter(client_order_id="same").count() == 2


def test_a_market_changed_behind_the_cache_applies_to_the_very_next_order(market, rich, settings):
    """Order entry reuses a market read a moment ago, but the placing statement re-checks
    the rules and status: a change made by another process (no signal here) still counts."""
    settings.ORDER_ENTRY_MARKET_CACHE_SECONDS = 60
    services.order_place(user=rich, request=request(price="100.5", quantity="1"))

    Market.objects.filter(pk=market.pk).update(tick_size=D("1"))
    before = state()
    with pytest.raises(InvalidOrder) as refused:
        services.order_place(user=rich, request=request(price="100.5", quantity="1"))
    assert refused.value.code == "INVALID_PRICE_TICK"
    assert state() == before
    order, _ = services.order_place(user=rich, request=request(price="101", quantity="1"))
    assert order.status == "new"

    Market.objects.filter(pk=market.pk).update(status=Market.Status.HALTED)
    with pytest.raises(MarketHalted):
        services.order_place(user=rich, request=request(price="101", quantity="1"))
    assert Order.objects.count() == 2


def _stored(order_id: int) -> dict:
    row = Order.objects.filter(pk=order_id).values().get()
    return {k: v for k, v in row.items() if k not in ("id", "created_at", "updated_at")}


@pytest.mark.parametrize(
    "fields",
    [
        {"price": "100.5", "quantity": "0.25", "client_order_id": "a/b:c.1"},
        {"side": "sell", "price": "101", "quantity": "1", "post_only": True},
        {"order_type": "market", "quote_quantity": "50"},
        {"order_type": "stop_limit", "stop_price": "90", "price": "89", "quantity": "1"},
        {"price": "99", "quantity": "2", "time_in_force": "IOC"},
    ],
)
def test_a_batch_stores_each_order_exactly_as_a_single_placement_does(market, rich, fields):
    single, _ = services.order_place(user=rich, request=request(**fields))
    if fields.get("client_order_id"):
        fields = {**fields, "client_order_id": fields["client_order_id"] + "-batch"}
    ((batched, created),) = services.order_place_batch(user=rich, requests=[request(**fields)])

    assert created
    expected = {**_stored(single.pk), "client_order_id": fields.get("client_order_id")}
    assert _stored(batched.pk) == expected
    assert batched.created_at == Order.objects.get(pk=batched.pk).created_at
    command = OrderCommand.objects.get(order_id=batched.pk)
    assert (command.kind, command.market_id, command.processed_at) == ("place", market.pk, None)
    reserve = LedgerEntry.objects.get(reference_id=batched.pk, kind=LedgerKind.ORDER_RESERVE)
    assert reserve.locked_delta == batched.reserved == single.reserved
    assert_ledger_ok()


def test_a_batch_commands_follow_the_batch_order(market, rich):
    requests = [request(price=str(100 + n), quantity="0.1") for n in range(20)]

    placed = services.order_place_batch(user=rich, requests=requests)

    order_ids = [order.pk for order, _ in placed]
    commands = list(OrderCommand.objects.order_by("id").values_list("order_id", flat=True))
    assert commands == order_ids == sorted(order_ids)
    prices = list(Order.objects.order_by("id").values_list("price", flat=True))
    assert prices == [D(100 + n) for n in range(20)]

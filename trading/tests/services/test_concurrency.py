"""Concurrent order entry, each caller on its own PostgreSQL connection."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from trading import services
from trading.models import Order, OrderCommand
from trading.tests.helpers import assert_ledger_ok, balance_of, run_concurrently
from wallets.exceptions import InsufficientBalance
from wallets.models import LedgerEntry, LedgerKind

pytestmark = pytest.mark.django_db(transaction=True)

D = Decimal


def test_concurrent_retries_with_one_client_order_id_create_one_order(market, trader, usd):
    user = trader(market, usd="1000")
    request = services.OrderRequest(
        symbol="BTC-USD",
        side="buy",
        order_type="limit",
        price=D(100),
        quantity=D(1),
        client_order_id="same-id",
    )

    results = run_concurrently(12, lambda i: services.order_place(user=user, request=request))

    assert all(isinstance(r, tuple) for r in results), results
    assert len({order.pk for order, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert Order.objects.count() == 1
    assert OrderCommand.objects.count() == 1
    assert LedgerEntry.objects.filter(kind=LedgerKind.ORDER_RESERVE).count() == 1
    assert balance_of(user, usd) == (D(900), D(100))
    assert_ledger_ok()


def test_concurrent_orders_never_reserve_more_than_is_available(market, trader, usd):
    user = trader(market, usd="750")

    results = run_concurrently(
        10,
        lambda i: services.order_place(
            user=user,
            request=services.OrderRequest(
                symbol="BTC-USD", side="buy", order_type="limit", price=D(100), quantity=D(1)
            ),
        ),
    )

    assert sum(isinstance(r, tuple) for r in results) == 7
    assert sum(isinstance(r, InsufficientBalance) for r in results) == 3
    assert Order.objects.count() == 7
    assert balance_of(user, usd) == (D(50), D(700))
    assert_ledger_ok()


def _resting_order(user) -> Order:
    order, _ = services.order_place(
        user=user,
        request=services.OrderRequest(
            symbol="BTC-USD", side="buy", order_type="limit", price=D(100), quantity=D(1)
        ),
    )
    return order


def test_concurrent_cancels_of_one_order_queue_one_cancel(market, trader, usd):
    user = trader(market, usd="1000")
    order = _resting_order(user)

    results = run_concurrently(8, lambda i: services.order_cancel(user=user, order_id=order.pk))

    assert all(isinstance(r, Order) and r.pk == order.pk for r in results), results
    assert OrderCommand.objects.filter(order=order, kind="cancel").count() == 1


def test_cancel_all_racing_single_cancels_queues_one_cancel_per_order(market, trader, usd):
    user = trader(market, usd="1000")
    orders = [_resting_order(user) for _ in range(3)]

    def work(i):
        if i % 2:
            return services.order_cancel_all(user=user)
        return services.order_cancel(user=user, order_id=orders[i % 3].pk)

    results = run_concurrently(8, work)

    assert not [r for r in results if isinstance(r, Exception)], results
    for order in orders:
        assert OrderCommand.objects.filter(order=order, kind="cancel").count() == 1


def test_the_database_refuses_a_second_pending_cancel(market, trader, usd):
    user = trader(market, usd="1000")
    order = _resting_order(user)
    services.order_cancel(user=user, order_id=order.pk)

    with pytest.raises(IntegrityError), transaction.atomic():
        OrderCommand.objects.create(market=market, order=order, kind="cancel")

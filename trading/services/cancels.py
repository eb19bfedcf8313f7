"""Cancels: queue cancel commands for the matcher, which decides and releases the funds
(ARCHITECTURE §3): by the owner, by an operator, and for a frozen account (the freeze hook).
"""

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.audit import operator_actions_record, reason_require
from accounts.models import User
from exchange_site.db import row_to_instances
from trading.exceptions import (
    MarketHalted,
    OrderNotCancellable,
    OrderNotFound,
)
from trading.matcher.wakeup import matcher_wake, matcher_wake_soon
from trading.models import Market, Order, OrderCommand
from trading.selectors import (
    market_get_by_symbol,
)
from wallets.models import Asset


def order_cancel(*, user: User, order_id: int) -> Order:
    """Queue a cancel of the user's live order; the matcher decides and releases the reserve.

    Commands are consumed in order, so a cancel of an order the matcher has not placed yet
    still lands after its place. Raises ``OrderNotFound`` (404, also for another user's
    order), ``OrderNotCancellable`` (409) when it is already done, ``MarketHalted`` (422).
    A second cancel of the same order queues nothing more: at most one cancel per order is
    pending (a partial unique index). Locks the order row. The lock, the checks and the
    insert are one statement (``_cancel_in_one_statement``); the matcher is woken after it.
    """
    order, queued = _cancel_in_one_statement(user.pk, order_id)
    _cancel_checks(order, order_id)
    if queued:
        symbol = order.market.symbol
        transaction.on_commit(lambda: matcher_wake_soon(symbol))
    return order


def _cancel_checks(order: Order | None, order_id: int) -> None:
    if order is None:
        raise OrderNotFound(details={"order_id": order_id})
    if not order.is_live:
        raise OrderNotCancellable(details={"order_id": order.pk, "status": order.status})
    if order.market.status == Market.Status.HALTED:
        raise MarketHalted(details={"symbol": order.market.symbol})


def _cancel_sql() -> str:
    """The cancel statement: lock the order row, and insert the cancel command only if the
    order is live, its market not halted and no cancel is pending. Every column of the
    order, its market and the market's assets comes back, aliased ``c0``, ``c1``, ...

    The lock is FOR NO KEY UPDATE, like the matcher's own UPDATE of the row: it orders the
    cancel with the matcher and with other cancels of the order, and does not block the
    foreign-key checks (FOR KEY SHARE) of another transaction's pending cancel for it,
    which this statement may be waiting for in the unique index: FOR UPDATE deadlocked
    there against ``order_cancel_all``."""
    tables = [("o", Order), ("m", Market), ("b", Asset), ("q", Asset)]
    columns = [(alias, field) for alias, model in tables for field in model._meta.concrete_fields]
    select = ", ".join(
        f'{alias}."{field.column}" AS c{n}' for n, (alias, field) in enumerate(columns)
    )
    position = {(alias, field.name): f"c{n}" for n, (alias, field) in enumerate(columns)}
    command = OrderCommand._meta
    return (
        f"WITH target AS (SELECT {select} FROM {Order._meta.db_table} AS o "
        f"JOIN {Market._meta.db_table} AS m ON m.id = o.market_id "
        f"JOIN {Asset._meta.db_table} AS b ON b.id = m.base_asset_id "
        f"JOIN {Asset._meta.db_table} AS q ON q.id = m.quote_asset_id "
        "WHERE o.id = %s AND o.user_id = %s FOR NO KEY UPDATE OF o), "
        f"cmd AS (INSERT INTO {command.db_table} (market_id, order_id, kind, created_at) "
        f"SELECT {position['o', 'market']}, {position['o', 'id']}, %s, %s FROM target "
        f"WHERE {position['o', 'status']} = ANY(%s) AND {position['m', 'status']} <> %s "
        "ON CONFLICT (order_id) WHERE kind = 'cancel' AND processed_at IS NULL DO NOTHING "
        "RETURNING 1) "
        "SELECT target.*, EXISTS (SELECT 1 FROM cmd) FROM target"
    )


_CANCEL_SQL: str | None = None


def _cancel_in_one_statement(user_id: int, order_id: int) -> tuple[Order | None, bool]:
    """(the order as locked, whether a cancel was queued); (None, False) when the user has
    no such order. The row lock waits for a matcher batch that is updating the order, and
    the order then comes back as that batch left it."""
    global _CANCEL_SQL
    if _CANCEL_SQL is None:
        _CANCEL_SQL = _cancel_sql()
    params = [
        order_id,
        user_id,
        OrderCommand.Kind.CANCEL,
        timezone.now(),
        list(Order.LIVE),
        Market.Status.HALTED,
    ]
    with connection.cursor() as cursor:
        cursor.execute(_CANCEL_SQL, params)
        row = cursor.fetchone()
    if row is None:
        return None, False
    order, market, market.base_asset, market.quote_asset = row_to_instances(
        (Order, Market, Asset, Asset), row[:-1]
    )
    order.market = market
    return order, row[-1]


@transaction.atomic
def order_cancel_all(*, user: User, symbol: str | None = None) -> list[int]:
    """Queue cancels for every live order of the user (in one market when ``symbol``).

    Returns the ids of the orders a cancel was queued for. Halted markets are skipped.
    """
    # In id order: the cancels are inserted in that order, so two callers cancelling some of
    # the same orders wait on each other's pending-cancel index entries in the same order
    # and cannot deadlock.
    orders = (
        Order.objects.filter(user=user, status__in=Order.LIVE)
        .select_related("market")
        .order_by("id")
    )
    if symbol:
        orders = orders.filter(market=market_get_by_symbol(symbol=symbol))
    orders = orders.exclude(market__status=Market.Status.HALTED)
    pending = set(
        OrderCommand.objects.filter(
            order__in=orders, kind=OrderCommand.Kind.CANCEL, processed_at__isnull=True
        ).values_list("order_id", flat=True)
    )
    commands = [
        OrderCommand(market_id=order.market_id, order=order, kind=OrderCommand.Kind.CANCEL)
        for order in orders
        if order.pk not in pending
    ]
    # A cancel of one of these that raced in since the read above is already pending.
    OrderCommand.objects.bulk_create(commands, ignore_conflicts=True)
    for market_symbol in {command.order.market.symbol for command in commands}:
        transaction.on_commit(lambda s=market_symbol: matcher_wake(s))
    return [command.order_id for command in commands]


@transaction.atomic
def orders_cancel_queue(*, orders: QuerySet[Order]) -> list[int]:
    """Queue a cancel command for each live order in ``orders`` that has none pending, in
    any market status (in a halted market it runs when the market resumes); the matcher
    cancels them and releases their funds. For operator paths: no ownership check.

    Locks the orders' rows in id order (as ``order_cancel`` does for one). Returns the ids
    of the orders a cancel was queued for.
    """
    live = list(
        orders.filter(status__in=Order.LIVE)
        .select_for_update(of=("self",), no_key=True)
        .order_by("id")
        .values_list("id", "market_id", "market__symbol")
    )
    pending = set(
        OrderCommand.objects.filter(
            order_id__in=[order_id for order_id, _, _ in live],
            kind=OrderCommand.Kind.CANCEL,
            processed_at__isnull=True,
        ).values_list("order_id", flat=True)
    )
    queue = [row for row in live if row[0] not in pending]
    OrderCommand.objects.bulk_create(
        OrderCommand(market_id=market_id, order_id=order_id, kind=OrderCommand.Kind.CANCEL)
        for order_id, market_id, _ in queue
    )
    for symbol in {symbol for _, _, symbol in queue}:
        transaction.on_commit(lambda s=symbol: matcher_wake(s))
    return [order_id for order_id, _, _ in queue]


def user_orders_cancel_queue(*, user: User) -> list[int]:
    """The freeze hook (``accounts.hooks``, registered in ``TradingConfig.ready``): a frozen
    user's live orders get cancel commands, inside the freeze's transaction. Returns the
    ids of the orders a cancel was queued for (kept in the freeze's audit record)."""
    return orders_cancel_queue(orders=Order.objects.filter(user=user))


@transaction.atomic
def orders_cancel_by_operator(*, order_ids: list[int], actor: User, reason: str) -> list[int]:
    """An operator cancels orders: cancel commands are queued (never an edit of the order
    rows); the matcher cancels and releases the funds. Orders already done or with a cancel
    pending are skipped. Each queued cancel is recorded in the audit trail. Returns the ids
    of the orders a cancel was queued for. Raises ``ValidationError`` without a reason."""
    reason = reason_require(reason)
    queued = orders_cancel_queue(orders=Order.objects.filter(pk__in=order_ids))
    operator_actions_record(
        actor=actor,
        action="order_cancel",
        targets=Order.objects.filter(pk__in=queued).order_by("id"),
        reason=reason,
    )
    return queued

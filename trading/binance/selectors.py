"""Reads the Binance API needs beyond ``trading.selectors`` and ``marketdata.selectors``:
symbols without a separator, trade ranges by id and time, per-order fills, and waiting for
the matcher to settle an order before answering (Binance answers after matching)."""

import re
import time
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Max, Min, Q, QuerySet, Sum

from accounts.models import User
from exchange_site.db_router import replica_safe
from marketdata.models import INTERVAL_SECONDS
from trading.binance.errors import invalid_symbol
from trading.models import Market, Order, OrderCommand, OrderList, Trade
from trading.selectors import order_list_for_user, trade_list_for_user

_SEPARATORS = re.compile(r"[-_/]")
# The reason of an OCO leg ended by its sibling (the engine's ``oco_other_leg``).
OCO_OTHER_LEG = "oco_other_leg"


def binance_symbol(symbol: str) -> str:
    """``BTC-USD`` → ``BTCUSD``."""
    return symbol.replace("-", "")


def market_list() -> list[Market]:
    return list(Market.objects.select_related("base_asset", "quote_asset").order_by("symbol"))


def market_get_by_binance_symbol(*, symbol: str | None) -> Market:
    """The market of ``BTCUSD`` (``BTC-USD`` and ``btcusd`` are read the same way).
    Raises -1121 ``Invalid symbol``."""
    wanted = _SEPARATORS.sub("", (symbol or "").strip().upper())
    if not wanted or len(wanted) > 30:
        raise invalid_symbol()
    for market in market_list():
        if binance_symbol(market.symbol) == wanted:
            return market
    raise invalid_symbol()


def from_millis(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


# --- public trades ------------------------------------------------------------------------


@replica_safe
def trade_list_range(
    *,
    market: Market,
    limit: int,
    from_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[Trade]:
    """Trades oldest first: from ``from_id`` on, or within [start, end], else the latest.
    Public history: from a read replica when one is fit (``exchange_site.db_router``)."""
    trades = Trade.objects.filter(market=market)
    if from_id is not None:
        return list(trades.filter(id__gte=from_id).order_by("id")[:limit])
    if start is not None:
        trades = trades.filter(created_at__gte=start)
    if end is not None:
        trades = trades.filter(created_at__lte=end)
    if start is not None:
        return list(trades.order_by("id")[:limit])
    return list(trades.order_by("-id")[:limit])[::-1]


@replica_safe
def trade_average_price(*, market: Market, since_ms: int) -> tuple[Decimal | None, int]:
    """Binance's ``avgPrice``: the volume-weighted price of the trades since ``since_ms`` (None
    when there were none) and the time of the market's last trade in ms (0 when none)."""
    window = Trade.objects.filter(market=market, created_at__gte=from_millis(since_ms))
    sums = window.aggregate(quote=Sum("quote_quantity"), base=Sum("quantity"))
    last = Trade.objects.filter(market=market).order_by("-id").values_list("created_at", flat=True)
    last_at = last.first()
    close_ms = int(last_at.timestamp() * 1000) if last_at else 0
    if not sums["base"]:
        return None, close_ms
    return sums["quote"] / sums["base"], close_ms


@replica_safe
def trade_window_stats(*, market: Market, since_ms: int) -> dict:
    """First and last trade id since ``since_ms`` and the last trade's quantity."""
    window = Trade.objects.filter(market=market, created_at__gte=from_millis(since_ms))
    ids = window.aggregate(first=Min("id"), last=Max("id"))
    last_qty = None
    if ids["last"] is not None:
        last_qty = Trade.objects.filter(pk=ids["last"]).values_list("quantity", flat=True)[0]
    return {"first_id": ids["first"], "last_id": ids["last"], "last_qty": last_qty}


@replica_safe
def taker_buy_volumes(
    *, market: Market, interval: str, open_times_ms: list[int]
) -> dict[int, tuple]:
    """Per candle open time (ms): the base and quote volume of trades whose taker bought.

    Candles do not keep this split, so it is summed from the trades of the requested range.
    """
    if not open_times_ms:
        return {}
    step_ms = INTERVAL_SECONDS[interval] * 1000
    start, end = from_millis(min(open_times_ms)), from_millis(max(open_times_ms) + step_ms)
    rows = (
        Trade.objects.filter(
            market=market,
            taker_side=Order.Side.BUY,
            created_at__gte=start,
            created_at__lt=end,
        )
        .values_list("created_at", "quantity", "quote_quantity")
        .iterator(chunk_size=2000)
    )
    volumes: dict[int, list] = {}
    for created_at, quantity, quote in rows:
        moment = int(created_at.timestamp() * 1000)
        bucket = moment - moment % step_ms
        entry = volumes.setdefault(bucket, [0, 0])
        entry[0] += quantity
        entry[1] += quote
    return {bucket: tuple(values) for bucket, values in volumes.items()}


# --- the caller's orders and trades ------------------------------------------------------


def order_find_for_user(
    *, user: User, market: Market, order_id: int | None, client_order_id: str | None
) -> Order | None:
    orders = order_list_for_user(user=user).filter(market=market)
    if order_id is not None:
        orders = orders.filter(pk=order_id)
    if client_order_id is not None:
        orders = orders.filter(client_order_id=client_order_id)
    order = orders.first()
    if order is not None:
        orders_mark_list_cancels([order])
    return order


def orders_mark_list_cancels(orders: list[Order]) -> list[Order]:
    """Mark (``list_cancelled``) each OCO leg ended by its sibling whose sibling was
    cancelled by its owner: Binance shows such a leg CANCELED, and one whose sibling filled or
    triggered EXPIRED (``formatters.order_status``). One query for the lot."""
    ended = [order for order in orders if order.reason == OCO_OTHER_LEG and order.order_list_id]
    if not ended:
        return orders
    cancelled_lists = set(
        Order.objects.filter(
            order_list_id__in={order.order_list_id for order in ended},
            status=Order.Status.CANCELLED,
        )
        .exclude(reason=OCO_OTHER_LEG)
        .values_list("order_list_id", flat=True)
    )
    for order in ended:
        order.list_cancelled = order.order_list_id in cancelled_lists
    return orders


def order_list_range(
    *,
    user: User,
    market: Market | None,
    live_only: bool = False,
    from_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
) -> list[Order]:
    """The user's orders oldest first: from ``from_id`` on, within [start, end], or the
    latest ``limit``."""
    orders = order_list_for_user(user=user).select_related("market__base_asset")
    if market is not None:
        orders = orders.filter(market=market)
    if live_only:
        orders = orders.filter(status__in=Order.LIVE)
    if from_id is not None:
        orders = orders.filter(pk__gte=from_id)
    if start is not None:
        orders = orders.filter(created_at__gte=start)
    if end is not None:
        orders = orders.filter(created_at__lte=end)
    if limit is None:
        found = list(orders.order_by("id"))
    elif from_id is not None or start is not None:
        found = list(orders.order_by("id")[:limit])
    else:
        found = list(orders.order_by("-id")[:limit])[::-1]
    return orders_mark_list_cancels(found)


def trade_list_for_user_range(
    *,
    user: User,
    market: Market,
    limit: int,
    order_id: int | None = None,
    from_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[Trade]:
    trades = trade_list_for_user(user=user).filter(market=market)
    if order_id is not None:
        trades = trades.filter(Q(buy_order_id=order_id) | Q(sell_order_id=order_id))
    if from_id is not None:
        return list(trades.filter(id__gte=from_id).order_by("id")[:limit])
    if start is not None:
        trades = trades.filter(created_at__gte=start)
    if end is not None:
        trades = trades.filter(created_at__lte=end)
    if start is not None:
        return list(trades.order_by("id")[:limit])
    return list(trades.order_by("-id")[:limit])[::-1]


def order_fills(*, order: Order) -> QuerySet[Trade]:
    side_filter = {"buy_order": order} if order.side == Order.Side.BUY else {"sell_order": order}
    return Trade.objects.filter(**side_filter).order_by("id")


def orders_wait_settled(*, order_ids: list[int], kind: str | None) -> list[Order]:
    """Wait (up to ``BINANCE_ORDER_WAIT_MS``) until the matcher has run each order's pending
    ``kind`` command (any kind when None), then return the orders as they are. Binance
    answers an order or a cancel after matching; here the matcher runs apart, usually within
    milliseconds. Polls the command rows with a growing pause (1 ms up to 50 ms); returns the
    current state when the time is up, so a stopped matcher delays answers but never fails
    them."""
    deadline = time.monotonic() + settings.BINANCE_ORDER_WAIT_MS / 1000
    pause = 0.001
    pending = OrderCommand.objects.filter(order_id__in=order_ids, processed_at__isnull=True)
    if kind is not None:
        pending = pending.filter(kind=kind)
    while order_ids and pending.exists() and time.monotonic() < deadline:
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, 0.05)
    orders = Order.objects.select_related(
        "market", "market__base_asset", "market__quote_asset"
    ).filter(pk__in=order_ids)
    return orders_mark_list_cancels(sorted(orders, key=lambda order: order.pk))


# --- the caller's order lists (OCO) --------------------------------------------------------


def order_list_find_for_user(
    *,
    user: User,
    list_id: int | None,
    client_list_id: str | None,
    market: Market | None = None,
) -> OrderList | None:
    """The user's order list by id and/or client id (both must match when both are given)."""
    lists = OrderList.objects.select_related("market").filter(user=user)
    if market is not None:
        lists = lists.filter(market=market)
    if list_id is not None:
        lists = lists.filter(pk=list_id)
    if client_list_id is not None:
        lists = lists.filter(client_list_id=client_list_id)
    return lists.order_by("-id").first()


def order_list_ids(*, order_ids) -> dict[int, int]:
    """The order list of each of ``order_ids`` that is in one."""
    return dict(
        Order.objects.filter(pk__in=list(order_ids), order_list__isnull=False).values_list(
            "pk", "order_list_id"
        )
    )


def trade_order_list_ids(*, trades, user_id: int) -> dict[int, int]:
    """For ``user_id``'s side of each of ``trades``: the order list of its order, where that
    order is in one (``myTrades``' ``orderListId``, REST and WebSocket API alike)."""
    return order_list_ids(
        order_ids={
            trade.buy_order_id if trade.buyer_id == user_id else trade.sell_order_id
            for trade in trades
        }
    )


def order_lists_by_id(*, ids) -> dict[int, OrderList]:
    return {
        order_list.pk: order_list
        for order_list in OrderList.objects.select_related("market").filter(pk__in=list(ids))
    }


def order_lists_range(
    *,
    user: User,
    open_only: bool = False,
    from_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
) -> list[OrderList]:
    """The user's order lists oldest first, like ``order_list_range`` for orders."""
    lists = OrderList.objects.select_related("market").filter(user=user)
    if open_only:
        lists = lists.filter(status=OrderList.Status.EXECUTING)
    if from_id is not None:
        lists = lists.filter(pk__gte=from_id)
    if start is not None:
        lists = lists.filter(created_at__gte=start)
    if end is not None:
        lists = lists.filter(created_at__lte=end)
    if limit is None:
        return list(lists.order_by("id"))
    if from_id is not None or start is not None:
        return list(lists.order_by("id")[:limit])
    return list(lists.order_by("-id")[:limit])[::-1]


def order_list_legs(*, order_lists: list[OrderList]) -> dict[int, list[Order]]:
    """Each list's orders by id, in one query."""
    legs: dict[int, list[Order]] = {order_list.pk: [] for order_list in order_lists}
    orders = (
        Order.objects.select_related("market", "market__base_asset", "market__quote_asset")
        .filter(order_list_id__in=list(legs))
        .order_by("id")
    )
    for order in orders_mark_list_cancels(list(orders)):
        legs[order.order_list_id].append(order)
    return legs


def order_list_wait_settled(
    *, order_list: OrderList, kind: str | None = None
) -> tuple[OrderList, list[Order]]:
    """``orders_wait_settled`` for the legs of a list; the list and its legs as they are."""
    order_ids = list(
        Order.objects.filter(order_list=order_list).order_by("id").values_list("id", flat=True)
    )
    legs = orders_wait_settled(order_ids=order_ids, kind=kind)
    order_list.refresh_from_db()
    return order_list, legs

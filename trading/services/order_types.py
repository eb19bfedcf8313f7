"""OCO order lists, amends that keep priority, and cancel-replace (ARCHITECTURE §5).

Like every order write, these only queue commands; the matcher decides. An OCO is one
``OrderList`` with two orders (a post-only limit leg and a stop or stop-limit leg) holding
one reserve between them, queued as one ``place_list`` command naming the limit leg, which
the matcher turns into the engine's ``PlaceOco``.
"""

import time
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, connection, transaction

from accounts.exceptions import AccountFrozen
from accounts.models import User
from exchange_site.decimals import decimal_to_str
from exchange_site.exceptions import ExchangeError
from exchange_site.metrics import orders_refused
from trading.exceptions import (
    CancelPending,
    DuplicateClientOrderId,
    InvalidOrder,
    MarketHalted,
    OrderNotAmendable,
    OrderNotCancellable,
    OrderNotFound,
)
from trading.matcher.wakeup import matcher_wake_soon
from trading.models import Market, Order, OrderCommand, OrderList
from trading.selectors import normalize_symbol
from trading.services.cancels import order_cancel
from trading.services.orders import (
    OrderRequest,
    _accept,
    _Accepted,
    _after_commit,
    _market_for_order,
    _reserve_change,
    order_place,
)
from wallets.models import AMOUNT_QUANTUM, ZERO
from wallets.services import balance_changes_apply


@dataclass(frozen=True)
class OcoRequest:
    """An OCO pair as a client asks for it, parsed into Decimals (None where not given).

    The limit leg is a post-only GTC limit order at ``limit_price`` (Binance's
    LIMIT_MAKER), optionally an iceberg. The stop leg is a stop-limit order at
    ``stop_limit_price`` with ``stop_time_in_force`` when that is given, else a stop-market
    order; it triggers at ``stop_price``, or trails by ``trailing_delta`` (then
    ``stop_price`` is optional: the activation price)."""

    symbol: str
    side: str
    quantity: Decimal
    limit_price: Decimal
    stop_price: Decimal | None = None
    stop_limit_price: Decimal | None = None
    stop_time_in_force: str = Order.TimeInForce.GTC
    trailing_delta: int | None = None
    limit_iceberg_quantity: Decimal | None = None
    list_client_id: str | None = None
    limit_client_order_id: str | None = None
    stop_client_order_id: str | None = None


def oco_leg_requests(request: OcoRequest) -> tuple[OrderRequest, OrderRequest]:
    """The two orders of an OCO, as order entry validates them: (limit leg, stop leg)."""
    limit = OrderRequest(
        symbol=request.symbol,
        side=request.side,
        order_type=Order.Type.LIMIT,
        quantity=request.quantity,
        price=request.limit_price,
        post_only=True,
        iceberg_quantity=request.limit_iceberg_quantity,
        client_order_id=request.limit_client_order_id,
    )
    stop_limit = request.stop_limit_price is not None
    stop = OrderRequest(
        symbol=request.symbol,
        side=request.side,
        order_type=Order.Type.STOP_LIMIT if stop_limit else Order.Type.STOP,
        quantity=request.quantity,
        price=request.stop_limit_price,
        stop_price=request.stop_price,
        time_in_force=request.stop_time_in_force if stop_limit else Order.TimeInForce.GTC,
        trailing_delta=request.trailing_delta,
        client_order_id=request.stop_client_order_id,
    )
    return limit, stop


def _check_oco_prices(request: OcoRequest) -> None:
    """Binance's price relationship, as far as it does not depend on the market: a sell
    takes profit above its stop (limit > stop), a buy below it (limit < stop). Where the
    last price lies is the engine's to judge: a limit leg that would take or a stop leg
    that would trigger at once gets both legs rejected."""
    if request.stop_price is None or request.limit_price is None:
        return
    if request.side == Order.Side.SELL and not request.limit_price > request.stop_price:
        message = "A sell OCO needs limit_price above stop_price."
    elif request.side == Order.Side.BUY and not request.limit_price < request.stop_price:
        message = "A buy OCO needs limit_price below stop_price."
    else:
        return
    raise InvalidOrder(
        "INVALID_OCO_PRICES", message, details={"fields": ["limit_price", "stop_price"]}
    )


def oco_place(*, user: User, request: OcoRequest) -> OrderList:
    """Accept an OCO: validate both legs as order entry does, reserve once for the pair,
    store the list, its two orders and ONE ``place_list`` command. Returns the OrderList
    (status executing; its legs are ``order_list.orders``), with ``created`` set: False
    for a retry.

    The pair reserves the larger of its legs' reserves (a sell: its quantity; a buy: the
    larger of limit price × quantity and the stop leg's reserve, see ``order_place``), kept
    on the limit leg's ``Order.reserved``; the matcher moves it to the stop leg if that
    triggers, and a fill of the limit leg cancels the stop leg, which holds nothing.

    A retry with a ``list_client_id`` already used returns the first list, reserving
    nothing more. Raises what ``order_place`` raises for either leg (``InvalidOrder``
    400, ``UnknownSymbol`` 400, ``MarketHalted`` / ``MarketCancelOnly`` / ``NoLiquidity``
    / ``InsufficientBalance`` 422, ``AccountFrozen`` 403), ``InvalidOrder``
    INVALID_OCO_PRICES (400) when limit and stop prices are the wrong way round, and
    ``DuplicateClientOrderId`` (409) when a leg's client order id is already used.
    One transaction; locks the user's balance row of the reserved asset.
    """
    if user.is_frozen:
        orders_refused(AccountFrozen.code).inc()
        raise AccountFrozen()
    try:
        try:
            return _oco_place(user=user, request=request)
        except IntegrityError:
            # A concurrent retry stored the same list or leg client id first.
            existing = _list_by_client_id(user, request.list_client_id)
            if existing is not None:
                existing.created = False
                return existing
            raise DuplicateClientOrderId() from None
    except ExchangeError as exc:
        orders_refused(exc.code).inc()
        raise


def _list_by_client_id(user: User, client_list_id: str | None) -> OrderList | None:
    if not client_list_id:
        return None
    return OrderList.objects.filter(user=user, client_list_id=client_list_id).first()


@transaction.atomic
def _oco_place(*, user: User, request: OcoRequest) -> OrderList:
    existing = _list_by_client_id(user, request.list_client_id)
    if existing is not None:
        existing.created = False
        return existing
    market = _market_for_order(request.symbol)
    limit_request, stop_request = oco_leg_requests(request)
    limit = _accept(user, market, limit_request)
    stop = _accept(user, market, stop_request)
    _check_oco_prices(request)
    client_ids = [cid for cid in (limit.order.client_order_id, stop.order.client_order_id) if cid]
    if len(set(client_ids)) != len(client_ids) or (
        client_ids and Order.objects.filter(user=user, client_order_id__in=client_ids).exists()
    ):
        raise DuplicateClientOrderId(details={"client_order_ids": client_ids})
    reserve = max(limit.reserve, stop.reserve)
    order_list = OrderList.objects.create(
        user=user, market=market, client_list_id=request.list_client_id or None
    )
    limit.order.order_list = stop.order.order_list = order_list
    limit.order.reserved, stop.order.reserved = reserve, ZERO
    limit.order.save(force_insert=True)
    stop.order.save(force_insert=True)
    holder = _Accepted(limit.order, limit.asset, reserve)
    balances = balance_changes_apply(changes=[_reserve_change(holder)], publish=False)
    OrderCommand.objects.create(market=market, order=limit.order, kind=OrderCommand.Kind.PLACE_LIST)
    _after_commit([holder], balances)
    order_list.created = True
    return order_list


def _amend_invalid(message: str, **details) -> InvalidOrder:
    return InvalidOrder("INVALID_QUANTITY", message, details={"field": "quantity", **details})


@transaction.atomic
def order_amend(*, user: User, order_id: int, quantity: Decimal) -> Order:
    """Reduce a live order's quantity to ``quantity`` (its new TOTAL, Binance's newQty),
    keeping its time priority: queues an ``amend`` command; the matcher applies it and
    releases the reserve the smaller order no longer needs. An OCO leg's amend reduces
    both legs. Returns the order as it stands (the quantity changes when the matcher runs).

    ``quantity`` must be a multiple of the lot size, more than the filled quantity, less
    than the current quantity and, for an iceberg (or an OCO whose limit leg is one), more
    than its ``iceberg_quantity``. Raises ``OrderNotFound`` (404, also for another user's
    order), ``OrderNotAmendable`` (409: done, or sized by quote_quantity), ``InvalidOrder``
    (400: INVALID_NUMBER, INVALID_QUANTITY_STEP, INVALID_QUANTITY), ``MarketHalted``
    (422). Locks the order row FOR NO KEY UPDATE (like ``order_cancel``). If the order
    fills past ``quantity`` before the matcher runs the amend, the amend changes nothing.
    """
    order = (
        Order.objects.select_for_update(of=("self",), no_key=True)
        .select_related("market")
        .filter(pk=order_id, user=user)
        .first()
    )
    if order is None:
        raise OrderNotFound(details={"order_id": order_id})
    if not order.is_live:
        raise OrderNotAmendable(
            "The order is already done.", details={"order_id": order.pk, "status": order.status}
        )
    if order.quantity is None:
        raise OrderNotAmendable(
            "An order sized by quote_quantity has no quantity to amend.",
            details={"order_id": order.pk},
        )
    market = order.market
    if market.status == Market.Status.HALTED:
        raise MarketHalted(details={"symbol": market.symbol})
    if not quantity.is_finite() or quantity <= 0:
        raise InvalidOrder(
            "INVALID_NUMBER", "quantity must be a positive number.", details={"field": "quantity"}
        )
    if quantity.adjusted() >= 18 or quantity != quantity.quantize(AMOUNT_QUANTUM):
        raise InvalidOrder(
            "INVALID_NUMBER",
            "quantity is too large or has over 18 decimal places.",
            details={"field": "quantity"},
        )
    if quantity % market.lot_size:
        raise InvalidOrder(
            "INVALID_QUANTITY_STEP",
            f"quantity must be a multiple of {decimal_to_str(market.lot_size)}.",
            details={"field": "quantity", "step": decimal_to_str(market.lot_size)},
        )
    if quantity >= order.quantity:
        raise _amend_invalid(
            "An amend can only reduce the quantity.", quantity=decimal_to_str(order.quantity)
        )
    if quantity <= order.filled_quantity:
        raise _amend_invalid(
            "The new quantity must be more than the filled quantity.",
            filled_quantity=decimal_to_str(order.filled_quantity),
        )
    icebergs = [order.iceberg_quantity]
    if order.order_list_id is not None:
        icebergs += Order.objects.filter(order_list_id=order.order_list_id).values_list(
            "iceberg_quantity", flat=True
        )
    for iceberg in icebergs:
        if iceberg is not None and quantity <= iceberg:
            raise _amend_invalid(
                "An iceberg's quantity must stay above its iceberg_quantity.",
                iceberg_quantity=decimal_to_str(iceberg),
            )
    OrderCommand.objects.create(
        market_id=order.market_id, order=order, kind=OrderCommand.Kind.AMEND, quantity=quantity
    )
    symbol = market.symbol
    transaction.on_commit(lambda: matcher_wake_soon(symbol))
    return order


CANCEL_REPLACE_MODES = ("STOP_ON_FAILURE", "ALLOW_FAILURE")
CANCEL_REPLACE_WAIT_SECONDS = 5.0
_POLL_SECONDS = 0.01


@dataclass(frozen=True)
class CancelReplaceResult:
    """What ``order_cancel_replace`` did: each half's order or the error that refused it
    (``placed`` and ``place_error`` both None: the place was not tried)."""

    cancelled: Order | None
    cancel_error: ExchangeError | None
    placed: Order | None
    place_error: ExchangeError | None


def order_cancel_replace(
    *,
    user: User,
    order_id: int,
    request: OrderRequest,
    mode: str = "STOP_ON_FAILURE",
    wait_seconds: float = CANCEL_REPLACE_WAIT_SECONDS,
) -> CancelReplaceResult:
    """Cancel an order and place a new one in its market (Binance's cancelReplace).

    Queues the cancel (``order_cancel``), waits up to ``wait_seconds`` for the matcher to
    settle it, then places ``request`` with ``order_place``: with STOP_ON_FAILURE only if
    the cancel succeeded, with ALLOW_FAILURE either way. The cancel fails with
    ``order_cancel``'s errors, ``OrderNotCancellable`` (409) when the order filled or
    expired before the cancel ran, or ``CancelPending`` (503) when the matcher did not
    settle it in time (the cancel stays queued). The place fails with ``order_place``'s
    errors. Neither failure is raised: both are in the result. Raises ``InvalidOrder``
    (400, INVALID_MODE / SYMBOL_MISMATCH) before doing anything when ``mode`` is unknown
    or ``request`` names another market.

    Must run outside a transaction: the matcher has to see the committed cancel. Each
    half is its own transaction (``order_cancel``'s row lock, then ``order_place``'s).
    """
    if mode not in CANCEL_REPLACE_MODES:
        raise InvalidOrder(
            "INVALID_MODE",
            "mode must be STOP_ON_FAILURE or ALLOW_FAILURE.",
            details={"field": "mode"},
        )
    cancelled = cancel_error = None
    try:
        order = order_cancel(user=user, order_id=order_id)
        if normalize_symbol(request.symbol) != order.market.symbol:
            raise InvalidOrder(
                "SYMBOL_MISMATCH",
                "The new order must be in the cancelled order's market.",
                details={"symbol": order.market.symbol},
            )
        cancelled = _settled(order, wait_seconds)
    except InvalidOrder as exc:
        if exc.code == "SYMBOL_MISMATCH":
            raise
        cancel_error = exc
    except ExchangeError as exc:
        cancel_error = exc
    if cancel_error is not None and mode == "STOP_ON_FAILURE":
        return CancelReplaceResult(None, cancel_error, None, None)
    placed = place_error = None
    try:
        placed, _created = order_place(user=user, request=request)
    except ExchangeError as exc:
        place_error = exc
    return CancelReplaceResult(cancelled, cancel_error, placed, place_error)


def _settled(order: Order, wait_seconds: float) -> Order:
    """The order once the matcher has run its cancel: returned when it ended cancelled;
    ``OrderNotCancellable`` when it ended otherwise, ``CancelPending`` on timeout."""
    deadline = time.monotonic() + wait_seconds
    while True:
        if not connection.in_atomic_block:
            order.refresh_from_db()
        if order.status in Order.FINAL:
            if order.status == Order.Status.CANCELLED:
                return order
            raise OrderNotCancellable(details={"order_id": order.pk, "status": order.status})
        if time.monotonic() >= deadline or connection.in_atomic_block:
            raise CancelPending(details={"order_id": order.pk})
        time.sleep(_POLL_SECONDS)

"""Order entry: accept (validate, reserve, queue), cancel, and the demo markets (DESIGN §3).

Accepting an order is one transaction: validate against the market's rules, reserve the
funds with one conditional UPDATE, insert the Order and its ``place`` OrderCommand, write
the reserve to the ledger. The matcher is woken after commit; it alone changes the book.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import DecimalField, F, Q, QuerySet, Value
from django.db.models.functions import Mod
from django.utils import timezone

from accounts.audit import operator_action_record, operator_actions_record, reason_require
from accounts.exceptions import AccountFrozen
from accounts.models import User
from exchange_site.db import array_literal, insert_select, row_to_instances, unnest_insert
from exchange_site.decimals import decimal_places, decimal_to_str
from exchange_site.exceptions import ExchangeError
from exchange_site.metrics import ORDERS_ACCEPTED, orders_refused
from trading.exceptions import (
    InvalidOrder,
    MarketCancelOnly,
    MarketHalted,
    MarketNotFound,
    MarketStatusUnchanged,
    NoLiquidity,
    OrderNotCancellable,
    OrderNotFound,
    UnknownSymbol,
)
from trading.matcher.wakeup import matcher_wake, matcher_wake_soon
from trading.models import Market, Order, OrderCommand
from trading.selectors import (
    asks_for_estimate,
    market_get_by_symbol,
    market_get_for_order_entry,
    order_list_for_user,
)
from wallets.events import balance_message, send_user_events
from wallets.exceptions import InsufficientBalance
from wallets.models import AMOUNT_QUANTUM, ZERO, Asset, Balance, LedgerEntry
from wallets.models import LedgerKind as Kind
from wallets.selectors import balance_available
from wallets.services import LEDGER_COLUMNS, BalanceChange, balance_changes_apply, ledger_row

logger = logging.getLogger("trading.orders")

ORDER_FIELDS_BY_TYPE = {
    # type: (required, forbidden)
    Order.Type.LIMIT: ({"price", "quantity"}, {"stop_price", "quote_quantity"}),
    Order.Type.MARKET: (set(), {"price", "stop_price"}),
    Order.Type.STOP: ({"stop_price"}, {"price"}),
    Order.Type.STOP_LIMIT: ({"stop_price", "price", "quantity"}, {"quote_quantity"}),
}


@dataclass(frozen=True)
class OrderRequest:
    """What a client asks for, already parsed into Decimals (None where not given)."""

    symbol: str
    side: str
    order_type: str
    quantity: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    quote_quantity: Decimal | None = None
    time_in_force: str = Order.TimeInForce.GTC
    post_only: bool = False
    client_order_id: str | None = None


def _invalid(code: str, message: str, **details) -> InvalidOrder:
    return InvalidOrder(code, message, details=details)


def _check_step(value: Decimal, step: Decimal, field: str, code: str) -> None:
    if value % step:
        raise _invalid(
            code,
            f"{field} must be a multiple of {decimal_to_str(step)}.",
            field=field,
            step=decimal_to_str(step),
        )


def _check_shape(request: OrderRequest) -> None:
    if request.side not in Order.Side.values:
        raise _invalid("INVALID_SIDE", "side must be buy or sell.", field="side")
    if request.order_type not in Order.Type.values:
        raise _invalid(
            "INVALID_ORDER_TYPE",
            "order_type must be limit, market, stop or stop_limit.",
            field="order_type",
        )
    if request.time_in_force not in Order.TimeInForce.values:
        raise _invalid("INVALID_TIME_IN_FORCE", "time_in_force must be GTC, IOC or FOK.")
    given = {
        name
        for name in ("quantity", "price", "stop_price", "quote_quantity")
        if getattr(request, name) is not None
    }
    required, forbidden = ORDER_FIELDS_BY_TYPE[request.order_type]
    if missing := sorted(required - given):
        raise _invalid(
            "MISSING_FIELD",
            f"A {request.order_type} order needs {', '.join(missing)}.",
            fields=missing,
        )
    if extra := sorted(forbidden & given):
        raise _invalid(
            "UNEXPECTED_FIELD",
            f"A {request.order_type} order takes no {', '.join(extra)}.",
            fields=extra,
        )
    if request.order_type in (Order.Type.MARKET, Order.Type.STOP):
        if (request.quantity is None) == (request.quote_quantity is None):
            # Neither is a missing field; both is one field too many.
            raise _invalid(
                "MISSING_FIELD" if request.quantity is None else "UNEXPECTED_FIELD",
                "Give exactly one of quantity and quote_quantity.",
                fields=["quantity", "quote_quantity"],
            )
        if request.quote_quantity is not None and request.side == Order.Side.SELL:
            raise _invalid(
                "UNEXPECTED_FIELD",
                "Only a buy can be sized by quote_quantity.",
                fields=["quote_quantity"],
            )
        if request.quote_quantity is not None and request.time_in_force == Order.TimeInForce.FOK:
            raise _invalid("INVALID_TIME_IN_FORCE", "FOK needs a quantity, not a quote_quantity.")
    if request.post_only and request.order_type != Order.Type.LIMIT:
        raise _invalid("INVALID_POST_ONLY", "post_only applies to limit orders only.")
    for name in ("quantity", "price", "stop_price", "quote_quantity"):
        value = getattr(request, name)
        if value is None:
            continue
        if not value.is_finite() or value <= 0:
            raise _invalid("INVALID_NUMBER", f"{name} must be a positive number.", field=name)
        # Checked before any arithmetic: nothing this large or this fine can be stored.
        if value.adjusted() >= 18 or value != value.quantize(AMOUNT_QUANTUM):
            raise _invalid(
                "INVALID_NUMBER", f"{name} is too large or has over 18 decimal places.", field=name
            )


def _check_market_rules(market: Market, request: OrderRequest) -> None:
    for name in ("price", "stop_price"):
        value = getattr(request, name)
        if value is not None:
            _check_step(value, market.tick_size, name, "INVALID_PRICE_TICK")
    if request.quantity is not None:
        _check_step(request.quantity, market.lot_size, "quantity", "INVALID_QUANTITY_STEP")
        if request.quantity < market.min_qty:
            raise _invalid(
                "QUANTITY_TOO_SMALL",
                f"The minimum quantity is {decimal_to_str(market.min_qty)}.",
                min_qty=decimal_to_str(market.min_qty),
            )
        if request.quantity > market.max_qty:
            raise _invalid(
                "QUANTITY_TOO_LARGE",
                f"The maximum quantity is {decimal_to_str(market.max_qty)}.",
                max_qty=decimal_to_str(market.max_qty),
            )
    quote_precision = market.quote_asset.precision
    if request.quote_quantity is not None and decimal_places(request.quote_quantity) > max(
        quote_precision, decimal_places(market.tick_size * market.lot_size)
    ):
        raise _invalid(
            "INVALID_QUOTE_PRECISION",
            f"quote_quantity allows at most {quote_precision} decimal places.",
            field="quote_quantity",
        )
    notional = None
    if request.quote_quantity is not None:
        notional = request.quote_quantity
    elif request.quantity is not None and (request.price or request.stop_price):
        notional = request.quantity * (request.price or request.stop_price)
    elif request.quantity is not None and market.last_price is not None:
        # A market order by quantity is valued at the last trade price, as Binance does.
        notional = request.quantity * market.last_price
    if notional is not None and notional < market.min_notional:
        raise _invalid(
            "MIN_NOTIONAL",
            f"The order's value must be at least {decimal_to_str(market.min_notional)} "
            f"{market.quote_asset.code}.",
            min_notional=decimal_to_str(market.min_notional),
            notional=decimal_to_str(notional),
        )
    if notional is not None and notional.adjusted() >= 18:
        raise _invalid("INVALID_NUMBER", "The order is too large.")


def _ceil_to(value: Decimal, quantum: Decimal) -> Decimal:
    return value.quantize(quantum, rounding=ROUND_CEILING)


def _market_buy_reserve(market: Market, quantity: Decimal) -> Decimal:
    """A market buy by quantity reserves its estimated cost plus a slippage margin: the book
    can move before the matcher runs it, and the engine never spends beyond the reserve."""
    remaining, cost, worst = quantity, Decimal(0), None
    for price, available in asks_for_estimate(market=market):
        take = min(remaining, available)
        cost += take * price
        remaining -= take
        worst = price
        if not remaining:
            break
    if remaining:
        fallback = worst or market.last_price
        if fallback is None:
            raise NoLiquidity(details={"symbol": market.symbol})
        cost += remaining * fallback
    margin = Decimal(1) + settings.MARKET_ORDER_SLIPPAGE
    return _ceil_to(cost * margin, Decimal(1).scaleb(-market.quote_asset.precision))


def _reserve_for(market: Market, request: OrderRequest) -> tuple[Asset, Decimal]:
    if request.side == Order.Side.SELL:
        return market.base_asset, request.quantity
    if request.quote_quantity is not None:
        return market.quote_asset, request.quote_quantity
    if request.price is not None:
        return market.quote_asset, request.price * request.quantity
    if request.order_type == Order.Type.STOP:
        margin = Decimal(1) + settings.MARKET_ORDER_SLIPPAGE
        quantum = Decimal(1).scaleb(-market.quote_asset.precision)
        return market.quote_asset, _ceil_to(request.stop_price * request.quantity * margin, quantum)
    return market.quote_asset, _market_buy_reserve(market, request.quantity)


def _market_for_order(symbol: str, *, max_age: float = 0.0, refresh: bool = False) -> Market:
    try:
        market = market_get_for_order_entry(symbol=symbol, max_age=max_age, refresh=refresh)
    except MarketNotFound as exc:
        # In an order body an unknown symbol is bad input (400), not a missing resource.
        raise UnknownSymbol(details={"symbol": symbol}) from exc
    if market.status == Market.Status.HALTED:
        raise MarketHalted(details={"symbol": market.symbol})
    if market.status == Market.Status.CANCEL_ONLY:
        raise MarketCancelOnly(details={"symbol": market.symbol})
    return market


def _existing_by_client_id(user: User, client_order_id: str | None) -> Order | None:
    if not client_order_id:
        return None
    return (
        Order.objects.select_related("market", "market__quote_asset")
        .filter(user=user, client_order_id=client_order_id)
        .first()
    )


@dataclass(frozen=True)
class _Accepted:
    """A validated order not yet stored, with what it must reserve."""

    order: Order
    asset: Asset
    reserve: Decimal


def _accept(user: User, market: Market, request: OrderRequest) -> _Accepted:
    _check_shape(request)
    _check_market_rules(market, request)
    asset, reserve = _reserve_for(market, request)
    reserve = reserve.quantize(AMOUNT_QUANTUM)
    order = Order(
        user=user,
        market=market,
        side=request.side,
        order_type=request.order_type,
        time_in_force=request.time_in_force,
        post_only=request.post_only,
        price=request.price,
        stop_price=request.stop_price,
        quantity=request.quantity,
        quote_quantity=request.quote_quantity,
        reserved=reserve,
        client_order_id=request.client_order_id or None,
    )
    return _Accepted(order, asset, reserve)


def _reserve_change(accepted: _Accepted) -> BalanceChange:
    order = accepted.order
    return BalanceChange(
        order.user_id,
        accepted.asset.pk,
        Kind.ORDER_RESERVE,
        "order",
        order.pk,
        available=-accepted.reserve,
        locked=accepted.reserve,
    )


def _after_commit(accepted: list[_Accepted], balances: dict) -> None:
    """Wake the matchers and tell the owner its new balances, once the orders are committed.

    The balance events go out from a background loop (wallets.events): the request does not
    wait for Redis. The values are the ones this transaction wrote, so no re-read is needed.
    """
    symbols = {item.order.market.symbol for item in accepted}
    codes = {item.asset.pk: item.asset.code for item in accepted}
    events = [
        (user_id, "balances", balance_message(asset_code=codes[asset_id], available=a, locked=lk))
        for (user_id, asset_id), (a, lk) in balances.items()
    ]

    def send():
        _accepted([item.order for item in accepted])  # committed: /api/v3 order/test is not
        for symbol in symbols:
            matcher_wake_soon(symbol)
        send_user_events(events)

    transaction.on_commit(send)


def order_place(*, user: User, request: OrderRequest) -> tuple[Order, bool]:
    """Accept an order: validate, reserve, queue it for the matcher. Returns (order, created).

    A retry with a ``client_order_id`` the user already used returns the first order and
    ``created=False``; nothing more is reserved. Raises ``UnknownSymbol`` (400),
    ``InvalidOrder`` (400, with a precise code: INVALID_PRICE_TICK, INVALID_QUANTITY_STEP,
    MIN_NOTIONAL, ...), ``MarketHalted`` / ``MarketCancelOnly`` / ``NoLiquidity`` /
    ``InsufficientBalance`` (422). Locks the user's balance row of the reserved asset
    (the same conditional reserve as ``wallets.services``, which refuses to overdraw). On
    PostgreSQL without a ``client_order_id`` the whole acceptance is one statement
    (``_place_in_one_statement``); the matcher wake-up and the balance event follow the
    commit. A frozen user gets ``AccountFrozen`` (403).
    """
    try:
        return _order_place(user=user, request=request)
    except ExchangeError as exc:
        orders_refused(exc.code).inc()
        raise


def _accepted(orders: list[Order]) -> None:
    # Counters only, and a DEBUG line (off unless asked for): this is the hot path. The line
    # ties the order id to the request id (logging filter), the first link of its trail.
    # Runs on commit, still inside the request that placed the orders.
    ORDERS_ACCEPTED.inc(len(orders))
    if logger.isEnabledFor(logging.DEBUG):
        for order in orders:
            logger.debug("order %s accepted for market %s", order.pk, order.market_id)


def _order_place(*, user: User, request: OrderRequest) -> tuple[Order, bool]:
    if user.is_frozen:
        raise AccountFrozen()
    if request.client_order_id or connection.vendor != "postgresql":
        return _order_place_in_transaction(user=user, request=request)
    # The common case: one statement, atomic on its own (DESIGN §3's one transaction). The
    # market may be a copy read a moment ago: the statement re-checks its status and rules.
    max_age = settings.ORDER_ENTRY_MARKET_CACHE_SECONDS
    accepted = _accept(user, _market_for_order(request.symbol, max_age=max_age), request)
    balances = _place_in_one_statement(accepted)
    if balances is None and max_age > 0:
        # Refused or the market changed since it was read: decide on a fresh read.
        market = _market_for_order(request.symbol, max_age=max_age, refresh=True)
        accepted = _accept(user, market, request)
        balances = _place_in_one_statement(accepted)
    if balances is None:
        raise _refusal(accepted)
    _after_commit([accepted], balances)
    return accepted.order, True


@transaction.atomic
def _order_place_in_transaction(*, user: User, request: OrderRequest) -> tuple[Order, bool]:
    """``order_place`` with a ``client_order_id`` (a retry must find the first order, and
    a racing duplicate must roll back cleanly) or off PostgreSQL: ORM statements in one
    transaction."""
    existing = _existing_by_client_id(user, request.client_order_id)
    if existing is not None:
        return existing, False
    market = _market_for_order(request.symbol)
    accepted = _accept(user, market, request)
    order = accepted.order
    if order.client_order_id:
        try:
            # A savepoint only where a duplicate can race in: it costs two round trips.
            with transaction.atomic():
                order.save(force_insert=True)
        except IntegrityError:
            # The same client_order_id raced in from a concurrent retry: that one wins.
            existing = _existing_by_client_id(user, request.client_order_id)
            if existing is None:
                raise
            return existing, False
    else:
        order.save(force_insert=True)
    balances = balance_changes_apply(changes=[_reserve_change(accepted)], publish=False)
    OrderCommand.objects.create(market=market, order=order, kind=OrderCommand.Kind.PLACE)
    _after_commit([accepted], balances)
    return order, True


def _place_in_one_statement(accepted: _Accepted) -> dict | None:
    """Reserve, insert the order, its ledger line and its place command in ONE statement.

    Data-modifying CTEs run as one atomic statement, so outside a transaction this needs no
    BEGIN/COMMIT either: one round trip instead of eight (balance lock, update, ledger COPY,
    order and command inserts, transaction control). The reserve is the same conditional
    UPDATE (``available >= amount``) the services use everywhere, joined to the market row
    so that a halt or cancel-only committed a moment ago refuses the order at once. Returns
    the new balances like ``balance_changes_apply``, or None when nothing was written (the
    caller finds out why)."""
    order, asset, reserve = accepted.order, accepted.asset, accepted.reserve
    market = order.market
    order_columns, order_values, order_params = insert_select(order)
    ledger = LedgerEntry(
        user_id=order.user_id,
        asset_id=asset.pk,
        available_delta=-reserve,
        locked_delta=reserve,
        kind=Kind.ORDER_RESERVE,
        reference_type="order",
    )
    ledger_columns, ledger_values, ledger_params = insert_select(ledger, {"reference_id": "ord.id"})
    command = OrderCommand(market_id=order.market_id, kind=OrderCommand.Kind.PLACE)
    command_columns, command_values, command_params = insert_select(command, {"order_id": "ord.id"})
    sql = (
        "WITH bal AS ("
        "UPDATE wallets_balance AS b SET available = b.available - %s, "
        "locked = b.locked + %s, updated_at = %s FROM trading_market AS m "
        "WHERE m.id = %s AND m.status = %s AND m.tick_size = %s AND m.lot_size = %s "
        "AND m.min_qty = %s AND m.max_qty = %s AND m.min_notional = %s "
        "AND b.user_id = %s AND b.asset_id = %s AND b.available >= %s "
        "RETURNING b.available, b.locked), "
        f"ord AS (INSERT INTO trading_order ({order_columns}) SELECT {order_values} FROM bal "
        "RETURNING id), "
        f"led AS (INSERT INTO wallets_ledgerentry ({ledger_columns}) SELECT {ledger_values} "
        "FROM ord), "
        f"cmd AS (INSERT INTO trading_ordercommand ({command_columns}) "
        f"SELECT {command_values} FROM ord) "
        "SELECT ord.id, bal.available, bal.locked FROM ord, bal"
    )
    params = [
        reserve,
        reserve,
        order.updated_at,
        order.market_id,
        Market.Status.TRADING,
        # The rules the order was validated against, which may come from a cached market.
        market.tick_size,
        market.lot_size,
        market.min_qty,
        market.max_qty,
        market.min_notional,
        order.user_id,
        asset.pk,
        reserve,
        *order_params,
        *ledger_params,
        *command_params,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    order.pk, available, locked = row
    order._state.adding = False
    return {(order.user_id, asset.pk): (available, locked)}


def _refusal(accepted: _Accepted) -> ExchangeError:
    """Why the one-statement placement wrote nothing: the market stopped trading, or the
    balance does not cover the reserve."""
    status = Market.objects.filter(pk=accepted.order.market_id).values_list("status", flat=True)
    status = status.first()
    symbol = accepted.order.market.symbol
    if status == Market.Status.HALTED:
        return MarketHalted(details={"symbol": symbol})
    if status == Market.Status.CANCEL_ONLY:
        return MarketCancelOnly(details={"symbol": symbol})
    available = balance_available(user_id=accepted.order.user_id, asset_id=accepted.asset.pk)
    return _insufficient(accepted.asset, accepted.reserve, available)


class _ClientIdRace(Exception):
    """A concurrent request stored one of the batch's client_order_ids first."""


def order_place_batch(
    *, user: User, requests: Sequence[OrderRequest]
) -> list[tuple[Order, bool] | ExchangeError]:
    """Accept several orders of one user in one transaction, each accepted or refused on its
    own exactly as if ``order_place`` had been called for each in turn: a later order sees
    what the earlier ones reserved, and a repeated ``client_order_id`` (in the database or
    earlier in the batch) returns the first order with ``created=False``.

    Returns, per request, ``(order, created)`` or the ``ExchangeError`` that refused it
    (the errors ``order_place`` raises). Locks the user's balance rows of every asset the
    batch reserves, in ``(user_id, asset_id)`` order like the matcher, then writes all the
    accepted orders, their reserves and ledger lines, and their commands with a handful of
    statements whatever the batch size. A frozen user's batch raises ``AccountFrozen`` (403).
    """
    if user.is_frozen:
        orders_refused(AccountFrozen.code).inc(len(requests))
        raise AccountFrozen()
    try:
        with transaction.atomic():
            results = _place_batch(user, list(requests))
    except _ClientIdRace:
        # Rare: a concurrent retry won a client_order_id; redo the batch one by one.
        results: list[tuple[Order, bool] | ExchangeError] = []
        for request in requests:
            try:
                with transaction.atomic():
                    results.append(order_place(user=user, request=request))
            except ExchangeError as exc:
                results.append(exc)
        return results  # counted by order_place
    for item in results:
        if isinstance(item, ExchangeError):
            orders_refused(item.code).inc()
    return results


def _place_batch(user: User, requests: list[OrderRequest]) -> list:
    given_ids = {r.client_order_id for r in requests if r.client_order_id}
    stored = {}
    if given_ids:
        stored = {
            order.client_order_id: order
            for order in Order.objects.select_related("market", "market__quote_asset").filter(
                user=user, client_order_id__in=given_ids
            )
        }
    markets: dict[str, Market | ExchangeError] = {}
    checked: list[_Accepted | ExchangeError | None] = []
    for request in requests:
        if request.client_order_id in stored:
            checked.append(None)
            continue
        market = markets.get(request.symbol)
        if market is None:
            try:
                market = _market_for_order(request.symbol)
            except ExchangeError as exc:
                market = exc
            markets[request.symbol] = market
        if isinstance(market, ExchangeError):
            checked.append(market)
            continue
        try:
            checked.append(_accept(user, market, request))
        except ExchangeError as exc:
            checked.append(exc)

    wanted = sorted({item.asset.pk for item in checked if isinstance(item, _Accepted)})
    ids = None
    if connection.vendor == "postgresql" and wanted:
        # Before the balance locks, which the matcher may be waiting for: every statement
        # and every bit of Python between them and the commit makes it wait longer.
        ids = _batch_ids(sum(isinstance(item, _Accepted) for item in checked))
    # The matcher locks balance rows in (user_id, asset_id) order too: no deadlock.
    before = {
        asset_id: (available, locked)
        for asset_id, available, locked in Balance.objects.select_for_update()
        .filter(user_id=user.pk, asset_id__in=wanted)
        .order_by("asset_id")
        .values_list("asset_id", "available", "locked")
    }
    available = {asset_id: values[0] for asset_id, values in before.items()}
    results: list = []
    accepted: list[_Accepted] = []
    by_client_id: dict[str, Order] = {}
    for request, item in zip(requests, checked, strict=True):
        client_id = request.client_order_id
        if client_id in stored:
            results.append((stored[client_id], False))
        elif client_id and client_id in by_client_id:
            results.append((by_client_id[client_id], False))
        elif isinstance(item, ExchangeError):
            results.append(item)
        else:
            left = available.get(item.asset.pk, ZERO)
            if item.reserve > left:
                results.append(_insufficient(item.asset, item.reserve, left))
                continue
            available[item.asset.pk] = left - item.reserve
            accepted.append(item)
            results.append((item.order, True))
            if client_id:
                by_client_id[client_id] = item.order
    if not accepted:
        return results
    try:
        if ids is not None:
            balances = _write_batch(user, accepted, before, ids)
        else:
            balances = _write_batch_with_the_orm(accepted)
    except IntegrityError as exc:
        if not by_client_id:
            raise
        raise _ClientIdRace from exc
    _after_commit(accepted, balances)
    return results


_ORDER_INSERT_FIELDS = tuple(field.name for field in Order._meta.concrete_fields)
_ORDER_ATTNAMES = tuple(field.attname for field in Order._meta.concrete_fields)
_COMMAND_INSERT_FIELDS = ("id", "market", "order", "kind", "created_at")


def _batch_ids(count: int) -> tuple[list[int], list[int]]:
    """``count`` new order ids and as many command ids, each list ascending: the commands
    must follow the batch's order. Ids a refused order does not use are left as gaps."""
    with connection.cursor() as cursor:
        cursor.execute(_BATCH_IDS_SQL, [count])
        ids = cursor.fetchall()
    return sorted(order_id for order_id, _ in ids), sorted(command_id for _, command_id in ids)


# nextval per row, in row order: each column comes back ascending, and sorting makes sure.
_BATCH_IDS_SQL = (
    "SELECT nextval(pg_get_serial_sequence('trading_order', 'id')), "
    "nextval(pg_get_serial_sequence('trading_ordercommand', 'id')) "
    "FROM generate_series(1, %s)"
)


def _write_batch(
    user: User, accepted: list[_Accepted], before: dict, ids: tuple[list[int], list[int]]
) -> dict:
    """Store a batch's accepted orders, reserves, ledger lines and place commands in ONE
    statement whatever its size: a data-modifying WITH of ``INSERT ... SELECT * FROM
    unnest(arrays)`` and the reserve UPDATE, with the ids ``_batch_ids`` reserved. The
    balance rows are already locked; ``before`` holds their (available, locked)."""
    now = timezone.now()
    order_rows, ledger_rows, command_rows = [], [], []
    reserved: dict[int, Decimal] = {}
    for item, order_id, command_id in zip(accepted, *ids, strict=False):
        order = item.order
        order.pk = order_id
        # What Django's INSERT would store: the auto_now fields are the only ones that
        # change on save, and every other value is already in its stored form.
        order.created_at = order.updated_at = now
        order_rows.append(tuple(getattr(order, name) for name in _ORDER_ATTNAMES))
        order._state.adding = False
        ledger_rows.append(ledger_row(_reserve_change(item), now))
        command_rows.append((command_id, order.market_id, order_id, OrderCommand.Kind.PLACE, now))
        reserved[item.asset.pk] = reserved.get(item.asset.pk, ZERO) + item.reserve
    orders_sql, orders_params = unnest_insert(Order, _ORDER_INSERT_FIELDS, order_rows)
    ledger_sql, ledger_params = unnest_insert(LedgerEntry, LEDGER_COLUMNS, ledger_rows)
    command_sql, command_params = unnest_insert(OrderCommand, _COMMAND_INSERT_FIELDS, command_rows)
    assets = sorted(reserved)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH ord AS ({orders_sql}), led AS ({ledger_sql}), cmd AS ({command_sql}) "
            "UPDATE wallets_balance AS b SET available = b.available - v.amount, "
            "locked = b.locked + v.amount, updated_at = %s "
            "FROM unnest(%s::text::bigint[], %s::text::numeric[]) AS v(asset_id, amount) "
            "WHERE b.user_id = %s AND b.asset_id = v.asset_id",
            [
                *orders_params,
                *ledger_params,
                *command_params,
                now,
                array_literal(assets),
                array_literal([reserved[asset_id] for asset_id in assets]),
                user.pk,
            ],
        )
    return {
        (user.pk, asset_id): (
            before[asset_id][0] - reserved[asset_id],
            before[asset_id][1] + reserved[asset_id],
        )
        for asset_id in assets
    }


def _write_batch_with_the_orm(accepted: list[_Accepted]) -> dict:
    """``_write_batch`` off PostgreSQL (SQLite under ``make run``)."""
    with transaction.atomic():
        Order.objects.bulk_create([item.order for item in accepted])
    balances = balance_changes_apply(
        changes=[_reserve_change(item) for item in accepted], publish=False
    )
    OrderCommand.objects.bulk_create(
        [
            OrderCommand(market=item.order.market, order=item.order, kind=OrderCommand.Kind.PLACE)
            for item in accepted
        ]
    )
    return balances


def _insufficient(asset: Asset, required: Decimal, available: Decimal) -> InsufficientBalance:
    # The same error wallets.services raises for a reserve that does not fit.
    return InsufficientBalance(
        f"Insufficient {asset.code} balance.",
        details={
            "asset": asset.code,
            "required": decimal_to_str(required, asset.precision),
            "available": decimal_to_str(available, asset.precision),
        },
    )


def order_cancel(*, user: User, order_id: int) -> Order:
    """Queue a cancel of the user's live order; the matcher decides and releases the reserve.

    Commands are consumed in order, so a cancel of an order the matcher has not placed yet
    still lands after its place. Raises ``OrderNotFound`` (404, also for another user's
    order), ``OrderNotCancellable`` (409) when it is already done, ``MarketHalted`` (422).
    A second cancel of the same order queues nothing more: at most one cancel per order is
    pending (a partial unique index). Locks the order row. On PostgreSQL the lock, the
    checks and the insert are one statement (``_cancel_in_one_statement``); the matcher is
    woken after it.
    """
    if connection.vendor != "postgresql":
        return _order_cancel_in_transaction(user=user, order_id=order_id)
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
def _order_cancel_in_transaction(*, user: User, order_id: int) -> Order:
    """``order_cancel`` off PostgreSQL (SQLite under ``make run``): ORM statements."""
    # Lock the order row only: locking the joined market row too would queue this behind
    # the matcher's batch (which updates the market) and could deadlock with it.
    order = (
        order_list_for_user(user=user).select_for_update(of=("self",)).filter(pk=order_id).first()
    )
    _cancel_checks(order, order_id)
    already = OrderCommand.objects.filter(
        order=order, kind=OrderCommand.Kind.CANCEL, processed_at__isnull=True
    ).exists()
    if not already:
        OrderCommand.objects.create(
            market_id=order.market_id, order=order, kind=OrderCommand.Kind.CANCEL
        )
        symbol = order.market.symbol
        transaction.on_commit(lambda: matcher_wake_soon(symbol))
    return order


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


DEMO_MARKETS = (
    # symbol, tick, lot, min qty, max qty, min notional
    ("BTC-USD", "0.01", "0.00001", "0.00001", "1000", "1"),
    ("ETH-USD", "0.01", "0.0001", "0.0001", "10000", "1"),
    ("SOL-USD", "0.001", "0.01", "0.01", "1000000", "1"),
    ("ETH-BTC", "0.000001", "0.0001", "0.0001", "10000", "0.0001"),
)


@transaction.atomic
def markets_seed() -> list[str]:
    """Create the demo markets (maker 0.10 %, taker 0.20 %) when missing; idempotent."""
    lines = []
    assets = {asset.code: asset for asset in Asset.objects.all()}
    for symbol, tick, lot, min_qty, max_qty, min_notional in DEMO_MARKETS:
        base, quote = symbol.split("-")
        if base not in assets or quote not in assets:
            continue
        _, created = Market.objects.get_or_create(
            symbol=symbol,
            defaults={
                "base_asset": assets[base],
                "quote_asset": assets[quote],
                "tick_size": Decimal(tick),
                "lot_size": Decimal(lot),
                "min_qty": Decimal(min_qty),
                "max_qty": Decimal(max_qty),
                "min_notional": Decimal(min_notional),
                "maker_fee": Decimal("0.001"),
                "taker_fee": Decimal("0.002"),
            },
        )
        lines.append(f"{'created' if created else 'exists '} market {symbol}")
    return lines


# --- Operator console (issue 8) ------------------------------------------------------------

MARKET_STATUS_ACTIONS = {
    Market.Status.HALTED: "market_halt",
    Market.Status.CANCEL_ONLY: "market_cancel_only",
    Market.Status.TRADING: "market_resume",
}
RULE_FIELDS = (
    "tick_size",
    "lot_size",
    "min_qty",
    "max_qty",
    "min_notional",
    "maker_fee",
    "taker_fee",
)
FEE_QUANTUM = Decimal("0.000001")  # Market.maker_fee/taker_fee keep 6 decimal places


@transaction.atomic
def market_status_set(*, market_id: int, status: str, actor: User, reason: str) -> Market:
    """Halt a market, put it in cancel-only or resume trading; effective at once.

    ``halted``: order entry refuses new orders and cancels (MARKET_HALTED) and the matcher
    runs nothing: queued commands wait, in order, until the market resumes (Binance's HALT).
    ``cancel_only``: new orders are refused (MARKET_CANCEL_ONLY); the matcher runs cancels
    and rejects orders that were queued before the switch, releasing their funds (BREAK).
    Locks the market row, which the matcher also locks for each batch: the change applies
    from the next batch on. Raises ``ValidationError`` (no reason, unknown status) and
    ``MarketStatusUnchanged`` (409).
    """
    reason = reason_require(reason)
    if status not in Market.Status.values:
        raise ValidationError({"status": [f"Unknown market status {status!r}."]})
    market = Market.objects.select_for_update().get(pk=market_id)
    if market.status == status:
        raise MarketStatusUnchanged(details={"symbol": market.symbol, "status": status})
    previous = market.status
    market.status = status
    market.save(update_fields=["status", "updated_at"])
    operator_action_record(
        actor=actor,
        action=MARKET_STATUS_ACTIONS[status],
        target=market,
        reason=reason,
        details={"from": previous, "to": status},
    )
    symbol = market.symbol
    # Resuming must not wait for the matcher's next poll to run the queued commands.
    transaction.on_commit(lambda: matcher_wake(symbol))
    return market


def _storable(value: Decimal) -> bool:
    return value.is_finite() and value.adjusted() < 18 and value == value.quantize(AMOUNT_QUANTUM)


def _off_grid_orders(market: Market, step: Decimal, fields: tuple[str, ...]) -> list[int]:
    """Ids (up to 10) of the market's live orders with a value in ``fields`` off ``step``."""
    step_value = Value(step, output_field=DecimalField(max_digits=36, decimal_places=18))
    off = Q()
    annotations = {}
    for name in fields:
        annotations[f"{name}_rest"] = Mod(F(name), step_value)
        # Amounts are positive, so a remainder is either 0 or > 0; NULL fields never match.
        off |= Q(**{f"{name}_rest__gt": 0})
    return list(
        Order.objects.filter(market=market, status__in=Order.LIVE)
        .annotate(**annotations)
        .filter(off)
        .order_by("id")
        .values_list("id", flat=True)[:10]
    )


def market_rules_validate(*, market: Market, rules: dict[str, Decimal]) -> dict[str, Decimal]:
    """Check new trading rules for ``market`` (an unsaved market for a new listing) and
    return those that differ from its current ones.

    Refuses (``ValidationError`` keyed by field) a step that is not a positive amount with
    at most 18 decimal places, fees outside [0, 1) or with over 6 decimal places,
    ``min_qty > max_qty``, and a tick or lot size that the live orders' prices, stop prices
    or quantities (or the last trade price) are not whole multiples of: the matcher keeps
    the book in integer ticks and lots.
    """
    unknown = set(rules) - set(RULE_FIELDS)
    if unknown:
        raise ValidationError({name: ["Not a trading rule."] for name in sorted(unknown)})
    new = {name: rules.get(name, getattr(market, name)) for name in RULE_FIELDS}
    errors: dict[str, list[str]] = {}
    for name in ("tick_size", "lot_size", "min_qty", "max_qty", "min_notional"):
        value = new[name]
        if value is None or not _storable(value) or value < 0:
            errors[name] = ["Give a non-negative amount with at most 18 decimal places."]
        elif value == 0 and name != "min_notional":
            errors[name] = ["Must be greater than zero."]
    for name in ("maker_fee", "taker_fee"):
        value = new[name]
        if value is None or not value.is_finite() or not Decimal(0) <= value < Decimal(1):
            errors[name] = ["A fee rate is at least 0 and below 1 (0.001 = 0.1 %)."]
        elif value != value.quantize(FEE_QUANTUM):
            errors[name] = ["A fee rate has at most 6 decimal places."]
    if not errors and new["min_qty"] > new["max_qty"]:
        errors["max_qty"] = ["Must be at least the minimum quantity."]
    if market.pk is not None and not errors:
        if new["tick_size"] != market.tick_size:
            offenders = _off_grid_orders(market, new["tick_size"], ("price", "stop_price"))
            if offenders:
                errors["tick_size"] = [
                    f"{decimal_to_str(new['tick_size'])} does not divide the prices of live "
                    f"orders {', '.join(map(str, offenders))}."
                ]
            elif market.last_price is not None and market.last_price % new["tick_size"]:
                errors["tick_size"] = [
                    f"{decimal_to_str(new['tick_size'])} does not divide the last trade "
                    f"price {decimal_to_str(market.last_price)}."
                ]
        if new["lot_size"] != market.lot_size:
            offenders = _off_grid_orders(market, new["lot_size"], ("quantity", "filled_quantity"))
            if offenders:
                errors["lot_size"] = [
                    f"{decimal_to_str(new['lot_size'])} does not divide the quantities of "
                    f"live orders {', '.join(map(str, offenders))}."
                ]
    if errors:
        raise ValidationError(errors)
    return {name: value for name, value in new.items() if value != getattr(market, name)}


@transaction.atomic
def market_rules_update(*, market_id: int, rules: dict[str, Decimal], actor: User, reason: str):
    """Change a market's trading rules and fees (``rules``: field → new value).

    Locks the market row first; the matcher takes the same lock for each batch, so the
    check of the live orders and the change happen between two batches. New orders follow
    the new rules at once; the matcher reloads them on its next batch (rebuilding the book
    when the tick or lot size changed; an order accepted under the old rules that is off
    the new grid is rejected there). Raises ``ValidationError`` (see
    ``market_rules_validate``; also without a reason). Returns the market; nothing is
    written or recorded when nothing changed.
    """
    reason = reason_require(reason)
    market = Market.objects.select_for_update().get(pk=market_id)
    changes = market_rules_validate(market=market, rules=rules)
    if not changes:
        return market
    details = {
        name: [decimal_to_str(getattr(market, name)), decimal_to_str(value)]
        for name, value in changes.items()
    }
    for name, value in changes.items():
        setattr(market, name, value)
    market.save(update_fields=[*changes, "updated_at"])
    operator_action_record(
        actor=actor, action="market_rules_update", target=market, reason=reason, details=details
    )
    symbol = market.symbol
    transaction.on_commit(lambda: matcher_wake(symbol))
    return market


@transaction.atomic
def market_create(
    *,
    base_asset: Asset,
    quote_asset: Asset,
    rules: dict[str, Decimal],
    actor: User,
    reason: str,
    status: str = Market.Status.TRADING,
) -> Market:
    """List a new market ``BASE-QUOTE``. A running matcher picks it up when restarted
    (``run_matcher`` loads its markets at start). Raises ``ValidationError`` for a pair
    already listed, equal assets or bad rules."""
    reason = reason_require(reason)
    if base_asset.pk == quote_asset.pk:
        raise ValidationError({"quote_asset": ["The base and quote assets must differ."]})
    symbol = f"{base_asset.code}-{quote_asset.code}"
    if Market.objects.filter(symbol=symbol).exists():
        raise ValidationError({"base_asset": [f"{symbol} is already listed."]})
    market = Market(symbol=symbol, base_asset=base_asset, quote_asset=quote_asset, status=status)
    market_rules_validate(market=market, rules=rules)
    for name in RULE_FIELDS:
        if name in rules:
            setattr(market, name, rules[name])
    market.save()
    operator_action_record(
        actor=actor,
        action="market_create",
        target=market,
        reason=reason,
        details={name: decimal_to_str(getattr(market, name)) for name in RULE_FIELDS},
    )
    return market


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

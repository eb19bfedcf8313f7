"""Order entry: validate, reserve and queue orders, one by one or in batches (ARCHITECTURE §3).

Accepting an order is one transaction: validate against the market's rules, reserve the
funds with one conditional UPDATE, insert the Order and its ``place`` OrderCommand, write
the reserve to the ledger. The reserve and its ledger line are wallets' statements
(``wallets.statements``), embedded in trading's one statement. The matcher is woken after
commit; it alone changes the book.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.exceptions import AccountFrozen
from accounts.models import User
from exchange_site.background import after_commit
from exchange_site.db import insert_select, unnest_insert
from exchange_site.decimals import decimal_places, decimal_to_str
from exchange_site.exceptions import ExchangeError
from exchange_site.metrics import ORDERS_ACCEPTED, orders_refused
from exchange_site.user_events import user_events_publish
from trading.exceptions import (
    InvalidOrder,
    MarketCancelOnly,
    MarketHalted,
    MarketNotFound,
    NoLiquidity,
    UnknownSymbol,
)
from trading.matcher.commands import ENGINE_INT_LIMIT
from trading.matcher.wakeup import matcher_wake
from trading.models import Market, Order, OrderCommand
from trading.selectors import (
    asks_for_estimate,
    market_get_for_order_entry,
)
from wallets.events import balance_message
from wallets.models import AMOUNT_QUANTUM, ZERO, Asset
from wallets.models import LedgerKind as Kind
from wallets.selectors import balance_available
from wallets.services import (
    BalanceChange,
    balance_changes_apply,
    balances_lock,
    insufficient_balance,
)
from wallets.statements import SqlPart, ledger_insert_cte, reserve_cte, reserves_batch

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
    # An iceberg limit order shows this much of itself at a time (ARCHITECTURE §5).
    iceberg_quantity: Decimal | None = None
    # A trailing stop: the distance in basis points from the best last price since it
    # activated; with it a stop's ``stop_price`` is optional (the activation price).
    trailing_delta: int | None = None


# Binance's TRAILING_DELTA filter bounds, in basis points.
TRAILING_DELTA_MIN = 10
TRAILING_DELTA_MAX = 2000


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
    if request.trailing_delta is not None:
        required = required - {"stop_price"}
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
    for name in ("quantity", "price", "stop_price", "quote_quantity", "iceberg_quantity"):
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
    _check_iceberg_and_trailing(request)


def _check_iceberg_and_trailing(request: OrderRequest) -> None:
    iceberg = request.iceberg_quantity
    if iceberg is not None:
        if request.order_type != Order.Type.LIMIT or request.time_in_force != Order.TimeInForce.GTC:
            raise _invalid(
                "INVALID_ICEBERG",
                "iceberg_quantity applies to GTC limit orders only.",
                field="iceberg_quantity",
            )
        if request.quantity is not None and iceberg >= request.quantity:
            raise _invalid(
                "INVALID_ICEBERG",
                "iceberg_quantity must be less than quantity.",
                field="iceberg_quantity",
            )
    delta = request.trailing_delta
    if delta is not None:
        if request.order_type not in (Order.Type.STOP, Order.Type.STOP_LIMIT):
            raise _invalid(
                "INVALID_TRAILING_DELTA",
                "trailing_delta applies to stop and stop_limit orders only.",
                field="trailing_delta",
            )
        if type(delta) is not int or not TRAILING_DELTA_MIN <= delta <= TRAILING_DELTA_MAX:
            raise _invalid(
                "INVALID_TRAILING_DELTA",
                f"trailing_delta must be a whole number of basis points from "
                f"{TRAILING_DELTA_MIN} to {TRAILING_DELTA_MAX}.",
                field="trailing_delta",
                min=TRAILING_DELTA_MIN,
                max=TRAILING_DELTA_MAX,
            )


def _check_market_rules(market: Market, request: OrderRequest) -> None:
    for name in ("price", "stop_price"):
        value = getattr(request, name)
        if value is not None:
            _check_step(value, market.tick_size, name, "INVALID_PRICE_TICK")
            # The matcher counts prices in ticks as 64-bit ints (trading.matcher.commands).
            ceiling = market.tick_size * ENGINE_INT_LIMIT
            if value >= ceiling:
                raise _invalid(
                    "PRICE_TOO_LARGE",
                    f"{name} must be below {decimal_to_str(ceiling)}.",
                    field=name,
                    max=decimal_to_str(ceiling - market.tick_size),
                )
    if request.iceberg_quantity is not None:
        _check_step(
            request.iceberg_quantity, market.lot_size, "iceberg_quantity", "INVALID_ICEBERG"
        )
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
        return market.quote_asset, _stop_buy_reserve(market, request)
    return market.quote_asset, _market_buy_reserve(market, request.quantity)


def _stop_buy_reserve(market: Market, request: OrderRequest) -> Decimal:
    """A stop-market buy by quantity reserves its stop price × quantity plus the slippage
    margin. A trailing one triggers when the price rises ``trailing_delta`` above the
    lowest price since it activated, which is at most its activation price (``stop_price``)
    or, without one, the last price; so it reserves that reference price raised by the
    delta, plus the margin. The engine never spends beyond the reserve: a trail that
    started above the reference (the price rose before the matcher placed it) or a
    market that runs away ends the buy ``reserve_exhausted`` after what it could pay for."""
    reference = request.stop_price
    if reference is None:
        reference = market.last_price
        if reference is None:
            raise NoLiquidity(details={"symbol": market.symbol})
    if request.trailing_delta is not None:
        reference = reference * (10_000 + request.trailing_delta) / 10_000
    margin = Decimal(1) + settings.MARKET_ORDER_SLIPPAGE
    quantum = Decimal(1).scaleb(-market.quote_asset.precision)
    return _ceil_to(reference * request.quantity * margin, quantum)


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
        iceberg_quantity=request.iceberg_quantity,
        trailing_delta=request.trailing_delta,
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
        # One job for both: each job is a wake-up of the background thread.
        after_commit.submit(_notify, events, symbols)

    transaction.on_commit(send)


def _notify(events: list, symbols: set[str]) -> None:
    """On the background loop: the reserve's balance events, then the matcher wake-ups.
    The events first: the matcher, once woken, cannot publish this order's later balances
    before them. Each part is best-effort and never raises (events: REST is the truth;
    wake-ups: the matcher polls the database)."""
    if events:
        try:
            user_events_publish(events)
        except Exception:
            logger.warning("private events not sent", exc_info=True)
    for symbol in symbols:
        matcher_wake(symbol)


def order_place(*, user: User, request: OrderRequest) -> tuple[Order, bool]:
    """Accept an order: validate, reserve, queue it for the matcher. Returns (order, created).

    A retry with a ``client_order_id`` the user already used returns the first order and
    ``created=False``; nothing more is reserved. Raises ``UnknownSymbol`` (400),
    ``InvalidOrder`` (400, with a precise code: INVALID_PRICE_TICK, INVALID_QUANTITY_STEP,
    MIN_NOTIONAL, INVALID_ICEBERG, INVALID_TRAILING_DELTA, ...), ``MarketHalted`` /
    ``MarketCancelOnly`` / ``NoLiquidity`` / ``InsufficientBalance`` (422). Locks the
    user's balance row of the reserved asset (the same conditional reserve as
    ``wallets.services``, which refuses to overdraw).
    Without a ``client_order_id`` the whole acceptance is one statement
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
    if request.client_order_id:
        return _order_place_in_transaction(user=user, request=request)
    # The common case: one statement, atomic on its own (ARCHITECTURE §3's one transaction). The
    # market may be a copy read a moment ago: the statement re-checks its status and rules.
    max_age = settings.ORDER_ENTRY_MARKET_CACHE_SECONDS
    try:
        accepted = _accept(user, _market_for_order(request.symbol, max_age=max_age), request)
    except NoLiquidity:
        if max_age <= 0:
            raise
        # A cached market may predate the first trade's last price: decide on a fresh read.
        market = _market_for_order(request.symbol, max_age=max_age, refresh=True)
        accepted = _accept(user, market, request)
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
    """``order_place`` with a ``client_order_id``: a retry must find the first order, and a
    racing duplicate must roll back cleanly, so ORM statements in one transaction."""
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
    order and command inserts, transaction control). The reserve and its ledger line are
    wallets' parts (``wallets.statements``): the same conditional UPDATE (``available >=
    amount``) the services use everywhere, here gated on the market row so that a halt or
    cancel-only committed a moment ago refuses the order at once. Returns
    the new balances like ``balance_changes_apply``, or None when nothing was written (the
    caller finds out why)."""
    order, market = accepted.order, accepted.order.market
    order_columns, order_values, order_params = insert_select(order)
    change = _reserve_change(accepted)
    # The market row gates the reserve: no row, no reserve, and then nothing is written.
    market_trades = SqlPart(
        "m.id = %s AND m.status = %s AND m.tick_size = %s AND m.lot_size = %s "
        "AND m.min_qty = %s AND m.max_qty = %s AND m.min_notional = %s",
        [
            order.market_id,
            Market.Status.TRADING,
            # The rules the order was validated against, which may come from a cached market.
            market.tick_size,
            market.lot_size,
            market.min_qty,
            market.max_qty,
            market.min_notional,
        ],
    )
    reserve = reserve_cte(
        name="bal",
        change=change,
        now=order.updated_at,
        gate_table="trading_market AS m",
        gate_condition=market_trades,
    )
    ledger = ledger_insert_cte(name="led", change=change, source="ord", reference_id="ord.id")
    command = OrderCommand(market_id=order.market_id, kind=OrderCommand.Kind.PLACE)
    command_columns, command_values, command_params = insert_select(command, {"order_id": "ord.id"})
    sql = (
        f"WITH {reserve.sql}, "
        f"ord AS (INSERT INTO trading_order ({order_columns}) SELECT {order_values} FROM bal "
        "RETURNING id), "
        f"{ledger.sql}, "
        f"cmd AS (INSERT INTO trading_ordercommand ({command_columns}) "
        f"SELECT {command_values} FROM ord) "
        "SELECT ord.id, bal.available, bal.locked FROM ord, bal"
    )
    params = [*reserve.params, *order_params, *ledger.params, *command_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    order.pk, available, locked = row
    order._state.adding = False
    return {(order.user_id, accepted.asset.pk): (available, locked)}


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
    return insufficient_balance(
        asset=accepted.asset, required=accepted.reserve, available=available
    )


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
    ids, before = ([], []), {}
    if wanted:
        # Before the balance locks, which the matcher may be waiting for: every statement
        # and every bit of Python between them and the commit makes it wait longer.
        ids = _batch_ids(sum(isinstance(item, _Accepted) for item in checked))
        # The matcher locks balance rows in (user_id, asset_id) order too: no deadlock.
        before = balances_lock(user_id=user.pk, asset_ids=wanted)
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
                results.append(
                    insufficient_balance(asset=item.asset, required=item.reserve, available=left)
                )
                continue
            available[item.asset.pk] = left - item.reserve
            accepted.append(item)
            results.append((item.order, True))
            if client_id:
                by_client_id[client_id] = item.order
    if not accepted:
        return results
    try:
        balances = _write_batch(user, accepted, before, ids)
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
    order_rows, changes, command_rows = [], [], []
    for item, order_id, command_id in zip(accepted, *ids, strict=False):
        order = item.order
        order.pk = order_id
        # What Django's INSERT would store: the auto_now fields are the only ones that
        # change on save, and every other value is already in its stored form.
        order.created_at = order.updated_at = now
        order_rows.append(tuple(getattr(order, name) for name in _ORDER_ATTNAMES))
        order._state.adding = False
        changes.append(_reserve_change(item))
        command_rows.append((command_id, order.market_id, order_id, OrderCommand.Kind.PLACE, now))
    orders_sql, orders_params = unnest_insert(Order, _ORDER_INSERT_FIELDS, order_rows)
    command_sql, command_params = unnest_insert(OrderCommand, _COMMAND_INSERT_FIELDS, command_rows)
    wallets = reserves_batch(user_id=user.pk, changes=changes, now=now, ledger_name="led")
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH ord AS ({orders_sql}), {wallets.ledger.sql}, cmd AS ({command_sql}) "
            f"{wallets.update.sql}",
            [*orders_params, *wallets.ledger.params, *command_params, *wallets.update.params],
        )
    return {
        (user.pk, asset_id): (before[asset_id][0] - amount, before[asset_id][1] + amount)
        for asset_id, amount in wallets.reserved.items()
    }

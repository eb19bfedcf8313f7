"""Order entry: accept (validate, reserve, queue), cancel, and the demo markets (DESIGN §3).

Accepting an order is one transaction: validate against the market's rules, reserve the
funds with one conditional UPDATE, insert the Order and its ``place`` OrderCommand, write
the reserve to the ledger. The matcher is woken after commit; it alone changes the book.
"""

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.models import User
from exchange_site.decimals import decimal_places, decimal_to_str
from trading.exceptions import (
    InvalidOrder,
    MarketCancelOnly,
    MarketHalted,
    MarketNotFound,
    NoLiquidity,
    OrderNotCancellable,
    OrderNotFound,
    UnknownSymbol,
)
from trading.matcher.wakeup import matcher_wake
from trading.models import Market, Order, OrderCommand
from trading.selectors import asks_for_estimate, market_get_by_symbol, order_list_for_user
from wallets.models import AMOUNT_QUANTUM, Asset
from wallets.models import LedgerKind as Kind
from wallets.services import balance_reserve

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


def _market_for_order(symbol: str) -> Market:
    try:
        market = market_get_by_symbol(symbol=symbol)
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
        Order.objects.select_related("market")
        .filter(user=user, client_order_id=client_order_id)
        .first()
    )


@transaction.atomic
def order_place(*, user: User, request: OrderRequest) -> tuple[Order, bool]:
    """Accept an order: validate, reserve, queue it for the matcher. Returns (order, created).

    A retry with a ``client_order_id`` the user already used returns the first order and
    ``created=False``; nothing more is reserved. Raises ``UnknownSymbol`` (400),
    ``InvalidOrder`` (400, with a precise code: INVALID_PRICE_TICK, INVALID_QUANTITY_STEP,
    MIN_NOTIONAL, ...), ``MarketHalted`` / ``MarketCancelOnly`` / ``NoLiquidity`` /
    ``InsufficientBalance`` (422). The reserve is one conditional UPDATE on the balance row.
    """
    existing = _existing_by_client_id(user, request.client_order_id)
    if existing is not None:
        return existing, False
    market = _market_for_order(request.symbol)
    _check_shape(request)
    _check_market_rules(market, request)
    reserve_asset, reserve = _reserve_for(market, request)
    reserve = reserve.quantize(AMOUNT_QUANTUM)
    try:
        with transaction.atomic():
            order = Order.objects.create(
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
    except IntegrityError:
        # The same client_order_id raced in from a concurrent retry: that one wins.
        existing = _existing_by_client_id(user, request.client_order_id)
        if existing is None:
            raise
        return existing, False
    balance_reserve(
        user_id=user.pk,
        asset=reserve_asset,
        amount=reserve,
        kind=Kind.ORDER_RESERVE,
        reference_type="order",
        reference_id=order.pk,
    )
    OrderCommand.objects.create(market=market, order=order, kind=OrderCommand.Kind.PLACE)
    transaction.on_commit(lambda: matcher_wake(market.symbol))
    return order, True


@transaction.atomic
def order_cancel(*, user: User, order_id: int) -> Order:
    """Queue a cancel of the user's live order; the matcher decides and releases the reserve.

    Commands are consumed in order, so a cancel of an order the matcher has not placed yet
    still lands after its place. Raises ``OrderNotFound`` (404, also for another user's
    order), ``OrderNotCancellable`` (409) when it is already done, ``MarketHalted`` (422).
    A second cancel of the same order queues nothing more. Locks the order row.
    """
    # Lock the order row only: locking the joined market row too would queue this behind
    # the matcher's batch (which updates the market) and could deadlock with it.
    order = (
        order_list_for_user(user=user).select_for_update(of=("self",)).filter(pk=order_id).first()
    )
    if order is None:
        raise OrderNotFound(details={"order_id": order_id})
    if not order.is_live:
        raise OrderNotCancellable(details={"order_id": order.pk, "status": order.status})
    if order.market.status == Market.Status.HALTED:
        raise MarketHalted(details={"symbol": order.market.symbol})
    already = OrderCommand.objects.filter(
        order=order, kind=OrderCommand.Kind.CANCEL, processed_at__isnull=True
    ).exists()
    if not already:
        OrderCommand.objects.create(
            market_id=order.market_id, order=order, kind=OrderCommand.Kind.CANCEL
        )
        symbol = order.market.symbol
        transaction.on_commit(lambda: matcher_wake(symbol))
    return order


@transaction.atomic
def order_cancel_all(*, user: User, symbol: str | None = None) -> list[int]:
    """Queue cancels for every live order of the user (in one market when ``symbol``).

    Returns the ids of the orders a cancel was queued for. Halted markets are skipped.
    """
    orders = Order.objects.filter(user=user, status__in=Order.LIVE).select_related("market")
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
    OrderCommand.objects.bulk_create(commands)
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

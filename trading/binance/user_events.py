"""Binance's user-data events (``executionReport``, ``outboundAccountPosition``,
``balanceUpdate``) from what the matcher and the wallets publish.

The matcher calls ``batch_executions`` after each commit: one ``executionReport`` per state
change and per fill, in Binance's fields
(https://developers.binance.com/docs/binance-spot-api-docs/user-data-stream), sent to the
owner's group on the ``executions`` channel beside the ``/ws/`` ``order`` and ``balance``
messages, which stay as they were. The ws processes turn ``balances`` and
``balance_updates`` messages into the two account events (``account_position``,
``balance_update``) and add the event's ``seq`` (``exchange_site.user_events``).

A batch says what each order looks like at its end; a fill's report carries the order's
cumulative amounts as they were just after that fill (the batch's later fills taken back
out), so each report is what Binance would have sent at that moment.
"""

import json
import time
from decimal import Decimal

from django.db.models import Max, Q

from exchange_site.decimals import decimal_to_str
from exchange_site.user_events import user_streams_watched
from marketdata.selectors import millis
from trading.binance import formatters
from trading.binance.selectors import binance_symbol
from trading.models import Order, OrderCommand, Trade
from wallets.events import balance_message
from wallets.models import Balance

EXECUTIONS = "executions"
BALANCES = "balances"
BALANCE_UPDATES = "balance_updates"
_COMPACT = (",", ":")
ON_BOOK = (Order.Status.OPEN, Order.Status.PARTIALLY_FILLED)
PLACE = OrderCommand.Kind.PLACE
PLACE_LIST = OrderCommand.Kind.PLACE_LIST
# Final reports by status (a fill's own report says FILLED).
FINAL_EXECUTION = {
    Order.Status.CANCELLED: "CANCELED",
    Order.Status.EXPIRED: "EXPIRED",
    Order.Status.REJECTED: "REJECTED",
}
# At most this many batches are republished after a restart (older ones: REST).
REPLAY_MAX_BATCHES = 1000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Fill:
    """One fill of one order, as its report shows it."""

    __slots__ = ("commission", "commission_asset", "is_maker", "price", "quantity", "quote")
    __slots__ += ("time", "trade_id")

    def __init__(self, trade, side: str, base_code: str, quote_code: str):
        self.trade_id = trade.id
        self.price = trade.price
        self.quantity = trade.quantity
        self.quote = trade.quote_quantity
        self.is_maker = trade.taker_side != side
        # The buyer pays its fee in what it receives (the base), the seller in the quote.
        if side == Order.Side.BUY:
            self.commission, self.commission_asset = trade.buyer_fee, base_code
        else:
            self.commission, self.commission_asset = trade.seller_fee, quote_code
        self.time = millis(trade.created_at)


def execution_report(
    *,
    symbol: str,
    order,
    client_order_id: str,
    created_ms: int,
    execution: str,
    status: str | None = None,
    filled: Decimal | None = None,
    filled_quote: Decimal | None = None,
    fill: Fill | None = None,
    event_ms: int | None = None,
) -> dict:
    """``executionReport`` for ``order`` (an ``Order`` or the matcher's ``OrderState``:
    anything with the order's columns). ``status``, ``filled`` and ``filled_quote`` default
    to the order's own; a fill's report passes those of that moment."""
    event_ms = event_ms or now_ms()
    status = status or formatters.order_status(order)
    filled = order.filled_quantity if filled is None else filled
    filled_quote = order.filled_quote if filled_quote is None else filled_quote
    on_book = order.status in ON_BOOK and status in ("NEW", "PARTIALLY_FILLED")
    return {
        "e": "executionReport",
        "E": event_ms,
        "s": binance_symbol(symbol),
        "c": client_order_id,
        "S": order.side.upper(),
        "o": formatters.order_type(order),
        "f": order.time_in_force,
        # A market buy by cost has no quantity: what it bought, as REST's origQty.
        "q": formatters.num(order.quantity if order.quantity is not None else filled),
        "p": formatters.num(order.price),
        "P": formatters.num(order.stop_price),
        "F": formatters.num(order.iceberg_quantity) if order.iceberg_quantity else formatters.ZERO,
        "g": formatters.order_list_id(order),
        "C": client_order_id if execution == "CANCELED" else "",
        "x": execution,
        "X": status,
        "r": order.reason.upper() if execution == "REJECTED" and order.reason else "NONE",
        "i": order.id,
        "l": formatters.num(fill.quantity if fill else None),
        "z": formatters.num(filled),
        "L": formatters.num(fill.price if fill else None),
        "n": decimal_to_str(fill.commission) if fill else "0",
        "N": fill.commission_asset if fill else None,
        "T": fill.time if fill else event_ms,
        "t": fill.trade_id if fill else -1,
        "I": 0,
        "w": on_book,
        "m": fill.is_maker if fill else False,
        "M": False,
        "O": created_ms,
        "Z": formatters.num(filled_quote),
        "Y": formatters.num(fill.quote if fill else None),
        "Q": formatters.num(order.quote_quantity),
        "W": created_ms if on_book or fill else -1,
        "V": "EXPIRE_TAKER",
        # Binance adds the trailing delta only to trailing orders' reports.
        **({"d": order.trailing_delta} if order.trailing_delta else {}),
    }


def _dump(event: dict) -> str:
    return json.dumps(event, separators=_COMPACT)


def _reports(symbol, trades, orders, names, base_code, quote_code, placed: set[int]) -> list:
    """``(user_id, report)`` for one batch's ``trades`` and changed ``orders``; ``names``:
    order id → (client order id, creation ms).

    An order gets a NEW report first when it was accepted in the batch (``placed``: its
    place command ran there) or triggered (a taker that was not placed there)."""
    by_id = {order.id: order for order in orders}
    # What each order had filled before the batch: its end state less the batch's fills.
    before: dict[int, list[Decimal]] = {}
    fills_left: dict[int, int] = {}
    takers: set[int] = set()
    for trade in trades:
        for order_id in (trade.buy_order_id, trade.sell_order_id):
            fills_left[order_id] = fills_left.get(order_id, 0) + 1
            running = before.setdefault(order_id, [Decimal(0), Decimal(0)])
            running[0] += trade.quantity
            running[1] += trade.quote_quantity
        takers.add(
            trade.buy_order_id if trade.taker_side == Order.Side.BUY else trade.sell_order_id
        )
    running = {}
    for order_id, (quantity, quote) in before.items():
        order = by_id.get(order_id)
        if order is not None:
            running[order_id] = [order.filled_quantity - quantity, order.filled_quote - quote]

    reports = []

    def report(order, **fields):
        client_order_id, created_ms = names.get(order.id, ("", 0))
        event = execution_report(
            symbol=symbol,
            order=order,
            client_order_id=client_order_id,
            created_ms=created_ms,
            **fields,
        )
        reports.append((order.user_id, event))

    announced = set()
    for order in orders:
        if order.id not in fills_left:
            announced.add(order.id)
            if order.id in placed and order.status != Order.Status.REJECTED:
                report(order, execution="NEW", status="NEW")
    for trade in trades:
        for order_id, side in (
            (trade.buy_order_id, Order.Side.BUY),
            (trade.sell_order_id, Order.Side.SELL),
        ):
            order = by_id.get(order_id)
            if order is None:
                continue
            cumulative = running[order_id]
            if order_id not in announced:
                announced.add(order_id)
                if order_id in placed or order_id in takers:
                    report(
                        order,
                        execution="NEW",
                        status="NEW",
                        filled=cumulative[0],
                        filled_quote=cumulative[1],
                    )
            cumulative[0] += trade.quantity
            cumulative[1] += trade.quote_quantity
            fills_left[order_id] -= 1
            last = fills_left[order_id] == 0
            status = (
                "FILLED" if last and order.status == Order.Status.FILLED else "PARTIALLY_FILLED"
            )
            report(
                order,
                execution="TRADE",
                status=status,
                filled=cumulative[0],
                filled_quote=cumulative[1],
                fill=Fill(trade, side, base_code, quote_code),
            )
    for order in orders:
        execution = FINAL_EXECUTION.get(order.status)
        if execution is not None:
            report(order, execution=execution)
    return reports


def _names(order_ids, first_batch: int, last_batch: int):
    """Order id → (client order id, creation ms) of ``order_ids``, and those whose place
    command ran in batches ``first_batch`` to ``last_batch`` (one query)."""
    rows = (
        Order.objects.filter(pk__in=list(order_ids))
        .annotate(
            placed_in=Max(
                "ordercommand__batch", filter=Q(ordercommand__kind__in=[PLACE, PLACE_LIST])
            ),
            # An OCO's one place_list command names its limit leg; the stop leg is placed
            # by the same command.
            list_placed_in=Max(
                "order_list__orders__ordercommand__batch",
                filter=Q(order_list__orders__ordercommand__kind=PLACE_LIST),
            ),
        )
        .values_list("id", "client_order_id", "created_at", "placed_in", "list_placed_in")
    )
    names, placed = {}, set()
    for pk, client_id, created, own_placed_in, list_placed_in in rows:
        placed_in = own_placed_in if own_placed_in is not None else list_placed_in
        names[pk] = (client_id or "", millis(created))
        if placed_in is not None and first_batch <= placed_in <= last_batch:
            placed.add(pk)
    return names, placed


def batch_executions(result, matcher) -> list[tuple[int, str, str]]:
    """The ``executionReport`` events of one committed batch (``result.batch``),
    ``(user_id, channel, text)`` in the order Binance would send them, for the owners with a
    Binance user data stream open (``user_streams_watched``, one Redis round trip). Reads
    their orders' client ids, creation times and whether they were placed in this batch (one
    query)."""
    watched = user_streams_watched({order.user_id for order in result.orders})
    orders = [order for order in result.orders if order.user_id in watched]
    if not orders:
        return []
    batch = result.batch if result.batch is not None else matcher.batches
    names, placed = _names((order.id for order in orders), batch, batch)
    base_code = matcher.asset_codes[matcher.base_asset_id]
    quote_code = matcher.asset_codes[matcher.quote_asset_id]
    reports = _reports(result.symbol, result.trades, orders, names, base_code, quote_code, placed)
    return [(user_id, EXECUTIONS, _dump(event)) for user_id, event in reports]


def replay(*, market, after_batch: int, to_batch: int) -> list[tuple[int, str, str]]:
    """The private events of batches ``after_batch`` < b <= ``to_batch`` of ``market``,
    rebuilt from the database for a matcher that committed them but may not have published
    them (it died, or Redis was away): each fill's report, each changed order's final
    report, then each owner's balances of the market's two assets, as they are now. A
    client may get some of these twice; trade ids and the order states make that harmless.
    """
    first = max(after_batch + 1, to_batch - REPLAY_MAX_BATCHES + 1)
    commands = OrderCommand.objects.filter(
        market_id=market.pk, batch__gte=first, batch__lte=to_batch
    )
    times = set(commands.values_list("processed_at", flat=True))
    order_ids = set(commands.values_list("order_id", flat=True))
    trades = list(
        Trade.objects.filter(market_id=market.pk, created_at__in=times).order_by("id")
        if times
        else []
    )
    for trade in trades:
        order_ids.update((trade.buy_order_id, trade.sell_order_id))
    if not order_ids:
        return []
    orders = list(Order.objects.filter(pk__in=order_ids).order_by("id"))
    owners = {order.user_id for order in orders}
    watched = user_streams_watched(owners)
    orders = [order for order in orders if order.user_id in watched]
    names, placed = _names([order.id for order in orders], first, to_batch)
    traded = {trade.buy_order_id for trade in trades} | {trade.sell_order_id for trade in trades}
    reports = _reports(
        market.symbol,
        trades,
        [order for order in orders if order.id in traded or order.status != Order.Status.NEW],
        names,
        market.base_asset.code,
        market.quote_asset.code,
        placed,
    )
    events = [(user_id, EXECUTIONS, _dump(event)) for user_id, event in reports]
    users = owners
    balances = Balance.objects.filter(
        user_id__in=users, asset_id__in=(market.base_asset_id, market.quote_asset_id)
    ).select_related("asset")
    events += [
        (
            row.user_id,
            BALANCES,
            balance_message(asset_code=row.asset.code, available=row.available, locked=row.locked),
        )
        for row in balances.order_by("user_id", "asset_id")
    ]
    return events


# --- what the ws processes send --------------------------------------------------------


def account_position(balance: dict, event_ms: int | None = None) -> dict:
    """``outboundAccountPosition`` from a ``/ws/`` ``balance`` message."""
    event_ms = event_ms or now_ms()
    return {
        "e": "outboundAccountPosition",
        "E": event_ms,
        "u": event_ms,
        "B": [
            {
                "a": balance["asset"],
                "f": formatters.text_num(balance["available"]),
                "l": formatters.text_num(balance["locked"]),
            }
        ],
    }


def balance_update(update: dict, event_ms: int | None = None) -> dict:
    """``balanceUpdate`` from a ``balance_updates`` message (a deposit, a withdrawal, an
    operator's adjustment): ``d`` is the change of the free balance."""
    event_ms = event_ms or now_ms()
    return {
        "e": "balanceUpdate",
        "E": event_ms,
        "a": update["asset"],
        "d": formatters.text_num(update["delta"]),
        "T": update.get("time") or event_ms,
    }


def user_event(channel: str, text: str) -> dict | None:
    """The Binance event of one private message, or None (the ``/ws/`` ``order`` messages:
    the reports cover them)."""
    if channel == EXECUTIONS:
        return json.loads(text)
    if channel == BALANCES:
        return account_position(json.loads(text))
    if channel == BALANCE_UPDATES:
        return balance_update(json.loads(text))
    return None


def listen_key_expired(listen_key: str) -> dict:
    return {"e": "listenKeyExpired", "E": now_ms(), "listenKey": listen_key}


__all__ = [
    "BALANCES",
    "BALANCE_UPDATES",
    "EXECUTIONS",
    "batch_executions",
    "execution_report",
    "replay",
    "user_event",
]

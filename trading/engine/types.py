"""Plain data of the matching engine: names, commands, events and the consistency error.

Everything here is an int, a str, None or a tuple of those, so events can be compared,
hashed, logged and pickled without touching the book. Field names spell their units:
``price_ticks`` (integer price in ticks), ``qty_lots`` (integer quantity in lots) and quote
amounts in tick-lots (one tick times one lot, i.e. ``price_ticks * qty_lots``).

Events are produced in the hot path as plain tuples whose *last* element is the event kind.
The NamedTuple classes below have exactly that layout, with ``kind`` defaulting to the kind,
so ``Trade(1, 2, 100, 5, "buy") == (1, 2, 100, 5, "buy", "trade")`` and tests can spell
expected events by field name. ``named(event)`` turns a plain event into its NamedTuple.
"""

from typing import NamedTuple

BUY = "buy"
SELL = "sell"

LIMIT = "limit"
MARKET = "market"
STOP = "stop"
STOP_LIMIT = "stop_limit"

GTC = "GTC"
IOC = "IOC"
FOK = "FOK"

# Statuses, as in docs/ARCHITECTURE.md section 5.
NEW = "new"
OPEN = "open"
PARTIALLY_FILLED = "partially_filled"
FILLED = "filled"
CANCELLED = "cancelled"
REJECTED = "rejected"
EXPIRED = "expired"
UNTRIGGERED = "untriggered"

# Reasons carried by OrderDone (expired), OrderRejected and CancelRejected.
DUPLICATE_ORDER_ID = "duplicate_order_id"
UNKNOWN_ORDER = "unknown_order"
INVALID_SIDE = "invalid_side"
INVALID_ORDER_TYPE = "invalid_order_type"
INVALID_TIF = "invalid_tif"
INVALID_PRICE = "invalid_price"
INVALID_STOP_PRICE = "invalid_stop_price"
INVALID_QUANTITY = "invalid_quantity"
INVALID_QUOTE = "invalid_quote"
POST_ONLY_NOT_LIMIT = "post_only_not_limit"
POST_ONLY_WOULD_TAKE = "post_only_would_take"
FOK_NOT_FILLED = "fok_not_filled"
IOC_REMAINDER = "ioc_remainder"
SELF_TRADE_PREVENTED = "self_trade_prevented"
NO_LIQUIDITY = "no_liquidity"
RESERVE_EXHAUSTED = "reserve_exhausted"
INVALID_ICEBERG = "invalid_iceberg"
INVALID_TRAILING_DELTA = "invalid_trailing_delta"
INVALID_OCO = "invalid_oco"
OCO_OTHER_LEG = "oco_other_leg"
OCO_STOP_WOULD_TRIGGER = "oco_stop_would_trigger"

# Event kinds: the last element of every event tuple.
TRADE = "trade"
ORDER_RESTED = "order_rested"
ORDER_DONE = "order_done"
ORDER_REJECTED = "order_rejected"
CANCEL_REJECTED = "cancel_rejected"
LEVEL_CHANGED = "level_changed"
STOP_ACCEPTED = "stop_accepted"
STOP_TRIGGERED = "stop_triggered"
ORDER_REFRESHED = "order_refreshed"
ORDER_AMENDED = "order_amended"
AMEND_REJECTED = "amend_rejected"
TRAILING_MOVED = "trailing_moved"


class Trade(NamedTuple):
    """A fill at the maker's price. The maker side is the opposite of ``taker_side``."""

    maker_order_id: int
    taker_order_id: int
    price_ticks: int
    qty_lots: int
    taker_side: str
    kind: str = TRADE


class OrderRested(NamedTuple):
    """The order was accepted and ``qty_lots`` of it now rests on the book.

    ``status`` is ``open`` when nothing of it traded, else ``partially_filled``.
    """

    order_id: int
    side: str
    price_ticks: int
    qty_lots: int
    status: str
    kind: str = ORDER_RESTED


class OrderDone(NamedTuple):
    """The order left the engine for good with ``status`` filled, cancelled or expired.

    ``qty_lots`` is what was left unfilled (0 when filled); None for a market buy by quote
    amount, which has no lot quantity. ``reason`` is None for filled and cancelled.
    """

    order_id: int
    status: str
    reason: str | None
    qty_lots: int | None
    kind: str = ORDER_DONE


class OrderRejected(NamedTuple):
    """A place command was refused; the book is unchanged.

    For ``duplicate_order_id`` the live order that already has this id is untouched: the
    command is what was refused. For every other reason the new order's status is rejected.
    """

    order_id: int
    reason: str
    kind: str = ORDER_REJECTED


class CancelRejected(NamedTuple):
    """A cancel command was refused (``unknown_order``: not live); the book is unchanged."""

    order_id: int
    reason: str
    kind: str = CANCEL_REJECTED


class LevelChanged(NamedTuple):
    """The visible level ``side``/``price_ticks`` now holds ``qty_lots`` (0: level removed).

    ``seq`` is the book's sequence number after this change: every change of a visible level
    increments it by one, so diffs built from these events carry gap-free seq ranges.
    """

    side: str
    price_ticks: int
    qty_lots: int
    seq: int
    kind: str = LEVEL_CHANGED


class StopAccepted(NamedTuple):
    """A stop or stop-limit order was accepted and waits, status untriggered."""

    order_id: int
    stop_price_ticks: int
    kind: str = STOP_ACCEPTED


class StopTriggered(NamedTuple):
    """The last trade price reached the stop; the order now executes as market or limit."""

    order_id: int
    last_price_ticks: int
    kind: str = STOP_TRIGGERED


class OrderRefreshed(NamedTuple):
    """An iceberg order's visible part was used up and ``visible_lots`` more now show.

    The order moved to the back of its level (it lost its time priority there).
    """

    order_id: int
    visible_lots: int
    kind: str = ORDER_REFRESHED


class OrderAmended(NamedTuple):
    """The order's remaining quantity is now ``qty_lots`` (a reduction); it kept its priority."""

    order_id: int
    qty_lots: int
    kind: str = ORDER_AMENDED


class AmendRejected(NamedTuple):
    """An amend command was refused (``unknown_order``, ``invalid_quantity``); nothing changed."""

    order_id: int
    reason: str
    kind: str = AMEND_REJECTED


class TrailingMoved(NamedTuple):
    """A trailing stop activated, or its extreme price moved, to ``peak_ticks``.

    For a sell it is the highest last price since activation, for a buy the lowest.
    """

    order_id: int
    peak_ticks: int
    kind: str = TRAILING_MOVED


EVENT_TYPES = {
    cls._field_defaults["kind"]: cls
    for cls in (
        Trade,
        OrderRested,
        OrderDone,
        OrderRejected,
        CancelRejected,
        LevelChanged,
        StopAccepted,
        StopTriggered,
        OrderRefreshed,
        OrderAmended,
        AmendRejected,
        TrailingMoved,
    )
}


def named(event: tuple) -> NamedTuple:
    """Return ``event`` (a plain event tuple) as its NamedTuple class, for readable access."""
    return EVENT_TYPES[event[-1]]._make(event)


class Place(NamedTuple):
    """Command: place an order. Which fields are used depends on ``order_type``.

    - limit: price_ticks, qty_lots, tif, post_only.
    - market: qty_lots, or (buy only) quote_amount instead; a buy by qty_lots may carry
      max_quote, the most quote it may spend (its reserve).
    - stop: stop_price_ticks plus the market fields; executes as a market order when
      triggered.
    - stop_limit: stop_price_ticks plus the limit fields; post_only is not allowed.
    - iceberg_lots (limit, GTC only): the visible part of what rests.
    - trailing_delta (stop and stop_limit only): a trailing stop, in basis points (1..9999);
      stop_price_ticks is then optional and is the activation price.
    """

    order_id: int
    user_id: int
    side: str
    order_type: str
    qty_lots: int | None = None
    price_ticks: int | None = None
    stop_price_ticks: int | None = None
    tif: str = GTC
    post_only: bool = False
    quote_amount: int | None = None
    max_quote: int | None = None
    iceberg_lots: int | None = None
    trailing_delta: int | None = None


class Cancel(NamedTuple):
    """Command: cancel a live (resting or untriggered) order."""

    order_id: int


class Amend(NamedTuple):
    """Command: reduce a live order's remaining quantity to ``qty_lots``, keeping priority."""

    order_id: int
    qty_lots: int


class PlaceOco(NamedTuple):
    """Command: a one-cancels-the-other pair of the same user, side and quantity.

    ``limit``: a GTC limit order that may not take (post-only), iceberg allowed. ``stop``: a
    stop or stop_limit order, trailing allowed. Accepted or rejected as a whole.
    """

    list_id: int
    limit: Place
    stop: Place


class Resting(NamedTuple):
    """A resting order as restored into or exported from a book.

    ``qty_lots`` is its whole remaining quantity. For an iceberg order ``iceberg_lots`` is
    its visible size and ``visible_lots`` what shows now (the rest is hidden); both are None
    for other orders. ``list_peer_id`` is the other leg's id for an OCO limit leg.
    """

    order_id: int
    user_id: int
    side: str
    price_ticks: int
    qty_lots: int
    iceberg_lots: int | None = None
    visible_lots: int | None = None
    list_peer_id: int | None = None


class DepthLevel(NamedTuple):
    """One aggregated level of ``OrderBook.depth``."""

    price_ticks: int
    qty_lots: int
    order_count: int


class BookInconsistency(AssertionError):
    """``OrderBook.validate`` found the book's internal state broken."""

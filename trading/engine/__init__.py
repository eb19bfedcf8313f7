"""The matching engine: one deterministic order book per market, on integer ticks and lots.

Pure Python. It imports nothing from Django, the database, Redis or ``decimal``
(``trading/tests/engine/test_purity.py`` fails if it does). The matcher converts Decimal prices
and quantities to ints at the boundary (``trading/matcher/convert.py``) and persists and
publishes the events this package returns. Same book state + same command = same events.

Units
    ``price_ticks``: price as an int number of ticks. ``qty_lots``: quantity as an int number
    of lots. Quote amounts (a market buy's ``quote_amount`` and ``max_quote``) are ints in
    tick-lots: the notional of ``q`` lots at ``p`` ticks is ``p * q``. Order and user ids are
    ints chosen by the caller (the database ids).

Entry points (``OrderBook``; each returns the list of events of that one command)
    ``place_limit(order_id, user_id, side, price_ticks, qty_lots, tif="GTC", post_only=False)``
    ``place_market(order_id, user_id, side, qty_lots=None, quote_amount=None, max_quote=None,
    tif="IOC")``
    ``place_stop(Place(...))`` for order types ``stop`` and ``stop_limit`` (trailing too)
    ``place_iceberg(Place(...))`` for a limit order with ``iceberg_lots``
    ``cancel(order_id)``, ``amend(order_id, qty_lots)``
    ``place_oco(list_id, limit, stop)``
    ``apply(command)`` with a ``Place``, ``Cancel``, ``Amend`` or ``PlaceOco`` command,
    dispatching to the above; ``place(*fields)`` with ``Place``'s 13 fields as arguments
    (what ``apply`` runs for a Place; the matcher's hot path, no command object built).
    ``OrderBook.restore(resting, stops, last_price_ticks=..., seq=..., trailing_peaks=...,
    oco_pairs=...)`` rebuilds a book; ``resting_orders()`` / ``stop_orders()`` /
    ``trailing_peaks()`` / ``oco_pairs()`` / ``last_price_ticks`` / ``seq`` export what it
    needs. Reads: ``best_bid()`` / ``best_ask()`` (O(1)), ``depth(n)`` (O(n)),
    ``order(order_id)``, ``order_id in book``, ``len(book)``, ``trade_count``.
    ``validate()`` checks internal consistency and raises ``BookInconsistency``
    (an AssertionError); FIFO order inside levels is checked in books built with
    ``OrderBook(audit=True)``, which keep an arrival stamp per order (tests only: it costs
    memory the 1,000,000-order budget does not have, see docs/PERFORMANCE.md).

Rules
    - Price-time priority; every trade is at the maker's (resting order's) price.
    - limit: takes while it crosses, then GTC rests the remainder and IOC expires it
      (reason ``ioc_remainder``). FOK fills completely or expires whole before any fill
      (``fok_not_filled``). ``post_only`` is rejected (``post_only_would_take``) if the
      order crosses the best opposite price at all; it is allowed on limit orders only.
    - market: never rests. By ``qty_lots``, or for a buy by ``quote_amount``: whole lots
      while ``price * lots`` fits in the quote left, ending ``filled`` once it bought
      something and the next lot does not fit (``reserve_exhausted`` if not even one lot
      fit). A buy by quantity carrying ``max_quote`` stops before spending more
      (``reserve_exhausted``); the matcher should always pass it (None means no cap). An
      exhausted other side ends it with ``no_liquidity``. GTC and IOC mean the same for
      market orders; FOK works by quantity (``invalid_tif`` with ``quote_amount``).
    - Self-trade prevention: when the next maker belongs to the taker's ``user_id``, the
      taker's remainder expires (``self_trade_prevented``); fills before that stand and the
      resting order is untouched. FOK counts only what it could fill before such an order.
    - stop / stop_limit: wait as untriggered until the last trade price reaches the stop
      price (buy: last >= stop; sell: last <= stop), then run as a market or limit order
      with time priority from the trigger. Placing one whose condition already holds
      triggers it at once. Triggers run within the command whose trades moved the price,
      after that command's own order is done, one at a time: lowest buy stop first, else
      highest sell stop, ties by arrival; each one's trades can trigger further stops.
      ``post_only`` is not allowed on stops (``post_only_not_limit``).
    - iceberg (``iceberg_lots``, limit GTC only, post_only allowed, 0 < iceberg_lots <
      qty_lots, else ``invalid_iceberg``): as a taker it executes its whole quantity; what
      rests shows ``min(iceberg_lots, remaining)`` lots, the rest is hidden. Levels, depth and
      ``LevelChanged`` count visible lots only; ``OrderRested``, ``OrderDone`` and
      ``Resting.qty_lots`` count the whole remaining quantity. When a fill uses up the visible
      part while hidden lots remain, the order goes to the BACK of its level showing the
      next part (``OrderRefreshed`` right after that fill's Trade); the same taker may fill it
      again later in the same pass. FOK against icebergs simulates those refreshes.
    - trailing stop (``trailing_delta`` in basis points, 1..9999, on stop / stop_limit only,
      else ``invalid_trailing_delta``): ``stop_price_ticks`` is optional and is then the
      activation price (sell: active once last >= it; buy: once last <= it). Without it the
      trail is active from placement at the last price (or from the first trade). While
      active it keeps the extreme last price since activation (sell: highest; buy: lowest;
      every trade of a pass counts) and triggers when sell: last * 10000 <= peak * (10000 -
      delta), buy: last * 10000 >= peak * (10000 + delta). Activation and each move of the
      extreme give ``TrailingMoved(order_id, peak_ticks)``; it never triggers at placement.
    - Trigger order when several stops hold at once: plain buy stops (lowest stop first),
      then plain sell stops (highest first), ties by arrival; then trailing stops by
      arrival. Before each choice, trailing stops are updated with the trades since the last
      update (their ``TrailingMoved`` events, by arrival). One stop runs at a time.
    - amend: ``Amend(order_id, qty_lots)`` sets a live order's remaining quantity to
      0 < qty_lots < remaining (else ``AmendRejected(invalid_quantity)``; not live:
      ``AmendRejected(unknown_order)``); it keeps its time priority. An iceberg loses hidden
      lots first. Untriggered stops can be amended, except a market buy by quote amount.
      Events: ``OrderAmended`` then ``LevelChanged`` if a visible level changed.
    - OCO: ``PlaceOco(list_id, limit, stop)``: same user, side and qty_lots; the limit leg is
      a GTC limit order (iceberg allowed) that always acts as post-only; the stop leg is a
      stop or stop_limit (trailing allowed). Refused whole, both legs ``OrderRejected`` with
      the first defect: ``invalid_oco`` (legs that do not fit together), then
      ``duplicate_order_id``, a leg's own reason, ``oco_stop_would_trigger``,
      ``post_only_would_take``. Accepted: the limit leg's ``OrderRested`` and
      ``LevelChanged``, then ``StopAccepted`` (and ``TrailingMoved`` if it starts active).
      The first fill of the limit leg cancels the stop leg right after that Trade (after
      the maker's ``OrderDone`` or ``OrderRefreshed``): ``OrderDone(stop, cancelled,
      oco_other_leg, qty)``; the rest of the limit leg is then an ordinary order. A triggered
      stop leg first cancels the limit leg (``StopTriggered``, ``OrderDone(limit, cancelled,
      oco_other_leg, remaining)`` and its ``LevelChanged``), then executes. Cancelling either
      leg cancels both (the other with reason ``oco_other_leg``); amending either amends
      both to the same remaining quantity.
    - cancel-replace needs nothing here: the services send a Cancel, then a Place.
    - cancel: a live resting or untriggered order; anything else gets
      ``CancelRejected(unknown_order)``. A place whose id is live gets
      ``OrderRejected(duplicate_order_id)`` and leaves that live order alone; an id whose
      order is done may be used again.
    - Bad input (side, tif, non-positive price/qty/quote, wrong field combination) is
      answered with ``OrderRejected`` and a reason (``invalid_side``, ``invalid_tif``,
      ``invalid_price``, ``invalid_stop_price``, ``invalid_quantity``, ``invalid_quote``,
      ``invalid_order_type``, ``invalid_iceberg``, ``invalid_trailing_delta``). Types are
      not checked: ids, prices and quantities must be ints.

Events (plain tuples, kind last; the NamedTuples in ``types`` have the same layout)
    ``Trade(maker_order_id, taker_order_id, price_ticks, qty_lots, taker_side)``
    ``OrderRested(order_id, side, price_ticks, qty_lots, status)`` status open /
    partially_filled: the order was accepted and this much of it now rests.
    ``OrderDone(order_id, status, reason, qty_lots)`` final: filled, cancelled or
    expired; ``qty_lots`` is what was left unfilled (None for a buy by quote amount).
    ``OrderRejected(order_id, reason)`` a place command refused, nothing changed.
    ``CancelRejected(order_id, reason)`` a cancel command refused, nothing changed.
    ``LevelChanged(side, price_ticks, qty_lots, seq)`` new total of a visible level (0
    removes it). Every visible change increments the book's ``seq`` by one, so a command's
    level events carry consecutive seqs; a level touched by several fills in one pass is
    reported once, after them.
    ``StopAccepted(order_id, stop_price_ticks)`` status untriggered.
    ``StopTriggered(order_id, last_price_ticks)``; the order's own events follow.
    ``OrderRefreshed(order_id, visible_lots)`` an iceberg showed its next part.
    ``OrderAmended(order_id, qty_lots)`` the new remaining quantity.
    ``AmendRejected(order_id, reason)`` an amend command refused, nothing changed.
    ``TrailingMoved(order_id, peak_ticks)`` a trailing stop activated or its extreme moved.

    Order within a command: a fill's ``Trade`` is followed by the maker's ``OrderDone`` if
    that filled it; the level's ``LevelChanged`` follows its fills; the taker's
    ``OrderRested`` (with its level's ``LevelChanged``) or ``OrderDone`` comes last, then
    trailing stops' ``TrailingMoved`` and triggered stops, each as ``StopTriggered`` and its
    own events. An accepted limit or market order reports its outcome once: ``OrderRested``
    or ``OrderDone``; untriggered stops do not touch ``seq``. A level where an iceberg
    refreshed is reported even if its total came back to the same number.

Statuses and reasons are the strings of docs/ARCHITECTURE.md section 5; see ``types`` for constants.
"""

from .book import OrderBook
from .types import (
    AMEND_REJECTED,
    BUY,
    CANCEL_REJECTED,
    CANCELLED,
    DUPLICATE_ORDER_ID,
    EVENT_TYPES,
    EXPIRED,
    FILLED,
    FOK,
    FOK_NOT_FILLED,
    GTC,
    INVALID_ICEBERG,
    INVALID_OCO,
    INVALID_ORDER_TYPE,
    INVALID_PRICE,
    INVALID_QUANTITY,
    INVALID_QUOTE,
    INVALID_SIDE,
    INVALID_STOP_PRICE,
    INVALID_TIF,
    INVALID_TRAILING_DELTA,
    IOC,
    IOC_REMAINDER,
    LEVEL_CHANGED,
    LIMIT,
    MARKET,
    NEW,
    NO_LIQUIDITY,
    OCO_OTHER_LEG,
    OCO_STOP_WOULD_TRIGGER,
    OPEN,
    ORDER_AMENDED,
    ORDER_DONE,
    ORDER_REFRESHED,
    ORDER_REJECTED,
    ORDER_RESTED,
    PARTIALLY_FILLED,
    POST_ONLY_NOT_LIMIT,
    POST_ONLY_WOULD_TAKE,
    REJECTED,
    RESERVE_EXHAUSTED,
    SELF_TRADE_PREVENTED,
    SELL,
    STOP,
    STOP_ACCEPTED,
    STOP_LIMIT,
    STOP_TRIGGERED,
    TRADE,
    TRAILING_MOVED,
    UNKNOWN_ORDER,
    UNTRIGGERED,
    Amend,
    AmendRejected,
    BookInconsistency,
    Cancel,
    CancelRejected,
    DepthLevel,
    LevelChanged,
    OrderAmended,
    OrderDone,
    OrderRefreshed,
    OrderRejected,
    OrderRested,
    Place,
    PlaceOco,
    Resting,
    StopAccepted,
    StopTriggered,
    Trade,
    TrailingMoved,
    named,
)

__all__ = [
    "AMEND_REJECTED",
    "BUY",
    "CANCELLED",
    "CANCEL_REJECTED",
    "DUPLICATE_ORDER_ID",
    "EVENT_TYPES",
    "EXPIRED",
    "FILLED",
    "FOK",
    "FOK_NOT_FILLED",
    "GTC",
    "INVALID_ICEBERG",
    "INVALID_OCO",
    "INVALID_ORDER_TYPE",
    "INVALID_PRICE",
    "INVALID_QUANTITY",
    "INVALID_QUOTE",
    "INVALID_SIDE",
    "INVALID_STOP_PRICE",
    "INVALID_TIF",
    "INVALID_TRAILING_DELTA",
    "IOC",
    "IOC_REMAINDER",
    "LEVEL_CHANGED",
    "LIMIT",
    "MARKET",
    "NEW",
    "NO_LIQUIDITY",
    "OCO_OTHER_LEG",
    "OCO_STOP_WOULD_TRIGGER",
    "OPEN",
    "ORDER_AMENDED",
    "ORDER_DONE",
    "ORDER_REFRESHED",
    "ORDER_REJECTED",
    "ORDER_RESTED",
    "PARTIALLY_FILLED",
    "POST_ONLY_NOT_LIMIT",
    "POST_ONLY_WOULD_TAKE",
    "REJECTED",
    "RESERVE_EXHAUSTED",
    "SELF_TRADE_PREVENTED",
    "SELL",
    "STOP",
    "STOP_ACCEPTED",
    "STOP_LIMIT",
    "STOP_TRIGGERED",
    "TRADE",
    "TRAILING_MOVED",
    "UNKNOWN_ORDER",
    "UNTRIGGERED",
    "Amend",
    "AmendRejected",
    "BookInconsistency",
    "Cancel",
    "CancelRejected",
    "DepthLevel",
    "LevelChanged",
    "OrderAmended",
    "OrderBook",
    "OrderDone",
    "OrderRefreshed",
    "OrderRejected",
    "OrderRested",
    "Place",
    "PlaceOco",
    "Resting",
    "StopAccepted",
    "StopTriggered",
    "Trade",
    "TrailingMoved",
    "named",
]

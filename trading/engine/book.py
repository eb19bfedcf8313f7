"""One market's order book: a deterministic state machine from commands to events.

Layout, chosen for CPython speed and memory (see docs/PERFORMANCE.md):

- A side keeps its levels in a dict ``key -> _Level`` and the keys in one ascending list, so
  the best level is always ``keys[-1]``. A bid's key is its price, an ask's key is minus its
  price; that makes "best" the maximum on both sides and lets one matching loop serve both.
- A level holds its orders in a deque in time priority. A plain resting order is NOT an
  object: its deque entry is its id and ``_live[id]`` is one int packing its remaining lots,
  its user and its level (``(qty << 52) | (user << 20) | level ref``): 32 bytes instead of
  a 64-byte four-slot object (and its own quantity and user ints, for real-sized values),
  and several times cheaper to create. 1,000,000 resting orders take 110 MB instead of 137
  (bench/engine.py --resting 1000000, session 9). An entry whose id no longer maps to a
  packed int of this level is a ghost (a cancelled order); it stays in the deque until it
  reaches the head, so cancel is O(1); a level whose ghosts outnumber its live orders is
  compacted, which keeps that amortised O(1) too. ``_ghosts`` remembers which level holds
  each plain ghost, so an id used again after a cancel first loses its old ghost.
- ``_live`` maps every live order id (resting or untriggered stop) to its entry, for O(1)
  cancel and duplicate checks.
- Untriggered stops sit in two ascending lists of ``(k1, k2, Place)`` tuples arranged so the
  next stop to trigger on each side is the last element.
- Icebergs and OCO limit legs rest as ``_Special`` objects in the deque (as do plain orders
  whose user id or level ref does not fit the packed layout). Trailing stops sit in an
  arrival-ordered dict of ``_Trail``; beyond a few dozen they are indexed by four heaps
  (per side: the price at which a trade next moves or activates each stop, and the price
  at which each active stop triggers), so a trade touches only the stops it moves or
  triggers instead of scanning them all; OCO links in ``_lists``. The hot paths only test
  an entry's class per fill and ``self._trailing`` per pass, so unused features cost
  nothing measurable.
"""

from bisect import bisect_left, insort
from collections import deque
from heapq import heappop, heappush
from itertools import count, islice, pairwise

from .types import (
    AMEND_REJECTED,
    BUY,
    CANCEL_REJECTED,
    CANCELLED,
    DUPLICATE_ORDER_ID,
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
    Amend,
    BookInconsistency,
    Cancel,
    DepthLevel,
    Place,
    PlaceOco,
    Resting,
)

_TIFS = frozenset((GTC, IOC, FOK))
# The time in force of a limit order that takes on place's short path (FOK and post-only
# take the general one).
_TAKER_TIFS = (GTC, IOC)
# place's short paths for a limit order that takes, an IOC or FOK limit order that does not
# cross and a market order by quantity (the matcher's path); False sends them through
# _exec_limit and place_market, the general paths they shorten, which the tests compare
# them with (test_fast_paths.py).
_FAST_PATHS = True

# Limit key of a market order: below every real key, so every level is acceptable.
_NO_LIMIT = float("-inf")
# Lot quantity of a market buy by quote amount, more than any book holds: the quote, not
# the lots, ends such an order.
_UNBOUNDED_LOTS = 1 << 62

# A level is compacted once its deque is longer than twice its live orders plus this slack,
# so compaction (O(len)) is paid for by at least that many cancels.
_GHOST_SLACK = 32

# Emptied levels kept per side for their price to be used again (a thin book empties and
# refills its levels on most commands; making a level costs more than resting an order).
_PARKED_LIMIT = 1024


# Trailing stops are indexed by heaps once more than _TRAIL_HEAPS_FROM of them wait, and
# scanned again below _TRAIL_SCAN_BELOW: keeping heap entries up to date costs more per
# trade than scanning a handful of stops (the full mix with a thin book: ~2 live on
# average), and the gap keeps a count near a threshold from rebuilding the heaps each time.
_TRAIL_HEAPS_FROM = 32
_TRAIL_SCAN_BELOW = 8


# A plain resting order is ``_live[id] = (qty_lots << _QTY_SHIFT) | (user_id << _USER_SHIFT)
# | level ref``. The user and the ref have fixed widths below the quantity, which is
# unbounded; an order whose user id or level ref does not fit rests as a _Special instead.
_QTY_SHIFT = 52
_USER_SHIFT = 20
_USER_BITS = _QTY_SHIFT - _USER_SHIFT
_USER_LIMIT = 1 << _USER_BITS
_USER_MASK = _USER_LIMIT - 1
_REF_LIMIT = 1 << _USER_SHIFT
_REF_MASK = _REF_LIMIT - 1
# The packed user, in place: ``v & _USER_FIELD == user_id << _USER_SHIFT``.
_USER_FIELD = _USER_MASK << _USER_SHIFT


class _Special:
    # A resting order kept as an object: an iceberg (``qty_lots`` is its visible part,
    # ``hidden_lots`` the rest, ``peak_lots`` its visible size), an OCO limit leg
    # (``peak_lots`` None, ``hidden_lots`` 0; the pair is in ``OrderBook._lists``), or a
    # plain order that does not fit the packed layout (as an OCO leg, outside ``_lists``).
    # A cancelled one stays in its level's deque as a ghost with ``qty_lots`` 0.
    __slots__ = ("order_id", "user_id", "qty_lots", "level", "hidden_lots", "peak_lots")

    def __init__(self, order_id, user_id, qty_lots, level, hidden_lots, peak_lots):
        self.order_id = order_id
        self.user_id = user_id
        self.qty_lots = qty_lots
        self.level = level
        self.hidden_lots = hidden_lots
        self.peak_lots = peak_lots


class _Trail:
    # An untriggered trailing stop: its Place, its extreme price since activation (None
    # before) and its arrival number (shared with the plain stops' counter). ``move`` and
    # ``fire`` are the keys of its current entries in the book's trailing heaps (``fire``
    # None while inactive; both None once it left the book): an entry whose key differs
    # is stale and skipped.
    __slots__ = ("command", "peak", "arrival", "move", "fire")

    def __init__(self, command, peak, arrival):
        self.command = command
        self.peak = peak
        self.arrival = arrival
        self.move = None
        self.fire = None


def _arrival(trail):
    return trail.arrival


class _Level:
    # ``ref``: this level's index in ``OrderBook._refs``, packed into its plain orders.
    __slots__ = ("side", "price_ticks", "key", "total_lots", "count", "orders", "ref")

    def __init__(self, side, price_ticks, key, ref):
        self.side = side
        self.price_ticks = price_ticks
        self.key = key
        self.ref = ref
        self.total_lots = 0
        self.count = 0
        self.orders = deque()


class _Side:
    # ``levels`` also holds up to _PARKED_LIMIT emptied levels (count 0, not in ``keys``),
    # ``parked`` of them: an order resting at that price again lists the same object.
    __slots__ = ("name", "keys", "levels", "parked")

    def __init__(self, name):
        self.name = name
        self.keys = []
        self.levels = {}
        self.parked = 0


def _is_count(value) -> bool:
    return type(value) is int and value > 0


class OrderBook:
    """The order book of one market and the rules that change it.

    Every entry point takes one command and returns the list of events it caused, in the
    order they happened (see ``trading.engine`` for the event catalogue). Preconditions,
    shared by all entry points: ids, prices, quantities and quote amounts are ``int``
    (never float or Decimal); the caller converts at the boundary. Invalid commands are
    answered with an OrderRejected / CancelRejected event, never an exception, and change
    nothing.

    Invariants after every command (``validate`` checks them): the book is not crossed;
    each level's total is the sum of its live orders' visible lots; orders in a level are in
    arrival order (an iceberg's by its last refresh); each live order is indexed once; no
    untriggered stop satisfies its trigger condition at the last trade price; trailing stops
    are up to date with every trade; OCO legs are linked both ways with equal remaining.
    """

    __slots__ = (
        "_bids",
        "_asks",
        "_live",
        "_buy_stops",
        "_sell_stops",
        "_stop_arrivals",
        "_last_price",
        "_seq",
        "_arrivals",
        "_arrival_clock",
        "_lists",
        "_trailing",
        "_sweep",
        "_trail_idle",
        "_trail_heaps",
        "_sell_moves",
        "_buy_moves",
        "_sell_fires",
        "_buy_fires",
        "_refs",
        "_free_levels",
        "_ghosts",
        "trade_count",
    )

    def __init__(self, *, audit: bool = False) -> None:
        """Create an empty book with seq 0 and no last trade price.

        ``audit=True`` also records each resting order's arrival so that ``validate`` can
        check FIFO order inside levels; it costs a dict entry per resting order, so it is for
        tests, not for production.
        """
        self._bids = _Side(BUY)
        self._asks = _Side(SELL)
        self._live = {}
        self._buy_stops = []
        self._sell_stops = []
        self._stop_arrivals = 0
        self._last_price = None
        self._seq = 0
        self._arrivals = {} if audit else None
        self._arrival_clock = count()
        # OCO legs: order id -> (list id, the other leg's id), both legs while the pair lives.
        self._lists = {}
        # Untriggered trailing stops in arrival order: order id -> _Trail.
        self._trailing = {}
        # (lowest, highest) trade price since trailing stops were last updated, or None.
        self._sweep = None
        # True when the last scan for a triggered trailing stop found none and neither the
        # last price nor any trailing stop changed since: the next scan would find none
        # too, so _run_stops skips it (a deep book piles up untriggered trailing stops, and
        # the scan is O(their number); docs/PERFORMANCE.md, session 8).
        self._trail_idle = False
        # The trailing stops' index, four min-heaps of (key, arrival, _Trail) with stale
        # entries left in place (skipped, dropped at the top, and all dropped once they
        # outnumber the live ones). Moves: a trade at ``hi`` moves or activates every sell
        # stop whose key is <= hi (key: its activation price, or its extreme + 1); one at
        # ``lo`` every buy stop whose key is <= -lo (key: minus its activation price, or
        # 1 - its extreme). Fires: with L = last price * 10000, an active sell stop
        # triggers when its key -extreme * (10000 - delta) is <= -L, a buy stop when its
        # key extreme * (10000 + delta) is <= L (the trigger test in integers, as before).
        # The heaps are kept only while ``_trail_heaps`` (see _TRAIL_HEAPS_FROM); without
        # them the trailing stops are scanned, and their ``move``/``fire`` mean nothing.
        self._trail_heaps = False
        self._sell_moves = []
        self._buy_moves = []
        self._sell_fires = []
        self._buy_fires = []
        # Level ref -> _Level, every level object this book made; the dropped ones wait in
        # _free_levels to be used again (a thin book drops and re-creates a level on most
        # commands, and creating one costs more than resting an order).
        self._refs = []
        self._free_levels = []
        # Id of a cancelled plain order whose entry is still in a level's deque -> that level.
        self._ghosts = {}
        self.trade_count = 0

    # ----------------------------------------------------------------- read access

    @property
    def seq(self) -> int:
        """Sequence number of the last visible book change (docs/ARCHITECTURE.md section 6)."""
        return self._seq

    @property
    def last_price_ticks(self) -> int | None:
        """Price of the last trade, or None before the first one."""
        return self._last_price

    def best_bid(self) -> int | None:
        """Highest bid price in ticks, or None. O(1)."""
        keys = self._bids.keys
        return keys[-1] if keys else None

    def best_ask(self) -> int | None:
        """Lowest ask price in ticks, or None. O(1)."""
        keys = self._asks.keys
        return -keys[-1] if keys else None

    def depth(self, levels: int = 10) -> tuple[list[DepthLevel], list[DepthLevel]]:
        """Top ``levels`` levels per side, best first: ``(bids, asks)``.

        Each level is aggregated as (price_ticks, total qty_lots, order_count). Costs
        O(levels), independent of the book's size.
        """
        result = []
        for side in (self._bids, self._asks):
            side_levels = side.levels
            result.append(
                [
                    DepthLevel(lvl.price_ticks, lvl.total_lots, lvl.count)
                    for lvl in (side_levels[key] for key in islice(reversed(side.keys), levels))
                ]
            )
        return result[0], result[1]

    def order(self, order_id: int) -> Resting | Place | None:
        """The live order ``order_id``: Resting if on the book, its Place if an untriggered
        stop, None if not live."""
        entry = self._live.get(order_id)
        if entry is None:
            return None
        cls = entry.__class__
        if cls is int:
            lvl = self._refs[entry & _REF_MASK]
            return Resting(
                order_id,
                (entry >> _USER_SHIFT) & _USER_MASK,
                lvl.side.name,
                lvl.price_ticks,
                entry >> _QTY_SHIFT,
            )
        if cls is _Special:
            return self._special_resting(entry)
        if cls is _Trail:
            return entry.command
        return entry[2]

    def __contains__(self, order_id: int) -> bool:
        """Whether ``order_id`` is live (resting or untriggered)."""
        return order_id in self._live

    def __len__(self) -> int:
        """Number of live orders, resting and untriggered."""
        return len(self._live)

    def resting_orders(self) -> list[Resting]:
        """Every resting order: bids then asks, best level first, FIFO inside a level.

        This is the priority order ``restore`` expects.
        """
        out = []
        live = self._live
        for side in (self._bids, self._asks):
            name = side.name
            for key in reversed(side.keys):
                lvl = side.levels[key]
                price = lvl.price_ticks
                ref = lvl.ref
                for o in lvl.orders:
                    if o.__class__ is int:
                        v = live.get(o)
                        if v.__class__ is int and v & _REF_MASK == ref:
                            out.append(
                                Resting(
                                    o, (v >> _USER_SHIFT) & _USER_MASK, name, price, v >> _QTY_SHIFT
                                )
                            )
                    elif o.qty_lots:
                        out.append(self._special_resting(o))
        return out

    def _special_resting(self, order):
        lvl = order.level
        peak = order.peak_lots
        peer = self._lists.get(order.order_id)
        return Resting(
            order.order_id,
            order.user_id,
            lvl.side.name,
            lvl.price_ticks,
            order.qty_lots + order.hidden_lots,
            peak,
            None if peak is None else order.qty_lots,
            None if peer is None else peer[1],
        )

    def stop_orders(self) -> list[Place]:
        """Every untriggered stop order, trailing ones too, in arrival order (what ``restore``
        expects)."""
        entries = [(-entry[1], entry[2]) for entry in self._buy_stops + self._sell_stops]
        entries.extend((trail.arrival, trail.command) for trail in self._trailing.values())
        entries.sort(key=lambda entry: entry[0])
        return [entry[1] for entry in entries]

    def trailing_peaks(self) -> dict[int, int]:
        """Activated trailing stops: order id -> extreme price since activation (restore)."""
        return {
            order_id: trail.peak
            for order_id, trail in self._trailing.items()
            if trail.peak is not None
        }

    def oco_pairs(self) -> list[tuple[int, int, int]]:
        """Live OCO pairs as ``(list_id, limit_order_id, stop_order_id)`` (restore)."""
        live = self._live
        return [
            (list_id, order_id, peer)
            for order_id, (list_id, peer) in self._lists.items()
            if live[order_id].__class__ is _Special
        ]

    # ----------------------------------------------------------------- commands

    def apply(self, command: Place | Cancel | Amend | PlaceOco) -> list[tuple]:
        """Run one command (Place, Cancel, Amend or PlaceOco) through its entry point."""
        cls = command.__class__
        if cls is Place:
            return self.place(*command)
        if cls is Cancel:
            return self.cancel(command.order_id)
        if cls is Amend:
            return self.amend(command.order_id, command.qty_lots)
        return self.place_oco(command.list_id, command.limit, command.stop)

    def place(
        self,
        order_id: int,
        user_id: int,
        side: str,
        order_type: str,
        qty_lots: int | None = None,
        price_ticks: int | None = None,
        stop_price_ticks: int | None = None,
        tif: str = GTC,
        post_only: bool = False,
        quote_amount: int | None = None,
        max_quote: int | None = None,
        iceberg_lots: int | None = None,
        trailing_delta: int | None = None,
    ) -> list[tuple]:
        """Place any order given ``Place``'s fields, in its order: ``apply(Place(*f))`` is
        ``place(*f)``. The matcher calls ``place(*fields)`` with the slice of its command row
        that PostgreSQL computed (trading.matcher.commands), so no command object is built
        per order. Dispatches on ``order_type`` (and ``iceberg_lots``) to the typed entry
        points; a field the order type does not take is rejected.
        """
        live = self._live
        if order_id in live:
            return [(order_id, DUPLICATE_ORDER_ID, ORDER_REJECTED)]
        if order_type == LIMIT:
            if iceberg_lots is not None:
                return self.place_iceberg(
                    Place(
                        order_id,
                        user_id,
                        side,
                        order_type,
                        qty_lots,
                        price_ticks,
                        stop_price_ticks,
                        tif,
                        post_only,
                        quote_amount,
                        max_quote,
                        iceberg_lots,
                        trailing_delta,
                    )
                )
            if trailing_delta is not None:
                return [(order_id, INVALID_TRAILING_DELTA, ORDER_REJECTED)]
            # The typed entry point trusts its ints; a command may carry None.
            if price_ticks is None:
                return [(order_id, INVALID_PRICE, ORDER_REJECTED)]
            if qty_lots is None:
                return [(order_id, INVALID_QUANTITY, ORDER_REJECTED)]
            # The limit order itself: place_limit delegates here, so the matcher's path makes
            # one call per order.
            # ``limit_key``: the opposite side's keys this order crosses are >= it (-key).
            if side == BUY:
                own = self._bids
                opp = self._asks
                key = price_ticks
                limit_key = -price_ticks
            elif side == SELL:
                own = self._asks
                opp = self._bids
                key = -price_ticks
                limit_key = price_ticks
            else:
                return [(order_id, INVALID_SIDE, ORDER_REJECTED)]
            if price_ticks <= 0:
                return [(order_id, INVALID_PRICE, ORDER_REJECTED)]
            if qty_lots <= 0:
                return [(order_id, INVALID_QUANTITY, ORDER_REJECTED)]
            opp_keys = opp.keys
            if opp_keys and opp_keys[-1] >= limit_key:
                if _FAST_PATHS and not post_only and tif in _TAKER_TIFS:
                    # A plain taker: _exec_limit inlined for its common case (FOK and
                    # post-only take the general path below).
                    events = []
                    left, _, reason = self._take(
                        events, order_id, user_id, own.name, opp, limit_key, qty_lots, None
                    )
                    if not left:
                        events.append((order_id, FILLED, None, 0, ORDER_DONE))
                    elif reason is not None:
                        events.append((order_id, EXPIRED, reason, left, ORDER_DONE))
                    elif tif == GTC:
                        status = OPEN if left == qty_lots else PARTIALLY_FILLED
                        self._rest(events, order_id, user_id, own, key, price_ticks, left, status)
                    else:
                        events.append((order_id, EXPIRED, IOC_REMAINDER, left, ORDER_DONE))
                    if self._buy_stops or self._sell_stops or self._trailing:
                        self._run_stops(events)
                    return events
            elif tif == GTC:
                # The common case, a maker: it rests without touching the other side. This is
                # _rest inlined for a plain order, the engine's hottest path.
                lvl = own.levels.get(key)
                if lvl is None:
                    lvl = self._new_level(own, price_ticks, key)
                elif not lvl.count:
                    insort(own.keys, key)  # a parked level listed again
                    own.parked -= 1
                ref = lvl.ref
                # ``not user_id >> _USER_BITS``: 0 <= user_id < _USER_LIMIT, for an int.
                if ref < _REF_LIMIT and user_id.__class__ is int and not user_id >> _USER_BITS:
                    if order_id in self._ghosts:
                        self._purge_ghost(order_id)
                    live[order_id] = (qty_lots << _QTY_SHIFT) | (user_id << _USER_SHIFT) | ref
                    lvl.orders.append(order_id)
                    lvl.total_lots = total = lvl.total_lots + qty_lots
                    lvl.count += 1
                    self._seq = seq = self._seq + 1
                    if self._arrivals is not None:
                        self._arrivals[order_id] = next(self._arrival_clock)
                    name = own.name
                    return [
                        (order_id, name, price_ticks, qty_lots, OPEN, ORDER_RESTED),
                        (name, price_ticks, total, seq, LEVEL_CHANGED),
                    ]
                events = []
                self._rest(events, order_id, user_id, own, key, price_ticks, qty_lots, OPEN, lvl)
                return events
            elif _FAST_PATHS and tif in _TIFS:
                # IOC or FOK that does not cross: it expires whole (_exec_limit's outcome).
                reason = IOC_REMAINDER if tif == IOC else FOK_NOT_FILLED
                events = [(order_id, EXPIRED, reason, qty_lots, ORDER_DONE)]
                if self._buy_stops or self._sell_stops or self._trailing:
                    self._run_stops(events)
                return events
            if tif not in _TIFS:
                return [(order_id, INVALID_TIF, ORDER_REJECTED)]
            events = []
            self._exec_limit(
                events, order_id, user_id, own, opp, key, price_ticks, qty_lots, tif, post_only
            )
            if self._buy_stops or self._sell_stops or self._trailing:
                self._run_stops(events)
            return events
        if order_type == MARKET:
            if post_only:
                return [(order_id, POST_ONLY_NOT_LIMIT, ORDER_REJECTED)]
            if iceberg_lots is not None:
                return [(order_id, INVALID_ICEBERG, ORDER_REJECTED)]
            if trailing_delta is not None:
                return [(order_id, INVALID_TRAILING_DELTA, ORDER_REJECTED)]
            if (
                _FAST_PATHS
                and quote_amount is None
                and qty_lots.__class__ is int
                and qty_lots > 0
                and tif in _TIFS
                and (
                    (side == SELL and max_quote is None)
                    or (
                        side == BUY
                        and (max_quote is None or (max_quote.__class__ is int and max_quote > 0))
                    )
                )
            ):
                # A valid market order by quantity (what _check_market accepts):
                # place_market and _exec_market inlined. Buys by quote amount and anything
                # place_market rejects take the general path.
                events = []
                opp = self._asks if side == BUY else self._bids
                if tif == FOK and not self._can_fill(opp, user_id, _NO_LIMIT, qty_lots, max_quote):
                    events.append((order_id, EXPIRED, FOK_NOT_FILLED, qty_lots, ORDER_DONE))
                else:
                    left, _, reason = self._take(
                        events, order_id, user_id, side, opp, _NO_LIMIT, qty_lots, max_quote
                    )
                    if left:
                        events.append((order_id, EXPIRED, reason or NO_LIQUIDITY, left, ORDER_DONE))
                    else:
                        events.append((order_id, FILLED, None, 0, ORDER_DONE))
                if self._buy_stops or self._sell_stops or self._trailing:
                    self._run_stops(events)
                return events
            return self.place_market(
                order_id, user_id, side, qty_lots, quote_amount, max_quote, tif
            )
        if order_type in (STOP, STOP_LIMIT):
            return self.place_stop(
                Place(
                    order_id,
                    user_id,
                    side,
                    order_type,
                    qty_lots,
                    price_ticks,
                    stop_price_ticks,
                    tif,
                    post_only,
                    quote_amount,
                    max_quote,
                    iceberg_lots,
                    trailing_delta,
                )
            )
        return [(order_id, INVALID_ORDER_TYPE, ORDER_REJECTED)]

    def place_limit(
        self,
        order_id: int,
        user_id: int,
        side: str,
        price_ticks: int,
        qty_lots: int,
        tif: str = GTC,
        post_only: bool = False,
    ) -> list[tuple]:
        """Place a limit order; returns its events.

        It takes liquidity at the makers' prices while it crosses (price-time priority),
        then GTC rests the remainder, IOC expires it. FOK expires the whole order, before any
        fill, unless it can fill completely. ``post_only`` rejects it if it would take at
        all. Self-trade prevention: on reaching a resting order of ``user_id`` the remainder
        expires. Stops triggered by its trades run before this returns.
        """
        return self.place(
            order_id, user_id, side, LIMIT, qty_lots, price_ticks, None, tif, post_only
        )

    def place_iceberg(self, command: Place) -> list[tuple]:
        """Place an iceberg order (a GTC limit order with ``iceberg_lots``); returns its events.

        It takes like any limit order with its whole quantity; what rests shows
        ``min(iceberg_lots, remaining)`` lots and hides the rest. Each time the visible part
        is filled while hidden lots remain, the order shows the next part at the back of its
        level (``OrderRefreshed``).
        """
        order_id = command.order_id
        if order_id in self._live:
            return [(order_id, DUPLICATE_ORDER_ID, ORDER_REJECTED)]
        reason = _check_iceberg(command)
        if reason is not None:
            return [(order_id, reason, ORDER_REJECTED)]
        side = command.side
        price = command.price_ticks
        if side == BUY:
            own, opp, key = self._bids, self._asks, price
        else:
            own, opp, key = self._asks, self._bids, -price
        qty = command.qty_lots
        user_id = command.user_id
        events = []
        left = qty
        opp_keys = opp.keys
        if opp_keys and opp_keys[-1] >= -key:
            if command.post_only:
                return [(order_id, POST_ONLY_WOULD_TAKE, ORDER_REJECTED)]
            left, _, reason = self._take(events, order_id, user_id, side, opp, -key, qty, None)
        if not left:
            events.append((order_id, FILLED, None, 0, ORDER_DONE))
        elif reason is not None:
            events.append((order_id, EXPIRED, reason, left, ORDER_DONE))
        else:
            status = OPEN if left == qty else PARTIALLY_FILLED
            self._rest_special(
                events, order_id, user_id, own, key, price, left, status, command.iceberg_lots
            )
        if self._buy_stops or self._sell_stops or self._trailing:
            self._run_stops(events)
        return events

    def place_market(
        self,
        order_id: int,
        user_id: int,
        side: str,
        qty_lots: int | None = None,
        quote_amount: int | None = None,
        max_quote: int | None = None,
        tif: str = IOC,
    ) -> list[tuple]:
        """Place a market order; returns its events. It never rests.

        Give exactly one of ``qty_lots`` and (buy only) ``quote_amount``. A buy by quantity
        should carry ``max_quote``, its reserve in tick-lots: it stops with reason
        reserve_exhausted rather than spend more (None means no cap). A buy by quote amount
        fills whole lots while price * lots fits in what is left of the quote; it ends
        filled once it bought something and the next lot no longer fits. GTC and IOC mean
        the same here; FOK (quantity orders only) expires it unless it can fill completely.
        """
        if order_id in self._live:
            return [(order_id, DUPLICATE_ORDER_ID, ORDER_REJECTED)]
        reason = _check_market(side, qty_lots, quote_amount, max_quote, tif)
        if reason is not None:
            return [(order_id, reason, ORDER_REJECTED)]
        events = []
        self._exec_market(events, order_id, user_id, side, qty_lots, quote_amount, max_quote, tif)
        if self._buy_stops or self._sell_stops or self._trailing:
            self._run_stops(events)
        return events

    def place_stop(self, command: Place) -> list[tuple]:
        """Place a stop (order_type stop) or stop_limit order; returns its events.

        It waits, untriggered, until the last trade price reaches ``stop_price_ticks``
        (buy: last >= stop, sell: last <= stop), then executes as a market order (stop) or
        a limit order at ``price_ticks`` (stop_limit), with time priority from that moment.
        If the last price already satisfies the condition it triggers at once. Stops that
        trigger in the same command run one at a time: the lowest buy stop or highest sell
        stop first, ties by arrival, and each one's trades can trigger more.
        """
        order_id = command.order_id
        if order_id in self._live:
            return [(order_id, DUPLICATE_ORDER_ID, ORDER_REJECTED)]
        reason = _check_stop(command)
        if reason is not None:
            return [(order_id, reason, ORDER_REJECTED)]
        if command.trailing_delta is not None:
            events = [(order_id, command.stop_price_ticks, STOP_ACCEPTED)]
            # It cannot trigger at once: an activation starts its extreme at the last price.
            self._add_trailing(command, events)
            return events
        self._add_stop(command)
        events = [(order_id, command.stop_price_ticks, STOP_ACCEPTED)]
        if self._last_price is not None:
            self._run_stops(events)
        return events

    def amend(self, order_id: int, qty_lots: int) -> list[tuple]:
        """Reduce a live order's remaining quantity to ``qty_lots``, keeping its priority.

        Works on resting orders (an iceberg loses hidden lots first, then visible ones) and
        untriggered stops (not on a market buy by quote amount). ``qty_lots`` must be below
        the current remaining quantity and above 0, else AmendRejected(invalid_quantity);
        an id that is not live gets AmendRejected(unknown_order). Events: OrderAmended, then
        LevelChanged if the visible level changed. An OCO leg takes its pair along: the other
        leg gets the same remaining quantity (its own OrderAmended).
        """
        entry = self._live.get(order_id)
        if entry is None:
            return [(order_id, UNKNOWN_ORDER, AMEND_REJECTED)]
        current = _remaining(entry)
        if current is None or type(qty_lots) is not int or not 0 < qty_lots < current:
            return [(order_id, INVALID_QUANTITY, AMEND_REJECTED)]
        events = []
        self._amend_entry(order_id, entry, qty_lots, events)
        pair = self._lists.get(order_id)
        if pair is not None:
            self._amend_entry(pair[1], self._live[pair[1]], qty_lots, events)
        return events

    def place_oco(self, list_id: int, limit: Place, stop: Place) -> list[tuple]:
        """Place a one-cancels-the-other pair; returns its events.

        ``limit``: a GTC limit order (iceberg allowed), always post-only. ``stop``: a stop or
        stop_limit order (trailing allowed). Same user, side and qty_lots. Accepted whole
        (the limit leg's OrderRested and LevelChanged, then StopAccepted) or rejected whole
        (OrderRejected for both legs, with the first defect found: ``invalid_oco``,
        ``duplicate_order_id``, a leg's own reason, ``oco_stop_would_trigger``,
        ``post_only_would_take``). The first fill of the limit leg cancels the stop leg
        (reason ``oco_other_leg``); a triggered stop leg cancels the limit leg; cancelling
        either cancels both.
        """
        limit_id = limit.order_id
        stop_id = stop.order_id
        reason = _check_oco(limit, stop)
        if reason is None and (limit_id in self._live or stop_id in self._live):
            reason = DUPLICATE_ORDER_ID
        if reason is None:
            reason = _check_limit(limit) or _check_stop(stop)
        if reason is None and stop.trailing_delta is None:
            last = self._last_price
            trigger = stop.stop_price_ticks
            if last is not None and (last >= trigger if stop.side == BUY else last <= trigger):
                reason = OCO_STOP_WOULD_TRIGGER
        if reason is not None:
            return [(limit_id, reason, ORDER_REJECTED), (stop_id, reason, ORDER_REJECTED)]
        price = limit.price_ticks
        if limit.side == BUY:
            own, opp, key = self._bids, self._asks, price
        else:
            own, opp, key = self._asks, self._bids, -price
        if opp.keys and opp.keys[-1] >= -key:
            reason = POST_ONLY_WOULD_TAKE
            return [(limit_id, reason, ORDER_REJECTED), (stop_id, reason, ORDER_REJECTED)]
        events = []
        self._rest_special(
            events,
            limit_id,
            limit.user_id,
            own,
            key,
            price,
            limit.qty_lots,
            OPEN,
            limit.iceberg_lots,
        )
        events.append((stop_id, stop.stop_price_ticks, STOP_ACCEPTED))
        if stop.trailing_delta is None:
            self._add_stop(stop)
        else:
            self._add_trailing(stop, events)
        self._lists[limit_id] = (list_id, stop_id)
        self._lists[stop_id] = (list_id, limit_id)
        return events

    def cancel(self, order_id: int) -> list[tuple]:
        """Cancel a live order (resting or untriggered); returns its events.

        A resting order yields OrderDone(cancelled, qty_lots=what was left) and the new
        total of its level. An id that is not live yields CancelRejected(unknown_order).
        """
        entry = self._live.pop(order_id, None)
        if entry is None:
            return [(order_id, UNKNOWN_ORDER, CANCEL_REJECTED)]
        if entry.__class__ is not int:
            if entry.__class__ is _Special:
                events = self._cancel_special(entry, None)
            else:
                events = self._cancel_stop(entry, None)
            pair = self._lists.pop(order_id, None)
            if pair is not None:
                # An OCO leg: the other one goes too.
                other_id = pair[1]
                del self._lists[other_id]
                other = self._live.pop(other_id)
                if other.__class__ is _Special:
                    self._cancel_special(other, OCO_OTHER_LEG, events)
                else:
                    events.extend(self._cancel_stop(other, OCO_OTHER_LEG))
            return events
        lvl = self._refs[entry & _REF_MASK]
        qty = entry >> _QTY_SHIFT
        count = lvl.count - 1
        total = lvl.total_lots - qty
        side = lvl.side
        if count:
            lvl.count = count
            lvl.total_lots = total
            orders = lvl.orders
            # Ids compare by value: the only entry of this id in the level is this order's
            # own (a re-placed id lost its old ghost in _rest).
            if orders[0] == order_id:
                orders.popleft()
            elif orders[-1] == order_id:
                orders.pop()
            else:
                self._ghosts[order_id] = lvl
                if len(orders) > (count << 1) + _GHOST_SLACK:
                    self._compact(lvl)
        else:
            # _drop_level inlined: a thin book empties a level on most cancels.
            key = lvl.key
            keys = side.keys
            if keys[-1] == key:
                keys.pop()
            else:
                del keys[bisect_left(keys, key)]
            orders = lvl.orders
            # Any entry but this order's own is a ghost.
            if len(orders) > 1 and self._ghosts:
                self._forget_ghosts(lvl)
            orders.clear()
            lvl.count = lvl.total_lots = 0
            side.parked = parked = side.parked + 1
            if parked > _PARKED_LIMIT:
                self._unpark(side)
        self._seq = seq = self._seq + 1
        return [
            (order_id, CANCELLED, None, qty, ORDER_DONE),
            (side.name, lvl.price_ticks, total, seq, LEVEL_CHANGED),
        ]

    def _cancel_special(self, entry, reason, events=None):
        # Cancel a resting _Special already popped from _live: its visible part leaves the
        # level as in cancel(); OrderDone reports visible plus hidden lots.
        if events is None:
            events = []
        lvl = entry.level
        visible = entry.qty_lots
        qty = visible + entry.hidden_lots
        entry.qty_lots = 0
        entry.hidden_lots = 0
        count = lvl.count - 1
        total = lvl.total_lots - visible
        side = lvl.side
        orders = lvl.orders
        if count:
            lvl.count = count
            lvl.total_lots = total
            if orders[0] is entry:
                orders.popleft()
            elif orders[-1] is entry:
                orders.pop()
            elif len(orders) > (count << 1) + _GHOST_SLACK:
                self._compact(lvl)
        else:
            self._drop_level(side, lvl)
        self._seq = seq = self._seq + 1
        events.append((entry.order_id, CANCELLED, reason, qty, ORDER_DONE))
        events.append((side.name, lvl.price_ticks, total, seq, LEVEL_CHANGED))
        return events

    # ----------------------------------------------------------------- restore

    @classmethod
    def restore(
        cls,
        resting=(),
        stops=(),
        *,
        last_price_ticks: int | None = None,
        seq: int = 0,
        trailing_peaks=None,
        oco_pairs=None,
        audit: bool = False,
    ) -> "OrderBook":
        """Rebuild a book so that a restarted matcher continues exactly where it stopped.

        ``resting``: Resting tuples (order_id, user_id, side, price_ticks, qty_lots, and for
        an iceberg iceberg_lots and visible_lots) in priority order, i.e. in arrival order
        within each level (``resting_orders()`` gives this; ``list_peer_id`` is ignored).
        ``stops``: untriggered stop/stop_limit Place commands, trailing ones included, in
        arrival order (``stop_orders()``). ``trailing_peaks``: stop id -> extreme price of
        each activated trailing stop (``trailing_peaks()``). ``oco_pairs``: ``(list_id,
        limit_order_id, stop_order_id)`` of each live OCO pair (``oco_pairs()``). No events
        are produced and ``seq`` is taken as given.

        Raises ValueError on input no live book could hold: bad values, a duplicate id, a
        crossed book, a stop that should already have triggered (or a trailing stop that
        should be active) at ``last_price_ticks``, or OCO legs that do not match.
        """
        book = cls(audit=audit)
        trailing_peaks = trailing_peaks or {}
        oco_pairs = list(oco_pairs or ())
        oco_limits = {pair[1] for pair in oco_pairs}
        live = book._live
        bids = book._bids
        asks = book._asks
        arrivals = book._arrivals
        for item in resting:
            order_id, user_id, side, price_ticks, qty_lots = item[:5]
            if order_id in live:
                raise ValueError(f"duplicate resting order id {order_id}")
            if not (_is_count(price_ticks) and _is_count(qty_lots)):
                raise ValueError(f"resting order {order_id}: price and qty must be positive ints")
            peak = visible = None
            if len(item) > 5:
                peak, visible = item[5], item[6]
                if peak is not None and not (
                    _is_count(peak) and _is_count(visible) and visible <= min(peak, qty_lots)
                ):
                    raise ValueError(f"resting order {order_id}: bad iceberg_lots/visible_lots")
                if peak is None and visible is not None:
                    raise ValueError(f"resting order {order_id}: visible_lots without iceberg")
            if side == BUY:
                own = bids
                key = price_ticks
            elif side == SELL:
                own = asks
                key = -price_ticks
            else:
                raise ValueError(f"resting order {order_id}: bad side {side!r}")
            lvl = own.levels.get(key)
            if lvl is None:
                lvl = book._new_level(own, price_ticks, key)
            if (
                peak is None
                and order_id not in oco_limits
                and lvl.ref < _REF_LIMIT
                and user_id.__class__ is int
                and 0 <= user_id < _USER_LIMIT
            ):
                shown = qty_lots
                live[order_id] = (qty_lots << _QTY_SHIFT) | (user_id << _USER_SHIFT) | lvl.ref
                lvl.orders.append(order_id)
            else:
                shown = qty_lots if visible is None else visible
                order = _Special(order_id, user_id, shown, lvl, qty_lots - shown, peak)
                live[order_id] = order
                lvl.orders.append(order)
            lvl.total_lots += shown
            lvl.count += 1
            if arrivals is not None:
                arrivals[order_id] = next(book._arrival_clock)
        if bids.keys and asks.keys and bids.keys[-1] >= -asks.keys[-1]:
            raise ValueError("restored book is crossed")
        if last_price_ticks is not None and not _is_count(last_price_ticks):
            raise ValueError("last_price_ticks must be a positive int or None")
        book._last_price = last_price_ticks
        for command in stops:
            if command.order_id in live:
                raise ValueError(f"duplicate stop order id {command.order_id}")
            reason = _check_stop(command)
            if reason is not None:
                raise ValueError(f"stop order {command.order_id}: {reason}")
            if command.trailing_delta is None:
                book._add_stop(command)
                continue
            book._add_trailing(command, None)
            trail = live[command.order_id]
            peak = trailing_peaks.get(command.order_id)
            if peak is not None and not _is_count(peak):
                raise ValueError(f"trailing stop {command.order_id}: bad peak {peak!r}")
            if trail.peak is not None and peak is None:
                raise ValueError(f"trailing stop {command.order_id} should already be active")
            if peak is not None and (
                last_price_ticks is None
                or (peak < last_price_ticks if command.side == SELL else peak > last_price_ticks)
            ):
                raise ValueError(f"trailing stop {command.order_id}: peak behind the last price")
            trail.peak = peak
        if book._trail_heaps:
            # The heap keys pushed by _add_trailing predate the extremes set above.
            book._reindex_trailing()
        if book._next_stop() is not None or (book._trailing and book._next_trailing()):
            raise ValueError("a restored stop should already have triggered")
        lists = book._lists
        for list_id, limit_id, stop_id in oco_pairs:
            limit = live.get(limit_id)
            stop = live.get(stop_id)
            if (
                limit.__class__ is not _Special
                or stop is None
                or stop.__class__ in (int, _Special)
                or limit_id in lists
                or stop_id in lists
            ):
                raise ValueError(f"OCO list {list_id}: legs {limit_id}/{stop_id} not restorable")
            command = stop.command if stop.__class__ is _Trail else stop[2]
            if (
                command.user_id != limit.user_id
                or command.side != limit.level.side.name
                or command.qty_lots != _remaining(limit)
            ):
                raise ValueError(f"OCO list {list_id}: legs differ in user, side or quantity")
            lists[limit_id] = (list_id, stop_id)
            lists[stop_id] = (list_id, limit_id)
        if type(seq) is not int or seq < 0:
            raise ValueError("seq must be a non-negative int")
        book._seq = seq
        return book

    # ----------------------------------------------------------------- validation

    def validate(self) -> None:
        """Check the book's internal consistency; raise BookInconsistency if broken.

        Checked: both sides' key lists are strictly ascending and match their level dicts;
        each level's total and count equal the sum and number of its live orders; live
        orders point back at their level and are indexed in ``_live`` exactly once; ghosts
        are not indexed; FIFO inside levels (when built with ``audit=True``); the book is
        not crossed; stop lists are ordered, indexed, and none should have triggered.
        """
        live = self._live
        arrivals = self._arrivals
        seen = set()

        def fail(message):
            raise BookInconsistency(message)

        for side, sign in ((self._bids, 1), (self._asks, -1)):
            keys = side.keys
            if any(a >= b for a, b in pairwise(keys)):
                fail(f"{side.name} keys not strictly ascending: {keys}")
            if (
                set(keys) != {key for key, lvl in side.levels.items() if lvl.count}
                or len(keys) != len(side.levels) - side.parked
            ):
                fail(f"{side.name} keys and levels differ")
            if any(lvl.orders or lvl.total_lots for lvl in side.levels.values() if not lvl.count):
                fail(f"{side.name} has a parked level that is not empty")
            for key in keys:
                lvl = side.levels[key]
                if lvl.key != key or lvl.side is not side or lvl.price_ticks * sign != key:
                    fail(f"{side.name} level {key} has wrong key, side or price")
                if lvl.price_ticks <= 0:
                    fail(f"{side.name} level with non-positive price {lvl.price_ticks}")
                if not 0 <= lvl.ref < len(self._refs) or self._refs[lvl.ref] is not lvl:
                    fail(f"{side.name} level {lvl.price_ticks} has a wrong ref")
                total = count = 0
                last_arrival = -1
                for order in lvl.orders:
                    if order.__class__ is int:
                        order_id = order
                        v = live.get(order_id)
                        if v.__class__ is not int or v & _REF_MASK != lvl.ref:
                            if self._ghosts.get(order_id) is not lvl:
                                fail(f"queued order {order_id} is not indexed (nor a ghost)")
                            continue
                        qty = v >> _QTY_SHIFT
                        if qty <= 0:
                            fail(f"order {order_id} has non-positive qty")
                    else:
                        order_id = order.order_id
                        qty = order.qty_lots
                        if not qty:
                            if live.get(order_id) is order:
                                fail(f"ghost order {order_id} is still indexed")
                            continue
                        if qty < 0:
                            fail(f"order {order_id} has negative qty")
                        hidden, peak = order.hidden_lots, order.peak_lots
                        if hidden < 0 or (hidden and peak is None):
                            fail(f"order {order_id} has bad hidden lots {hidden}")
                        if peak is not None and not 0 < qty <= peak:
                            fail(f"iceberg {order_id} shows {qty} of {peak}")
                        if order.level is not lvl:
                            fail(f"order {order_id} points at another level")
                        if live.get(order_id) is not order:
                            fail(f"resting order {order_id} is not indexed")
                    if order_id in seen:
                        fail(f"order {order_id} rests twice")
                    seen.add(order_id)
                    if arrivals is not None:
                        arrival = arrivals.get(order_id)
                        if arrival is None or arrival <= last_arrival:
                            fail(f"level {lvl.price_ticks} breaks FIFO at order {order_id}")
                        last_arrival = arrival
                    total += qty
                    count += 1
                if count == 0:
                    fail(f"{side.name} level {lvl.price_ticks} is empty but listed")
                if total != lvl.total_lots or count != lvl.count:
                    fail(
                        f"{side.name} level {lvl.price_ticks}: total/count {lvl.total_lots}/"
                        f"{lvl.count}, orders sum to {total}/{count}"
                    )
        bid, ask = self.best_bid(), self.best_ask()
        if bid is not None and ask is not None and bid >= ask:
            fail(f"book is crossed: bid {bid} >= ask {ask}")
        for stops in (self._buy_stops, self._sell_stops):
            if any(a[:2] >= b[:2] for a, b in pairwise(stops)):
                fail("stop list out of order")
            for entry in stops:
                order_id = entry[2].order_id
                if live.get(order_id) is not entry:
                    fail(f"stop {order_id} is not indexed")
                if order_id in seen:
                    fail(f"order {order_id} is both resting and a stop")
                seen.add(order_id)
        last = self._last_price
        for order_id, trail in self._trailing.items():
            command = trail.command
            if command.order_id != order_id or live.get(order_id) is not trail:
                fail(f"trailing stop {order_id} is not indexed")
            if order_id in seen:
                fail(f"order {order_id} is both resting and a stop")
            seen.add(order_id)
            peak, stop = trail.peak, command.stop_price_ticks
            if peak is None:
                sell = command.side == SELL
                if last is not None and (stop is None or (last >= stop if sell else last <= stop)):
                    fail(f"trailing stop {order_id} should be active at {last}")
            elif last is None or (peak < last if command.side == SELL else peak > last):
                fail(f"trailing stop {order_id}: extreme {peak} behind the last price {last}")
            if command.side == SELL:
                move = (_NO_LIMIT if stop is None else stop) if peak is None else peak + 1
                fire = None if peak is None else -peak * (10000 - command.trailing_delta)
            else:
                move = (_NO_LIMIT if stop is None else -stop) if peak is None else 1 - peak
                fire = None if peak is None else peak * (10000 + command.trailing_delta)
            if self._trail_heaps and (trail.move != move or trail.fire != fire):
                fail(f"trailing stop {order_id}: index keys {trail.move}/{trail.fire}")
        indexed = {}
        for heap, attr in (
            (self._sell_moves, "move"),
            (self._buy_moves, "move"),
            (self._sell_fires, "fire"),
            (self._buy_fires, "fire"),
        ):
            for i, (key, arrival, trail) in enumerate(heap):
                if i and heap[(i - 1) // 2][:2] > (key, arrival):
                    fail("a trailing stop heap is out of order")
                if getattr(trail, attr) == key:
                    if self._trailing.get(trail.command.order_id) is not trail:
                        fail(f"trailing stop {trail.command.order_id}: live key, not live")
                    indexed[attr, id(trail)] = indexed.get((attr, id(trail)), 0) + 1
        expected = {}
        if self._trail_heaps:
            expected = {("move", id(t)): 1 for t in self._trailing.values()}
            expected.update(
                (("fire", id(t)), 1) for t in self._trailing.values() if t.peak is not None
            )
        if indexed != expected:
            fail("the trailing stop heaps do not index each live trailing stop once")
        if self._scan_trailing() is not None:
            fail("an untriggered trailing stop satisfies its trigger condition")
        if len(seen) != len(live):
            fail(f"{len(live)} ids indexed, {len(seen)} live orders found")
        for order_id, lvl in self._ghosts.items():
            if lvl.side.levels.get(lvl.key) is not lvl or order_id not in lvl.orders:
                fail(f"ghost {order_id} is tracked in a level that does not hold it")
        listed = [lvl for side in (self._bids, self._asks) for lvl in side.levels.values()]
        if len(listed) + len(self._free_levels) != len(self._refs) or any(
            lvl.orders for lvl in self._free_levels
        ):
            fail("the level ref table holds other levels than the listed and free ones")
        if self._next_stop() is not None or self._next_trailing() is not None:
            fail("an untriggered stop satisfies its trigger condition")
        if self._sweep is not None:
            fail("trailing stops were not updated after trades")
        for order_id, (list_id, peer_id) in self._lists.items():
            if self._lists.get(peer_id) != (list_id, order_id):
                fail(f"OCO list {list_id}: {order_id} and {peer_id} not linked both ways")
            entry, peer = live.get(order_id), live.get(peer_id)
            if entry is None or peer is None:
                fail(f"OCO list {list_id}: a leg is not live")
            if (entry.__class__ is _Special) == (peer.__class__ is _Special):
                fail(f"OCO list {list_id}: needs one resting limit leg and one stop")
            if entry.__class__ is int or _remaining(entry) != _remaining(peer):
                fail(f"OCO list {list_id}: legs differ")

    # ----------------------------------------------------------------- internals

    def _new_level(self, own, price_ticks, key):
        free = self._free_levels
        if free:
            lvl = free.pop()
            lvl.side = own
            lvl.price_ticks = price_ticks
            lvl.key = key
            lvl.total_lots = 0
            lvl.count = 0
        else:
            lvl = _Level(own, price_ticks, key, len(self._refs))
            self._refs.append(lvl)
        own.levels[key] = lvl
        insort(own.keys, key)
        return lvl

    def _level(self, own, price_ticks, key):
        # The listed level at ``key``: a listed one, a parked one listed again, or a new one.
        lvl = own.levels.get(key)
        if lvl is None:
            return self._new_level(own, price_ticks, key)
        if not lvl.count:
            insort(own.keys, key)
            own.parked -= 1
        return lvl

    def _drop_level(self, side, lvl):
        # ``lvl`` has no live order left: unlist it, forget its ghosts and park it.
        key = lvl.key
        keys = side.keys
        if keys[-1] == key:
            keys.pop()
        else:
            del keys[bisect_left(keys, key)]
        if self._ghosts:
            self._forget_ghosts(lvl)
        # Drop the special ghosts now: they point back at the level.
        lvl.orders.clear()
        lvl.count = lvl.total_lots = 0
        side.parked += 1
        if side.parked > _PARKED_LIMIT:
            self._unpark(side)

    def _unpark(self, side):
        # Too many parked levels: free them all for any price (bounds a drifting market).
        levels = side.levels
        for key in [key for key, lvl in levels.items() if not lvl.count]:
            self._free_levels.append(levels.pop(key))
        side.parked = 0

    def _forget_ghosts(self, lvl):
        ghosts = self._ghosts
        for entry in lvl.orders:
            if entry.__class__ is int and ghosts.get(entry) is lvl:
                del ghosts[entry]

    def _compact(self, lvl):
        # Rebuild ``lvl``'s deque without its ghosts (more of them than live orders).
        live = self._live
        ghosts = self._ghosts
        ref = lvl.ref
        kept = []
        for entry in lvl.orders:
            if entry.__class__ is int:
                v = live.get(entry)
                if v.__class__ is int and v & _REF_MASK == ref:
                    kept.append(entry)
                elif ghosts.get(entry) is lvl:
                    del ghosts[entry]
            elif entry.qty_lots:
                kept.append(entry)
        lvl.orders = deque(kept)

    def _purge_ghost(self, order_id):
        # ``order_id`` is placed again while a ghost of its cancelled plain order is still
        # queued: remove that ghost, which would otherwise pass for the new order there.
        lvl = self._ghosts.pop(order_id)
        lvl.orders = deque(
            entry for entry in lvl.orders if entry.__class__ is not int or entry != order_id
        )

    def _rest(self, events, order_id, user_id, own, key, price_ticks, qty_lots, status, lvl=None):
        # ``lvl``: the level, already listed, when the caller has it.
        if lvl is None:
            # _level inlined.
            lvl = own.levels.get(key)
            if lvl is None:
                lvl = self._new_level(own, price_ticks, key)
            elif not lvl.count:
                insort(own.keys, key)
                own.parked -= 1
        ref = lvl.ref
        if ref < _REF_LIMIT and user_id.__class__ is int and not user_id >> _USER_BITS:
            if order_id in self._ghosts:
                self._purge_ghost(order_id)
            self._live[order_id] = (qty_lots << _QTY_SHIFT) | (user_id << _USER_SHIFT) | ref
            lvl.orders.append(order_id)
        else:
            order = _Special(order_id, user_id, qty_lots, lvl, 0, None)
            self._live[order_id] = order
            lvl.orders.append(order)
        lvl.total_lots = total = lvl.total_lots + qty_lots
        lvl.count += 1
        self._seq = seq = self._seq + 1
        if self._arrivals is not None:
            self._arrivals[order_id] = next(self._arrival_clock)
        name = own.name
        events.append((order_id, name, price_ticks, qty_lots, status, ORDER_RESTED))
        events.append((name, price_ticks, total, seq, LEVEL_CHANGED))

    def _rest_special(self, events, order_id, user_id, own, key, price, qty, status, peak):
        # Rest ``qty`` lots as a _Special: an iceberg shows min(peak, qty), an OCO limit leg
        # (peak None) shows everything. OrderRested reports the whole remaining quantity.
        lvl = self._level(own, price, key)
        visible = qty if peak is None or peak > qty else peak
        order = _Special(order_id, user_id, visible, lvl, qty - visible, peak)
        lvl.orders.append(order)
        lvl.total_lots = total = lvl.total_lots + visible
        lvl.count += 1
        self._live[order_id] = order
        self._seq = seq = self._seq + 1
        if self._arrivals is not None:
            self._arrivals[order_id] = next(self._arrival_clock)
        name = own.name
        events.append((order_id, name, price, qty, status, ORDER_RESTED))
        events.append((name, price, total, seq, LEVEL_CHANGED))

    def _exec_limit(self, events, order_id, user_id, own, opp, key, price, qty, tif, post_only):
        opp_keys = opp.keys
        reason = None
        left = qty
        if opp_keys and opp_keys[-1] >= -key:
            if post_only:
                events.append((order_id, POST_ONLY_WOULD_TAKE, ORDER_REJECTED))
                return
            if tif == FOK and not self._can_fill(opp, user_id, -key, qty, None):
                events.append((order_id, EXPIRED, FOK_NOT_FILLED, qty, ORDER_DONE))
                return
            left, _, reason = self._take(events, order_id, user_id, own.name, opp, -key, qty, None)
            if not left:
                events.append((order_id, FILLED, None, 0, ORDER_DONE))
                return
        elif tif == FOK:
            events.append((order_id, EXPIRED, FOK_NOT_FILLED, qty, ORDER_DONE))
            return
        if reason is not None:
            events.append((order_id, EXPIRED, reason, left, ORDER_DONE))
        elif tif == GTC:
            status = OPEN if left == qty else PARTIALLY_FILLED
            self._rest(events, order_id, user_id, own, key, price, left, status)
        else:
            events.append((order_id, EXPIRED, IOC_REMAINDER, left, ORDER_DONE))

    def _exec_market(self, events, order_id, user_id, side, qty, quote_amount, max_quote, tif):
        opp = self._asks if side == BUY else self._bids
        if quote_amount is not None:
            left, quote_left, reason = self._take(
                events, order_id, user_id, side, opp, _NO_LIMIT, _UNBOUNDED_LOTS, quote_amount
            )
            if reason is RESERVE_EXHAUSTED and quote_left != quote_amount:
                events.append((order_id, FILLED, None, None, ORDER_DONE))
            else:
                events.append((order_id, EXPIRED, reason or NO_LIQUIDITY, None, ORDER_DONE))
            return
        if tif == FOK and not self._can_fill(opp, user_id, _NO_LIMIT, qty, max_quote):
            events.append((order_id, EXPIRED, FOK_NOT_FILLED, qty, ORDER_DONE))
            return
        left, _, reason = self._take(
            events, order_id, user_id, side, opp, _NO_LIMIT, qty, max_quote
        )
        if left:
            events.append((order_id, EXPIRED, reason or NO_LIQUIDITY, left, ORDER_DONE))
        else:
            events.append((order_id, FILLED, None, 0, ORDER_DONE))

    def _can_fill(self, opp, user_id, limit_key, qty, quote_left):
        # Walks exactly the orders _take would, so FOK is decided before any fill.
        levels = opp.levels
        live = self._live
        want, quote = qty, quote_left
        for key in reversed(opp.keys):
            if key < limit_key:
                return False
            lvl = levels[key]
            price = lvl.price_ticks
            for order in lvl.orders:
                if order.__class__ is int:
                    v = live.get(order)
                    if v.__class__ is not int:
                        continue
                    if (v >> _USER_SHIFT) & _USER_MASK == user_id:
                        return False
                    order_qty = v >> _QTY_SHIFT
                else:
                    order_qty = order.qty_lots
                    if not order_qty:
                        continue
                    if order.hidden_lots:
                        # Refreshes reorder the level: simulate them instead.
                        return _can_fill_simulated(live, opp, user_id, limit_key, want, quote)
                    if order.user_id == user_id:
                        return False
                fill = order_qty if order_qty < qty else qty
                if quote_left is not None:
                    if quote_left // price < fill:
                        return False
                    quote_left -= fill * price
                qty -= fill
                if not qty:
                    return True
        return False

    def _take(self, events, taker_id, taker_user, taker_side, opp, limit_key, qty, quote_left):
        # The hot loop: locals only, one LevelChanged per level visited with fills.
        append = events.append
        live = self._live
        live_get = live.get
        ghosts = self._ghosts
        keys = opp.keys
        levels = opp.levels
        maker_side = opp.name
        # A plain maker is the taker's own when its packed user field equals this (a user id
        # that does not fit the packed layout gives a value no field equals).
        try:
            own_user = taker_user << _USER_SHIFT
        except TypeError:
            own_user = -1
        seq = self._seq
        trades = 0
        reason = None
        last_price = None
        while keys:
            key = keys[-1]
            if key < limit_key:
                break
            lvl = levels[key]
            price = lvl.price_ticks
            orders = lvl.orders
            total = before = lvl.total_lots
            count = lvl.count
            while True:
                order = orders[0]
                if order.__class__ is int:
                    # A plain order: its id, and its packed state in _live.
                    v = live_get(order)
                    # Not a packed int: a ghost. (A live id has no ghost anywhere: placing
                    # it again removed its old one, so the level need not be compared.)
                    if v.__class__ is not int:
                        orders.popleft()
                        if ghosts.get(order) is lvl:
                            del ghosts[order]
                        continue
                    if v & _USER_FIELD == own_user:
                        reason = SELF_TRADE_PREVENTED
                        break
                    order_qty = v >> _QTY_SHIFT
                    fill = order_qty if order_qty < qty else qty
                    if quote_left is not None:
                        affordable = quote_left // price
                        if affordable < fill:
                            if not affordable:
                                reason = RESERVE_EXHAUSTED
                                break
                            fill = affordable
                        quote_left -= fill * price
                    append((order, taker_id, price, fill, taker_side, TRADE))
                    trades += 1
                    total -= fill
                    qty -= fill
                    if fill == order_qty:
                        orders.popleft()
                        del live[order]
                        append((order, FILLED, None, 0, ORDER_DONE))
                        count -= 1
                        if not count or not qty:
                            break
                        continue
                    # A partial maker fill ends the visit: the taker ran out of lots or of
                    # quote (the next pass then stops on reserve_exhausted).
                    live[order] = v - (fill << _QTY_SHIFT)
                    break
                order_qty = order.qty_lots
                if not order_qty:
                    orders.popleft()
                    continue
                if order.user_id == taker_user:
                    reason = SELF_TRADE_PREVENTED
                    break
                fill = order_qty if order_qty < qty else qty
                if quote_left is not None:
                    affordable = quote_left // price
                    if affordable < fill:
                        if not affordable:
                            reason = RESERVE_EXHAUSTED
                            break
                        fill = affordable
                    quote_left -= fill * price
                maker_id = order.order_id
                append((maker_id, taker_id, price, fill, taker_side, TRADE))
                trades += 1
                total -= fill
                qty -= fill
                if fill == order_qty:
                    orders.popleft()
                    hidden = order.hidden_lots
                    if hidden:
                        # Iceberg: show the next part at the back of the level.
                        peak = order.peak_lots
                        shown = peak if peak < hidden else hidden
                        order.hidden_lots = hidden - shown
                        order.qty_lots = shown
                        orders.append(order)
                        total += shown
                        # Report the level even if its total came back to where it was.
                        before = -1
                        append((maker_id, shown, ORDER_REFRESHED))
                        if self._arrivals is not None:
                            self._arrivals[maker_id] = next(self._arrival_clock)
                    else:
                        del live[maker_id]
                        append((maker_id, FILLED, None, 0, ORDER_DONE))
                        count -= 1
                    if maker_id in self._lists:
                        self._end_other_leg(events, maker_id)
                    if not count or not qty:
                        break
                else:
                    # As for a plain order, a partial fill ends the visit.
                    order.qty_lots = order_qty - fill
                    if maker_id in self._lists:
                        self._end_other_leg(events, maker_id)
                    break
            if total != before:
                seq += 1
                append((maker_side, price, total, seq, LEVEL_CHANGED))
                last_price = price
            if count:
                lvl.total_lots = total
                lvl.count = count
            else:
                keys.pop()
                if orders:
                    # Only ghosts are left.
                    if ghosts:
                        self._forget_ghosts(lvl)
                    orders.clear()
                lvl.count = lvl.total_lots = 0
                opp.parked = parked = opp.parked + 1
                if parked > _PARKED_LIMIT:
                    self._unpark(opp)
            if reason is not None or not qty:
                break
        self._seq = seq
        if trades:
            self._last_price = last_price
            self.trade_count += trades
            if self._trailing:
                self._note_sweep(events, trades)
        return qty, quote_left, reason

    def _add_stop(self, command):
        self._stop_arrivals = arrival = self._stop_arrivals + 1
        # Keys put the next stop to trigger last: lowest buy stop, highest sell stop, and
        # the earliest arrival among equal stop prices.
        if command.side == BUY:
            entry = (-command.stop_price_ticks, -arrival, command)
            insort(self._buy_stops, entry)
        else:
            entry = (command.stop_price_ticks, -arrival, command)
            insort(self._sell_stops, entry)
        self._live[command.order_id] = entry

    def _cancel_stop(self, entry, reason):
        # Remove an untriggered stop already popped from _live.
        if entry.__class__ is _Trail:
            command = entry.command
            del self._trailing[command.order_id]
            self._drop_trail(entry)
        else:
            command = entry[2]
            stops = self._buy_stops if command.side == BUY else self._sell_stops
            del stops[bisect_left(stops, entry)]
        qty = None if command.quote_amount is not None else command.qty_lots
        return [(command.order_id, CANCELLED, reason, qty, ORDER_DONE)]

    def _end_other_leg(self, events, limit_id):
        # The OCO limit leg ``limit_id`` traded: its stop leg is cancelled at once.
        stop_id = self._lists.pop(limit_id)[1]
        del self._lists[stop_id]
        events.extend(self._cancel_stop(self._live.pop(stop_id), OCO_OTHER_LEG))

    def _amend_entry(self, order_id, entry, qty, events):
        cls = entry.__class__
        if cls is int:
            lvl = self._refs[entry & _REF_MASK]
            cut = (entry >> _QTY_SHIFT) - qty
            self._live[order_id] = entry - (cut << _QTY_SHIFT)
            lvl.total_lots = total = lvl.total_lots - cut
            self._seq = seq = self._seq + 1
            events.append((order_id, qty, ORDER_AMENDED))
            events.append((lvl.side.name, lvl.price_ticks, total, seq, LEVEL_CHANGED))
            return
        if cls is _Special:
            order_id = entry.order_id
            shown = entry.qty_lots
            cut = shown + entry.hidden_lots - qty
            hidden = entry.hidden_lots
            if hidden >= cut:
                entry.hidden_lots = hidden - cut
                events.append((order_id, qty, ORDER_AMENDED))
                return
            entry.hidden_lots = 0
            cut -= hidden
            entry.qty_lots = shown - cut
            lvl = entry.level
            lvl.total_lots = total = lvl.total_lots - cut
            self._seq = seq = self._seq + 1
            events.append((order_id, qty, ORDER_AMENDED))
            events.append((lvl.side.name, lvl.price_ticks, total, seq, LEVEL_CHANGED))
            return
        if cls is _Trail:
            command = entry.command = entry.command._replace(qty_lots=qty)
        else:
            command = entry[2]._replace(qty_lots=qty)
            stops = self._buy_stops if command.side == BUY else self._sell_stops
            new_entry = (entry[0], entry[1], command)
            stops[bisect_left(stops, entry)] = new_entry
            self._live[command.order_id] = new_entry
        events.append((command.order_id, qty, ORDER_AMENDED))

    def _add_trailing(self, command, events):
        self._stop_arrivals = arrival = self._stop_arrivals + 1
        trail = _Trail(command, None, arrival)
        self._trail_idle = False
        self._trailing[command.order_id] = trail
        self._live[command.order_id] = trail
        last = self._last_price
        if last is not None:
            stop = command.stop_price_ticks
            if stop is None or (last >= stop if command.side == SELL else last <= stop):
                trail.peak = last
                if events is not None:
                    events.append((command.order_id, last, TRAILING_MOVED))
        if self._trail_heaps:
            self._index_trail(trail)
        elif len(self._trailing) > _TRAIL_HEAPS_FROM:
            self._trail_heaps = True
            self._reindex_trailing()

    def _index_trail(self, trail):
        # Push ``trail``'s entries for its current extreme; its older ones become stale.
        command = trail.command
        peak = trail.peak
        arrival = trail.arrival
        if command.side == SELL:
            if peak is None:
                stop = command.stop_price_ticks
                move = _NO_LIMIT if stop is None else stop
                trail.fire = None
            else:
                move = peak + 1
                trail.fire = fire = -peak * (10000 - command.trailing_delta)
                heappush(self._sell_fires, (fire, arrival, trail))
            trail.move = move
            heappush(self._sell_moves, (move, arrival, trail))
        else:
            if peak is None:
                stop = command.stop_price_ticks
                move = _NO_LIMIT if stop is None else -stop
                trail.fire = None
            else:
                move = 1 - peak
                trail.fire = fire = peak * (10000 + command.trailing_delta)
                heappush(self._buy_fires, (fire, arrival, trail))
            trail.move = move
            heappush(self._buy_moves, (move, arrival, trail))

    def _drop_trail(self, trail):
        # ``trail`` left the book: its heap entries are stale from now on. Once the stale
        # entries outnumber the live ones the heaps are rebuilt, so that costs O(1)
        # amortised per entry pushed; below _TRAIL_SCAN_BELOW stops they are dropped.
        if not self._trail_heaps:
            return
        trail.move = trail.fire = None
        if len(self._trailing) < _TRAIL_SCAN_BELOW:
            self._trail_heaps = False
            self._sell_moves = []
            self._buy_moves = []
            self._sell_fires = []
            self._buy_fires = []
        elif (
            len(self._sell_moves)
            + len(self._buy_moves)
            + len(self._sell_fires)
            + len(self._buy_fires)
            > 4 * len(self._trailing) + 256
        ):
            self._reindex_trailing()

    def _reindex_trailing(self):
        # Rebuild the four heaps from the live trailing stops alone.
        self._sell_moves = []
        self._buy_moves = []
        self._sell_fires = []
        self._buy_fires = []
        for trail in self._trailing.values():
            self._index_trail(trail)

    def _note_sweep(self, events, trades):
        # Called after a pass with trades while trailing stops wait: remember the lowest
        # and highest price of those trades (the last ``trades`` Trade events).
        lo = hi = None
        i = len(events)
        while trades:
            i -= 1
            event = events[i]
            if event[-1] == TRADE:
                price = event[2]
                if lo is None or price < lo:
                    lo = price
                if hi is None or price > hi:
                    hi = price
                trades -= 1
        sweep = self._sweep
        if sweep is not None:
            lo = min(lo, sweep[0])
            hi = max(hi, sweep[1])
        self._sweep = (lo, hi)
        self._trail_idle = False

    def _update_trailing(self, events):
        # Trades happened since the last update: activate trailing stops whose activation
        # price was reached and move extremes, in arrival order. Within one pass the prices
        # are monotonic, so its lowest and highest trade decide both. The move heaps hand
        # over exactly the stops to change, so stops the trades leave alone cost nothing.
        lo, hi = self._sweep
        self._sweep = None
        if not self._trail_heaps:
            self._scan_update_trailing(lo, hi, events)
            return
        moved = []
        heap = self._sell_moves
        while heap and heap[0][0] <= hi:
            key, _, trail = heappop(heap)
            if trail.move == key:
                moved.append(trail)
        heap = self._buy_moves
        bound = -lo
        while heap and heap[0][0] <= bound:
            key, _, trail = heappop(heap)
            if trail.move == key:
                moved.append(trail)
        if not moved:
            return
        if len(moved) > 1:
            moved.sort(key=_arrival)
        # Every moved stop is active now, at the sweep's extreme: its new keys, inline.
        sell_moves, sell_fires = self._sell_moves, self._sell_fires
        buy_moves, buy_fires = self._buy_moves, self._buy_fires
        for trail in moved:
            command = trail.command
            arrival = trail.arrival
            if command.side == SELL:
                trail.peak = hi
                events.append((command.order_id, hi, TRAILING_MOVED))
                trail.move = move = hi + 1
                trail.fire = fire = -hi * (10000 - command.trailing_delta)
                heappush(sell_moves, (move, arrival, trail))
                heappush(sell_fires, (fire, arrival, trail))
            else:
                trail.peak = lo
                events.append((command.order_id, lo, TRAILING_MOVED))
                trail.move = move = 1 - lo
                trail.fire = fire = lo * (10000 + command.trailing_delta)
                heappush(buy_moves, (move, arrival, trail))
                heappush(buy_fires, (fire, arrival, trail))
        if len(self._sell_fires) + len(self._buy_fires) > 2 * len(self._trailing) + 256:
            self._reindex_trailing()

    def _next_trailing(self):
        # The first activated trailing stop (by arrival) whose trigger condition holds.
        # Stale tops are dropped first, so a root that does not hold means none does.
        if not self._trail_heaps:
            return self._scan_trailing()
        last = self._last_price
        if last is None:
            return None
        bound = last * 10000
        sells = self._sell_fires
        while sells and sells[0][2].fire != sells[0][0]:
            heappop(sells)
        buys = self._buy_fires
        while buys and buys[0][2].fire != buys[0][0]:
            heappop(buys)
        best = None
        if sells and sells[0][0] <= -bound:
            best = _first_firing(sells, -bound, best)
        if buys and buys[0][0] <= bound:
            best = _first_firing(buys, bound, best)
        return best

    def _scan_update_trailing(self, lo, hi, events):
        # _update_trailing by a scan of every trailing stop, in arrival order.
        for order_id, trail in self._trailing.items():
            command = trail.command
            peak = trail.peak
            if command.side == SELL:
                if peak is None:
                    stop = command.stop_price_ticks
                    if stop is not None and hi < stop:
                        continue
                elif hi <= peak:
                    continue
                trail.peak = hi
                events.append((order_id, hi, TRAILING_MOVED))
            else:
                if peak is None:
                    stop = command.stop_price_ticks
                    if stop is not None and lo > stop:
                        continue
                elif lo >= peak:
                    continue
                trail.peak = lo
                events.append((order_id, lo, TRAILING_MOVED))

    def _scan_trailing(self):
        # _next_trailing by a scan of every trailing stop (validate checks the heaps by it).
        last = self._last_price
        for trail in self._trailing.values():
            peak = trail.peak
            if peak is None:
                continue
            command = trail.command
            delta = command.trailing_delta
            if command.side == SELL:
                if last * 10000 <= peak * (10000 - delta):
                    return trail
            elif last * 10000 >= peak * (10000 + delta):
                return trail
        return None

    def _next_stop(self):
        last = self._last_price
        if last is None:
            return None
        buys = self._buy_stops
        if buys and -buys[-1][0] <= last:
            return buys
        sells = self._sell_stops
        if sells and sells[-1][0] >= last:
            return sells
        return None

    def _run_stops(self, events):
        # One stop at a time, re-reading the last price after each, so a triggered stop's
        # own trades can trigger the next.
        while True:
            if self._sweep is not None:
                self._update_trailing(events)
            stops = self._next_stop()
            if stops is not None:
                command = stops.pop()[2]
            elif self._trailing:
                trail = None if self._trail_idle else self._next_trailing()
                if trail is None:
                    self._trail_idle = True
                    return
                command = trail.command
                del self._trailing[command.order_id]
                self._drop_trail(trail)
            else:
                return
            order_id = command.order_id
            del self._live[order_id]
            events.append((order_id, self._last_price, STOP_TRIGGERED))
            pair = self._lists.pop(order_id, None)
            if pair is not None:
                # An OCO stop leg: its limit leg leaves the book before it executes.
                limit_id = pair[1]
                del self._lists[limit_id]
                self._cancel_special(self._live.pop(limit_id), OCO_OTHER_LEG, events)
            side = command.side
            if command.order_type == STOP:
                self._exec_market(
                    events,
                    order_id,
                    command.user_id,
                    side,
                    command.qty_lots,
                    command.quote_amount,
                    command.max_quote,
                    command.tif,
                )
            else:
                price = command.price_ticks
                if side == BUY:
                    own, opp, key = self._bids, self._asks, price
                else:
                    own, opp, key = self._asks, self._bids, -price
                self._exec_limit(
                    events,
                    order_id,
                    command.user_id,
                    own,
                    opp,
                    key,
                    price,
                    command.qty_lots,
                    command.tif,
                    False,
                )


def _can_fill_simulated(live, opp, user_id, limit_key, qty, quote_left):
    # _can_fill for a side holding icebergs: replay each level's queue with refreshes going
    # to the back, as _take would, on copies.
    levels = opp.levels
    for key in reversed(opp.keys):
        if key < limit_key:
            return False
        lvl = levels[key]
        price = lvl.price_ticks
        ref = lvl.ref
        queue = deque()
        for o in lvl.orders:
            if o.__class__ is int:
                v = live.get(o)
                if v.__class__ is int and v & _REF_MASK == ref:
                    queue.append([(v >> _USER_SHIFT) & _USER_MASK, v >> _QTY_SHIFT, 0, None])
            elif o.qty_lots:
                queue.append([o.user_id, o.qty_lots, o.hidden_lots, o.peak_lots])
        while queue:
            entry = queue.popleft()
            user, shown, hidden, peak = entry
            if user == user_id:
                return False
            fill = shown if shown < qty else qty
            if quote_left is not None:
                if quote_left // price < fill:
                    return False
                quote_left -= fill * price
            qty -= fill
            if not qty:
                return True
            if hidden:
                entry[1] = peak if peak < hidden else hidden
                entry[2] = hidden - entry[1]
                queue.append(entry)
    return False


def _first_firing(heap, limit, best):
    # The earliest-arriving live trailing stop among ``heap``'s entries whose key is <=
    # ``limit``, or ``best`` if that arrived earlier. Those entries form a subtree at the
    # root, so the walk costs O(their number), not O(the heap).
    size = len(heap)
    todo = [0]
    while todo:
        i = todo.pop()
        key, arrival, trail = heap[i]
        if key <= limit:
            if trail.fire == key and (best is None or arrival < best.arrival):
                best = trail
            i = 2 * i + 1
            if i < size:
                todo.append(i)
                if i + 1 < size:
                    todo.append(i + 1)
    return best


def _remaining(entry):
    # Remaining lots of a live entry; None for a stop by quote amount.
    cls = entry.__class__
    if cls is int:
        return entry >> _QTY_SHIFT
    if cls is _Special:
        return entry.qty_lots + entry.hidden_lots
    command = entry.command if cls is _Trail else entry[2]
    return command.qty_lots


def _check_oco(limit, stop):
    # How the two legs fit together; each leg's own validity is checked separately.
    if limit.__class__ is not Place or stop.__class__ is not Place:
        return INVALID_OCO
    if limit.order_type != LIMIT or limit.tif != GTC:
        return INVALID_OCO
    if stop.order_type != STOP and stop.order_type != STOP_LIMIT:
        return INVALID_OCO
    if limit.order_id == stop.order_id or limit.user_id != stop.user_id:
        return INVALID_OCO
    if limit.side != stop.side or limit.qty_lots != stop.qty_lots:
        return INVALID_OCO
    return None


def _check_limit(command):
    # A limit order's fields (iceberg included), as place_limit and place_iceberg check them.
    if command.iceberg_lots is not None:
        return _check_iceberg(command)
    side = command.side
    if side != BUY and side != SELL:
        return INVALID_SIDE
    if not _is_count(command.price_ticks):
        return INVALID_PRICE
    if not _is_count(command.qty_lots):
        return INVALID_QUANTITY
    if command.tif not in _TIFS:
        return INVALID_TIF
    if command.quote_amount is not None or command.max_quote is not None:
        return INVALID_QUOTE
    if command.trailing_delta is not None:
        return INVALID_TRAILING_DELTA
    return None


def _check_iceberg(command):
    if command.order_type != LIMIT:
        return INVALID_ICEBERG
    side = command.side
    if side != BUY and side != SELL:
        return INVALID_SIDE
    if not _is_count(command.price_ticks):
        return INVALID_PRICE
    if not _is_count(command.qty_lots):
        return INVALID_QUANTITY
    if command.tif not in _TIFS:
        return INVALID_TIF
    if command.tif != GTC:
        return INVALID_ICEBERG
    if command.quote_amount is not None or command.max_quote is not None:
        return INVALID_QUOTE
    if command.trailing_delta is not None:
        return INVALID_TRAILING_DELTA
    peak = command.iceberg_lots
    if not _is_count(peak) or peak >= command.qty_lots:
        return INVALID_ICEBERG
    return None


def _check_market(side, qty_lots, quote_amount, max_quote, tif):
    if side != BUY and side != SELL:
        return INVALID_SIDE
    if tif not in _TIFS:
        return INVALID_TIF
    if quote_amount is None:
        if not _is_count(qty_lots):
            return INVALID_QUANTITY
        if max_quote is not None and (side != BUY or not _is_count(max_quote)):
            return INVALID_QUOTE
    elif qty_lots is not None:
        return INVALID_QUANTITY
    elif max_quote is not None or side != BUY or not _is_count(quote_amount):
        return INVALID_QUOTE
    elif tif == FOK:
        # All-or-nothing has no meaning for an amount that ends in whole lots.
        return INVALID_TIF
        return INVALID_QUOTE
    return None


def _check_stop(command):
    order_type = command.order_type
    if order_type != STOP and order_type != STOP_LIMIT:
        return INVALID_ORDER_TYPE
    delta = command.trailing_delta
    if delta is None:
        if not _is_count(command.stop_price_ticks):
            return INVALID_STOP_PRICE
    elif type(delta) is not int or not 0 < delta < 10000:
        return INVALID_TRAILING_DELTA
    elif command.stop_price_ticks is not None and not _is_count(command.stop_price_ticks):
        return INVALID_STOP_PRICE
    if command.post_only:
        return POST_ONLY_NOT_LIMIT
    if command.iceberg_lots is not None:
        return INVALID_ICEBERG
    if order_type == STOP:
        return _check_market(
            command.side, command.qty_lots, command.quote_amount, command.max_quote, command.tif
        )
    if command.side != BUY and command.side != SELL:
        return INVALID_SIDE
    if command.tif not in _TIFS:
        return INVALID_TIF
    if not _is_count(command.price_ticks):
        return INVALID_PRICE
    if not _is_count(command.qty_lots):
        return INVALID_QUANTITY
    if command.quote_amount is not None or command.max_quote is not None:
        return INVALID_QUOTE
    return None

"""A deliberately naive order book to check the engine against.

Lists of dicts, filtered and sorted again for every fill, a deep copy to decide FOK: slow,
but each rule is written once, plainly, in the words of the spec. It produces the engine's
events except LevelChanged (the property tests check those against the book's depth).
"""

import copy

from trading.engine import (
    BUY,
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
    LIMIT,
    MARKET,
    NO_LIQUIDITY,
    OCO_OTHER_LEG,
    OCO_STOP_WOULD_TRIGGER,
    OPEN,
    PARTIALLY_FILLED,
    POST_ONLY_NOT_LIMIT,
    POST_ONLY_WOULD_TAKE,
    RESERVE_EXHAUSTED,
    SELF_TRADE_PREVENTED,
    SELL,
    STOP,
    STOP_LIMIT,
    UNKNOWN_ORDER,
    Amend,
    AmendRejected,
    Cancel,
    CancelRejected,
    OrderAmended,
    OrderDone,
    OrderRefreshed,
    OrderRejected,
    OrderRested,
    PlaceOco,
    Resting,
    StopAccepted,
    StopTriggered,
    Trade,
    TrailingMoved,
)


def _positive(value):
    return isinstance(value, int) and value > 0


def invalid_reason(cmd):
    """Why a Place command is malformed, or None. Tests send at most one defect at a time."""
    if cmd.order_type not in (LIMIT, MARKET, STOP, STOP_LIMIT):
        return INVALID_ORDER_TYPE
    if cmd.side not in (BUY, SELL):
        return INVALID_SIDE
    if cmd.tif not in (GTC, IOC, FOK):
        return INVALID_TIF
    if cmd.post_only and cmd.order_type != LIMIT:
        return POST_ONLY_NOT_LIMIT
    # A trailing stop may leave its (activation) stop price out.
    optional = cmd.trailing_delta is not None and cmd.stop_price_ticks is None
    if (
        cmd.order_type in (STOP, STOP_LIMIT)
        and not _positive(cmd.stop_price_ticks)
        and not optional
    ):
        return INVALID_STOP_PRICE
    if cmd.order_type in (LIMIT, STOP_LIMIT):
        if not _positive(cmd.price_ticks):
            return INVALID_PRICE
        if not _positive(cmd.qty_lots):
            return INVALID_QUANTITY
        if cmd.quote_amount is not None or cmd.max_quote is not None:
            return INVALID_QUOTE
        return _extras_reason(cmd)
    if cmd.quote_amount is None:
        if not _positive(cmd.qty_lots):
            return INVALID_QUANTITY
        if cmd.max_quote is not None and (cmd.side != BUY or not _positive(cmd.max_quote)):
            return INVALID_QUOTE
        return _extras_reason(cmd)
    if cmd.qty_lots is not None:
        return INVALID_QUANTITY
    if cmd.max_quote is not None or cmd.side != BUY or not _positive(cmd.quote_amount):
        return INVALID_QUOTE
    if cmd.tif == FOK:
        return INVALID_TIF
    return _extras_reason(cmd)


def _extras_reason(cmd):
    """The iceberg and trailing fields: each allowed on some order types only."""
    if cmd.iceberg_lots is not None:
        if cmd.order_type != LIMIT or cmd.tif != GTC:
            return INVALID_ICEBERG
        if not _positive(cmd.iceberg_lots) or cmd.iceberg_lots >= cmd.qty_lots:
            return INVALID_ICEBERG
    if cmd.trailing_delta is not None:
        if cmd.order_type not in (STOP, STOP_LIMIT):
            return INVALID_TRAILING_DELTA
        if not isinstance(cmd.trailing_delta, int) or not 1 <= cmd.trailing_delta <= 9999:
            return INVALID_TRAILING_DELTA
    return None


def oco_reason(limit, stop, live_ids, last):
    """Why a PlaceOco is refused before looking at the book's prices, or None."""
    if (
        limit.order_type != LIMIT
        or limit.tif != GTC
        or stop.order_type not in (STOP, STOP_LIMIT)
        or limit.order_id == stop.order_id
        or (limit.user_id, limit.side, limit.qty_lots) != (stop.user_id, stop.side, stop.qty_lots)
    ):
        return INVALID_OCO
    if limit.order_id in live_ids or stop.order_id in live_ids:
        return DUPLICATE_ORDER_ID
    reason = invalid_reason(limit) or invalid_reason(stop)
    if reason is not None:
        return reason
    if stop.trailing_delta is not None or last is None:
        return None
    trigger = stop.stop_price_ticks
    if (last >= trigger) if stop.side == BUY else (last <= trigger):
        return OCO_STOP_WOULD_TRIGGER
    return None


class ReferenceBook:
    """Same rules as trading.engine.OrderBook, none of its data structures."""

    def __init__(self):
        # {"id", "user", "side", "price", "qty" (visible), "hidden", "peak", "arrival"}
        self.resting = []
        # {"cmd", "arrival"} plus, for trailing stops, "peak" (None until active) and
        # "moved" (its peak changed since the last TrailingMoved was reported).
        self.stops = []
        self.lists = {}  # order id -> (list id, other leg's id)
        self.last = None
        self.clock = 0

    def live_ids(self):
        return {o["id"] for o in self.resting} | {s["cmd"].order_id for s in self.stops}

    def _find(self, order_id):
        for order in self.resting:
            if order["id"] == order_id:
                return order
        for stop in self.stops:
            if stop["cmd"].order_id == order_id:
                return stop
        return None

    def apply(self, cmd):
        if isinstance(cmd, Cancel):
            return self.cancel(cmd.order_id)
        if isinstance(cmd, Amend):
            return self.amend(cmd.order_id, cmd.qty_lots)
        if isinstance(cmd, PlaceOco):
            return self.place_oco(cmd.list_id, cmd.limit, cmd.stop)
        if cmd.order_id in self.live_ids():
            return [OrderRejected(cmd.order_id, DUPLICATE_ORDER_ID)]
        reason = invalid_reason(cmd)
        if reason is not None:
            return [OrderRejected(cmd.order_id, reason)]
        events = []
        if cmd.order_type in (STOP, STOP_LIMIT):
            self._add_stop(cmd, events)
        else:
            self.execute(cmd, events)
        self.run_stops(events)
        return events

    def _add_stop(self, cmd, events):
        self.clock += 1
        stop = {"cmd": cmd, "arrival": self.clock}
        self.stops.append(stop)
        events.append(StopAccepted(cmd.order_id, cmd.stop_price_ticks))
        if cmd.trailing_delta is not None:
            stop["peak"] = None
            stop["moved"] = False
            if self.last is not None and self._activates(cmd, self.last):
                stop["peak"] = self.last
                events.append(TrailingMoved(cmd.order_id, self.last))

    @staticmethod
    def _activates(cmd, price):
        stop = cmd.stop_price_ticks
        if stop is None:
            return True
        return price >= stop if cmd.side == SELL else price <= stop

    def _on_trade(self, price):
        """Every trade: activate trailing stops that reach their price, move extremes."""
        self.last = price
        for stop in self.stops:
            cmd = stop["cmd"]
            if cmd.trailing_delta is None:
                continue
            if stop["peak"] is None:
                if self._activates(cmd, price):
                    stop["peak"] = price
                    stop["moved"] = True
            elif price > stop["peak"] if cmd.side == SELL else price < stop["peak"]:
                stop["peak"] = price
                stop["moved"] = True

    def cancel(self, order_id, reason=None):
        target = self._find(order_id)
        if target is None:
            return [CancelRejected(order_id, UNKNOWN_ORDER)]
        events = [self._remove(target, reason)]
        if order_id in self.lists:
            _, other_id = self.lists.pop(order_id)
            del self.lists[other_id]
            events.append(self._remove(self._find(other_id), OCO_OTHER_LEG))
        return events

    def _remove(self, target, reason):
        if "cmd" in target:
            self.stops.remove(target)
            cmd = target["cmd"]
            qty = None if cmd.quote_amount is not None else cmd.qty_lots
            return OrderDone(cmd.order_id, CANCELLED, reason, qty)
        self.resting.remove(target)
        return OrderDone(target["id"], CANCELLED, reason, target["qty"] + target["hidden"])

    def amend(self, order_id, qty):
        target = self._find(order_id)
        if target is None:
            return [AmendRejected(order_id, UNKNOWN_ORDER)]
        current = target["cmd"].qty_lots if "cmd" in target else target["qty"] + target["hidden"]
        if current is None or not isinstance(qty, int) or not 0 < qty < current:
            return [AmendRejected(order_id, INVALID_QUANTITY)]
        events = [self._cut(target, qty)]
        if order_id in self.lists:
            events.append(self._cut(self._find(self.lists[order_id][1]), qty))
        return events

    @staticmethod
    def _cut(target, qty):
        if "cmd" in target:
            target["cmd"] = target["cmd"]._replace(qty_lots=qty)
            return OrderAmended(target["cmd"].order_id, qty)
        cut = target["qty"] + target["hidden"] - qty
        from_hidden = min(cut, target["hidden"])
        target["hidden"] -= from_hidden
        target["qty"] -= cut - from_hidden
        return OrderAmended(target["id"], qty)

    def place_oco(self, list_id, limit, stop):
        reason = oco_reason(limit, stop, self.live_ids(), self.last)
        if reason is None and any(
            self._crosses(o, limit.side, limit.price_ticks) for o in self.resting
        ):
            reason = POST_ONLY_WOULD_TAKE
        if reason is not None:
            return [OrderRejected(limit.order_id, reason), OrderRejected(stop.order_id, reason)]
        events = []
        self.execute(limit, events)
        self._add_stop(stop, events)
        self.lists[limit.order_id] = (list_id, stop.order_id)
        self.lists[stop.order_id] = (list_id, limit.order_id)
        return events

    def run_stops(self, events):
        while True:
            for stop in sorted(self.stops, key=lambda s: s["arrival"]):
                if stop.get("moved"):
                    stop["moved"] = False
                    events.append(TrailingMoved(stop["cmd"].order_id, stop["peak"]))
            if self.last is None:
                return
            plain = [s for s in self.stops if s["cmd"].trailing_delta is None]
            buys = [
                s for s in plain if s["cmd"].side == BUY and self.last >= s["cmd"].stop_price_ticks
            ]
            sells = [
                s for s in plain if s["cmd"].side == SELL and self.last <= s["cmd"].stop_price_ticks
            ]
            trails = [
                s
                for s in self.stops
                if s["cmd"].trailing_delta is not None
                and s["peak"] is not None
                and self._trail_hit(s["cmd"], s["peak"], self.last)
            ]
            if buys:
                stop = min(buys, key=lambda s: (s["cmd"].stop_price_ticks, s["arrival"]))
            elif sells:
                stop = min(sells, key=lambda s: (-s["cmd"].stop_price_ticks, s["arrival"]))
            elif trails:
                stop = min(trails, key=lambda s: s["arrival"])
            else:
                return
            self.stops.remove(stop)
            order_id = stop["cmd"].order_id
            events.append(StopTriggered(order_id, self.last))
            if order_id in self.lists:
                _, limit_id = self.lists.pop(order_id)
                del self.lists[limit_id]
                events.append(self._remove(self._find(limit_id), OCO_OTHER_LEG))
            self.execute(stop["cmd"], events)

    @staticmethod
    def _trail_hit(cmd, peak, last):
        """The trailing trigger, in the words of the spec (basis points of the extreme)."""
        if cmd.side == SELL:
            return last * 10000 <= peak * (10000 - cmd.trailing_delta)
        return last * 10000 >= peak * (10000 + cmd.trailing_delta)

    def execute(self, cmd, events):
        is_limit = cmd.order_type in (LIMIT, STOP_LIMIT)
        limit_price = cmd.price_ticks if is_limit else None
        by_quote = cmd.quote_amount is not None
        qty = None if by_quote else cmd.qty_lots
        cap = cmd.quote_amount if by_quote else cmd.max_quote
        would_take = any(self._crosses(o, cmd.side, limit_price) for o in self.resting)
        if is_limit and cmd.post_only and would_take:
            events.append(OrderRejected(cmd.order_id, POST_ONLY_WOULD_TAKE))
            return
        if cmd.tif == FOK:
            trial = copy.deepcopy(self.resting)
            filled, _, _ = self._match(trial, cmd, limit_price, qty, cap, None)
            if filled != qty:
                events.append(OrderDone(cmd.order_id, EXPIRED, FOK_NOT_FILLED, qty))
                return
        filled, spent, reason = self._match(self.resting, cmd, limit_price, qty, cap, events)
        if by_quote:
            if reason == RESERVE_EXHAUSTED and spent > 0:
                events.append(OrderDone(cmd.order_id, FILLED, None, None))
            else:
                events.append(OrderDone(cmd.order_id, EXPIRED, reason, None))
            return
        left = qty - filled
        if left == 0:
            events.append(OrderDone(cmd.order_id, FILLED, None, 0))
        elif reason == SELF_TRADE_PREVENTED or not is_limit:
            events.append(OrderDone(cmd.order_id, EXPIRED, reason, left))
        elif cmd.tif == GTC:
            self.clock += 1
            peak = cmd.iceberg_lots
            shown = left if peak is None else min(peak, left)
            self.resting.append(
                {
                    "id": cmd.order_id,
                    "user": cmd.user_id,
                    "side": cmd.side,
                    "price": limit_price,
                    "qty": shown,
                    "hidden": left - shown,
                    "peak": peak,
                    "arrival": self.clock,
                }
            )
            status = OPEN if filled == 0 else PARTIALLY_FILLED
            events.append(OrderRested(cmd.order_id, cmd.side, limit_price, left, status))
        else:
            assert cmd.tif == IOC
            events.append(OrderDone(cmd.order_id, EXPIRED, IOC_REMAINDER, left))

    @staticmethod
    def _crosses(order, side, limit_price):
        if order["side"] == side:
            return False
        if limit_price is None:
            return True
        return order["price"] <= limit_price if side == BUY else order["price"] >= limit_price

    def _match(self, book, cmd, limit_price, qty, cap, events):
        """Fill against ``book`` (a list) in price-time order; record into ``events``."""
        side = cmd.side
        filled = spent = 0
        reason = None
        while qty is None or filled < qty:
            candidates = sorted(
                (o for o in book if self._crosses(o, side, limit_price)),
                key=lambda o: (o["price"] if side == BUY else -o["price"], o["arrival"]),
            )
            if not candidates:
                reason = NO_LIQUIDITY
                break
            maker = candidates[0]
            if maker["user"] == cmd.user_id:
                reason = SELF_TRADE_PREVENTED
                break
            fill = maker["qty"] if qty is None else min(maker["qty"], qty - filled)
            if cap is not None:
                affordable = (cap - spent) // maker["price"]
                if affordable == 0:
                    reason = RESERVE_EXHAUSTED
                    break
                fill = min(fill, affordable)
            maker["qty"] -= fill
            filled += fill
            spent += fill * maker["price"]
            if events is not None:
                events.append(Trade(maker["id"], cmd.order_id, maker["price"], fill, side))
                self._on_trade(maker["price"])
            if maker["qty"] == 0 and maker["hidden"]:
                # Iceberg: the next visible part, at the back of its price.
                maker["qty"] = min(maker["peak"], maker["hidden"])
                maker["hidden"] -= maker["qty"]
                self.clock += 1
                maker["arrival"] = self.clock
                if events is not None:
                    events.append(OrderRefreshed(maker["id"], maker["qty"]))
            elif maker["qty"] == 0:
                book.remove(maker)
                if events is not None:
                    events.append(OrderDone(maker["id"], FILLED, None, 0))
            if events is not None and maker["id"] in self.lists:
                # The OCO limit leg traded: its stop leg goes at once.
                _, stop_id = self.lists.pop(maker["id"])
                del self.lists[stop_id]
                events.append(self._remove(self._find(stop_id), OCO_OTHER_LEG))
        return filled, spent, reason

    def resting_orders(self):
        """Bids best first then asks best first, FIFO inside a price: the engine's order."""
        bids = sorted(
            (o for o in self.resting if o["side"] == BUY), key=lambda o: (-o["price"], o["arrival"])
        )
        asks = sorted(
            (o for o in self.resting if o["side"] == SELL), key=lambda o: (o["price"], o["arrival"])
        )
        return [
            Resting(
                o["id"],
                o["user"],
                o["side"],
                o["price"],
                o["qty"] + o["hidden"],
                o["peak"],
                None if o["peak"] is None else o["qty"],
                self.lists[o["id"]][1] if o["id"] in self.lists else None,
            )
            for o in bids + asks
        ]

    def stop_orders(self):
        return [s["cmd"] for s in sorted(self.stops, key=lambda s: s["arrival"])]

    def trailing_peaks(self):
        return {s["cmd"].order_id: s["peak"] for s in self.stops if s.get("peak") is not None}

    def oco_pairs(self):
        resting = {o["id"] for o in self.resting}
        return sorted(
            (list_id, order_id, peer)
            for order_id, (list_id, peer) in self.lists.items()
            if order_id in resting
        )

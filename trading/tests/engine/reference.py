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
    Cancel,
    CancelRejected,
    OrderDone,
    OrderRefreshed,
    OrderRejected,
    OrderRested,
    Resting,
    StopAccepted,
    StopTriggered,
    Trade,
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
    if cmd.order_type in (STOP, STOP_LIMIT) and not _positive(cmd.stop_price_ticks):
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
        return INVALID_TRAILING_DELTA
    return None


class ReferenceBook:
    """Same rules as trading.engine.OrderBook, none of its data structures."""

    def __init__(self):
        # {"id", "user", "side", "price", "qty" (visible), "hidden", "peak", "arrival"}
        self.resting = []
        self.stops = []  # {"cmd", "arrival"}
        self.last = None
        self.clock = 0

    def live_ids(self):
        return {o["id"] for o in self.resting} | {s["cmd"].order_id for s in self.stops}

    def apply(self, cmd):
        if isinstance(cmd, Cancel):
            return self.cancel(cmd.order_id)
        if cmd.order_id in self.live_ids():
            return [OrderRejected(cmd.order_id, DUPLICATE_ORDER_ID)]
        reason = invalid_reason(cmd)
        if reason is not None:
            return [OrderRejected(cmd.order_id, reason)]
        events = []
        if cmd.order_type in (STOP, STOP_LIMIT):
            self.clock += 1
            self.stops.append({"cmd": cmd, "arrival": self.clock})
            events.append(StopAccepted(cmd.order_id, cmd.stop_price_ticks))
        else:
            self.execute(cmd, events)
        self.run_stops(events)
        return events

    def cancel(self, order_id):
        for order in self.resting:
            if order["id"] == order_id:
                self.resting.remove(order)
                return [OrderDone(order_id, CANCELLED, None, order["qty"] + order["hidden"])]
        for stop in self.stops:
            cmd = stop["cmd"]
            if cmd.order_id == order_id:
                self.stops.remove(stop)
                qty = None if cmd.quote_amount is not None else cmd.qty_lots
                return [OrderDone(order_id, CANCELLED, None, qty)]
        return [CancelRejected(order_id, UNKNOWN_ORDER)]

    def run_stops(self, events):
        while self.last is not None:
            buys = [
                s
                for s in self.stops
                if s["cmd"].side == BUY and self.last >= s["cmd"].stop_price_ticks
            ]
            sells = [
                s
                for s in self.stops
                if s["cmd"].side == SELL and self.last <= s["cmd"].stop_price_ticks
            ]
            if buys:
                stop = min(buys, key=lambda s: (s["cmd"].stop_price_ticks, s["arrival"]))
            elif sells:
                stop = min(sells, key=lambda s: (-s["cmd"].stop_price_ticks, s["arrival"]))
            else:
                return
            self.stops.remove(stop)
            events.append(StopTriggered(stop["cmd"].order_id, self.last))
            self.execute(stop["cmd"], events)

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
                self.last = maker["price"]
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
            )
            for o in bids + asks
        ]

    def stop_orders(self):
        return [s["cmd"] for s in sorted(self.stops, key=lambda s: s["arrival"])]

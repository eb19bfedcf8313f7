"""A rule-less order book: the yardstick the engine is reported beside (bench/engine.py).

Price-time matching and nothing else, in the plainest fast Python: one heap of
``(key, arrival, order_id)`` tuples per side (a bid's key is minus its price, so the best of
both sides is the heap's smallest), a dict of live quantities, lazy deletion of cancelled
and filled entries. No events beyond a trade count, no levels or depth, no sequence numbers,
no self-trade prevention, no FOK check (FOK and IOC both discard their remainder), no stops,
no validation. Whatever the engine does beyond this is what its rules cost.
"""

from heapq import heappop, heappush


class HeapBook:
    __slots__ = ("bids", "asks", "live", "arrival", "trades")

    def __init__(self) -> None:
        self.bids: list[tuple[int, int, int]] = []
        self.asks: list[tuple[int, int, int]] = []
        self.live: dict[int, int] = {}  # order id -> remaining lots
        self.arrival = 0
        self.trades = 0

    def _take(self, heap: list, limit_key: int | None, qty: int) -> int:
        """Fill up to ``qty`` from ``heap`` while its best key is within ``limit_key``
        (None: any price). Returns what is left."""
        live = self.live
        while qty and heap:
            key, _, maker = heap[0]
            left = live.get(maker)
            if not left:
                heappop(heap)  # cancelled or filled
                continue
            if limit_key is not None and key > limit_key:
                break
            fill = left if left < qty else qty
            qty -= fill
            self.trades += 1
            if fill == left:
                del live[maker]
                heappop(heap)
            else:
                live[maker] = left - fill
        return qty

    def limit(self, order_id: int, side: str, price: int, qty: int, rests: bool = True) -> None:
        if side == "buy":
            left = self._take(self.asks, price, qty) if self.asks else qty
            if left and rests:
                self.arrival += 1
                heappush(self.bids, (-price, self.arrival, order_id))
                self.live[order_id] = left
        else:
            # A bid's key is minus its price: a sell at p takes bids keyed up to -p.
            left = self._take(self.bids, -price, qty) if self.bids else qty
            if left and rests:
                self.arrival += 1
                heappush(self.asks, (price, self.arrival, order_id))
                self.live[order_id] = left

    def rest(self, order_id: int, side: str, price: int, qty: int) -> None:
        """Preload a resting order (non-crossing) without matching."""
        self.arrival += 1
        if side == "buy":
            heappush(self.bids, (-price, self.arrival, order_id))
        else:
            heappush(self.asks, (price, self.arrival, order_id))
        self.live[order_id] = qty

    def market(self, side: str, qty: int) -> None:
        self._take(self.asks if side == "buy" else self.bids, None, qty)

    def cancel(self, order_id: int) -> None:
        self.live.pop(order_id, None)

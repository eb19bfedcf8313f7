"""Seed 003's WebSocket streams (../shared/seeds/003…: "WebSocket Service"), spoken on ``/ws/``
beside the exchange's own protocol (docs/WEBSOCKETS.md, "Seed 003's streams").

A client message with a ``method`` and no ``type`` is seed 003's:
``{"method": "SUBSCRIBE", "params": ["depth@BTC_USD", "trade@BTC_USD"]}`` and likewise
``UNSUBSCRIBE``; streams are ``depth@SYMBOL``, ``trade@SYMBOL`` and ``ticker@SYMBOL``. Every
message it receives is ``{"stream": <name as subscribed>, "data": {"e": ..., "s": ...}}``:

- ``depth``: ``b`` / ``a``, changed levels as ``[price, quantity]`` (a zero removes one), and
  ``U`` / ``u``, the book's sequence numbers; right after subscribing (and after subscribing
  again: a client that finds a gap in ``U`` / ``u`` resyncs so), one with every level.
- ``trade``: ``t`` id, ``p`` price, ``q`` quantity, ``T`` time (ms), ``m`` buyer is maker.
- ``ticker``: ``o`` ``h`` ``l`` ``c`` (open, high, low, last), ``v`` / ``V`` (base / quote
  volume), ``p`` / ``P`` (change, change %), ``n`` trades; the last one right after subscribing.

The document shows no reply to a subscription and its own client reads ``data.e`` of every
message, so none is sent; errors are the connection's own (``{"type": "error", ...}``).
Messages are re-shaped once per process, by the Binance relays (``marketdata.binance_consumers``),
whose combined form is already seed 003's ``{"stream", "data"}`` envelope.
"""

import functools
import json
import re

from django.conf import settings

from marketdata import streams
from marketdata.binance_consumers import relays
from marketdata.groups import stream_key

STREAM_NAME = re.compile(
    r"(?P<kind>depth|trade|ticker)@(?P<symbol>[A-Za-z0-9]{1,12}[-_/][A-Za-z0-9]{1,12})"
)
CHANNELS = {"depth": "orderbook", "trade": "trades", "ticker": "ticker"}


def _s(symbol: str) -> str:
    """``BTC-USD`` as the document writes a market: ``BTC_USD``."""
    return symbol.replace("-", "_")


def depth_data(message: dict) -> dict | None:
    if message.get("type") != "update":
        return None
    return {
        "e": "depth",
        "s": _s(message["symbol"]),
        "b": message["bids"],
        "a": message["asks"],
        "U": message["first_seq"],
        "u": message["seq"],
        "E": message.get("ts"),
    }


def trade_data(message: dict) -> dict | None:
    if message.get("type") != "trade":
        return None
    return {
        "e": "trade",
        "s": _s(message["symbol"]),
        "t": message["id"],
        "p": message["price"],
        "q": message["quantity"],
        "T": message["time"],
        "m": message["taker_side"] == "sell",
    }


def ticker_data(message: dict) -> dict | None:
    if message.get("type") != "ticker":
        return None
    return {
        "e": "ticker",
        "s": _s(message["symbol"]),
        "o": message["open"],
        "h": message["high"],
        "l": message["low"],
        "c": message["last"],
        "v": message["volume"],
        "V": message["quote_volume"],
        "p": message["change"],
        "P": message["change_percent"],
        "n": message["trade_count"],
        "E": message.get("ts"),
    }


TRANSLATIONS = {"depth": depth_data, "trade": trade_data, "ticker": ticker_data}


def _envelope(name: str, data: dict) -> str:
    return json.dumps({"stream": name, "data": data}, separators=(",", ":"))


async def depth_snapshot_text(name: str, symbol: str) -> str:
    """Every level of the book as one ``depth`` message (read when it is sent)."""
    book = json.loads(await streams.orderbook_snapshot_text(symbol))
    data = {"e": "depth", "s": _s(symbol), "b": book["bids"], "a": book["asks"], "u": book["seq"]}
    return _envelope(name, data)


def error_text(code: str, message: str) -> str:
    return json.dumps({"type": "error", "code": code, "message": message})


class SeedStreams:
    """One ``/ws/`` connection's seed-003 subscriptions. The relays see it as a combined
    Binance connection (``combined``, ``deliver_text``); what they hand it goes out through
    the connection's own outbox, in order with everything else."""

    combined = True

    def __init__(self, consumer):
        self.consumer = consumer
        self.names: dict[str, str] = {}  # stream name as subscribed → hub stream

    def deliver_text(self, text: str, frame: bytes | None = None) -> None:
        self.consumer.deliver_text(text, frame)

    def close(self) -> None:
        for name, hub_stream in self.names.items():
            relays.discard(hub_stream, name, self)
        self.names.clear()

    def resend_books(self) -> None:
        """The connection fell behind and lost diffs: each book starts over, whole."""
        for name, hub_stream in self.names.items():
            if hub_stream.startswith("orderbook:"):
                symbol = hub_stream.split(":", 1)[1]
                self.consumer._queue(functools.partial(depth_snapshot_text, name, symbol))

    async def receive(self, message: dict) -> None:
        method, params = message.get("method"), message.get("params")
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
            await self._error("UNKNOWN_METHOD", f"Unknown method: {method!r}.")
            return
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            await self._error("BAD_MESSAGE", "params must be a list of stream names.")
            return
        if method == "UNSUBSCRIBE":
            for name in params:
                hub_stream = self.names.pop(name, None)
                if hub_stream is not None:
                    relays.discard(hub_stream, name, self)
            return
        await self._subscribe(params)

    async def _subscribe(self, names: list[str]) -> None:
        """Every stream of ``names`` or, when one is unknown, none."""
        resolved = []
        for name in names:
            match = STREAM_NAME.fullmatch(name)
            if match is None:
                await self._error("UNKNOWN_STREAM", f"Unknown stream {name!r}.")
                return
            symbol = await streams.symbol_known(match["symbol"])
            if symbol is None:
                await self._error("UNKNOWN_SYMBOL", f"Unknown symbol in {name!r}.")
                return
            resolved.append((name, match["kind"], symbol))
        new = [item for item in resolved if item[0] not in self.names]
        taken = len(self.names) + len(self.consumer.subscriptions) + len(self.consumer.private)
        if taken + len(new) > settings.WS_MAX_SUBSCRIPTIONS:
            await self.consumer._violation(
                "SUBSCRIPTION_LIMIT", "Too many subscriptions on one connection."
            )
            return
        joins = []
        for name, kind, symbol in new:
            hub_stream = stream_key(CHANNELS[kind], symbol)
            self.names[name] = hub_stream
            joins.append(relays.add(hub_stream, name, TRANSLATIONS[kind], self))
        for join in joins:
            await join
        for name, kind, symbol in resolved:
            # A depth stream subscribed again starts over from the whole book (a client that
            # found a gap in U/u resyncs so); the rest only when new.
            if kind == "depth":
                self.consumer._queue(functools.partial(depth_snapshot_text, name, symbol))
            elif kind == "ticker" and (name, kind, symbol) in new:
                text = await streams.ticker_text(symbol)
                data = ticker_data(json.loads(text)) if text else None
                if data is not None:
                    self.consumer._queue(_envelope(name, data))

    async def _error(self, code: str, message: str) -> None:
        await self.consumer.send(text_data=error_text(code, message))

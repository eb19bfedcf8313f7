"""The WebSocket endpoint ``/ws/`` (ARCHITECTURE §6): multiplexed market data and private events.

Client messages are JSON objects with ``type``: ``subscribe`` / ``unsubscribe`` with a
``channel`` (``orderbook``, ``trades``, ``ticker``, ``candles`` + ``interval``; ``orders``
and ``balances`` when authenticated) and a ``symbol``; ``ping`` → ``pong``. Bad JSON, an
unknown channel or symbol, or a private channel without auth get an ``error`` and the
connection stays open. Exceeding the limits (message size, message rate, subscriptions)
gets an ``error`` and then a close with code 1008.

A message with a ``method`` and no ``type`` is seed 003's (``SUBSCRIBE`` / ``UNSUBSCRIBE``
with ``params``, streams ``depth@SYMBOL`` ...): ``marketdata.seed_streams``.

Consumers stay thin: public messages arrive already serialized (and framed) from the hub
(``marketdata.hub``, one channel-layer channel per process) and are written as they are,
straight to the connection when nothing is queued before them (``marketdata.fastsend``),
else through the connection's bounded outbox.
"""

import asyncio
import json
from datetime import UTC, datetime

from django.conf import settings

from marketdata import streams
from marketdata.groups import (
    CANDLE_INTERVALS,
    PRIVATE_CHANNELS,
    PUBLIC_CHANNELS,
    stream_key,
    user_group,
)
from marketdata.hub import hub
from marketdata.outbox import OutboxConsumer
from marketdata.seed_streams import SeedStreams

POLICY_VIOLATION = 1008


def error_text(code: str, message: str) -> str:
    return json.dumps({"type": "error", "code": code, "message": message})


def _stream_fields(kind: str, channel: str, symbol: str, interval: str | None) -> dict:
    fields = {"type": kind, "channel": channel, "symbol": symbol}
    if interval:
        fields["interval"] = interval
    return fields


class _Resync:
    """An outbox entry meaning: send this orderbook stream a fresh snapshot."""

    __slots__ = ("symbol",)

    def __init__(self, symbol: str):
        self.symbol = symbol


class StreamConsumer(OutboxConsumer):
    async def connect(self):
        self.subscriptions: set[str] = set()
        self.private: set[str] = set()
        self.in_user_group = False
        self.seed_streams: SeedStreams | None = None
        await self.open_outbox()
        if self.scope.get("token_invalid"):
            await self.send(text_data=error_text("TOKEN_INVALID", "The token is invalid."))

    async def disconnect(self, code):
        for stream in self.subscriptions:
            hub.discard(stream, self)
        self.subscriptions.clear()
        if self.seed_streams is not None:
            self.seed_streams.close()
        if self.in_user_group:
            await self.channel_layer.group_discard(user_group(self.user.pk), self.channel_name)
        self.close_outbox()

    @property
    def user(self):
        return self.scope.get("user")

    # --- outbox -------------------------------------------------------------------------

    def deliver(self, stream: str, text: str, frame: bytes | None = None) -> None:
        self.deliver_text(text, frame)

    def resync(self, stream: str) -> None:
        """Messages of ``stream`` were lost on the way (the hub saw a gap, or lost Redis).
        A book starts over from a snapshot and a ticker from the current one; trades and
        candles have no snapshot, so the client is told to read them again over REST."""
        channel, _, rest = stream.partition(":")
        symbol, _, interval = rest.partition(":")
        if channel == "orderbook":
            self._queue(_Resync(symbol))
        elif channel == "ticker":
            self._queue(lambda: streams.ticker_text(symbol))
        else:
            self._queue(json.dumps(_stream_fields("resync", channel, symbol, interval or None)))

    def _fell_behind(self) -> None:
        # Its backlog is worth less than a fresh start: drop it, say so, resend snapshots.
        while not self.outbox.empty():
            self.outbox.get_nowait()
        self.outbox.put_nowait(
            error_text("SLOW_CONSUMER", "You fell behind; order books restart from a snapshot.")
        )
        for stream in self.subscriptions:
            if stream.startswith("orderbook:"):
                self.outbox.put_nowait(_Resync(stream.split(":", 1)[1]))
        if self.seed_streams is not None:
            self.seed_streams.resend_books()

    async def _prepare(self, item) -> str | None:
        if isinstance(item, _Resync):
            return await streams.orderbook_snapshot_text(item.symbol)
        if callable(item):  # a message read when it is sent (seed 003's depth snapshots)
            return await item()
        return item

    # --- client messages ----------------------------------------------------------------

    async def _admit(self, text_data, bytes_data) -> dict | bool | None:
        """Enforce the size and rate limits, then parse. False: the connection is being
        closed; None: not a JSON object; else the message."""
        raw = text_data if text_data is not None else bytes_data
        if raw is not None and len(raw) > settings.WS_MAX_MESSAGE_BYTES:
            await self._violation("MESSAGE_TOO_LARGE", "Messages are limited in size.")
            return False
        if not self._take_token():
            await self._violation("RATE_LIMIT", "Too many messages.")
            return False
        try:
            message = json.loads(raw) if raw is not None else None
        except ValueError:
            return None
        return message if isinstance(message, dict) else None

    async def receive(self, text_data=None, bytes_data=None):
        message = await self._admit(text_data, bytes_data)
        if message is False:
            return
        if message is None:
            await self.send(text_data=error_text("BAD_MESSAGE", "Send a JSON object with a type."))
            return
        kind = message.get("type")
        if kind is None and "method" in message:
            # Seed 003's streams (docs/WEBSOCKETS.md): {"method": "SUBSCRIBE", "params": [...]}.
            if self.seed_streams is None:
                self.seed_streams = SeedStreams(self)
            await self.seed_streams.receive(message)
        elif kind == "ping":
            await self.send(text_data='{"type": "pong"}')
        elif kind in ("subscribe", "unsubscribe"):
            await self._subscription(message, subscribe=kind == "subscribe")
        else:
            await self.send(text_data=error_text("UNKNOWN_TYPE", f"Unknown type: {kind!r}."))

    async def _violation(self, code: str, message: str) -> None:
        await self.send(text_data=error_text(code, message))
        await self.close(code=POLICY_VIOLATION)

    async def _subscription(self, message: dict, *, subscribe: bool) -> None:
        channel = message.get("channel")
        if channel in PRIVATE_CHANNELS:
            await self._private(channel, subscribe=subscribe)
            return
        if channel not in PUBLIC_CHANNELS:
            await self.send(
                text_data=error_text("UNKNOWN_CHANNEL", f"Unknown channel {channel!r}.")
            )
            return
        symbol = await streams.symbol_known(message.get("symbol"))
        if symbol is None:
            unknown = message.get("symbol")
            await self.send(text_data=error_text("UNKNOWN_SYMBOL", f"Unknown symbol {unknown!r}."))
            return
        interval = None
        if channel == "candles":
            interval = message.get("interval")
            if interval not in CANDLE_INTERVALS:
                choices = ", ".join(CANDLE_INTERVALS)
                await self.send(
                    text_data=error_text("UNKNOWN_INTERVAL", f"interval must be one of {choices}.")
                )
                return
        stream = stream_key(channel, symbol, interval)
        if not subscribe:
            hub.discard(stream, self)
            self.subscriptions.discard(stream)
            await self.send(
                text_data=json.dumps(_stream_fields("unsubscribed", channel, symbol, interval))
            )
            return
        if stream in self.subscriptions:
            return
        if len(self.subscriptions) + len(self.private) >= settings.WS_MAX_SUBSCRIPTIONS:
            await self._violation("SUBSCRIPTION_LIMIT", "Too many subscriptions on one connection.")
            return
        # Join first, then snapshot: diffs that arrive meanwhile queue up behind it, and the
        # client drops those the snapshot already covers (seq <= snapshot.seq).
        joined = hub.add(stream, self)
        self.subscriptions.add(stream)
        await joined
        await self.send(
            text_data=json.dumps(_stream_fields("subscribed", channel, symbol, interval))
        )
        if channel == "orderbook":
            self._queue(_Resync(symbol))
        elif channel == "ticker":
            text = await streams.ticker_text(symbol)
            if text:
                self._queue(text)

    async def _private(self, channel: str, *, subscribe: bool) -> None:
        if not (self.user and self.user.is_authenticated):
            await self.send(
                text_data=error_text(
                    "AUTH_REQUIRED", f"Channel {channel!r} needs a token (?token=) or a session."
                )
            )
            return
        if subscribe:
            if channel not in self.private and (
                len(self.subscriptions) + len(self.private) >= settings.WS_MAX_SUBSCRIPTIONS
            ):
                await self._violation("SUBSCRIPTION_LIMIT", "Too many subscriptions.")
                return
            self.private.add(channel)
            if not self.in_user_group:
                mine = await self.channel_open()
                await self.channel_layer.group_add(user_group(self.user.pk), mine)
                self.in_user_group = True
            await self.send(text_data=json.dumps({"type": "subscribed", "channel": channel}))
        else:
            self.private.discard(channel)
            await self.send(text_data=json.dumps({"type": "unsubscribed", "channel": channel}))

    # --- private events from the matcher (Channels layer, group user.<id>) ----------------

    async def user_event(self, event):
        """``{"type": "user.event", "channel": "orders"|"balances", "text": "..."}``"""
        if event["channel"] in self.private:
            self._queue(event["text"])


class LegacyOrderBookConsumer(StreamConsumer):
    """``/api/v1/ws/orderbook/<symbol>``: the older one-market protocol, as the seed's own
    document writes it (docs/WEBSOCKETS.md, "Compatibility endpoint").

    In: ``ping``, ``get_order_book`` (``depth``), ``get_recent_trades`` (``limit``).
    Out, each in a ``{"type", "data"}`` envelope: ``order_book_snapshot`` on connect and on
    ``get_order_book`` (``symbol``, ``bids``/``asks`` as ``price``, ``total_quantity``,
    ``order_count``, ``timestamp``, plus our ``seq``); ``trade_execution`` per trade (``id``,
    ``symbol``, ``buy_order_id``, ``sell_order_id``, ``quantity``, ``price``,
    ``executed_at``); ``order_update`` with the status of the caller's own orders of this
    market, on an authenticated connection; ``order_book_update`` with each book diff; and
    ``pong``, ``recent_trades``. Amounts are decimal strings, never floats. Few clients speak
    it, so its messages are re-shaped per connection rather than published twice.
    """

    SNAPSHOT_DEPTH = 20

    async def connect(self):
        await super().connect()
        given = self.scope["url_route"]["kwargs"]["symbol"]
        self.symbol = await streams.symbol_known(given)
        if self.symbol is None:
            await self._violation("UNKNOWN_SYMBOL", "Unknown symbol.")
            return
        # Answers name the market as the client spelled it ("BTC/USD" in the document).
        self.spelling = given.upper()
        joins = []
        for channel in ("orderbook", "trades"):
            stream = stream_key(channel, self.symbol)
            joins.append(hub.add(stream, self))
            self.subscriptions.add(stream)
        await asyncio.gather(*joins)
        if self.user is not None and self.user.is_authenticated:
            await self.channel_layer.group_add(user_group(self.user.pk), await self.channel_open())
            self.in_user_group = True
            self.private.add("orders")
        await self._snapshot(self.SNAPSHOT_DEPTH)

    async def _snapshot(self, depth: int) -> None:
        book = await streams.legacy_order_book(self.symbol, depth)
        book["symbol"] = self.spelling
        book["timestamp"] = _iso_now()
        self._queue(json.dumps({"type": "order_book_snapshot", "data": book}))

    def deliver(self, stream: str, text: str, frame: bytes | None = None) -> None:
        message = json.loads(text)
        kind = message.pop("type", None)
        message.pop("channel", None)
        if kind == "trade":
            data = {
                "id": message["id"],
                "symbol": self.spelling,
                "buy_order_id": message.get("buy_order_id"),
                "sell_order_id": message.get("sell_order_id"),
                "quantity": message["quantity"],
                "price": message["price"],
                "executed_at": _iso_millis(message["time"]),
            }
            super().deliver(stream, json.dumps({"type": "trade_execution", "data": data}))
        elif kind == "update":
            message["symbol"] = self.spelling
            super().deliver(stream, json.dumps({"type": "order_book_update", "data": message}))

    def resync(self, stream: str) -> None:
        """The old protocol has no resync: its clients ask again with get_order_book."""

    async def user_event(self, event):
        """The caller's own order of this market changed: its status, as ``order_update``."""
        if event["channel"] != "orders":
            return
        order = json.loads(event["text"])
        if order.get("symbol") != self.symbol:
            return
        data = {
            "order_id": order["id"],
            "symbol": self.spelling,
            "side": order["side"],
            "status": order["status"],
            "quantity": order["quantity"],
            "filled_quantity": order["filled_quantity"],
            "price": order["price"],
            "timestamp": _iso_now(),
        }
        self._queue(json.dumps({"type": "order_update", "data": data}))

    async def receive(self, text_data=None, bytes_data=None):
        message = await self._admit(text_data, bytes_data)
        if message is False:
            return
        kind = message.get("type") if message else None
        if kind == "ping":
            await self.send(text_data='{"type": "pong"}')
        elif kind == "get_order_book":
            depth = _bounded_int(message.get("depth"), default=self.SNAPSHOT_DEPTH, high=1000)
            if depth is None:
                await self.send(text_data=error_text("BAD_DEPTH", "depth is 1 to 1000."))
                return
            await self._snapshot(depth)
        elif kind == "get_recent_trades":
            limit = _bounded_int(message.get("limit"), default=50, high=1000)
            if limit is None:
                await self.send(text_data=error_text("BAD_LIMIT", "limit is 1 to 1000."))
                return
            trades = await streams.recent_trades(self.symbol, limit)
            self._queue(
                json.dumps(
                    {"type": "recent_trades", "data": {"symbol": self.spelling, "trades": trades}}
                )
            )
        else:
            await self.send(text_data=error_text("UNKNOWN_TYPE", f"Unknown type: {kind!r}."))


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _iso_millis(millis: int) -> str:
    moment = datetime.fromtimestamp(millis / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _bounded_int(value, *, default: int, high: int) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        return None
    return value

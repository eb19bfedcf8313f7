"""Binance's market streams (``/api/v3/ws``, ``/api/v3/ws/<n>``, ``/api/v3/stream?streams=``)
over the exchange's own published messages.

Client frames are Binance's: ``{"method": "SUBSCRIBE", "params": ["btcusd@depth@100ms",
"btcusd@trade"], "id": 1}`` answered by ``{"result": null, "id": 1}``; likewise
``UNSUBSCRIBE``, ``LIST_SUBSCRIPTIONS``, ``SET_PROPERTY`` / ``GET_PROPERTY`` (``combined``).
Streams: ``<symbol>@depth`` (also ``@100ms`` / ``@1000ms``; the matcher's diff interval
applies), ``@trade``, ``@aggTrade``, ``@ticker``, ``@miniTicker`` and ``@kline_<interval>``.

Messages come from the per-process hub (``marketdata.hub``), as the ``/ws/`` streams get them.
A relay per hub stream translates each message into Binance's event ONCE per process and
hands the same text (and WebSocket frame, ``marketdata.fastsend``) to every Binance
connection; only the combined form's small ``{"stream", "data"}`` wrapper is added, once per
stream name. Depth events carry the book's
sequence numbers unchanged (``U`` = ``first_seq``, ``u`` = ``seq``), so the stream is gapless
and lines up with REST ``lastUpdateId``, which is what Binance clients sync on.
"""

import asyncio
import json
import re
import time
from collections.abc import Callable
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings

from marketdata.fastsend import text_frame
from marketdata.groups import CANDLE_INTERVALS, stream_key
from marketdata.hub import hub
from marketdata.models import INTERVAL_SECONDS
from marketdata.outbox import OutboxConsumer
from trading.models import Market

POLICY_VIOLATION = 1008
SYMBOLS_TTL_SECONDS = 10.0
STREAM_NAME = re.compile(
    r"(?P<symbol>[a-z0-9]{2,30})@(?P<kind>depth(?:@(?:100|1000)ms)?|trade|aggTrade|ticker"
    r"|miniTicker|kline_(?P<interval>[0-9]{1,2}[mhd]))"
)
# Binance's error codes of the stream API.
UNKNOWN_PROPERTY, INVALID_VALUE, INVALID_REQUEST, INVALID_JSON = 0, 1, 2, 3
_COMPACT = (",", ":")

_symbols: dict[str, str] = {}
_symbols_at = 0.0


@database_sync_to_async
def _load_symbols() -> dict[str, str]:
    return {
        symbol.replace("-", "").lower(): symbol
        for symbol in Market.objects.values_list("symbol", flat=True)
    }


async def market_symbol(binance_symbol: str) -> str | None:
    """``btcusd`` → ``BTC-USD`` (markets cached for a few seconds), or None."""
    global _symbols, _symbols_at
    if binance_symbol not in _symbols or time.monotonic() - _symbols_at > SYMBOLS_TTL_SECONDS:
        _symbols = await _load_symbols()
        _symbols_at = time.monotonic()
    return _symbols.get(binance_symbol)


# --- translation: our published messages → Binance events -----------------------------------


def _s(message: dict) -> str:
    return message["symbol"].replace("-", "")


def _zero(value):
    return "0" if value is None else value


def depth_event(message: dict) -> dict | None:
    if message.get("type") != "update":
        return None
    return {
        "e": "depthUpdate",
        "E": message.get("ts") or int(time.time() * 1000),
        "s": _s(message),
        "U": message["first_seq"],
        "u": message["seq"],
        "b": message["bids"],
        "a": message["asks"],
    }


def trade_event(message: dict) -> dict | None:
    if message.get("type") != "trade":
        return None
    return {
        "e": "trade",
        "E": message.get("ts") or message["time"],
        "s": _s(message),
        "t": message["id"],
        "p": message["price"],
        "q": message["quantity"],
        "T": message["time"],
        "m": message["taker_side"] == "sell",
        "M": True,
    }


def agg_trade_event(message: dict) -> dict | None:
    if message.get("type") != "trade":
        return None
    return {
        "e": "aggTrade",
        "E": message.get("ts") or message["time"],
        "s": _s(message),
        "a": message["id"],
        "p": message["price"],
        "q": message["quantity"],
        "f": message["id"],
        "l": message["id"],
        "T": message["time"],
        "m": message["taker_side"] == "sell",
        "M": True,
    }


def mini_ticker_event(message: dict) -> dict | None:
    if message.get("type") != "ticker":
        return None
    return {
        "e": "24hrMiniTicker",
        "E": message.get("ts"),
        "s": _s(message),
        "c": _zero(message["last"]),
        "o": _zero(message["open"]),
        "h": _zero(message["high"]),
        "l": _zero(message["low"]),
        "v": message["volume"],
        "q": message["quote_volume"],
    }


def ticker_event(message: dict) -> dict | None:
    mini = mini_ticker_event(message)
    if mini is None:
        return None
    return {
        **mini,
        "e": "24hrTicker",
        "p": _zero(message["change"]),
        "P": _zero(message["change_percent"]),
        "x": _zero(message["open"]),
        "b": _zero(message["best_bid"]),
        "B": _zero(message["best_bid_quantity"]),
        "a": _zero(message["best_ask"]),
        "A": _zero(message["best_ask_quantity"]),
        "O": message["open_time"],
        "C": message["close_time"],
        "n": message["trade_count"],
    }


def kline_event(message: dict) -> dict | None:
    if message.get("type") != "candle":
        return None
    close_time = message["open_time"] + INTERVAL_SECONDS[message["interval"]] * 1000 - 1
    published = message.get("ts") or int(time.time() * 1000)
    return {
        "e": "kline",
        "E": published,
        "s": _s(message),
        "k": {
            "t": message["open_time"],
            "T": close_time,
            "s": _s(message),
            "i": message["interval"],
            "o": message["open"],
            "c": message["close"],
            "h": message["high"],
            "l": message["low"],
            "v": message["volume"],
            "n": message["trade_count"],
            "x": published > close_time,
            "q": message["quote_volume"],
        },
    }


def _translator(kind: str) -> tuple[str, Callable[[dict], dict | None]]:
    """The hub channel a Binance stream kind reads, and its translation."""
    if kind.startswith("depth"):
        return "orderbook", depth_event
    if kind.startswith("kline_"):
        return "candles", kline_event
    return {
        "trade": ("trades", trade_event),
        "aggTrade": ("trades", agg_trade_event),
        "ticker": ("ticker", ticker_event),
        "miniTicker": ("ticker", mini_ticker_event),
    }[kind]


class _Relay:
    """The hub's one subscriber for one of our streams in this process: each message is
    parsed and translated once per Binance stream kind, then handed to every connection."""

    def __init__(self, hub_stream: str):
        self.hub_stream = hub_stream
        # Binance stream name → (translation, connections).
        self.names: dict[str, tuple[Callable, set]] = {}

    def deliver(self, stream: str, text: str, frame: bytes | None = None) -> None:
        message = json.loads(text)
        events: dict[Callable, tuple[str, bytes] | None] = {}
        for name, (translate, connections) in self.names.items():
            if translate not in events:
                event = translate(message)
                if event is None:
                    events[translate] = None
                else:
                    raw = json.dumps(event, separators=_COMPACT)
                    events[translate] = (raw, text_frame(raw))
            translated = events[translate]
            if translated is None or not connections:
                continue
            wrapped = None
            for connection in tuple(connections):
                if connection.combined:
                    if wrapped is None:
                        wrapped_text = f'{{"stream":{json.dumps(name)},"data":{translated[0]}}}'
                        wrapped = (wrapped_text, text_frame(wrapped_text))
                    connection.deliver_text(*wrapped)
                else:
                    connection.deliver_text(*translated)

    def resync(self, stream: str) -> None:
        """Messages were lost (Redis reconnected): Binance clients find the gap in U/u and
        take a new snapshot themselves, as they do on Binance."""


class _Relays:
    """The relays of the running event loop (a new loop, e.g. a test's, starts afresh)."""

    def __init__(self):
        self.loop = None
        self.by_stream: dict[str, _Relay] = {}

    def _current(self) -> dict[str, _Relay]:
        loop = asyncio.get_running_loop()
        if self.loop is not loop:
            self.loop, self.by_stream = loop, {}
        return self.by_stream

    def add(self, hub_stream: str, name: str, translate: Callable, connection) -> asyncio.Future:
        """Relay ``hub_stream`` to ``connection`` as ``name``; the result is done once the
        hub receives the stream (``Hub.add``)."""
        relays = self._current()
        relay = relays.get(hub_stream)
        if relay is None:
            relay = relays[hub_stream] = _Relay(hub_stream)
        relay.names.setdefault(name, (translate, set()))[1].add(connection)
        return hub.add(hub_stream, relay)

    def discard(self, hub_stream: str, name: str, connection) -> None:
        relays = self._current()
        relay = relays.get(hub_stream)
        if relay is None or name not in relay.names:
            return
        connections = relay.names[name][1]
        connections.discard(connection)
        if not connections:
            del relay.names[name]
        if not relay.names:
            hub.discard(hub_stream, relay)
            del relays[hub_stream]


relays = _Relays()


class BinanceStreamConsumer(OutboxConsumer):
    """One Binance stream connection: raw events (``/api/v3/ws``) or wrapped in
    ``{"stream", "data"}`` (``/api/v3/stream``, or after ``SET_PROPERTY combined``)."""

    async def connect(self):
        self.subscriptions: dict[str, str] = {}  # Binance name → hub stream
        self.closing = False
        kwargs = self.scope["url_route"]["kwargs"]
        self.combined = bool(kwargs.get("combined"))
        names = kwargs.get("streams") or ""
        if self.combined:
            query = parse_qs(self.scope.get("query_string", b"").decode())
            names = query.get("streams", [""])[0]
        await self.open_outbox()
        wanted = [name for name in names.split("/") if name]
        if wanted:
            error = await self._subscribe(wanted)
            if error:
                await self._close_with(error)

    async def disconnect(self, code):
        for name, hub_stream in self.subscriptions.items():
            relays.discard(hub_stream, name, self)
        self.subscriptions.clear()
        self.close_outbox()

    # --- outbox ---------------------------------------------------------------------------

    def deliver_text(self, text: str, frame: bytes | None = None) -> None:
        if not self.closing:
            super().deliver_text(text, frame)

    def _fell_behind(self) -> None:
        # Binance drops a client that cannot keep up; it reconnects and resyncs.
        self.closing = True
        asyncio.get_running_loop().create_task(self.close(code=POLICY_VIOLATION))

    async def _reply(self, body: dict) -> None:
        # Through the outbox, so replies and events leave in the order they were queued.
        self.deliver_text(json.dumps(body, separators=_COMPACT))

    async def _close_with(self, error: str) -> None:
        await self.send(text_data=json.dumps({"error": {"code": INVALID_REQUEST, "msg": error}}))
        await self.close(code=POLICY_VIOLATION)

    # --- client frames --------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        raw = text_data if text_data is not None else bytes_data
        if raw is not None and len(raw) > settings.WS_MAX_MESSAGE_BYTES:
            await self._close_with("Message too large.")
            return
        if not self._take_token():
            await self._close_with("Too many requests.")
            return
        try:
            message = json.loads(raw) if raw is not None else None
        except ValueError:
            message = None
        if not isinstance(message, dict):
            await self._reply({"error": {"code": INVALID_JSON, "msg": "Invalid JSON."}})
            return
        request_id = message.get("id")
        if request_id is not None and (
            isinstance(request_id, bool) or not isinstance(request_id, int | str)
        ):
            await self._error(INVALID_REQUEST, "Invalid request: 'id' must be an int or a string.")
            return
        method, params = message.get("method"), message.get("params")
        handler = {
            "SUBSCRIBE": self._on_subscribe,
            "UNSUBSCRIBE": self._on_unsubscribe,
            "LIST_SUBSCRIPTIONS": self._on_list,
            "SET_PROPERTY": self._on_set_property,
            "GET_PROPERTY": self._on_get_property,
        }.get(method)
        if handler is None:
            await self._error(
                INVALID_REQUEST, f"Invalid request: unknown method {method!r}.", request_id
            )
            return
        await handler(params, request_id)

    async def _error(self, code: int, msg: str, request_id=None) -> None:
        await self._reply({"error": {"code": code, "msg": msg}, "id": request_id})

    async def _on_subscribe(self, params, request_id) -> None:
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            await self._error(
                INVALID_VALUE, "Invalid value: params must be a list of streams.", request_id
            )
            return
        error = await self._subscribe(params)
        if error:
            await self._error(INVALID_REQUEST, error, request_id)
            return
        await self._reply({"result": None, "id": request_id})

    async def _subscribe(self, names: list[str]) -> str | None:
        """Subscribe to every stream or to none; an error message when one is refused."""
        resolved = []
        for name in names:
            match = STREAM_NAME.fullmatch(name)
            interval = match and match["interval"]
            if match is None or (interval is not None and interval not in CANDLE_INTERVALS):
                return f"Invalid request: unknown stream {name!r}."
            symbol = await market_symbol(match["symbol"])
            if symbol is None:
                return f"Invalid request: unknown symbol in {name!r}."
            channel, translate = _translator(match["kind"])
            resolved.append((name, stream_key(channel, symbol, interval), translate))
        new = {name for name, _, _ in resolved if name not in self.subscriptions}
        if len(self.subscriptions) + len(new) > settings.WS_MAX_SUBSCRIPTIONS:
            return f"Too many streams: at most {settings.WS_MAX_SUBSCRIPTIONS} per connection."
        joins = []
        for name, hub_stream, translate in resolved:
            if name not in self.subscriptions:
                joins.append(relays.add(hub_stream, name, translate, self))
                self.subscriptions[name] = hub_stream
        await asyncio.gather(*joins)
        return None

    async def _on_unsubscribe(self, params, request_id) -> None:
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            await self._error(
                INVALID_VALUE, "Invalid value: params must be a list of streams.", request_id
            )
            return
        for name in params:
            hub_stream = self.subscriptions.pop(name, None)
            if hub_stream is not None:
                relays.discard(hub_stream, name, self)
        await self._reply({"result": None, "id": request_id})

    async def _on_list(self, params, request_id) -> None:
        await self._reply({"result": list(self.subscriptions), "id": request_id})

    async def _on_set_property(self, params, request_id) -> None:
        if not isinstance(params, list) or len(params) != 2 or params[0] != "combined":
            await self._error(UNKNOWN_PROPERTY, "Unknown property.", request_id)
            return
        if not isinstance(params[1], bool):
            await self._error(INVALID_VALUE, "Invalid value: expected true or false.", request_id)
            return
        self.combined = params[1]
        await self._reply({"result": None, "id": request_id})

    async def _on_get_property(self, params, request_id) -> None:
        if params != ["combined"]:
            await self._error(UNKNOWN_PROPERTY, "Unknown property.", request_id)
            return
        await self._reply({"result": self.combined, "id": request_id})

"""What every streaming consumer shares: a bounded outbox, direct frame writes when nothing
is queued before a message (``marketdata.fastsend``), the client message rate limit, and a
channel-layer channel made only for the connections that need one."""

import asyncio
import contextlib
import time

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch
from django.conf import settings

from exchange_site.metrics import (
    WS_CONNECTIONS,
    WS_MESSAGES_DROPPED,
    ws_path_asgi,
    ws_path_direct,
    ws_sent_outbox,
)
from marketdata.fastsend import DirectWriter, text_frame


class OutboxConsumer(AsyncWebsocketConsumer):
    """Call ``open_outbox()`` in ``connect`` (it accepts the connection) and
    ``close_outbox()`` in ``disconnect``; define ``_fell_behind()``, and ``_prepare(item)``
    when queued items are not plain text. Before joining a layer group, get the
    connection's channel from ``channel_open()``: ``channel_name`` is None until then."""

    async def __call__(self, scope, receive, send):
        """Channels' ``AsyncConsumer.__call__``, without making the connection's layer channel
        up front. Public market data reaches a connection through the process's hub, not
        its own channel; only private events (a user's group) need one. With the pub/sub
        layer a channel is a Redis SUBSCRIBE at connect and an UNSUBSCRIBE at close, on the
        one connection the process's consumers share: thousands of anonymous subscribers
        reconnecting at once queued their handshakes behind those for seconds."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = None
        self._channel_made = asyncio.Event()
        self.base_send = send
        sources = [receive]
        if self.channel_layer is not None:
            sources.append(self._channel_receive)
        with contextlib.suppress(StopConsumer):
            await await_many_dispatch(sources, self.dispatch)

    async def dispatch(self, message):
        """Channels' ``dispatch`` less its ``aclose_old_connections()``: a hop to the one
        thread that runs the process's database work before every client message and
        event, queued behind everything else there. These consumers reach the database
        only through ``database_sync_to_async``, which closes old connections around each
        call itself."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def _channel_receive(self):
        await self._channel_made.wait()
        return await self.channel_layer.receive(self.channel_name)

    async def channel_open(self) -> str:
        """This connection's layer channel, made on first use; events sent to it are then
        dispatched to handlers like any client message, one at a time."""
        if self.channel_name is None:
            self.channel_name = await self.channel_layer.new_channel()
            self._channel_made.set()
        return self.channel_name

    async def open_outbox(self) -> None:
        self.outbox: asyncio.Queue = asyncio.Queue(maxsize=settings.WS_OUTBOX_LIMIT)
        self.tokens = float(settings.WS_RATE_BURST)
        self.tokens_at = time.monotonic()
        self.sending = False
        self.direct: DirectWriter | None = None
        self.writer = asyncio.get_running_loop().create_task(self._write_loop())
        await self.accept()
        WS_CONNECTIONS.inc()
        self.counted = True
        if settings.WS_DIRECT_SEND:
            self.direct = DirectWriter.for_send(self.base_send, settings.WS_SEND_BUFFER_BYTES)
        (ws_path_asgi if self.direct is None else ws_path_direct).inc()

    def close_outbox(self) -> None:
        self.writer.cancel()
        if getattr(self, "counted", False):
            self.counted = False
            WS_CONNECTIONS.dec()

    def deliver_text(self, text: str, frame: bytes | None = None) -> None:
        """Send ``text`` (``frame``: the same as a prepared WebSocket frame); never blocks."""
        direct = self.direct
        if direct is not None and frame is not None and not self.sending and self.outbox.empty():
            # Nothing is queued before this message, so writing it now keeps the order.
            if direct.write(frame) or not direct.is_open():
                return
            self._dropped()
            return
        self._queue(text)

    def _queue(self, item) -> None:
        try:
            self.outbox.put_nowait(item)
        except asyncio.QueueFull:
            self._dropped()

    def _dropped(self) -> None:
        # This message and the backlog that ``_fell_behind`` throws away.
        WS_MESSAGES_DROPPED.inc(self.outbox.qsize() + 1)
        self._fell_behind()

    def _fell_behind(self) -> None:
        """What the consumer does when its outbox overflows (each consumer's protocol says:
        a resync, or a close with an error). Every consumer defines it."""
        raise NotImplementedError

    async def _prepare(self, item) -> str | None:
        return item

    async def _write_loop(self) -> None:
        outbox = self.outbox
        send = self.base_send
        while True:
            item = await outbox.get()
            self.sending = True
            try:
                # A client that does not read holds its messages here, where the bounded
                # outbox notices, rather than in an ever-growing transport buffer.
                while self.direct is not None and self.direct.backlogged():
                    await asyncio.sleep(0.05)
                text = await self._prepare(item)
                if text is None:  # read when sent, and nothing there (no ticker yet)
                    continue
                # Framed here and written like a live message: the ASGI send costs ~10×
                # more, and a connection catching up after its snapshot (or a resync) got
                # its backlog at that cost while live messages queued behind it; under
                # load most deliveries took this path.
                direct = self.direct
                if direct is None:
                    await send({"type": "websocket.send", "text": text})
                elif not direct.write(text_frame(text)) and direct.is_open():
                    # Backlogged while the item was prepared: Twisted buffers it, as before.
                    await send({"type": "websocket.send", "text": text})
                ws_sent_outbox.inc()
            finally:
                self.sending = not outbox.empty()

    def _take_token(self) -> bool:
        """One client message out of the token bucket (WS_RATE_PER_SECOND, WS_RATE_BURST)."""
        now = time.monotonic()
        rate, burst = settings.WS_RATE_PER_SECOND, settings.WS_RATE_BURST
        self.tokens = min(burst, self.tokens + (now - self.tokens_at) * rate)
        self.tokens_at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

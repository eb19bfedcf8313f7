"""One WebSocket frame, built once, written to many daphne connections.

A public message goes to every subscriber unchanged, and a server's frames are not masked,
so the bytes on the wire are the same for all of them. Sending through the ASGI ``send``
costs a task switch, a coroutine, daphne's reply dispatch and autobahn's framing per
message per connection — about 60 % of a ws process's time at 1,000 subscribers. Writing
the prepared frame straight to each connection's Twisted transport skips all of it.

This is the one place that reaches under the ASGI interface into daphne and Twisted. What
it relies on, checked for each connection by ``DirectWriter.for_send``:

- the ``send`` daphne hands the application is ``partial(server.handle_reply, protocol)``
  (possibly behind Channels' session wrapper, whose ``real_send`` is the next one in);
- the protocol (autobahn's) has ``transport``, ``state`` and ``STATE_OPEN``, and
  ``websocket_extensions_in_use`` is empty (an extension such as compression frames
  differently);
- the transport is Twisted's (its buffer sizes ``dataBuffer``, ``offset`` and
  ``_tempDataLen``, which say whether the client keeps up), and for the unbuffered first
  write a plain TCP ``tcp.Server`` with its ``socket``.

When any of it is missing, the connection takes the ordinary ASGI ``send`` instead: slower,
never wrong. ``exchange_ws_send_path_total{path="direct"|"asgi"}`` counts which path each
connection took, and ``marketdata/tests/test_daphne_streams.py`` fails when a real daphne
connection no longer takes the direct one (a daphne, autobahn or Twisted upgrade changed
the shape), rather than letting the fan-out silently slow down.
"""

from __future__ import annotations

import asyncio
import functools
import struct

TEXT_OPCODE_FIN = 0x81
# Twisted's FileDescriptor keeps unsent bytes in these (twisted/internet/abstract.py).
_BUFFER_ATTRIBUTES = ("_tempDataLen", "dataBuffer", "offset")


def text_frame(text: str) -> bytes:
    """An unmasked, unfragmented WebSocket text frame (RFC 6455 §5.2) holding ``text``."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        header = bytes((TEXT_OPCODE_FIN, size))
    elif size < 1 << 16:
        header = struct.pack("!BBH", TEXT_OPCODE_FIN, 126, size)
    else:
        header = struct.pack("!BBQ", TEXT_OPCODE_FIN, 127, size)
    return header + payload


def _daphne_protocol(send):
    """The autobahn protocol behind an ASGI ``send``, unwrapping Channels' session wrapper;
    None when ``send`` is not daphne's."""
    for _ in range(8):
        if isinstance(send, functools.partial):
            if getattr(send.func, "__name__", "") == "handle_reply" and send.args:
                return send.args[0]
            return None
        wrapper = getattr(send, "__self__", None)
        inner = getattr(wrapper, "real_send", None)
        if inner is None:
            return None
        send = inner
    return None


class DirectWriter:
    """Writes prepared frames to one open connection.

    Frames handed over in one turn of the event loop (a matcher batch's trades arrive as a
    burst) are joined and sent together at the end of the turn, with one ``send`` on the
    socket when Twisted holds nothing unsent for it; only the rest of a partial send goes
    through Twisted's buffered write. This skips Twisted's per-write bookkeeping (two
    epoll updates and a callback chain per connection per message).
    """

    __slots__ = ("protocol", "transport", "socket", "limit", "pending")

    def __init__(self, protocol, limit: int):
        self.protocol = protocol
        self.transport = protocol.transport
        self.socket = _plain_tcp_socket(self.transport)
        self.limit = limit
        self.pending: list[bytes] | None = None

    @classmethod
    def for_send(cls, send, limit: int) -> DirectWriter | None:
        protocol = _daphne_protocol(send)
        if protocol is None or getattr(protocol, "transport", None) is None:
            return None
        if getattr(protocol, "websocket_extensions_in_use", None):
            return None  # permessage-deflate and the like frame differently
        if not all(hasattr(protocol, name) for name in ("STATE_OPEN", "state")):
            return None
        transport = protocol.transport
        if not all(hasattr(transport, name) for name in (*_BUFFER_ATTRIBUTES, "write")):
            return None  # ``buffered`` would read 0 for ever: no backpressure
        return cls(protocol, limit)

    def is_open(self) -> bool:
        return self.protocol.state == self.protocol.STATE_OPEN

    def buffered(self) -> int:
        """Bytes handed to Twisted but not yet taken by the kernel."""
        transport = self.transport
        return transport._tempDataLen + len(transport.dataBuffer) - transport.offset

    def backlogged(self) -> bool:
        return self.buffered() > self.limit

    def write(self, frame: bytes) -> bool:
        """Queue ``frame`` for the end of this loop turn; False when the client is not
        reading fast enough (nothing is queued then) or the connection is closing."""
        if not self.is_open() or self.backlogged():
            return False
        if self.pending is None:
            self.pending = [frame]
            _flusher.add(self)
        else:
            self.pending.append(frame)
        return True

    def flush(self) -> None:
        frames, self.pending = self.pending, None
        if not frames or not self.is_open():
            return
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        sent = 0
        if self.socket is not None and self.buffered() == 0:
            try:
                sent = self.socket.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                sent = 0  # Twisted's own write will notice the broken connection
        if sent < len(data):
            self.transport.write(data[sent:] if sent else data)


def _plain_tcp_socket(transport):
    """The socket of a plain TCP transport (not TLS, which must encrypt what is sent)."""
    try:
        from twisted.internet import tcp
    except ImportError:
        return None
    if type(transport) is not tcp.Server or getattr(transport, "TLS", False):
        return None
    return getattr(transport, "socket", None)


class _Flusher:
    """Sends every connection's queued frames once per event-loop turn."""

    def __init__(self):
        self.dirty: list[DirectWriter] = []

    def add(self, writer: DirectWriter) -> None:
        if not self.dirty:
            asyncio.get_running_loop().call_soon(self.flush)
        self.dirty.append(writer)

    def flush(self) -> None:
        dirty, self.dirty = self.dirty, []
        for writer in dirty:
            writer.flush()


_flusher = _Flusher()

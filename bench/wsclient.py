"""A WebSocket client speaking just enough of RFC 6455 to subscribe and read, for the
fan-out benchmark's thousands of subscribers on the same two cores as the servers.

The ``websockets`` library costs its client processes ~14 µs of CPU per message received
(a stream reader, a generator-based frame parser, a ``Frame`` and a decoded ``str`` per
message, an asyncio queue hand-off): at 2,000 subscribers, ~60,000 messages/s, that is
most of a core taken from the servers being measured. Here an ``asyncio.Protocol`` parses
the unmasked frames the server sends straight out of the bytes each read returns, and hands
each text payload, as ``bytes``, with the time of the read that delivered it, to a callback.

What it does: the opening handshake (checking the server's ``101`` and its
``Sec-WebSocket-Accept``), masked client frames, text messages (fragmented ones joined),
answers to ping and close. What it does not: extensions (it offers none, so the server
uses none), binary messages (counted in ``unexpected``), TLS.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
import time
from collections.abc import Callable
from urllib.parse import urlparse

ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0
MAX_HANDSHAKE_BYTES = 64 * 1024


class HandshakeFailed(ConnectionError):
    """The server did not upgrade the connection (``args[0]``: its status line)."""


class ProtocolViolation(ConnectionError):
    """The server sent something RFC 6455 forbids (a masked frame, a stray continuation)."""


class RawWebSocket(asyncio.Protocol):
    """One client connection. ``opened`` resolves after the handshake; ``closed`` when the
    connection ends (to the exception that ended it, or None)."""

    def __init__(self, host: str, path: str, on_text: Callable[[bytes, float], None]):
        loop = asyncio.get_running_loop()
        self.host, self.path, self.on_text = host, path, on_text
        self.key = base64.b64encode(os.urandom(16))
        self.buffer = bytearray()
        self.upgraded = False
        self.fragments: list[bytes] | None = None
        self.unexpected = 0
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future = loop.create_future()
        self.closed: asyncio.Future = loop.create_future()

    # --- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(
            b"GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % (self.path.encode(), self.host.encode(), self.key)
        )

    def data_received(self, data: bytes) -> None:
        # One clock read per read: every message in it arrived at that moment.
        now = time.time()
        self.buffer += data
        if not self.upgraded and not self._handshake():
            return
        try:
            self._frames(now)
        except ProtocolViolation as error:
            self._fail(error)

    def connection_lost(self, exc) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(exc)

    # --- receiving ------------------------------------------------------------------------

    def _handshake(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HANDSHAKE_BYTES:
                self._fail(HandshakeFailed("no end to the response headers"))
            return False
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        del self.buffer[: end + 4]
        status, headers = head[0], {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        accept = base64.b64encode(hashlib.sha1(self.key + ACCEPT_GUID).digest()).decode()
        if status.split(" ", 2)[1:2] != ["101"] or headers.get("sec-websocket-accept") != accept:
            self._fail(HandshakeFailed(status))
            return False
        if headers.get("sec-websocket-extensions"):
            self._fail(HandshakeFailed("an extension the client did not offer"))
            return False
        self.upgraded = True
        self.opened.set_result(None)
        return True

    def _frames(self, now: float) -> None:
        buffer = self.buffer
        size = len(buffer)
        at = 0
        while size - at >= 2:
            first, second = buffer[at], buffer[at + 1]
            if second & 0x80:
                raise ProtocolViolation("a masked frame from the server")
            length = second & 0x7F
            start = at + 2
            if length == 126:
                if size - start < 2:
                    break
                (length,) = struct.unpack_from("!H", buffer, start)
                start += 2
            elif length == 127:
                if size - start < 8:
                    break
                (length,) = struct.unpack_from("!Q", buffer, start)
                start += 8
            end = start + length
            if end > size:
                break
            payload = bytes(buffer[start:end])
            at = end
            opcode = first & 0x0F
            if opcode == TEXT and first & 0x80 and self.fragments is None:
                self.on_text(payload, now)
            else:
                self._control_or_fragment(opcode, bool(first & 0x80), payload, now)
        if at:
            del buffer[:at]

    def _control_or_fragment(self, opcode: int, fin: bool, payload: bytes, now: float) -> None:
        if opcode == PING:
            self._send(PONG, payload)
        elif opcode == CLOSE:
            self._send(CLOSE, payload[:2])
            self.transport.close()
        elif opcode == PONG:
            pass
        elif opcode == TEXT and self.fragments is None:
            self.fragments = [payload]  # fin is unset, or the fast path had taken it
        elif opcode == CONTINUATION and self.fragments is not None:
            self.fragments.append(payload)
            if fin:
                whole, self.fragments = b"".join(self.fragments), None
                self.on_text(whole, now)
        elif opcode == BINARY:
            self.unexpected += 1
        else:
            raise ProtocolViolation(f"opcode {opcode} where it cannot come")

    def _fail(self, error: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(error)
        if not self.closed.done():
            self.closed.set_result(error)
        if self.transport is not None:
            self.transport.abort()

    # --- sending --------------------------------------------------------------------------

    def _send(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        size = len(payload)
        if size < 126:
            header = bytes((0x80 | opcode, 0x80 | size))
        elif size < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[n & 3] for n, byte in enumerate(payload))
        self.transport.write(header + mask + masked)

    def send_text(self, text: str) -> None:
        self._send(TEXT, text.encode())

    def close(self) -> None:
        """Say goodbye (status 1000) and drop the connection without waiting for the echo."""
        self._send(CLOSE, struct.pack("!H", 1000))
        if self.transport is not None:
            self.transport.close()


async def connect(url: str, on_text: Callable[[bytes, float], None], timeout: float = 60):
    """Open ``ws://host:port/path`` and return the ``RawWebSocket`` once upgraded."""
    parsed = urlparse(url)
    if parsed.scheme != "ws":
        raise ValueError(f"only ws:// URLs: {url}")
    port = parsed.port or 80
    host = f"{parsed.hostname}:{port}"
    loop = asyncio.get_running_loop()
    protocol = RawWebSocket(host, parsed.path or "/", on_text)
    try:
        await asyncio.wait_for(
            loop.create_connection(lambda: protocol, parsed.hostname, port), timeout
        )
        await asyncio.wait_for(protocol.opened, timeout)
    except BaseException:
        if protocol.transport is not None:
            protocol.transport.abort()
        raise
    return protocol

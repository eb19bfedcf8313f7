"""The public WebSocket endpoint ``/ws/`` (DESIGN §6).

Messages are JSON objects with ``type``. Bad JSON or an unknown type gets an ``error``
message, never a dropped connection.
"""

import json

from channels.generic.websocket import AsyncWebsocketConsumer

# Channels that exist so far; market-data streams add theirs here.
KNOWN_CHANNELS: frozenset[str] = frozenset()


def _error(code: str, message: str) -> str:
    return json.dumps({"type": "error", "code": code, "message": message})


class StreamConsumer(AsyncWebsocketConsumer):
    """Thin: parses client messages and answers; publishing happens elsewhere."""

    async def receive(self, text_data=None, bytes_data=None):
        try:
            message = json.loads(text_data) if text_data is not None else None
        except ValueError:
            message = None
        if not isinstance(message, dict):
            await self.send(text_data=_error("BAD_MESSAGE", "Send a JSON object with a type."))
            return
        kind = message.get("type")
        if kind == "ping":
            await self.send(text_data=json.dumps({"type": "pong"}))
        elif kind in ("subscribe", "unsubscribe"):
            channel = message.get("channel")
            if channel not in KNOWN_CHANNELS:
                await self.send(
                    text_data=_error("UNKNOWN_CHANNEL", f"Unknown channel: {channel!r}.")
                )
        else:
            await self.send(text_data=_error("UNKNOWN_TYPE", f"Unknown message type: {kind!r}."))

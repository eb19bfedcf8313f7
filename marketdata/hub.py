"""One Redis subscription per ws process, fanned out to that process's WebSockets.

Every public message is serialized once by its publisher (the matcher) and forwarded as
the same text to each subscriber: no per-consumer Channels group, no re-encoding. Each
connection has a bounded outbox; one that falls behind loses its backlog and is told to
resync (a fresh snapshot), so one slow client never slows the others (DESIGN §6).
"""

import asyncio
import contextlib
import logging
import threading
from collections import defaultdict
from typing import Protocol

import redis.asyncio as aioredis
from django.conf import settings

from exchange_site.metrics import ws_sent_fanout
from marketdata.fastsend import text_frame
from marketdata.groups import PUBLIC_PATTERN, PUBLIC_PREFIX

logger = logging.getLogger(__name__)


class Subscriber(Protocol):
    def deliver(self, stream: str, text: str, frame: bytes) -> None:
        """Send ``text`` (``frame`` is it as a WebSocket frame) to the client; must not block."""

    def resync(self, stream: str) -> None:
        """Messages of ``stream`` were lost: start it over with a fresh snapshot."""


class Hub:
    """The process-wide fan-out point. Start it lazily from a running event loop."""

    def __init__(self):
        self.subscribers: dict[str, set[Subscriber]] = defaultdict(set)
        self._task: asyncio.Task | None = None
        self._subscribed = threading.Event()
        self.delivered = 0

    def ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            # A new event loop (a test's, a restarted server's) gets its own listener;
            # subscribers of the old loop cannot be written to any more.
            self.subscribers.clear()
            self._subscribed.clear()
            self._task = loop.create_task(self._listen())

    def add(self, stream: str, subscriber: Subscriber) -> None:
        self.ensure_running()
        self.subscribers[stream].add(subscriber)

    async def ready(self, timeout: float = 5.0) -> None:
        """Wait until the Redis subscription is active (tests, benchmarks)."""
        self.ensure_running()
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._subscribed.is_set():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("market-data hub not subscribed")
            await asyncio.sleep(0.01)

    def discard(self, stream: str, subscriber: Subscriber) -> None:
        listeners = self.subscribers.get(stream)
        if listeners is not None:
            listeners.discard(subscriber)
            if not listeners:
                del self.subscribers[stream]

    def publish_local(self, stream: str, text: str) -> None:
        listeners = self.subscribers.get(stream)
        if not listeners:
            return
        frame = text_frame(text)
        for subscriber in tuple(listeners):
            subscriber.deliver(stream, text, frame)
        self.delivered += len(listeners)
        ws_sent_fanout.inc(len(listeners))  # once per fan-out, not per connection

    def _resync_all(self) -> None:
        for stream, listeners in list(self.subscribers.items()):
            for subscriber in tuple(listeners):
                subscriber.resync(stream)

    async def _listen(self) -> None:
        """Receive every public message once; reconnect with backoff when Redis goes away."""
        backoff = 0.2
        lost = False
        while True:
            client = aioredis.from_url(settings.REDIS_URL)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(PUBLIC_PATTERN)
                self._subscribed.set()
                backoff = 0.2
                if lost:
                    # Whatever was published between the loss and now (the matcher may
                    # have been publishing for a while) is lost too: start over again.
                    lost = False
                    self._resync_all()
                async for message in pubsub.listen():
                    if message.get("type") != "pmessage":
                        continue
                    channel = message["channel"].decode()
                    self.publish_local(channel[len(PUBLIC_PREFIX) :], message["data"].decode())
            except asyncio.CancelledError:
                raise
            except Exception:
                self._subscribed.clear()
                if not lost:
                    logger.warning("market-data subscription lost; reconnecting", exc_info=True)
                    # Messages published meanwhile are lost: every subscriber must resync
                    # (from the database while Redis is away), and again once it is back.
                    self._resync_all()
                lost = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                    await client.aclose()


hub = Hub()

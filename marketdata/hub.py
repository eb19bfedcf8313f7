"""One channel-layer channel per ws process, fanned out to that process's WebSockets.

The matcher sends every public message once, already serialized, to the layer group of its
market and stream (``md.BTC-USD.orderbook``, ``exchange_site.streams``). The hub of each ws
process owns one layer channel (``new_channel``), joins the groups its local connections
need (``group_add`` when a stream gets its first local subscriber, ``group_discard`` after
its last), receives with ``receive``, and hands the same text (and one prepared WebSocket
frame, ``marketdata.fastsend``) to every local subscriber: with channels-redis's pub/sub
layer each process receives each message once, however many clients it serves, and no
message is re-encoded per client. Each connection has a bounded outbox; one that falls
behind loses its backlog and is told to resync (a fresh snapshot), so one slow client never
slows the others (ARCHITECTURE §6).

The matcher numbers each stream's messages (``n`` within its ``epoch``): a number missing
means a message of that stream was lost on the way, and its local subscribers resync.
The layer does not say when its Redis connection was lost (it reconnects and subscribes
again by itself; messages sent meanwhile are simply gone), so the hub sends itself a
numbered probe over the layer every ``PROBE_SECONDS``; its own channel and its groups share
the layer's one subscription. A probe that cannot be sent means Redis is away: every
subscriber resyncs at once (snapshots come from the database meanwhile). When probes come
back, or one is missing from the sequence (the subscription broke and came back between
two probes), the hub re-joins its groups and every subscriber resyncs again. A probe that
is merely late means nothing: a busy process reads everything late, and resyncing every
client then would only make it busier.

A break shorter than the probes' interval can fall between two of them: redis-py
reconnects the subscription and subscribes again by itself, and whatever was sent meanwhile
is gone with no probe missing. The hub is told of every such reconnect (a connect callback
on the subscription's connection) and takes it as a missed probe: re-join and resync.

A subscription only reads, so a master that hangs (or a network that drops everything)
leaves it waiting for ever while Sentinel promotes another server, and the probes, sent
on new connections, reach the new master but never come back. The watchdog: nothing at all
received for ``SILENCE_SECONDS`` (probes come every 0.2 s) means the subscription is
deaf, and the hub starts over on a new layer instance (new connections, through the
sentinels), re-joins its groups and resyncs every subscriber.
"""

import asyncio
import logging
from collections import defaultdict
from typing import Protocol

from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

from exchange_site.metrics import ws_sent_fanout
from exchange_site.streams import PUBLIC_MESSAGE, stream_group
from marketdata.fastsend import text_frame

logger = logging.getLogger(__name__)

PROBE = "md.hub.probe"
JOINED = "md.hub.joined"
# Often enough to catch a Redis restart that lasts a second (the old raw subscription saw
# it at once); a probe's round trip costs ~0.4 ms of CPU, 0.2 % of a core at this rate.
PROBE_SECONDS = 0.2
JOIN_TIMEOUT_SECONDS = 2.0
# Twenty-five probes missed in a row: far beyond a busy process's lateness, and short enough
# that a hung master is left within seconds of Sentinel promoting another one.
SILENCE_SECONDS = 5.0
# A probe's PUBLISH that takes longer than this counts as failed (a hung master; redis-py
# would otherwise wait out its timeouts and its retry).
PROBE_SEND_TIMEOUT_SECONDS = 2.0
CLOSE_TIMEOUT_SECONDS = 5.0


class Subscriber(Protocol):
    def deliver(self, stream: str, text: str, frame: bytes) -> None:
        """Send ``text`` (``frame`` is it as a WebSocket frame) to the client; must not block."""

    def resync(self, stream: str) -> None:
        """Messages of ``stream`` may have been lost: start it over (a snapshot, or the
        client told to read it again)."""


class Hub:
    """The process-wide fan-out point. It starts lazily on the running event loop; a new
    loop (a test's, a restarted server's) gets a hub channel of its own."""

    def __init__(self):
        self.subscribers: dict[str, set[Subscriber]] = defaultdict(set)
        self.channel: str | None = None
        self.delivered = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._layer = None

    @property
    def layer(self):
        """The hub's own instance of the default channel layer: its own Redis connections,
        so that its messages and group joins never queue behind the subscriptions of the
        process's consumers (each consumer subscribes its own channel on the shared
        instance's one connection; 500 connecting at once held a join up for seconds)."""
        if self._layer is None:
            self._layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        return self._layer

    def _reset(self, loop: asyncio.AbstractEventLoop) -> None:
        # Subscribers of the old loop cannot be written to any more.
        self.subscribers.clear()
        self._tasks.clear()
        self.channel = None
        self._loop = loop
        self._channel_ready = asyncio.Event()
        self._membership = asyncio.Lock()
        self._joined: set[str] = set()  # streams whose group the hub channel is in
        self._joining: dict[str, asyncio.Future] = {}  # streams waiting for their proof
        self._healthy = False
        self._lost = False
        self._numbers: dict[str, tuple[str, int]] = {}  # stream → (epoch, n) last received
        self._probes_sent = 0  # numbered from 1; only those Redis accepted
        self._probe_last = 0  # the number of the last probe that came back
        self._heard_at = loop.time()  # when the hub's subscription last received anything
        self._subscriptions: list = []  # the layer's subscribing connections (redis-py)
        self._resubscribed = False  # one of them reconnected since the last probe came back
        self.reconnects = 0  # layers replaced by the watchdog
        self.resubscribes = 0  # reconnects of the subscription that redis-py reported
        self._task = loop.create_task(self._run())

    def ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._reset(loop)

    async def stop(self, timeout: float = 5.0) -> None:
        """Cancel the hub's tasks and close its Redis connections on the running loop, each
        step bounded by ``timeout``. Servers never call it (their loop ends with the
        process); tests do, so that the end of their event loop finds nothing of the hub
        still reading from Redis (one such teardown hung in a full run)."""
        tasks = [task for task in (self._task, *self._tasks) if task and not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        if self._layer is not None:
            try:
                await asyncio.wait_for(self._layer.flush(), timeout)
            except Exception:
                logger.warning("market-data hub layer not flushed", exc_info=True)
        self._task, self._loop, self.channel = None, None, None
        self.subscribers.clear()
        self._tasks.clear()

    def _spawn(self, coroutine) -> asyncio.Task:
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)  # the loop holds tasks weakly
        task.add_done_callback(self._tasks.discard)
        return task

    # --- subscribers ----------------------------------------------------------------------

    def add(self, stream: str, subscriber: Subscriber) -> asyncio.Future:
        """Fan ``stream`` out to ``subscriber`` too. Await the result before reading a
        snapshot: it is done once this process receives the stream's messages (or gave up
        waiting, when Redis is away; the subscriber is resynced once it is back)."""
        self.ensure_running()
        self.subscribers[stream].add(subscriber)
        joining = self._joining.get(stream)
        if joining is not None:
            return joining
        joining = self._loop.create_future()
        if stream in self._joined:
            joining.set_result(True)
            return joining
        self._joining[stream] = joining
        self._spawn(self._reconcile(stream))
        return joining

    def discard(self, stream: str, subscriber: Subscriber) -> None:
        listeners = self.subscribers.get(stream)
        if listeners is None:
            return
        listeners.discard(subscriber)
        if not listeners:
            del self.subscribers[stream]
            if self._loop is not None and not self._loop.is_closed():
                self._spawn(self._reconcile(stream))

    async def ready(self, timeout: float = 5.0) -> None:
        """Wait until messages reach this hub over the layer (tests, benchmarks)."""
        self.ensure_running()
        deadline = self._loop.time() + timeout
        while not self._healthy:
            if self._loop.time() > deadline:
                raise TimeoutError("market-data hub not receiving")
            await asyncio.sleep(0.01)

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

    # --- group membership -----------------------------------------------------------------

    async def _reconcile(self, stream: str) -> None:
        """Make the hub channel's membership of ``stream``'s group match whether anyone
        here subscribes to it; one change at a time, so a leave never overtakes a join."""
        await self._channel_ready.wait()
        layer = self.layer
        group = stream_group(stream)
        async with self._membership:
            wanted = stream in self.subscribers
            try:
                if wanted and stream not in self._joined:
                    await layer.group_add(group, self.channel)
                    self._joined.add(stream)
                    # The layer subscribes without waiting for Redis to confirm: a message
                    # of our own through the group proves the subscription is live.
                    await layer.group_send(
                        group, {"type": JOINED, "hub": self.channel, "stream": stream}
                    )
                elif not wanted and stream in self._joined:
                    self._joined.discard(stream)
                    self._numbers.pop(stream, None)  # what it misses meanwhile is not lost
                    await layer.group_discard(group, self.channel)
            except Exception:
                # Re-joined when probes come back (and its subscribers resynced then).
                logger.warning("market-data group %s not (re)joined", group, exc_info=True)
                self._settle(stream)
                return
        if not wanted or self._joining.get(stream) is None:
            self._settle(stream)
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._joining[stream]), JOIN_TIMEOUT_SECONDS)
        except TimeoutError:
            logger.warning("market-data group %s joined without proof", group)
            self._settle(stream)

    def _settle(self, stream: str, proven: bool = False) -> None:
        joining = self._joining.pop(stream, None)
        if joining is not None and not joining.done():
            joining.set_result(proven)

    def _joined_proof(self, message: dict) -> None:
        if message.get("hub") == self.channel:  # else another process joined the group
            self._settle(message.get("stream"), proven=True)

    # --- receiving and watching -----------------------------------------------------------

    async def _run(self) -> None:
        while True:
            layer = self.layer
            await self._open(layer)
            receiving = self._spawn(self._receive(layer))
            await self._watch(layer)  # returns when the subscription went deaf
            receiving.cancel()
            self._replace(layer)

    async def _open(self, layer) -> None:
        backoff = 0.2
        while self.channel is None:
            try:
                self.channel = await layer.new_channel("md.hub.")
            except Exception:
                logger.warning("market-data hub channel not created; retrying", exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        self._heard_at = self._loop.time()
        self._watch_subscriptions(layer)
        self._channel_ready.set()

    def _watch_subscriptions(self, layer) -> None:
        """Be told when the layer's subscription reconnects (``_subscription_reconnected``).

        channels-redis keeps one redis-py ``PubSub`` per shard, whose connection reconnects
        and subscribes again by itself; its connect callbacks are how redis-py says so. The
        attributes are channels-redis 4.3's (pinned);
        ``test_the_stream_goes_on_after_the_hub_subscription_is_dropped`` breaks a
        subscription and fails if this stops finding them. Without them the probes remain."""
        self._subscriptions = []
        try:
            shards = layer._get_layer()._shards
        except Exception:
            logger.warning("market-data hub cannot watch its subscription's reconnects")
            return
        for shard in shards:
            pubsub = getattr(shard, "_pubsub", None)
            connection = getattr(pubsub, "connection", None)
            if connection is None:
                logger.warning("market-data hub cannot watch its subscription's reconnects")
                continue
            connection.register_connect_callback(self._subscription_reconnected)
            self._subscriptions.append(connection)

    def _subscription_reconnected(self, connection) -> None:
        # redis-py calls this after subscribing again; a replaced layer's old connection may
        # still call it.
        if any(connection is watched for watched in self._subscriptions):
            logger.warning("market-data hub subscription reconnected; subscribers resync")
            self.resubscribes += 1
            self._resubscribed = True

    async def _receive(self, layer) -> None:
        channel = self.channel
        while True:
            message = await layer.receive(channel)
            self._heard_at = self._loop.time()
            kind = message.get("type")
            try:
                if kind == PUBLIC_MESSAGE:
                    self._in_sequence(message)
                    self.publish_local(message["stream"], message["text"])
                elif kind == PROBE:
                    self._probe_arrived(message["n"])
                elif kind == JOINED:
                    self._joined_proof(message)
            except Exception:
                logger.exception("market-data message %r not fanned out", kind)

    def _replace(self, old) -> None:
        """The watchdog's way out of a deaf subscription: a new layer instance (its
        connections ask the sentinels where the master is), a new hub channel; the groups
        are re-joined when its probes come back (``_recover``)."""
        logger.warning(
            "market-data hub received nothing for %.0f s; reconnecting the channel layer",
            SILENCE_SECONDS,
        )
        self._lose()
        self.reconnects += 1
        self._layer, self.channel = None, None
        self._subscriptions = []
        self._channel_ready.clear()
        self._joined.clear()
        self._spawn(self._close(old))

    async def _close(self, layer) -> None:
        # Its connections may be to a hung server: bounded, and nobody waits for it.
        try:
            await asyncio.wait_for(layer.flush(), CLOSE_TIMEOUT_SECONDS)
        except Exception:
            logger.info("old market-data hub layer not closed cleanly", exc_info=True)

    def _in_sequence(self, message: dict) -> None:
        """Resync the stream's subscribers when the message before this one never came."""
        stream, epoch, number = message["stream"], message.get("epoch"), message.get("n")
        if number is None:
            return
        last = self._numbers.get(stream)
        self._numbers[stream] = (epoch, number)
        if last is not None and last[0] == epoch and number > last[1] + 1:
            logger.warning("%d messages of %s lost; resyncing", number - last[1] - 1, stream)
            for subscriber in tuple(self.subscribers.get(stream, ())):
                subscriber.resync(stream)

    async def _watch(self, layer) -> None:
        """Probe the layer every ``PROBE_SECONDS``; return once nothing at all was received
        for ``SILENCE_SECONDS``."""
        while self._loop.time() - self._heard_at < SILENCE_SECONDS:
            try:
                await asyncio.wait_for(
                    layer.send(self.channel, {"type": PROBE, "n": self._probes_sent + 1}),
                    PROBE_SEND_TIMEOUT_SECONDS,
                )
                self._probes_sent += 1
            except Exception:
                self._lose()
            slept_at = self._loop.time()
            await asyncio.sleep(PROBE_SECONDS)
            # A stalled event loop (an overloaded process) kept the receiver from hearing
            # too: that time is not the layer's silence, and replacing a healthy layer would
            # only add a resync of every subscriber to the overload.
            stalled = self._loop.time() - slept_at - PROBE_SECONDS
            if stalled > PROBE_SECONDS:
                self._heard_at += stalled

    def _lose(self) -> None:
        if self._lost:
            return
        logger.warning("market-data hub lost the channel layer; subscribers resync")
        self._healthy, self._lost = False, True
        # Whatever was sent meanwhile is gone: start over (from the database if need be).
        self._resync_all()

    def _probe_arrived(self, number: int) -> None:
        # A probe missing from the sequence: the subscription broke and came back between
        # two probes, and what the matcher sent meanwhile never arrived.
        missed = number > self._probe_last + 1 or self._resubscribed
        self._probe_last, self._resubscribed = number, False
        if self._healthy and not missed:
            return
        self._healthy = True
        if self._lost or missed:
            self._lost = False
            self._spawn(self._recover())

    async def _recover(self) -> None:
        """Probes are back: re-join every group (one that failed meanwhile was never joined)
        and have every subscriber start over, as messages may have been lost until now."""
        logger.warning("market-data hub receiving again; re-joining and resyncing")
        layer = self.layer
        async with self._membership:
            for stream in list(self.subscribers):
                try:
                    await layer.group_add(stream_group(stream), self.channel)
                    self._joined.add(stream)
                except Exception:
                    logger.warning("market-data group of %s not re-joined", stream, exc_info=True)
        self._resync_all()


hub = Hub()

"""What the matcher tells the world after a batch commits (ARCHITECTURE §6).

Only committed facts are published. Every public message is serialized once, here, and
sent through the Channels layer (channels-redis's pub/sub layer) to one group per market
and stream (``exchange_site.streams``); each ws process's hub receives it once and forwards
the same text to its subscribers. Book changes are coalesced into at most one diff per
market per ``MARKETDATA_DIFF_INTERVAL_MS``, and the full snapshot in Redis is refreshed
before each diff is sent, so its ``seq`` always matches the stream. Private events (orders,
balances, and Binance's ``executionReport`` of each fill and state change) go to each user's
group, numbered per user (``exchange_site.user_events``). The last batch whose private events
were published is kept in Redis per market: a batch committed but not published (the matcher
died, Redis was away) has its private events rebuilt from the database and published before
the next ones, or by itself once Redis is back on an idle market
(``trading.binance.user_events.replay``), so none is lost for good.

The layer is asyncio and the matcher is not, and ``group_send`` is one awaited PUBLISH per
message: a batch's messages, public and private, go instead in one pipelined round trip
from the matcher's thread, in the layer's own channel names and serialization
(``_LayerPipe``). Each stream's messages are numbered so a hub can tell one was lost. A
failure here (Redis down) never touches the database: clients see a sequence gap and
resync, and the next batch publishes again.
"""

import json
import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from channels.layers import get_channel_layer
from django.conf import settings
from django_redis import get_redis_connection

from exchange_site.background import after_commit
from exchange_site.decimals import decimal_to_str
from exchange_site.redis_clients import redis_client
from exchange_site.streams import (
    PUBLIC_MESSAGE,
    book_key,
    heartbeat_key,
    public_group,
    stream_key,
    ticker_key,
)
from exchange_site.user_events import (
    layer_group_channel,
    user_events_publish,
    user_events_queue,
)
from marketdata.selectors import Places, candle_data, ticker_get
from trading.binance.user_events import batch_executions, replay
from trading.models import Market
from wallets.events import balance_message

logger = logging.getLogger("trading.matcher")

__all__ = ["Publisher", "book_key", "book_snapshot", "heartbeat_key", "heartbeat_write"]

HEARTBEAT_TTL_SECONDS = 120
PUBLISHED_BATCH_KEY = "exchange:user-events:published:{symbol}"
# While Redis refuses sends, batches are published without rebuilding the missed ones; the
# rebuild (database reads) is tried again at most this often.
REPLAY_RETRY_SECONDS = 1.0
STATS_INTERVAL_SECONDS = 1.0


def diff_interval_seconds() -> float:
    return settings.MARKETDATA_DIFF_INTERVAL_MS / 1000


def public_message(channel: str, symbol: str, text: str, interval: str | None = None):
    """``(group, layer message)`` for one public message whose client text is ``text``."""
    return (
        public_group(channel, symbol, interval),
        {"type": PUBLIC_MESSAGE, "stream": stream_key(channel, symbol, interval), "text": text},
    )


class _LayerPipe:
    """Sends layer messages to their groups in one pipelined round trip, from the matcher's
    own thread.

    channels-redis's ``group_send`` is a coroutine: one awaited PUBLISH per message behind a
    lock, on an event loop. From the matcher that meant handing every message to the
    after-commit loop, where a batch's trades queued behind its private events (a dozen per
    trade) and, at 60 orders/s on the shared two cores, fell seconds behind. A group_send is
    a PUBLISH of the layer's serialization to the layer's channel for the group; this does
    the same for a whole batch with one pipeline, as the matcher did before the layer. The
    names and the serialization are the layer's own (``layer_group_channel``,
    ``layer.serialize``); ``trading/tests/matcher/test_publish.py`` checks that the layer
    receives what this sends. A sharded layer (several hosts) picks a host per channel, so
    there each message goes through ``group_send`` on the after-commit loop instead.
    """

    def __init__(self):
        self._client = None
        self._pid = None
        self._publish_all = None

    def _redis(self):
        config = settings.CHANNEL_LAYERS["default"].get("CONFIG", {})
        hosts = config.get("hosts") or ["redis://localhost:6379"]
        if len(hosts) != 1 or not isinstance(hosts[0], (str, dict)):
            return None
        if self._client is None or self._pid != os.getpid():
            self._client = redis_client(hosts[0], socket_timeout=2, socket_connect_timeout=2)
            self._publish_all = self._client.register_script(_PUBLISH_ALL)
            self._pid = os.getpid()
        return self._client

    def ready(self) -> None:
        """Make the Redis client now (it is made on first use otherwise)."""
        self._redis()

    def send(self, messages: list, private: list | None = None, after: tuple = ()) -> bool:
        """Send the public ``(group, message)`` pairs, then number and send the ``private``
        ``(user_id, channel, text)`` events, then run ``after`` (a Redis command and its
        arguments); True if Redis took them all."""
        private = private or []
        client = self._redis()
        if client is None:
            after_commit.submit(_group_send_all, messages)
            if private:
                after_commit.submit(user_events_publish, private)
            return False
        layer = get_channel_layer()
        pipe = client.pipeline(transaction=False)
        if len(messages) < SCRIPT_FROM_MESSAGES:
            for group, message in messages:
                pipe.publish(layer_group_channel(group), layer.serialize(message))
        else:
            # A batch's trades: PUBLISHed by one script call rather than one command each,
            # which is what redis-py spends its time on (packing each command, parsing each
            # reply: most of the matcher's publishing CPU). Subscribers get the same messages
            # in the same order.
            channels: dict[str, str] = {}
            for start in range(0, len(messages), SCRIPT_MAX_MESSAGES):
                args = []
                for group, message in messages[start : start + SCRIPT_MAX_MESSAGES]:
                    channel = channels.get(group)
                    if channel is None:
                        channel = channels[group] = layer_group_channel(group)
                    args += (channel, layer.serialize(message))
                self._publish_all(args=args, client=pipe)
        user_events_queue(pipe, private)
        if after:
            getattr(pipe, after[0])(*after[1:])
        try:
            pipe.execute()
        except Exception:
            # Subscribers see the gap (seq, or the hub's numbering) and resync.
            logger.warning(
                "%d layer messages not sent", len(messages) + len(private), exc_info=True
            )
            return False
        return True


async def _group_send_all(messages: list) -> None:
    layer = get_channel_layer()
    for number, (group, message) in enumerate(messages):
        try:
            await layer.group_send(group, message)
        except Exception:
            logger.warning(
                "%d layer messages not sent (%s first)",
                len(messages) - number,
                group,
                exc_info=True,
            )
            return


# PUBLISH ARGV[1] ARGV[2], ARGV[3] ARGV[4], ...: many messages in one command.
_PUBLISH_ALL = "for i = 1, #ARGV, 2 do redis.call('PUBLISH', ARGV[i], ARGV[i + 1]) end"
# Fewer public messages than this go as plain PUBLISHes (a diff, a ticker with its candles);
# more (a batch's trades) through _PUBLISH_ALL, this many per call at most.
SCRIPT_FROM_MESSAGES = 16
SCRIPT_MAX_MESSAGES = 5000

_pipe = _LayerPipe()


class _Numbering:
    """Numbers each stream's messages 1, 2, 3 ... within this process (``epoch``), so that a
    hub can tell a message lost on the way (a Redis reconnect) from one merely not sent."""

    def __init__(self):
        self.epoch = uuid.uuid4().hex[:12]
        self.sent: dict[str, int] = {}
        self.lock = threading.Lock()

    def stamp(self, messages: list) -> None:
        with self.lock:
            for _group, message in messages:
                number = self.sent.get(message["stream"], 0) + 1
                self.sent[message["stream"]] = number
                message["epoch"], message["n"] = self.epoch, number


_numbering = _Numbering()


def public_send(messages: list, private: list | None = None, after: tuple = ()) -> bool:
    """Send public ``(group, message)`` pairs, numbered per stream, and then ``private``
    ``(user_id, channel, text)`` events to their owners' groups, numbered per user, in order,
    in one round trip; never raises. True if Redis took them all."""
    if messages:
        _numbering.stamp(messages)
    if messages or private or after:
        return _pipe.send(messages, private, after)
    return True


def published_batch_key(symbol: str) -> str:
    """The number of the last batch of ``symbol`` whose private events were published."""
    return PUBLISHED_BATCH_KEY.format(symbol=symbol)


def heartbeat_write(*, symbols: list[str], payload: str) -> None:
    try:
        pipe = get_redis_connection("default").pipeline(transaction=False)
        for symbol in symbols:
            pipe.set(heartbeat_key(symbol), payload, ex=HEARTBEAT_TTL_SECONDS)
        pipe.execute()
    except Exception:
        logger.debug("heartbeat not written (Redis unavailable)", exc_info=True)


def book_snapshot(book, scale, symbol: str, levels: int | None = None) -> dict:
    """The book's levels (all of them unless ``levels``) as decimal strings, with its seq."""
    bids, asks = book.depth(levels if levels is not None else len(book) + 1)

    def side(rows):
        return [[scale.price_text(price), scale.qty_text(qty), count] for price, qty, count in rows]

    return {
        "symbol": symbol,
        "seq": book.seq,
        "bids": side(bids),
        "asks": side(asks),
        "timestamp": time.time(),
    }


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class MarketStream:
    """One market's coalesced book diff, waiting to be flushed."""

    def __init__(self, symbol: str):
        self.symbol = symbol
        self.levels: dict[tuple[str, int], int] = {}
        self.first_seq: int | None = None
        self.seq = 0
        self.flushed_at = 0.0
        # Ticker and candles: at most one update a second, after batches with trades.
        self.candles: dict[str, object] = {}
        self.stats_due = False
        self.stats_flushed_at = 0.0


class _Sending:
    """A batch's send in flight on the publisher's thread: what to record once it is done."""

    __slots__ = ("batch", "complete", "future", "symbol")

    def __init__(self, symbol: str, batch: int, complete: bool, future):
        self.symbol, self.batch, self.complete, self.future = symbol, batch, complete, future


def _send_batch(messages: list, private: list, after: tuple) -> tuple[bool, float]:
    """``public_send`` on the publisher's thread: (sent, when it ended)."""
    try:
        sent = public_send(messages, private, after=after)
    except Exception:
        logger.warning("events of a batch not published", exc_info=True)
        sent = False
    return sent, time.monotonic()


class Publisher:
    """Publishes committed batches; holds the book diffs being coalesced.

    A batch's trades and private events are built on the matcher's thread, from the state it
    committed; with ``wait=False`` the send itself (packing thousands of events, Redis running
    the numbering script) goes to one thread of its own while the matcher runs its next
    batch, whose database work it overlaps. At most one send is in flight: the next batch,
    a flush, a snapshot and a catch-up first wait for it and record how it ended
    (``settle``), so they decide on what Redis has taken, and each stream and each user's
    events keep their order.
    """

    def __init__(self):
        self.markets: dict[str, MarketStream] = {}
        # Per market, the last batch whose private events Redis took (all before it too),
        # and when Redis last refused a send.
        self.published: dict[str, int] = {}
        self.failed_at: dict[str, float] = {}
        self._sending: _Sending | None = None
        self._sender: ThreadPoolExecutor | None = None

    def settle(self) -> None:
        """Wait for the send in flight, if any, and record whether Redis took it."""
        sending, self._sending = self._sending, None
        if sending is None:
            return
        sent, ended_at = sending.future.result()
        if not sent:
            self.failed_at[sending.symbol] = ended_at
        elif sending.complete:
            self.published[sending.symbol] = sending.batch

    def close(self) -> None:
        """Settle the send in flight and stop the sending thread."""
        self.settle()
        if self._sender is not None:
            self._sender.shutdown()
            self._sender = None

    def batch_committed(self, result, matcher, *, wait: bool = True) -> None:
        """Queue the batch's book changes and publish its trades and private events: now,
        or with ``wait=False`` on the sending thread while the caller goes on (a backlog)."""
        stream = self.markets.setdefault(result.symbol, MarketStream(result.symbol))
        for side, price_ticks, qty_lots, seq, _kind in result.level_changes:
            if stream.first_seq is None:
                stream.first_seq = seq
            stream.levels[(side, price_ticks)] = qty_lots
            stream.seq = seq
        for candle in result.candles:
            stream.candles[candle.interval] = candle
        stream.stats_due = stream.stats_due or bool(result.trades)
        symbol = result.symbol
        batch = result.batch if result.batch is not None else matcher.batches
        # Built before waiting for the previous send, which they may overlap.
        try:
            messages = self._trades(result, matcher)
        except Exception:
            logger.warning("trades of %s not built", symbol, exc_info=True)
            messages = []
        # Complete: every private event up to this batch is in this send.
        complete = True
        try:
            private = self._private(result, matcher)
        except Exception:
            logger.warning("private events of %s not built", symbol, exc_info=True)
            private, complete = [], False
        self.settle()
        published = self.published.get(symbol)
        if complete and published is not None and published < batch - 1:
            if time.monotonic() - self.failed_at.get(symbol, 0.0) < REPLAY_RETRY_SECONDS:
                complete = False  # Redis failed a moment ago: the replay waits
            else:
                try:
                    private = self._missed(matcher, batch - 1) + private
                except Exception:
                    logger.warning("missed events of %s not rebuilt", symbol, exc_info=True)
                    complete = False
        after = ("set", published_batch_key(symbol), batch) if complete else ()
        if not wait:
            if self._sender is None:
                _pipe.ready()  # the Redis client, made here rather than raced for
                self._sender = ThreadPoolExecutor(1, thread_name_prefix="matcher-publish")
            future = self._sender.submit(_send_batch, messages, private, after)
            self._sending = _Sending(symbol, batch, complete, future)
            return
        sent, _ = _send_batch(messages, private, after)
        if not sent:
            self.failed_at[symbol] = time.monotonic()
        elif complete:
            self.published[symbol] = batch

    def _missed(self, matcher, last_batch: int) -> list:
        """The private events of batches up to ``last_batch`` that were committed but not
        published (Redis refused them), rebuilt from the database; usually none."""
        published = self.published.get(matcher.symbol)
        if published is None or published >= last_batch:
            return []
        market = Market.objects.select_related("base_asset", "quote_asset").get(
            pk=matcher.market_id
        )
        logger.warning(
            "republishing the private events of %s batches %d-%d",
            matcher.symbol,
            published + 1,
            last_batch,
        )
        return replay(market=market, after_batch=published, to_batch=last_batch)

    def user_events_recover(self, matcher) -> None:
        """After a (re)start: publish the private events of the batches this market
        committed after the last one whose events were published (a matcher died in
        between), as rebuilt from the database."""
        symbol = matcher.symbol
        self.settle()
        try:
            stored = get_redis_connection("default").get(published_batch_key(symbol))
        except Exception:
            logger.warning("published batch of %s not read", symbol, exc_info=True)
            stored = None
        if stored is None:
            # Nothing known (a new Redis): from here on.
            self.published.setdefault(symbol, matcher.batches)
            return
        self.published[symbol] = min(int(stored), matcher.batches)
        self._catch_up(matcher)

    def _catch_up(self, matcher) -> None:
        """Publish what the market committed after its last published batch, rebuilt from
        the database, and mark it published (the next batch would, but an idle market has
        none)."""
        symbol = matcher.symbol
        published = self.published.get(symbol)
        if published is None or matcher.batches is None or published >= matcher.batches:
            return
        try:
            private = self._missed(matcher, matcher.batches)
            sent = public_send(
                [], private, after=("set", published_batch_key(symbol), matcher.batches)
            )
        except Exception:
            logger.warning("private events of %s not republished", symbol, exc_info=True)
            sent = False
        if sent:
            self.published[symbol] = matcher.batches
        else:
            self.failed_at[symbol] = time.monotonic()

    def seconds_to_next_flush(self) -> float | None:
        now = time.monotonic()
        due = [
            s.flushed_at + diff_interval_seconds() - now
            for s in self.markets.values()
            if s.first_seq is not None
        ]
        due += [
            s.stats_flushed_at + STATS_INTERVAL_SECONDS - now
            for s in self.markets.values()
            if s.stats_due
        ]
        return max(0.0, min(due)) if due else None

    def flush_due(self, matchers, *, force: bool = False) -> None:
        """Publish each market's pending diff whose interval has passed, with a snapshot;
        and the private events of batches Redis refused, once it may be back."""
        if self._sending is not None and (force or self._sending.future.done()):
            self.settle()
        now = time.monotonic()
        for matcher in matchers:
            published = self.published.get(matcher.symbol)
            if (
                published is not None
                and matcher.batches is not None  # None: dropped after a failed batch
                and published < matcher.batches
                and self._sending is None  # a batch on its way is not missed
                and now - self.failed_at.get(matcher.symbol, 0.0) >= REPLAY_RETRY_SECONDS
            ):
                self._catch_up(matcher)
            stream = self.markets.get(matcher.symbol)
            if stream is None or matcher.book is None:
                continue
            if stream.stats_due and (
                force or now - stream.stats_flushed_at >= STATS_INTERVAL_SECONDS
            ):
                self._flush_stats(stream, matcher)
                stream.stats_flushed_at = now
            if stream.first_seq is None:
                continue
            if not force and now - stream.flushed_at < diff_interval_seconds():
                continue
            self._flush(stream, matcher)
            stream.flushed_at = now

    def _flush_stats(self, stream: MarketStream, matcher) -> None:
        """Publish the market's ticker and its latest candle of each interval."""
        candles, stream.candles, stream.stats_due = stream.candles, {}, False
        try:
            market = Market.objects.select_related("base_asset", "quote_asset").get(
                pk=matcher.market_id
            )
            published_at = int(time.time() * 1000)
            ticker = json.dumps(
                {"type": "ticker", "channel": "ticker", **ticker_get(market=market),
                 "ts": published_at}
            )  # fmt: skip
            places = Places.of(market)
            messages = [public_message("ticker", stream.symbol, ticker)]
            for interval, candle in candles.items():
                row = (
                    candle.open_time, candle.open, candle.high, candle.low, candle.close,
                    candle.volume, candle.quote_volume, candle.trade_count,
                )  # fmt: skip
                text = json.dumps(
                    {
                        "type": "candle",
                        "channel": "candles",
                        "symbol": stream.symbol,
                        "interval": interval,
                        **candle_data(row, places),
                        "ts": published_at,
                    }
                )
                messages.append(public_message("candles", stream.symbol, text, interval))
            # Stored before it is sent: a client that joins meanwhile starts from it.
            get_redis_connection("default").set(ticker_key(stream.symbol), ticker)
            public_send(messages)
        except Exception:
            logger.warning("ticker and candles of %s not published", stream.symbol, exc_info=True)

    def snapshot(self, matcher) -> None:
        """Store the whole book (after a restore); pending diffs are dropped, as the
        snapshot covers them."""
        self.markets[matcher.symbol] = MarketStream(matcher.symbol)
        self.user_events_recover(matcher)
        snapshot = book_snapshot(matcher.book, matcher.scale, matcher.symbol)
        try:
            get_redis_connection("default").set(book_key(matcher.symbol), json.dumps(snapshot))
        except Exception:
            logger.warning("book snapshot of %s not stored", matcher.symbol, exc_info=True)

    def _flush(self, stream: MarketStream, matcher) -> None:
        scale = matcher.scale
        bids, asks = [], []
        for (side, price_ticks), qty_lots in sorted(stream.levels.items()):
            level = [scale.price_text(price_ticks), scale.qty_text(qty_lots)]
            (bids if side == "buy" else asks).append(level)
        bids.reverse()  # best (highest) bid first
        diff = json.dumps(
            {
                "type": "update",
                "channel": "orderbook",
                "symbol": stream.symbol,
                "first_seq": stream.first_seq,
                "seq": stream.seq,
                "bids": bids,
                "asks": asks,
                "ts": int(time.time() * 1000),
            }
        )
        snapshot = book_snapshot(matcher.book, scale, stream.symbol)
        stream.levels = {}
        stream.first_seq = None
        try:
            # Stored before the diff is sent, so no snapshot a client reads is older than
            # a diff it has dropped as covered.
            get_redis_connection("default").set(book_key(stream.symbol), json.dumps(snapshot))
        except Exception:
            logger.warning("book snapshot of %s not stored", stream.symbol, exc_info=True)
        # Sent even without the snapshot: the diff's seq range is still right.
        public_send([public_message("orderbook", stream.symbol, diff)])

    def _trades(self, result, matcher) -> list:
        published_at = int(time.time() * 1000)
        scale = matcher.scale
        return [
            public_message(
                "trades",
                result.symbol,
                json.dumps(
                    {
                        "type": "trade",
                        "channel": "trades",
                        "symbol": result.symbol,
                        "id": trade.pk,
                        "price": decimal_to_str(trade.price, scale.price_places),
                        "quantity": decimal_to_str(trade.quantity, scale.qty_places),
                        "taker_side": trade.taker_side,
                        "buy_order_id": trade.buy_order_id,
                        "sell_order_id": trade.sell_order_id,
                        "time": _millis(trade.created_at),
                        "ts": published_at,
                    }
                ),
            )
            for trade in result.trades
        ]

    def _private(self, result, matcher) -> list:
        """Binance's reports of the batch's fills and order changes, then each order's and
        balance's new state, for their owners (``user.<id>``), ``(user_id, channel, text)``."""
        events = batch_executions(result, matcher)
        texts: dict = {}
        events += [
            (order.user_id, "orders", order_message(result.symbol, order, matcher.scale, texts))
            for order in result.orders
        ]
        events += [
            (
                user_id,
                "balances",
                balance_message(
                    asset_code=matcher.asset_codes[asset_id], available=available, locked=locked
                ),
            )
            for (user_id, asset_id), (available, locked) in result.balances.items()
        ]
        return events


def order_message(symbol: str, order, scale, texts: dict | None = None) -> str:
    """An order's state for its owner's ``orders`` channel. ``texts`` keeps the decimals
    written so far, for a batch's thousands of orders, which share most prices and
    quantities (the text depends only on the value and its sign, not on how the Decimal
    spells it: 1.5 and 1.50 are one key, 0 and -0 two)."""
    texts = {} if texts is None else texts

    def text(value, places=0):
        if value is None:
            return None
        key = (value, places, value.is_signed())
        written = texts.get(key)
        if written is None:
            written = texts[key] = decimal_to_str(value, places)
        return written

    return json.dumps(
        {
            "type": "order",
            "channel": "orders",
            "symbol": symbol,
            "id": order.id,
            "side": order.side,
            "order_type": order.order_type,
            "status": order.status,
            "reason": order.reason,
            "price": text(order.price, scale.price_places),
            "quantity": text(order.quantity, scale.qty_places),
            "filled_quantity": text(order.filled_quantity, scale.qty_places),
            "filled_quote": text(order.filled_quote),
            "order_list_id": order.order_list_id,
            "trailing_peak": text(order.trailing_peak, scale.price_places),
        }
    )

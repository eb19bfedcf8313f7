"""Under a backlog the matcher sends a full batch's events on its publishing thread while it
runs the next batch (``Publisher.batch_committed(wait=False)``): every trade and private
event still reaches Redis once, in order and numbered, and once the queue is drained nothing
is left in flight."""

import json
import threading

import redis
from channels.layers import get_channel_layer
from django.conf import settings

from exchange_site.streams import public_group, user_group
from exchange_site.user_events import layer_group_channel
from trading.matcher import publish
from trading.matcher.market import MarketMatcher
from trading.matcher.publish import published_batch_key
from trading.matcher.runner import Matcher
from trading.models import Trade
from trading.tests.helpers import assert_ledger_ok, place


def _listen(channels: list[str]):
    pubsub = redis.Redis.from_url(settings.REDIS_URL).pubsub()
    pubsub.subscribe(*channels)
    for _ in channels:  # each SUBSCRIBE confirmed before anything is published
        while pubsub.get_message(timeout=5)["type"] != "subscribe":
            pass
    return pubsub


def _received(pubsub) -> dict[str, list[dict]]:
    layer = get_channel_layer()
    messages: dict[str, list[dict]] = {}
    while (message := pubsub.get_message(timeout=1)) is not None:
        if message["type"] == "message":
            channel = message["channel"].decode()
            messages.setdefault(channel, []).append(layer.deserialize(message["data"]))
    pubsub.close()
    return messages


def test_a_backlog_is_published_whole_in_order_while_the_next_batches_run(
    db, market, trader, monkeypatch
):
    buyer = trader(market, usd="10000")
    seller = trader(market, btc="10")
    for _ in range(6):
        place(seller, side="sell", price="100", quantity="1")
        place(buyer, side="buy", price="100", quantity="1")
    trades_channel = layer_group_channel(public_group("trades", market.symbol))
    buyer_channel = layer_group_channel(user_group(buyer.pk))
    pubsub = _listen([trades_channel, buyer_channel])
    runner = Matcher([market.symbol], batch_size=4)
    matcher = MarketMatcher(market)
    runner.matchers = [matcher]
    matcher.restore()
    runner.publisher.snapshot(matcher)
    # Which thread sends each batch (the send itself is the real one, to the real Redis).
    senders: list[str] = []
    send_batch = publish._send_batch

    def recorded_send_batch(*args):
        senders.append(threading.current_thread().name)
        return send_batch(*args)

    monkeypatch.setattr(publish, "_send_batch", recorded_send_batch)

    assert runner.run_once() is True  # a full batch of 4: more are waiting
    while runner.run_once():
        pass
    runner.publisher.flush_due(runner.matchers, force=True)
    messages = _received(pubsub)

    # Every batch was full, so each one's events went out on the publishing thread (checked
    # by name: whether a send is still in flight when run_once returns is a race).
    assert len(senders) == 3, senders
    assert all(name.startswith("matcher-publish") for name in senders), senders
    assert runner.publisher._sending is None  # drained: nothing left in flight
    assert runner.batches == 3
    trade_ids = list(Trade.objects.order_by("id").values_list("id", flat=True))
    assert len(trade_ids) == 6
    published = messages[trades_channel]
    assert [json.loads(m["text"])["id"] for m in published] == trade_ids
    assert [m["n"] for m in published] == list(range(published[0]["n"], published[0]["n"] + 6))
    numbered = [m["seq"] for m in messages[buyer_channel] if m.get("seq") is not None]
    assert numbered
    assert numbered == list(range(numbered[0], numbered[0] + len(numbered)))
    client = redis.Redis.from_url(settings.REDIS_URL)
    assert int(client.get(published_batch_key(market.symbol))) == matcher.batches
    assert runner.publisher.published[market.symbol] == matcher.batches
    assert_ledger_ok()

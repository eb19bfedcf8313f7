"""The matcher's publishing on the real channel layer (channels-redis's pub/sub layer on the
test Redis): what it pipelines from its own thread is what the layer's ``receive`` gets."""

import json
from unittest.mock import patch

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from exchange_site.streams import USER_EVENT, public_group, user_group
from trading.matcher import publish
from trading.matcher.publish import (
    SCRIPT_FROM_MESSAGES,
    layer_group_channel,
    public_message,
    public_send,
)


async def test_the_pipelined_channel_name_is_the_layers_own():
    loop_layer = get_channel_layer()._get_layer()

    for group in ("md.BTC-USD.orderbook", "md.BTC-USD.candles.1m", "user.42"):
        assert layer_group_channel(group) == loop_layer._get_group_channel_name(group)


async def test_the_layer_receives_public_and_private_messages_in_order_and_numbered():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    for group in (public_group("trades", "PUB-USD"), user_group(7)):
        await layer.group_add(group, channel)
    texts = [json.dumps({"type": "trade", "id": n}) for n in (1, 2)]
    private = [(7, "orders", "{}"), (7, "balances", '{"asset": "USD"}'), (7, "executions", "[]")]

    await sync_to_async(public_send)(
        [public_message("trades", "PUB-USD", text) for text in texts], private
    )
    received = [await layer.receive(channel) for _ in range(5)]

    assert [m["text"] for m in received] == [*texts, "{}", '{"asset": "USD"}', "[]"]
    assert [m["type"] for m in received] == ["md.message", "md.message", *[USER_EVENT] * 3]
    assert received[0]["stream"] == "trades:PUB-USD"
    assert received[1]["n"] == received[0]["n"] + 1
    assert received[1]["epoch"] == received[0]["epoch"]
    assert "n" not in received[2]
    # Private events are numbered per user, in the order sent (exchange_site.user_events),
    # except the /ws/ order messages, which Binance's streams leave out.
    assert [m["channel"] for m in received[2:]] == ["orders", "balances", "executions"]
    assert "seq" not in received[2]
    assert received[4]["seq"] == received[3]["seq"] + 1
    assert {m["user"] for m in received[2:]} == {7}


async def test_a_batch_of_many_trades_goes_through_the_script_in_order_before_private_events():
    # SCRIPT_FROM_MESSAGES or more public messages are PUBLISHed by one script call (in
    # chunks of SCRIPT_MAX_MESSAGES): the layer must still get each one, in order, numbered,
    # and before the batch's private events.
    layer = get_channel_layer()
    channel = await layer.new_channel()
    for group in (public_group("trades", "MANY-USD"), user_group(8)):
        await layer.group_add(group, channel)
    count = SCRIPT_FROM_MESSAGES + 5
    texts = [json.dumps({"type": "trade", "id": n}) for n in range(count)]

    with patch.object(publish, "SCRIPT_MAX_MESSAGES", 7):
        await sync_to_async(public_send)(
            [public_message("trades", "MANY-USD", text) for text in texts], [(8, "orders", "{}")]
        )
    received = [await layer.receive(channel) for _ in range(count + 1)]

    assert [m["text"] for m in received] == [*texts, "{}"]
    assert {m["stream"] for m in received[:count]} == {"trades:MANY-USD"}
    numbers = [m["n"] for m in received[:count]]
    assert numbers == list(range(numbers[0], numbers[0] + count))
    assert received[count]["type"] == USER_EVENT

import json

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from exchange_site.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_stopped")]


async def connect(path="/ws/"):
    communicator = WebsocketCommunicator(application, path)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def test_ping_gets_pong():
    communicator = await connect()

    await communicator.send_json_to({"type": "ping"})

    assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "BAD_MESSAGE"),
        ("[1, 2]", "BAD_MESSAGE"),
        (json.dumps({"type": "dance"}), "UNKNOWN_TYPE"),
        (
            json.dumps({"type": "subscribe", "channel": "nope", "symbol": "BTC-USD"}),
            "UNKNOWN_CHANNEL",
        ),
    ],
)
async def test_bad_messages_get_an_error_and_the_connection_stays_open(frame, code):
    communicator = await connect()

    await communicator.send_to(text_data=frame)
    error = await communicator.receive_json_from()
    await communicator.send_json_to({"type": "ping"})

    assert error["type"] == "error"
    assert error["code"] == code
    assert error["message"]
    assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()


async def test_the_channel_layer_is_real_redis():
    layer = get_channel_layer()
    channel = await layer.new_channel()

    await layer.send(channel, {"type": "probe", "value": 7})

    assert (await layer.receive(channel))["value"] == 7
    assert type(layer).__module__ == "channels_redis.pubsub"


async def test_foreign_browser_origin_is_refused():
    communicator = WebsocketCommunicator(
        application, "/ws/", headers=[(b"origin", b"https://evil.example")]
    )

    connected, _ = await communicator.connect()

    assert not connected


async def test_own_origin_is_accepted():
    communicator = WebsocketCommunicator(
        application, "/ws/", headers=[(b"origin", b"http://localhost:8000")]
    )

    connected, _ = await communicator.connect()

    assert connected
    await communicator.disconnect()

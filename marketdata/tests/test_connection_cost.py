"""What keeps a WebSocket connection cheap when thousands arrive at once (a reconnect storm):
no thread hop for a connection without a session cookie, no layer channel of its own for a
connection that only reads public data, one database read shared by every subscriber asking
at once, and autobahn's debug-log arguments formatted only when written."""

import asyncio
import threading
from pprint import pformat

import autobahn.util
import autobahn.websocket.protocol
import channels.auth
import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from accounts.services import auth_tokens_issue
from accounts.tests.factories import UserFactory
from exchange_site.asgi import application
from marketdata import streams
from marketdata.autobahn_logging import Deferred, defer_debug_formatting
from marketdata.tests.fixtures import drop_book
from trading.tests.factories import MarketFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_stopped")]


async def connect(path="/ws/", headers=()):
    communicator = WebsocketCommunicator(application, path, headers=list(headers))
    connected, _ = await communicator.connect()
    assert connected
    return communicator


def layer_channels() -> set[str]:
    """The channels the process's layer currently holds a subscription queue for."""
    return set(get_channel_layer()._get_layer().channels)


async def test_a_connection_without_a_session_cookie_is_anonymous_without_a_lookup(monkeypatch):
    def looked_up(scope):
        raise AssertionError("the session store was asked about a connection with no cookie")

    monkeypatch.setattr(channels.auth, "get_user", looked_up)
    communicator = await connect()

    await communicator.send_json_to({"type": "subscribe", "channel": "orders"})

    assert (await communicator.receive_json_from())["code"] == "AUTH_REQUIRED"
    await communicator.disconnect()


async def test_a_session_cookie_still_signs_the_connection_in():
    user = await sync_to_async(UserFactory)()
    browser = Client()
    await sync_to_async(browser.force_login)(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
    communicator = await connect(headers=[(b"cookie", cookie.encode())])

    await communicator.send_json_to({"type": "subscribe", "channel": "orders"})

    assert await communicator.receive_json_from() == {"type": "subscribed", "channel": "orders"}
    await communicator.disconnect()


async def test_a_public_subscriber_has_no_layer_channel_and_a_private_one_gets_one():
    market = await sync_to_async(MarketFactory)()
    user = await sync_to_async(UserFactory)()
    token = await sync_to_async(lambda: auth_tokens_issue(user=user)["access_token"])()
    before = layer_channels()
    public = await connect()
    await public.send_json_to({"type": "subscribe", "channel": "trades", "symbol": market.symbol})
    assert (await public.receive_json_from())["type"] == "subscribed"

    after_public = layer_channels()
    private = await connect(f"/ws/?token={token}")
    await private.send_json_to({"type": "subscribe", "channel": "orders"})
    assert (await private.receive_json_from())["type"] == "subscribed"
    after_private = layer_channels()
    await public.disconnect()
    await private.disconnect()

    assert after_public - before == set()
    assert len(after_private - after_public) == 1


async def test_subscribers_asking_at_once_share_one_symbols_query(monkeypatch):
    market = await sync_to_async(MarketFactory)()
    real, calls = streams._load_symbols, []

    async def counted():
        calls.append(1)
        return await real()

    monkeypatch.setattr(streams, "_load_symbols", counted)
    monkeypatch.setattr(streams, "_symbols", set())
    monkeypatch.setattr(streams, "_symbols_at", 0.0)

    answers = await asyncio.gather(*(streams.symbol_known(market.symbol) for _ in range(50)))

    assert answers == [market.symbol] * 50
    assert len(calls) == 1


async def test_subscribers_without_a_snapshot_in_redis_share_one_database_read(monkeypatch):
    market = await sync_to_async(MarketFactory)()
    await sync_to_async(drop_book)(market.symbol)
    real, calls = streams._snapshot_from_database, []

    async def counted(read, symbol):
        calls.append(symbol)
        return await real(read, symbol)

    monkeypatch.setattr(streams, "_snapshot_from_database", counted)
    shared, asked = streams._book_from_database, []

    async def asking_for(symbol):
        asked.append(symbol)
        return await shared(symbol)

    monkeypatch.setattr(streams, "_book_from_database", asking_for)
    # The process's one database thread busy with something else, as in a reconnect storm.
    busy, release = threading.Event(), threading.Event()

    @database_sync_to_async
    def other_work():
        busy.set()
        release.wait(10)

    other = asyncio.create_task(other_work())
    assert await asyncio.to_thread(busy.wait, 10)
    asking = [
        asyncio.create_task(streams.orderbook_snapshot_text(market.symbol)) for _ in range(20)
    ]
    while len(asked) < 20:  # every subscriber has asked while the thread is busy
        await asyncio.sleep(0.01)
    release.set()

    texts = await asyncio.gather(*asking)
    await other

    assert len(set(texts)) == 1
    assert '"type": "snapshot"' in texts[0]
    assert calls == [market.symbol]


async def test_a_read_that_has_begun_is_not_shared_with_a_later_subscriber(monkeypatch):
    # It may predate diffs that subscriber will skip as covered: it gets a read of its own.
    began, release, calls = threading.Event(), threading.Event(), []

    @database_sync_to_async
    def held(read, symbol):
        read.begun = True
        began.set()
        release.wait(10)
        return {"symbol": symbol, "seq": len(calls), "bids": [], "asks": []}

    async def counted(read, symbol):
        calls.append(symbol)
        return await held(read, symbol)

    monkeypatch.setattr(streams, "_snapshot_from_database", counted)
    await sync_to_async(drop_book)("NOPE-USD")
    first = asyncio.create_task(streams.orderbook_snapshot_text("NOPE-USD"))
    assert await asyncio.to_thread(began.wait, 10)
    second = asyncio.create_task(streams.orderbook_snapshot_text("NOPE-USD"))
    for _ in range(5):
        await asyncio.sleep(0)
    release.set()

    await asyncio.gather(first, second)

    assert calls == ["NOPE-USD", "NOPE-USD"]


def test_autobahn_formats_its_debug_arguments_only_when_they_are_written():
    defer_debug_formatting()  # idempotent; exchange_site.asgi has applied it already
    protocol = autobahn.websocket.protocol
    options = [("openHandshakeTimeout", 5, "Factory"), ("autoPingInterval", 0, "Factory")]

    formatted = protocol.pformat(options)

    assert isinstance(formatted, Deferred)
    assert str(formatted) == pformat(options)
    assert f"{protocol.hlval(42)}" == autobahn.util.hlval(42)
    assert str(
        protocol.hltype(test_autobahn_formats_its_debug_arguments_only_when_they_are_written)
    )
    assert str(protocol.Timings()) == "{}"  # the caller that needs a real str keeps one

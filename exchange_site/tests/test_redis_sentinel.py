"""Every Redis client behind a Sentinel ``REDIS_URL``, on real servers: a master, a replica
and three sentinels (testsupport/redis_sentinel.py). Each client works through the
sentinels, and keeps working after the master dies and Sentinel promotes the replica: the
cache, the channel layer, a Celery worker and its results, the matcher's wake-ups and
publishing, and the market-data hub's subscription (which resyncs its subscribers).

The failovers are waited for by polling against a generous deadline; the time each took is
printed, never asserted."""

import asyncio
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from asgiref.sync import sync_to_async
from celery import Celery
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.core.cache import cache
from django_redis.cache import RedisCache

from exchange_site import user_events
from exchange_site.health import health_report
from exchange_site.redis_clients import (
    async_redis_client,
    cache_settings,
    celery_broker_settings,
    channel_layer_hosts,
    redis_client,
)
from exchange_site.streams import PUBLIC_MESSAGE, stream_group
from marketdata.hub import Hub
from testsupport.redis_sentinel import start_sentinel_group
from trading.matcher import publish
from trading.matcher.wakeup import matcher_wait, matcher_wake

ROOT = Path(__file__).resolve().parents[2]
DB = 6
# Generous: a failover here takes a few seconds (down-after 1 s, then an election).
RECOVERY_DEADLINE = 60.0
PREFIX = "exchange:sentinel-test:"
CELERY_WORKER = [sys.executable, "-m", "celery", "-A", "exchange_site", "worker", "--pool", "solo"]


def eventually(attempt, what: str, deadline: float = RECOVERY_DEADLINE):
    """Call ``attempt`` until it returns without raising; return (its result, seconds)."""
    started = time.monotonic()
    while True:
        try:
            return attempt(), time.monotonic() - started
        except Exception as exc:
            if time.monotonic() - started > deadline:
                raise AssertionError(f"{what} not working {deadline} s after failover") from exc
            time.sleep(0.2)


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    group = start_sentinel_group(tmp_path_factory.mktemp("sentinel"))
    yield group
    group.stop()


@pytest.fixture
def sentinel_settings(settings, group, monkeypatch):
    """The exchange's settings for ``REDIS_URL=group.url()``, as settings.py builds them."""
    url = group.url(DB)
    settings.REDIS_URL = url
    settings.CACHES = {"default": cache_settings(url)}
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": channel_layer_hosts(url), "prefix": PREFIX + "asgi"},
        }
    }
    # The publishing clients are made once a process; these tests need ones of this group.
    monkeypatch.setattr(publish, "_pipe", publish._LayerPipe())
    monkeypatch.setattr(user_events, "_client", user_events._Client())
    return url


@pytest.fixture(scope="module")
def celery_worker(group, tmp_path_factory):
    """``celery -A exchange_site worker`` with nothing but ``REDIS_URL`` pointing at the
    group: broker and results follow it through settings.py."""
    log = tmp_path_factory.mktemp("celery") / "worker.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    env.update(REDIS_URL=group.url(DB), PYTHONUNBUFFERED="1")
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [*CELERY_WORKER, "--without-gossip", "--without-mingle", "--loglevel", "info"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    yield worker, log
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def celery_client(url: str) -> Celery:
    app = Celery("sentinel-test-client", set_as_current=False)
    app.conf.update(celery_broker_settings(url))
    return app


def celery_round_trip(app: Celery, worker) -> list:
    """A task through the broker to the worker, its result back through the backend
    (``celery.accumulate`` is a task every Celery app has: it returns its arguments)."""
    assert worker[0].poll() is None, f"the worker exited; see {worker[1]}"
    return app.send_task("celery.accumulate", args=(7, 8)).get(timeout=5)


async def layer_round_trip(layer: RedisPubSubChannelLayer, text: str) -> dict:
    channel = await layer.new_channel()
    await layer.group_add("sentinel-check", channel)
    try:
        # Subscribing is not confirmed by the layer: send until one arrives.
        for _ in range(20):
            await layer.group_send("sentinel-check", {"type": "check", "text": text})
            try:
                return await asyncio.wait_for(layer.receive(channel), 0.5)
            except TimeoutError:
                continue
        raise TimeoutError("nothing received")
    finally:
        await layer.group_discard("sentinel-check", channel)


def layer_works(url: str, text: str) -> dict:
    async def run():
        layer = RedisPubSubChannelLayer(hosts=channel_layer_hosts(url), prefix=PREFIX + "layer")
        try:
            return await layer_round_trip(layer, text)
        finally:
            await layer.flush()

    return asyncio.run(run())


def test_settings_py_builds_every_redis_client_from_a_sentinel_url(group):
    # settings.py itself, in a fresh process: nothing but REDIS_URL names the group.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    env.update(REDIS_URL=group.url(DB), DJANGO_SETTINGS_MODULE="exchange_site.settings")
    script = (
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "from django.core.cache import cache\n"
        "from exchange_site.health import health_report\n"
        "from exchange_site.celery import app\n"
        "cache.set('wired', 'yes')\n"
        "report, ok = health_report()\n"
        "print(report['redis'])\n"
        "print(app.conf.broker_url.count('sentinel://'),"
        " app.conf.broker_transport_options['master_name'])\n"
        "print(type(settings.CHANNEL_LAYERS['default']['CONFIG']['hosts'][0]).__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.split("\n")
    assert "'status': 'ok'" in lines[0]  # /health's Redis check
    assert lines[1:3] == ["3 exchange", "dict"]
    assert pickle.loads(group.master_client(db=DB).get("exchange:1:wired")) == "yes"


def test_the_cache_reads_and_writes_the_master(sentinel_settings, group):
    cache.set("sentinel-key", {"price": "1.50"})

    assert cache.get("sentinel-key") == {"price": "1.50"}
    assert group.master_client(db=DB).exists("exchange:1:sentinel-key") == 1
    assert health_report()[0]["redis"]["status"] == "ok"


def test_the_channel_layer_delivers_a_group_message(group):
    message = layer_works(group.url(DB), "hello")

    assert message == {"type": "check", "text": "hello"}


def test_a_celery_task_goes_to_a_worker_and_its_result_comes_back(group, celery_worker):
    app = celery_client(group.url(DB))

    # The worker is still starting (Django, then the broker connection).
    result, _ = eventually(lambda: celery_round_trip(app, celery_worker), "the celery worker")

    assert result == [7, 8]


def test_the_matcher_wakes_up_and_publishes_through_the_master(sentinel_settings, group):
    matcher_wake("SENT-USD")
    woken = matcher_wait(["SENT-USD", "OTHER-USD"], timeout_seconds=5)

    async def publish_and_receive():
        layer = RedisPubSubChannelLayer(
            hosts=channel_layer_hosts(sentinel_settings), prefix=PREFIX + "asgi"
        )
        channel = await layer.new_channel()
        await layer.group_add(stream_group("trades:SENT-USD"), channel)
        await layer.group_add("user.7", channel)
        received = []
        try:
            for attempt in range(20):  # until the layer's subscription is live
                sent = await sync_to_async(publish.public_send)(
                    [publish.public_message("trades", "SENT-USD", f"trade-{attempt}")],
                    [(7, "balances", f"balance-{attempt}")],
                )
                assert sent
                try:
                    received.append(await asyncio.wait_for(layer.receive(channel), 0.5))
                    received.append(await asyncio.wait_for(layer.receive(channel), 0.5))
                    return received
                except TimeoutError:
                    received.clear()
            raise TimeoutError("nothing received")
        finally:
            await layer.flush()

    received = asyncio.run(publish_and_receive())

    assert woken == {"SENT-USD"}
    assert received[0]["text"].startswith("trade-")
    assert received[0]["stream"] == "trades:SENT-USD"
    assert received[1]["text"].startswith("balance-")
    assert received[1]["user"] == 7
    # The user's event number lives on the master.
    assert int(group.master_client(db=DB).get(user_events.seq_key(7))) == received[1]["seq"]


def test_the_code_clients_follow_a_sentinel_url(group):
    async def ping():
        client = async_redis_client(group.url(DB))
        try:
            return await client.ping()
        finally:
            await client.aclose()

    assert redis_client(group.url(DB)).ping() is True
    assert redis_client(channel_layer_hosts(group.url(DB))[0]).ping() is True
    assert asyncio.run(ping()) is True


def publish_or_raise() -> None:
    sent = publish.public_send(
        [publish.public_message("trades", "SENT-USD", "after")], [(7, "orders", "{}")]
    )
    if not sent:  # public_send never raises; it says whether Redis took the messages
        raise RuntimeError("not sent")


def test_every_client_works_again_after_the_master_dies(
    sentinel_settings, group, celery_worker, capsys
):
    app = celery_client(group.url(DB))
    assert celery_round_trip(app, celery_worker) == [7, 8]
    cache.set("before-failover", 1)
    old = group.master_address()

    group.kill_master()
    started = time.monotonic()
    new = group.wait_for_master(other_than=old)
    promoted = time.monotonic() - started

    # The first command on each client may fail (its connection was to the dead master);
    # then each asks the sentinels and reaches the new one.
    _, cache_took = eventually(lambda: cache.set("after-failover", 2), "the cache")
    assert cache.get("after-failover") == 2
    _, wake_took = eventually(lambda: matcher_wake("SENT-USD"), "the matcher wake-up")
    assert matcher_wait(["SENT-USD"], timeout_seconds=5) == {"SENT-USD"}
    _, publish_took = eventually(publish_or_raise, "the matcher's publishing")
    message, layer_took = eventually(lambda: layer_works(group.url(DB), "after"), "the layer")
    result, celery_took = eventually(
        lambda: celery_round_trip(app, celery_worker), "the celery worker"
    )

    assert new != old
    assert group.master_client(db=DB).exists("exchange:1:after-failover") == 1
    assert message["text"] == "after"
    assert result == [7, 8]
    assert health_report()[0]["redis"]["status"] == "ok"
    with capsys.disabled():
        print(
            f"\nsentinel failover (master killed): promoted in {promoted:.1f} s; then working "
            f"again: cache {cache_took:.1f} s, wake-up {wake_took:.1f} s, publishing "
            f"{publish_took:.1f} s, layer {layer_took:.1f} s, celery {celery_took:.1f} s"
        )
    group.restart_node(old)
    group.wait_ready()


class Recorder:
    """A hub subscriber that keeps what it is given."""

    def __init__(self):
        self.texts: list[str] = []
        self.resyncs = 0

    def deliver(self, stream, text, frame):
        self.texts.append(text)

    def resync(self, stream):
        self.resyncs += 1


@pytest.mark.parametrize("how", ["SENTINEL FAILOVER", "master killed"])
async def test_the_hub_follows_a_failover_and_resyncs_whatever_it_lost(
    sentinel_settings, group, capsys, how
):
    hub, subscriber = Hub(), Recorder()
    stream = "trades:HUB-USD"
    sent: list[str] = []
    refused: list[str] = []
    stop = asyncio.Event()

    async def keep_publishing():
        # The matcher's way, numbered per stream, through the failover.
        number = 0
        while not stop.is_set():
            text = f"during-{number}"
            number += 1
            message = publish.public_message("trades", "HUB-USD", text)
            if await sync_to_async(publish.public_send, thread_sensitive=False)([message]):
                sent.append(text)
            else:  # Redis did not take it (and its number is skipped: the hub resyncs)
                refused.append(text)
            await asyncio.sleep(0.05)

    async def wait_for(condition, what: str) -> None:
        deadline = time.monotonic() + RECOVERY_DEADLINE
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} within {RECOVERY_DEADLINE} s")
            await asyncio.sleep(0.1)

    def publish_on(address, text: str) -> None:
        # Straight to one server, not through the sentinels: proves where the hub listens.
        group.node_at(address).client(db=DB).publish(
            publish.layer_group_channel(stream_group(stream)),
            get_channel_layer().serialize({"type": PUBLIC_MESSAGE, "stream": stream, "text": text}),
        )

    try:
        await hub.ready(timeout=30)
        await hub.add(stream, subscriber)
        publisher = asyncio.create_task(keep_publishing())
        await wait_for(lambda: "during-0" in subscriber.texts, "the hub receiving")
        resyncs_before = subscriber.resyncs

        started = time.monotonic()
        if how == "SENTINEL FAILOVER":
            # The old master lives on as a replica (which would still take PUBLISH and
            # SUBSCRIBE), and Sentinel has it drop its clients.
            new = await sync_to_async(group.failover, thread_sensitive=False)()
        else:
            old = await sync_to_async(group.kill_master, thread_sensitive=False)()
            new = await sync_to_async(group.wait_for_master, thread_sensitive=False)(old)
        await wait_for(
            lambda: (publish_on(new, "on-new-master"), "on-new-master" in subscriber.texts)[1],
            "a message published on the new master reaching the hub",
        )
        took = time.monotonic() - started
        stop.set()
        await publisher
        # Every message of the stream either arrives, or its subscribers are told to resync.
        try:
            await wait_for(
                lambda: set(sent) <= set(subscriber.texts) or subscriber.resyncs > resyncs_before,
                "every message delivered, or a resync",
            )
        except AssertionError as failed:
            missing = [text for text in sent if text not in set(subscriber.texts)]
            raise AssertionError(
                f"{failed}: {len(missing)} of {len(sent)} sent never arrived ({missing[:20]}); "
                f"refused {refused[:20]}; the hub's last 20: {subscriber.texts[-20:]}"
            ) from None
    finally:
        stop.set()
        await hub.stop()

    lost = len(set(sent) - set(subscriber.texts))
    assert lost == 0 or subscriber.resyncs > resyncs_before
    assert len(sent) > 0
    with capsys.disabled():
        print(
            f"\nsentinel failover ({how}): the hub received from the new master "
            f"{took:.1f} s after it began; {len(sent)} sent meanwhile and {len(refused)} "
            f"refused, {lost} lost, {subscriber.resyncs - resyncs_before} resync(s)"
        )
    if how == "master killed":
        group.restart_node(old)
        group.wait_ready()


def test_a_client_skips_a_dead_sentinel(group):
    group.sentinels[0].kill()
    try:
        # A new client asks the sentinels in turn: the first refuses, the next answers.
        client = redis_client(group.url(DB))
        client.set("one-sentinel-down", 1)

        assert not group.sentinels[0].answers()
        assert group.master_client(db=DB).get("one-sentinel-down") == b"1"
    finally:
        group.sentinels[0].start(
            [str(group.sentinels[0].directory / "sentinel.conf"), "--sentinel"]
        )


def test_a_password_protected_group_is_reached_by_every_client(tmp_path):
    password = "p@ss/w:rd%"
    with start_sentinel_group(tmp_path, password=password) as secured:
        url = secured.url(DB)
        conf = cache_settings(url)
        protected_cache = RedisCache(
            conf["LOCATION"], {"OPTIONS": conf["OPTIONS"], "KEY_PREFIX": "p"}
        )
        protected_cache.set("k", "v")
        app = celery_client(url)
        with app.connection_for_write() as connection:
            queue = connection.SimpleQueue("sentinel-password-check")
            queue.put({"n": 1})
            received = queue.get(timeout=10)
            received.ack()
            queue.close()
        app.backend.set("result-key", "stored")

        assert protected_cache.get("k") == "v"
        assert received.payload == {"n": 1}
        assert secured.master_client(db=DB).get("result-key") == b"stored"
        assert layer_works(url, "secret")["text"] == "secret"
        assert redis_client(url).ping() is True
        with pytest.raises(redis.AuthenticationError):
            redis_client(url.replace(quote(password, safe=""), "wrong")).ping()


async def test_clients_leave_a_master_that_hangs(sentinel_settings, group, capsys):
    # A hung master answers nothing yet keeps its connections open: a command waits out its
    # socket timeout (2 s), and the retry asks the sentinels. The layer's subscription only
    # reads, so it stays on the hung master until Sentinel demotes it when it comes back
    # (a host powered off instead is noticed by TCP keepalive).
    layer = RedisPubSubChannelLayer(hosts=channel_layer_hosts(sentinel_settings), prefix=PREFIX)
    await layer_round_trip(layer, "before")
    await sync_to_async(cache.set)("before-hang", 1)
    assert await sync_to_async(publish.public_send)(
        [publish.public_message("trades", "HANG-USD", "x")]
    )

    def recover() -> dict[str, float]:
        old = group.pause_master()
        started = time.monotonic()
        try:
            group.wait_for_master(other_than=old)
            took = {"promoted": time.monotonic() - started}
            took["cache"] = eventually(lambda: cache.set("after-hang", 2), "the cache")[1]
            took["publishing"] = eventually(publish_or_raise, "the matcher's publishing")[1]
        finally:
            group.node_at(old).resume()
        group.wait_for_replica(old)
        return took

    hang_started = time.monotonic()
    took = await sync_to_async(recover, thread_sensitive=False)()
    started = time.monotonic()
    deadline = started + RECOVERY_DEADLINE
    while True:
        try:
            message = await asyncio.wait_for(layer_round_trip(layer, "after"), 15)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
    layer_took = time.monotonic() - started
    await layer.flush()
    await sync_to_async(group.wait_ready, thread_sensitive=False)()

    assert message["text"] == "after"
    assert await sync_to_async(cache.get)("after-hang") == 2
    assert group.master_client(db=DB).exists("exchange:1:after-hang") == 1
    with capsys.disabled():
        print(
            f"\nsentinel failover (master hung): promoted in {took['promoted']:.1f} s; then "
            f"working again: cache {took['cache']:.1f} s, publishing {took['publishing']:.1f} s;"
            f" the layer's subscription {time.monotonic() - hang_started:.1f} s after the hang"
            f" began, {layer_took:.1f} s after the old master was demoted"
        )


async def test_the_hub_leaves_a_hung_master_and_resyncs(sentinel_settings, group, capsys):
    # A hung master (SIGSTOP) keeps its connections open: the hub's subscription only reads
    # and would wait on it for ever, while its probes reach the new master and never come
    # back. The old master stays frozen until the hub hears the new one, so only the hub's
    # watchdog can have moved it (Sentinel demotes a master, and drops its clients, only
    # when it comes back).
    hub, subscriber = Hub(), Recorder()
    stream = "trades:HUNG-USD"
    old = None

    def publish_on(address, text: str) -> None:
        group.node_at(address).client(db=DB).publish(
            publish.layer_group_channel(stream_group(stream)),
            get_channel_layer().serialize({"type": PUBLIC_MESSAGE, "stream": stream, "text": text}),
        )

    async def until(condition, what: str) -> float:
        started = time.monotonic()
        while not condition():
            if time.monotonic() - started > RECOVERY_DEADLINE:
                raise AssertionError(f"{what} within {RECOVERY_DEADLINE} s")
            await asyncio.sleep(0.1)
        return time.monotonic() - started

    try:
        await hub.ready(timeout=30)
        await hub.add(stream, subscriber)
        master = group.master_address()
        await until(
            lambda: (publish_on(master, "before"), "before" in subscriber.texts)[1],
            "the hub receiving",
        )
        resyncs_before, reconnects_before = subscriber.resyncs, hub.reconnects

        old = await sync_to_async(group.pause_master, thread_sensitive=False)()
        hung_at = time.monotonic()
        new = await sync_to_async(group.wait_for_master, thread_sensitive=False)(old)
        promoted = time.monotonic() - hung_at
        after_promotion = await until(
            lambda: (publish_on(new, "on-new-master"), "on-new-master" in subscriber.texts)[1],
            "a message published on the new master reaching the hub",
        )
    finally:
        if old is not None:
            group.node_at(old).resume()
        await hub.stop()
    await sync_to_async(group.wait_for_replica, thread_sensitive=False)(old)
    await sync_to_async(group.wait_ready, thread_sensitive=False)()

    assert hub.reconnects > reconnects_before
    assert subscriber.resyncs > resyncs_before
    with capsys.disabled():
        print(
            f"\nsentinel failover (master hung): promoted in {promoted:.1f} s; the hub received "
            f"from the new master {after_promotion:.1f} s later, after "
            f"{hub.reconnects - reconnects_before} watchdog reconnect(s) and "
            f"{subscriber.resyncs - resyncs_before} resync(s)"
        )

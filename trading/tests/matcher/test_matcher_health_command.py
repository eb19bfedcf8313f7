"""``manage.py matcher_health``: the matcher pods' liveness probe fails only for the host
whose own heartbeat went stale, never for a standby or during a Redis outage."""

import io
import json
import socket
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_redis import get_redis_connection

from exchange_site.streams import heartbeat_key
from trading.matcher.market import MarketMatcher
from trading.matcher.runner import Matcher

pytestmark = pytest.mark.django_db

HOST = socket.gethostname()


def beat(*, host: str, age: float) -> None:
    payload = {"host": host, "pid": 1, "at": time.time() - age, "last_batch_at": None}
    get_redis_connection("default").set(heartbeat_key("BTC-USD"), json.dumps(payload))


def probe(*arguments: str) -> str:
    out = io.StringIO()
    call_command("matcher_health", *arguments, stdout=out)
    return out.getvalue()


def test_the_matchers_heartbeat_names_its_host(market):
    matcher = Matcher(["BTC-USD"])
    matcher.matchers = [MarketMatcher(market)]

    matcher._heartbeat()

    payload = json.loads(get_redis_connection("default").get(heartbeat_key("BTC-USD")))
    assert payload["host"] == HOST


def test_a_fresh_heartbeat_from_this_host_passes_as_the_leader(market):
    beat(host=HOST, age=1)

    assert probe("--markets", "BTC-USD").startswith(f"ok: {HOST} leads BTC-USD")


def test_a_stale_heartbeat_from_this_host_fails(market):
    beat(host=HOST, age=31)

    with pytest.raises(CommandError, match=r"stale heartbeat from this host .*BTC-USD \(31\.\d s"):
        probe("--markets", "BTC-USD")


def test_max_age_sets_when_this_hosts_heartbeat_is_stale(market):
    beat(host=HOST, age=5)

    with pytest.raises(CommandError, match="BTC-USD"):
        probe("--markets", "BTC-USD", "--max-age", "3")
    assert probe("--markets", "BTC-USD", "--max-age", "10").startswith("ok:")


def test_a_standby_passes_whatever_the_leaders_heartbeat_says(market):
    beat(host="matcher-btc-usd-other-pod", age=300)

    assert probe("--markets", "BTC-USD") == "ok: standby; leader matcher-btc-usd-other-pod\n"


def test_no_heartbeat_yet_passes(market):
    assert probe("--markets", "BTC-USD") == "ok: no heartbeat yet\n"


def test_without_markets_every_market_is_checked(market):
    beat(host=HOST, age=60)

    with pytest.raises(CommandError, match="BTC-USD"):
        probe()


def test_redis_down_passes_as_unknown(market, settings):
    beat(host=HOST, age=60)
    # A port nothing listens on: the real client's connection is refused.
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {**settings.CACHES["default"]["OPTIONS"], "SOCKET_CONNECT_TIMEOUT": 0.5},
        }
    }

    assert probe("--markets", "BTC-USD").startswith("unknown: Redis unavailable")

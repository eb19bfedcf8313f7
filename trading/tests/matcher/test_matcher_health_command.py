"""``manage.py matcher_health``: the matcher pods' liveness probe fails only for the host
whose own heartbeat went stale, never for a standby or during a Redis outage."""

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django_redis import get_redis_connection

from exchange_site.streams import heartbeat_key
from testsupport.stack import database_url
from trading.matcher.market import MarketMatcher
from trading.matcher.runner import Matcher
from trading.tests.factories import MarketFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[3]

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


def _manage(*arguments: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url(), "REDIS_URL": django_settings.REDIS_URL}
    return subprocess.Popen(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _probe_process(max_age: str) -> tuple[int, str]:
    probe = _manage("matcher_health", "--markets", "BTC-USD", "--max-age", max_age)
    out, err = probe.communicate(timeout=60)
    return probe.returncode, out + err


def _wait_for(condition, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.2)


@pytest.mark.django_db(transaction=True)
def test_the_probe_passes_a_running_matcher_and_fails_it_once_wedged():
    """A real ``run_matcher`` leads BTC-USD: the probe (a process, as Kubernetes runs it)
    passes; stopped with SIGSTOP (alive, holding its lock, its loop frozen) it fails."""
    MarketFactory()
    matcher = _manage("run_matcher", "--markets", "BTC-USD")
    redis = get_redis_connection("default")
    try:
        _wait_for(
            lambda: redis.get(heartbeat_key("BTC-USD")) is not None or matcher.poll() is not None,
            60,
            "the matcher wrote no heartbeat",
        )
        assert matcher.poll() is None, matcher.stderr.read()

        code, output = _probe_process("5")
        assert (code, output) == (0, f"ok: {HOST} leads BTC-USD\n")

        matcher.send_signal(signal.SIGSTOP)
        beat_at = json.loads(redis.get(heartbeat_key("BTC-USD")))["at"]
        _wait_for(lambda: time.time() - beat_at > 3, 10, "the clock did not move")
        code, output = _probe_process("2")
        assert code == 1
        assert f"stale heartbeat from this host ({HOST}): BTC-USD" in output
    finally:
        matcher.send_signal(signal.SIGCONT)
        matcher.terminate()
        matcher.communicate(timeout=30)

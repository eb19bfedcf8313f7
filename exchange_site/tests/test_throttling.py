"""Rate limits: scopes, who is counted, the defaults against a burst and against the load test,
the Binance API's weight header and per-key order limit, THROTTLING=off and a Redis outage."""

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework.settings import api_settings
from rest_framework.test import APIClient

from accounts.services import api_key_create, auth_tokens_issue
from accounts.tests.factories import UserFactory
from exchange_site.throttling import OrderPlaceRateThrottle, rate_parse
from testsupport.helpers import assert_error
from trading.tests.binance.conftest import BinanceClient

ORDERS = "/api/v1/orders"
BATCH = "/api/v1/orders/batch"
BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def rates(monkeypatch, db):
    """Set some scopes' rates for one test (the others keep their defaults)."""

    def rates(**scopes):
        for scope, rate in scopes.items():
            monkeypatch.setitem(api_settings.DEFAULT_THROTTLE_RATES, scope, rate)

    return rates


def _client(user, **extra) -> APIClient:
    client = APIClient(**extra)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {auth_tokens_issue(user=user)['access_token']}")
    return client


@pytest.mark.parametrize(
    ("rate", "parsed"),
    [
        ("50/s", (50, 1)),
        ("600/min", (600, 60)),
        ("500/10s", (500, 10)),
        ("1000/h", (1000, 3600)),
        ("2/day", (2, 86400)),
        (None, (None, None)),
        ("off", (None, None)),
    ],
)
def test_rates_parse_with_an_optional_multiple(rate, parsed):
    assert rate_parse(rate) == parsed


def test_a_bad_rate_is_a_configuration_error():
    with pytest.raises(ImproperlyConfigured):
        rate_parse("fifty a second")


def test_every_rate_is_read_from_the_environment():
    env = {
        **os.environ,
        "DEBUG": "1",
        "THROTTLE_ORDERS": "7/s",
        "THROTTLE_PRIVATE_READ": "3/min",
        "THROTTLE_MARKET_DATA": "9/10s",
        "THROTTLING": "off",
    }
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        "r = s.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES'];"
        "print(r['orders'], r['private_read'], r['market_data'], s.THROTTLING)"
    )
    env["DJANGO_SETTINGS_MODULE"] = "exchange_site.settings"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["7/s", "3/min", "9/10s", "False"]


def test_defaults_are_on_and_about_50_orders_and_20_reads_a_second(settings):
    assert settings.THROTTLING is True
    assert rate_parse(api_settings.DEFAULT_THROTTLE_RATES["orders"]) == (50, 1)
    assert rate_parse(api_settings.DEFAULT_THROTTLE_RATES["private_read"]) == (20, 1)


class _Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def _order_request(user_id: int):
    return SimpleNamespace(
        method="POST",
        auth=None,
        user=SimpleNamespace(is_authenticated=True, pk=user_id),
        META={"REMOTE_ADDR": "10.0.0.1"},
    )


def test_default_order_limit_passes_the_load_test_and_stops_a_burst(db):
    """16 users placing 500 orders/s between them for 5 s are never refused; one user firing
    300 orders back to back (2 ms apart) is, after 50 in the second."""
    clock = _Clock()
    throttle = OrderPlaceRateThrottle()
    throttle.timer = clock
    refused = 0
    for tick in range(500 * 5):
        clock.now += 1 / 500
        user_id = 1 + tick % 16
        refused += not throttle.allow_request(_order_request(user_id), None)
    assert refused == 0

    allowed = []
    for _ in range(300):
        clock.now += 0.002
        allowed.append(throttle.allow_request(_order_request(99), None))
    assert allowed[:50] == [True] * 50
    assert sum(allowed) < 100
    assert 0 < throttle.wait() <= 1


def test_concurrent_requests_never_pass_the_limit_together(rates):
    """The window is checked and updated in one Redis step: 8 workers racing for 20 slots
    get exactly 20 between them (a read-then-write window lets several take the last slot)."""
    rates(orders="20/min")
    barrier = threading.Barrier(8)

    def worker() -> int:
        throttle = OrderPlaceRateThrottle()
        barrier.wait()
        return sum(throttle.allow_request(_order_request(7), None) for _ in range(10))

    with ThreadPoolExecutor(8) as pool:
        allowed = sum(pool.map(lambda _: worker(), range(8)))
    assert allowed == 20


def test_back_to_back_orders_from_one_user_meet_the_default_limit(db):
    user = UserFactory()
    client = _client(user)
    statuses = []
    for _ in range(300):
        response = client.post(ORDERS, {}, format="json")
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[-1] == 429, "300 back-to-back orders never met the limit"
    assert statuses.count(400) >= 50
    error = assert_error(response, 429, "THROTTLED")
    assert 1 <= int(response["Retry-After"]) <= 1
    assert error["details"]["retry_after"] == int(response["Retry-After"])


def test_scopes_are_counted_apart(rates):
    rates(orders="2/min")
    client = _client(UserFactory())
    assert client.post(ORDERS, {}, format="json").status_code == 400
    assert client.post(ORDERS, {}, format="json").status_code == 400
    assert_error(client.post(ORDERS, {}, format="json"), 429, "THROTTLED")
    # Reads and cancels have their own limits.
    assert client.get(ORDERS).status_code == 200
    assert client.delete(f"{ORDERS}/999999").status_code == 404
    assert client.get("/api/v1/users/profile").status_code == 200


def test_each_user_has_their_own_count(rates):
    rates(orders="1/min", private_read="1/min")
    alice, bob = _client(UserFactory()), _client(UserFactory())
    assert alice.post(ORDERS, {}, format="json").status_code == 400
    assert_error(alice.post(ORDERS, {}, format="json"), 429, "THROTTLED")
    assert bob.post(ORDERS, {}, format="json").status_code == 400
    assert alice.get(ORDERS).status_code == 200
    assert_error(alice.get("/api/v1/users/profile"), 429, "THROTTLED")
    assert bob.get(ORDERS).status_code == 200


def test_cancels_are_limited(rates):
    rates(cancels="2/min")
    client = _client(UserFactory())
    assert client.delete(f"{ORDERS}/999999").status_code == 404
    assert client.delete(ORDERS).status_code == 202
    assert_error(client.delete(f"{ORDERS}/999999"), 429, "THROTTLED")
    assert client.post(ORDERS, {}, format="json").status_code == 400


def test_a_batch_counts_each_order(rates):
    rates(orders="30/min")
    client = _client(UserFactory())
    batch = {"orders": [{"symbol": "NOPE-USD"}] * 20}
    assert client.post(BATCH, batch, format="json").status_code == 200
    # 20 + 20 is over 30; 20 + 1 is not.
    error = assert_error(client.post(BATCH, batch, format="json"), 429, "THROTTLED")
    assert error["details"]["retry_after"] > 0
    assert client.post(ORDERS, {}, format="json").status_code == 400


def test_market_data_is_limited_per_address(rates):
    rates(market_data="2/min")
    here, there = APIClient(REMOTE_ADDR="10.1.1.1"), APIClient(REMOTE_ADDR="10.1.1.2")
    assert here.get("/api/v1/markets").status_code == 200
    assert here.get("/api/v1/markets").status_code == 200
    assert_error(here.get("/api/v1/markets"), 429, "THROTTLED")
    assert there.get("/api/v1/markets").status_code == 200


def test_auth_is_limited_per_address(rates, db):
    rates(auth="2/min")
    client = APIClient(REMOTE_ADDR="10.2.2.2")
    body = {"refresh_token": "x"}
    assert client.post("/api/v1/auth/refresh", body, format="json").status_code == 401
    assert client.post("/api/v1/auth/refresh", body, format="json").status_code == 401
    response = client.post("/api/v1/auth/login", {"email": "a@b.c", "password": "x"})
    assert_error(response, 429, "THROTTLED")
    assert int(response["Retry-After"]) > 0
    other = APIClient(REMOTE_ADDR="10.2.2.3")
    assert other.post("/api/v1/auth/refresh", body, format="json").status_code == 401


def test_throttling_off_turns_every_limit_off(rates, settings):
    rates(orders="1/min", private_read="1/min", market_data="1/min", binance="1/min")
    settings.THROTTLING = False
    client = _client(UserFactory())
    for _ in range(5):
        assert client.post(ORDERS, {}, format="json").status_code == 400
        assert client.get(ORDERS).status_code == 200
        assert APIClient().get("/api/v1/markets").status_code == 200
        response = BinanceClient().public("ping")
        assert response.status_code == 200
        assert "X-MBX-USED-WEIGHT-1M" not in response


def test_limits_are_open_while_redis_is_down(rates, settings):
    rates(orders="1/min", market_data="1/min", binance="1/min")
    client = _client(UserFactory())
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    for _ in range(3):
        assert client.post(ORDERS, {}, format="json").status_code == 400
        assert APIClient().get("/api/v1/markets").status_code == 200
        assert BinanceClient().public("ping").status_code == 200


# --- Binance API ------------------------------------------------------------------------------


def test_every_api_v3_answer_reports_the_weight_used_this_minute_per_address(db):
    here = BinanceClient(REMOTE_ADDR="10.3.3.3")
    first = here.public("ping")
    assert first["X-MBX-USED-WEIGHT-1M"] == "1"
    assert here.public("exchangeInfo")["X-MBX-USED-WEIGHT-1M"] == "21"
    assert here.public("depth", {"symbol": "NOPE"})["X-MBX-USED-WEIGHT-1M"] == "26"
    missing = here.public("nothing/here")
    assert missing.status_code == 404
    assert missing["X-MBX-USED-WEIGHT-1M"] == "27"
    unsigned = here.client.get("/api/v3/account")
    assert unsigned.status_code == 401
    assert unsigned["X-MBX-USED-WEIGHT-1M"] == "47"
    assert BinanceClient(REMOTE_ADDR="10.3.3.4").public("time")["X-MBX-USED-WEIGHT-1M"] == "1"


def test_over_the_weight_limit_is_1003_with_retry_after(rates, db):
    rates(binance="25/min")
    client = BinanceClient(REMOTE_ADDR="10.4.4.4")
    assert client.public("exchangeInfo").status_code == 200
    response = client.public("exchangeInfo")
    assert response.status_code == 429
    assert response.json()["code"] == -1003
    assert 0 < int(response["Retry-After"]) <= 60
    assert response["X-MBX-USED-WEIGHT-1M"] == "40"


def test_new_orders_are_limited_per_api_key(rates, db):
    rates(binance_orders="2/min")
    user = UserFactory()
    first_key, first_secret = api_key_create(user=user, label="a", permissions=["read", "trade"])
    other_key, other_secret = api_key_create(user=user, label="b", permissions=["read", "trade"])
    first = BinanceClient(first_key.key, first_secret)
    other = BinanceClient(other_key.key, other_secret)
    # Refused orders (no symbol) count too, like Binance's.
    response = first.signed("POST", "order", {})
    assert response.status_code == 400
    assert response["X-MBX-ORDER-COUNT-1M"] == "1"
    assert first.signed("POST", "order", {})["X-MBX-ORDER-COUNT-1M"] == "2"
    response = first.signed("POST", "order", {})
    assert response.status_code == 429
    assert response.json()["code"] == -1015
    assert "2 orders per 1M" in response.json()["msg"]
    assert int(response["Retry-After"]) > 0
    # Reads of the same key, and the user's other key, are not held back by it.
    assert first.signed("GET", "openOrders").status_code == 200
    assert other.signed("POST", "order", {}).status_code == 400

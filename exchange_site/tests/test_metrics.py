"""/metrics, the request-id and metrics middlewares, and the counters of orders, the matcher,
WebSockets and Celery.

Samples are read from this process's own metric objects (``value``): /metrics adds up
every process that shares the multiprocess directory, other test runs included, so only
its shape and access rules are asserted on the endpoint.
"""

import asyncio
import json
import logging
import re
from decimal import Decimal

import pytest
from channels.testing import WebsocketCommunicator
from django.db import transaction
from pythonjsonlogger.json import JsonFormatter
from rest_framework.test import APIClient

from accounts.services import auth_tokens_issue
from accounts.tasks import token_flush_expired_task
from exchange_site import metrics
from exchange_site.asgi import application
from exchange_site.celery import app as celery_app
from exchange_site.observability import RequestIdFilter
from marketdata.hub import Hub
from marketdata.outbox import OutboxConsumer
from trading import services
from trading.exceptions import UnknownSymbol
from trading.matcher.market import MarketMatcher
from trading.matcher.runner import Matcher
from trading.tests.conftest import market, trader  # noqa: F401 (fixtures)
from trading.tests.helpers import place


def value(metric, suffix: str = "", **labels) -> float:
    """This process's sample ``<metric name><suffix>`` with exactly ``labels`` (0 if none)."""
    for family in metric.collect():
        name = family.name + (suffix or ("_total" if family.type == "counter" else ""))
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def batch_count(symbol: str) -> float:
    return value(metrics.MATCHER_BATCH_COMMANDS, "_count", symbol=symbol)


# --- /metrics -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_from_localhost_is_prometheus_text_with_every_family(client):
    client.get("/health")

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.content.decode()
    for family in (
        "exchange_http_requests_total",
        "exchange_http_request_duration_seconds_bucket",
        "exchange_orders_accepted_total",
        "exchange_matcher_batch_commands",
        "exchange_ws_connections",
        "exchange_celery_tasks_total",
    ):
        assert f"# TYPE {family.removesuffix('_bucket').removesuffix('_total')}" in text, family
    assert 'route="health"' in text
    assert client.get("/metrics/").status_code == 200


@pytest.mark.django_db
def test_metrics_refuses_other_addresses_in_the_error_shape(client):
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "PERMISSION_DENIED"
    assert b"exchange_http" not in response.content


@pytest.mark.django_db
def test_metrics_opens_to_an_allowed_network_and_to_the_bearer_token(client, settings):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    settings.METRICS_TOKEN = "scrape-secret-1"

    assert client.get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    bearer = {"HTTP_AUTHORIZATION": "Bearer scrape-secret-1", "REMOTE_ADDR": "198.51.100.7"}
    assert client.get("/metrics", **bearer).status_code == 200
    wrong = {"HTTP_AUTHORIZATION": "Bearer scrape-secret-2", "REMOTE_ADDR": "198.51.100.7"}
    assert client.get("/metrics", **wrong).status_code == 403


@pytest.mark.django_db
def test_behind_a_proxy_the_forwarded_client_address_decides(client, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}

    outside = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    inside = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1")

    assert (outside.status_code, inside.status_code) == (403, 200)


# --- middlewares --------------------------------------------------------------------------


@pytest.mark.django_db
def test_requests_are_counted_by_route_name_and_status_and_timed(client):
    ok = value(metrics.HTTP_REQUESTS, route="health", method="GET", status="200")
    timed = value(metrics.HTTP_LATENCY, "_count", route="health")
    missing = value(metrics.HTTP_REQUESTS, route="unmatched", method="GET", status="404")

    client.get("/health")
    client.get("/health/")
    client.get("/no/such/page/12345")

    assert value(metrics.HTTP_REQUESTS, route="health", method="GET", status="200") == ok + 2
    assert value(metrics.HTTP_LATENCY, "_count", route="health") == timed + 2
    # A raw path never becomes a label value: unknown paths share one.
    assert value(metrics.HTTP_REQUESTS, route="unmatched", method="GET", status="404") == (
        missing + 1
    )


@pytest.mark.django_db
def test_a_request_id_is_made_or_kept_and_returned(client):
    made = client.get("/health")["X-Request-ID"]
    kept = client.get("/health", HTTP_X_REQUEST_ID="lb-7f3a.42")["X-Request-ID"]
    forged = client.get("/health", HTTP_X_REQUEST_ID="x\ninjected log line")["X-Request-ID"]

    assert re.fullmatch("[0-9a-f]{32}", made)
    assert kept == "lb-7f3a.42"
    assert re.fullmatch("[0-9a-f]{32}", forged)


@pytest.fixture
def order_logs(caplog):
    """DEBUG records of the order trail, with the request id the console handler adds."""
    caplog.handler.addFilter(RequestIdFilter())
    caplog.set_level(logging.DEBUG, logger="trading.orders")
    caplog.set_level(logging.DEBUG, logger="trading.matcher")
    return caplog


@pytest.mark.django_db(transaction=True)  # on_commit runs at once, inside the request
def test_an_order_is_followable_from_its_request_to_its_matcher_batch(
    market,  # noqa: F811
    trader,  # noqa: F811
    order_logs,
):
    user = trader(market, usd="1000")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {auth_tokens_issue(user=user)['access_token']}")

    response = api.post(
        "/api/v1/orders/",
        {
            "symbol": "BTC-USD",
            "side": "buy",
            "order_type": "limit",
            "price": "100",
            "quantity": "1",
        },
        format="json",
        HTTP_X_REQUEST_ID="trace-order-1",
    )
    assert response.status_code == 201, response.content
    order_id = response.json()["id"]
    matcher = Matcher(["BTC-USD"])
    matcher.matchers = [MarketMatcher(market)]
    assert matcher.run_once() is True

    accepted = [r for r in order_logs.records if r.name == "trading.orders"]
    assert [(r.request_id, r.getMessage().split()[1]) for r in accepted] == [
        ("trace-order-1", str(order_id))
    ]
    batches = [r.getMessage() for r in order_logs.records if r.name == "trading.matcher"]
    assert any(
        "BTC-USD" in line and str(order_id) in line.split("orders ")[1].split(",")
        for line in batches
    ), batches


def test_json_log_lines_carry_the_request_id(settings):
    options = dict(settings.LOGGING["formatters"]["json"])
    formatter = JsonFormatter(options["format"], rename_fields=options["rename_fields"], style="%")
    record = logging.LogRecord("trading.orders", logging.INFO, __file__, 1, "order %s", (7,), None)
    record.request_id = "abc-1"

    line = json.loads(formatter.format(record))

    assert line["message"] == "order 7"
    assert (line["level"], line["logger"], line["request_id"]) == (
        "INFO",
        "trading.orders",
        "abc-1",
    )


# --- orders -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # acceptance is counted on commit
def test_orders_are_counted_accepted_or_refused_by_code(market, trader):  # noqa: F811
    user = trader(market, usd="1000")
    accepted = value(metrics.ORDERS_ACCEPTED)
    unknown = value(metrics.ORDERS_REFUSED, code="UNKNOWN_SYMBOL")
    poor = value(metrics.ORDERS_REFUSED, code="INSUFFICIENT_BALANCE")

    place(user, side="buy", price="100", quantity="1")
    with pytest.raises(UnknownSymbol) as refused:
        place(user, symbol="NOPE-USD", side="buy", price="100", quantity="1")
    assert refused.value.code == "UNKNOWN_SYMBOL"
    results = services.order_place_batch(
        user=user,
        requests=[
            services.OrderRequest(
                symbol="BTC-USD",
                side="buy",
                order_type="limit",
                price=Decimal("100"),
                quantity=Decimal("2"),
            ),
            services.OrderRequest(
                symbol="BTC-USD",
                side="buy",
                order_type="limit",
                price=Decimal("100"),
                quantity=Decimal("500"),
            ),
        ],
    )
    assert results[1].code == "INSUFFICIENT_BALANCE"

    assert value(metrics.ORDERS_ACCEPTED) == accepted + 2
    assert value(metrics.ORDERS_REFUSED, code="UNKNOWN_SYMBOL") == unknown + 1
    assert value(metrics.ORDERS_REFUSED, code="INSUFFICIENT_BALANCE") == poor + 1


@pytest.mark.django_db(transaction=True)
def test_an_order_rolled_back_is_not_counted_as_accepted(market, trader):  # noqa: F811
    user = trader(market, usd="1000")
    accepted = value(metrics.ORDERS_ACCEPTED)

    with transaction.atomic():  # as /api/v3/order/test does
        place(user, side="buy", price="100", quantity="1")
        transaction.set_rollback(True)

    assert value(metrics.ORDERS_ACCEPTED) == accepted


# --- the matcher --------------------------------------------------------------------------


def test_a_matcher_batch_moves_the_histograms_and_the_backlog_gauges(market, trader):  # noqa: F811
    user = trader(market, usd="1000")
    place(user, side="buy", price="100", quantity="1")
    place(user, side="buy", price="99", quantity="1")
    matcher = Matcher(["BTC-USD"])
    matcher.matchers = [MarketMatcher(market)]
    batches = batch_count("BTC-USD")
    commands = value(metrics.MATCHER_BATCH_COMMANDS, "_sum", symbol="BTC-USD")

    matcher.metrics.backlog_observe(matcher.matchers)
    assert value(metrics.MATCHER_PENDING, symbol="BTC-USD") == 2
    assert value(metrics.MATCHER_LAG, symbol="BTC-USD") >= 0
    assert matcher.run_once() is True

    assert batch_count("BTC-USD") == batches + 1
    assert value(metrics.MATCHER_BATCH_COMMANDS, "_sum", symbol="BTC-USD") == commands + 2
    assert value(metrics.MATCHER_BATCH_SECONDS, "_count", symbol="BTC-USD") >= 1
    matcher.metrics._backlog_due = 0.0  # the once-a-second limit, for the test
    matcher.metrics.backlog_observe(matcher.matchers)
    assert value(metrics.MATCHER_PENDING, symbol="BTC-USD") == 0
    assert value(metrics.MATCHER_LAG, symbol="BTC-USD") == 0


# --- WebSockets ---------------------------------------------------------------------------


class _Listener:
    def __init__(self):
        self.got = []

    def deliver(self, stream, text, frame):
        self.got.append(text)

    def resync(self, stream):
        pass


def test_the_hub_counts_a_fan_out_once_for_all_its_subscribers():
    hub = Hub()
    listeners = [_Listener() for _ in range(3)]
    hub.subscribers["trades:BTC-USD"] = set(listeners)
    before = value(metrics.WS_MESSAGES_SENT, kind="fanout")

    hub.publish_local("trades:BTC-USD", '{"type": "trade"}')
    hub.publish_local("trades:ETH-USD", '{"type": "trade"}')  # nobody listens

    assert value(metrics.WS_MESSAGES_SENT, kind="fanout") == before + 3
    assert all(listener.got == ['{"type": "trade"}'] for listener in listeners)


class _SlowClient(OutboxConsumer):
    def __init__(self):
        self.outbox = asyncio.Queue(maxsize=2)
        self.direct = None
        self.sending = False
        self.resynced = 0

    def _fell_behind(self):
        self.resynced += 1
        while not self.outbox.empty():
            self.outbox.get_nowait()


def test_a_slow_client_s_lost_messages_are_counted_as_dropped():
    client = _SlowClient()
    before = value(metrics.WS_MESSAGES_DROPPED)

    for n in range(3):
        client.deliver_text(f"message {n}")

    assert client.resynced == 1
    assert value(metrics.WS_MESSAGES_DROPPED) == before + 3  # the backlog of 2 and the third


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("hub_stopped")
async def test_websocket_connections_are_gauged_and_outbox_sends_counted():
    connections = value(metrics.WS_CONNECTIONS)
    communicator = WebsocketCommunicator(application, "/ws/")
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from() == {"type": "pong"}

    assert value(metrics.WS_CONNECTIONS) == connections + 1
    await communicator.disconnect()
    assert value(metrics.WS_CONNECTIONS) == connections


# --- Celery -------------------------------------------------------------------------------


@celery_app.task(name="exchange_site.tests.metrics_failing_task")
def _failing_task():
    raise ValueError("boom")


@pytest.mark.django_db
def test_celery_task_outcomes_are_counted():
    name = token_flush_expired_task.name
    succeeded = value(metrics.CELERY_TASKS, task=name, outcome="succeeded")
    failed = value(metrics.CELERY_TASKS, task=_failing_task.name, outcome="failed")

    assert token_flush_expired_task.apply().successful()
    assert _failing_task.apply().failed()

    assert value(metrics.CELERY_TASKS, task=name, outcome="succeeded") == succeeded + 1
    assert value(metrics.CELERY_TASKS, task=_failing_task.name, outcome="failed") == failed + 1

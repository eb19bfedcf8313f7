"""The WSGI-level order route (trading/api/order_route.py) answers exactly as Django's full
application does: every request is sent once through ``OrderEntryRoute`` and once through a
plain ``WSGIHandler`` with the order fast path off (the whole middleware stack and DRF's
view), and the status, the headers and the body must be the same; requests the route does
not take must reach the application untouched."""

import io
import json
from decimal import Decimal

import pytest
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections
from django_redis import get_redis_connection
from rest_framework.settings import api_settings

from accounts.models import AuthSession
from accounts.services import auth_tokens_issue, user_freeze
from accounts.sessions import auth_session_revoke
from accounts.tests.factories import UserFactory
from exchange_site import metrics, wsgi
from exchange_site.db_router import user_pinned
from trading import services
from trading.api import order_route
from trading.api.order_route import OrderEntryRoute
from trading.models import Market, Order
from trading.tests.api.test_order_fast_path import BAD_BODIES, GOOD
from wallets.models import Balance, LedgerEntry

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders/"


@pytest.fixture(autouse=True)
def _test_connection():
    """As Django's test client does: the test's transaction must outlive each request, so
    the connection-age check of request_started and request_finished stays off."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def alice(market, trader):
    return trader(market, usd="1000", btc="1")


class Answer:
    def __init__(self, status: str, headers: list, content: bytes):
        self.status, self.content = status, content
        self.status_code = int(status.split()[0])
        self.headers = dict(headers)
        assert len(self.headers) == len(headers), headers  # no header twice

    def json(self):
        return json.loads(self.content)


class CountingApp:
    """The Django application, counting the requests that reach it."""

    def __init__(self):
        self.handler = WSGIHandler()
        self.calls = 0

    def __call__(self, environ, start_response):
        self.calls += 1
        return self.handler(environ, start_response)


def _environ(body, authorization=None, path=ORDERS, **extra) -> dict:
    data = (body if isinstance(body, str) else json.dumps(body)).encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(data)),
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "localhost",
        "HTTP_X_REQUEST_ID": "parity-1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(data),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if authorization:
        environ["HTTP_AUTHORIZATION"] = authorization
    environ.update(extra)
    return environ


def _call(app, environ) -> Answer:
    started = []
    result = app(environ, lambda status, headers, exc_info=None: started.append((status, headers)))
    try:
        content = b"".join(result)
    finally:
        result.close()
    (status, headers), *more = started
    assert not more
    return Answer(status, headers, content)


def _route(settings, environ) -> tuple[Answer, CountingApp]:
    settings.ORDER_ENTRY_FAST_PATH = True
    app = CountingApp()
    return _call(OrderEntryRoute(app), environ), app


def _full(settings, environ) -> Answer:
    settings.ORDER_ENTRY_FAST_PATH = False
    return _call(WSGIHandler(), environ)


def _both(settings, body, authorization, **extra) -> tuple[Answer, Answer, CountingApp]:
    get_redis_connection("default").flushdb()  # the same throttle state for both
    routed, app = _route(settings, _environ(body, authorization, **extra))
    get_redis_connection("default").flushdb()
    full = _full(settings, _environ(body, authorization, **extra))
    return routed, full, app


def _bearer(user) -> str:
    return f"Bearer {auth_tokens_issue(user=user)['access_token']}"


def _assert_same(routed: Answer, full: Answer):
    assert routed.status == full.status, (routed.content, full.content)
    assert routed.headers == full.headers
    assert routed.content == full.content


def _state(user) -> tuple:
    balances = sorted(Balance.objects.filter(user=user).values_list("available", "locked"))
    return balances, LedgerEntry.objects.count(), Order.objects.count()


@pytest.mark.parametrize("path", ["/api/v1/orders/", "/api/v1/orders"], ids=["slash", "no-slash"])
def test_an_accepted_order_is_answered_alike_without_the_application(settings, alice, path):
    routed, full, app = _both(settings, GOOD, _bearer(alice), path=path)

    assert routed.status_code == full.status_code == 201
    assert app.calls == 0  # the route answered it alone
    first, second = routed.json(), full.json()
    assert second["id"] == first["id"] + 1
    differ = {"id", "created_at", "updated_at"}
    assert {k: v for k, v in first.items() if k not in differ} == {
        k: v for k, v in second.items() if k not in differ
    }
    assert routed.headers == full.headers  # the same length: ids and times of equal width
    assert routed.headers["X-Request-ID"] == "parity-1"
    assert Order.objects.get(pk=first["id"]).reserved == Decimal("100")
    assert Order.objects.count() == 2


@pytest.mark.parametrize("body", BAD_BODIES)
def test_a_refused_order_is_answered_alike_and_changes_nothing(settings, alice, usd, body):
    before = _state(alice)

    routed, full, _app = _both(settings, body, _bearer(alice))

    assert 400 <= routed.status_code < 500
    _assert_same(routed, full)
    assert _state(alice) == before


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-token", "Bearer ", "Token abc"],
    ids=["no-auth", "bad-token", "empty-token", "other-scheme"],
)
def test_unauthenticated_orders_are_answered_alike(settings, authorization):
    routed, full, _app = _both(settings, GOOD, authorization)

    assert routed.status_code == 401
    _assert_same(routed, full)


def test_a_revoked_session_and_a_frozen_user_are_answered_alike(settings, alice):
    revoked = _bearer(alice)
    auth_session_revoke(
        user=alice, session_id=AuthSession.objects.filter(user=alice).latest("pk").pk
    )
    routed, full, _app = _both(settings, GOOD, revoked)
    assert routed.status_code == 401
    _assert_same(routed, full)

    frozen = _bearer(alice)
    user_freeze(user_id=alice.pk, actor=UserFactory(is_staff=True), reason="parity")
    routed, full, _app = _both(settings, GOOD, frozen)
    assert routed.status_code == 403
    _assert_same(routed, full)
    assert not Order.objects.exists()


def test_a_halted_market_is_answered_alike_and_changes_nothing(settings, alice, market):
    Market.objects.filter(pk=market.pk).update(status=Market.Status.HALTED)
    settings.ORDER_ENTRY_MARKET_CACHE_SECONDS = 0
    before = _state(alice)

    routed, full, app = _both(settings, GOOD, _bearer(alice))

    assert routed.status_code == 422
    assert routed.json()["error"]["code"] == "MARKET_HALTED"
    assert app.calls == 0  # refused by the service, after the throttle: the route answers
    _assert_same(routed, full)
    assert _state(alice) == before


def test_a_throttled_order_is_answered_alike_and_counted_once(settings, monkeypatch, alice):
    monkeypatch.setitem(api_settings.DEFAULT_THROTTLE_RATES, "orders", "2/min")
    authorization = _bearer(alice)
    answers = {}
    for name, send in (("route", lambda e: _route(settings, e)[0]), ("full", _full_of(settings))):
        get_redis_connection("default").flushdb()
        # A refused order counts too (DRF's throttles run first): both count it once.
        statuses = [
            send(_environ({**GOOD, "price": "-1"}, authorization)).status_code,
            send(_environ(GOOD, authorization)).status_code,
        ]
        answers[name] = send(_environ(GOOD, authorization))
        assert statuses == [400, 201]

    assert answers["route"].status_code == 429
    assert answers["route"].headers["Retry-After"]
    _assert_same(answers["route"], answers["full"])
    assert Order.objects.count() == 2


def _full_of(settings):
    return lambda environ: _full(settings, environ)


def test_a_bug_is_a_500_in_the_error_shape_alike(settings, monkeypatch, alice):
    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(services, "order_place", broken)

    routed, full, _app = _both(settings, GOOD, _bearer(alice))

    assert routed.status_code == 500
    assert routed.json()["error"]["code"] == full.json()["error"]["code"]
    _assert_same(routed, full)


def test_a_retry_with_its_client_order_id_is_answered_alike(settings, alice):
    body = {**GOOD, "client_order_id": "retry-1"}
    first, _app = _route(settings, _environ(body, _bearer(alice)))
    assert first.status_code == 201

    routed, full, _app = _both(settings, body, _bearer(alice))

    assert routed.status_code == 200
    _assert_same(routed, full)
    assert Order.objects.count() == 1


@pytest.mark.parametrize(
    "extra",
    [
        {"HTTP_COOKIE": "sessionid=abc"},
        {"QUERY_STRING": "format=json"},
        {"HTTP_ACCEPT": "text/html"},
        {"CONTENT_TYPE": "application/x-www-form-urlencoded"},
        {"CONTENT_TYPE": "application/json; charset=latin-1"},
        {"REQUEST_METHOD": "PUT"},
        {"PATH_INFO": "/api/v1/orders/batch"},
    ],
    ids=["cookie", "query", "html", "form", "latin-1", "put", "other-path"],
)
def test_other_requests_reach_the_application_untouched(settings, alice, extra):
    routed, app = _route(settings, _environ(GOOD, _bearer(alice), **extra))

    assert app.calls == 1
    assert routed.status_code != 201 or Order.objects.count() == 1


def test_a_refusal_before_the_throttle_reaches_the_application_with_its_body(settings, alice):
    # The route read the body: the application must get it again, whole.
    routed, app = _route(settings, _environ({**GOOD, "price": "-1"}, _bearer(alice)))

    assert app.calls == 1
    assert routed.status_code == 400
    assert routed.json()["error"]["details"]["price"]


def test_a_host_not_allowed_reaches_the_application(settings, alice):
    routed, app = _route(settings, _environ(GOOD, _bearer(alice), HTTP_HOST="evil.example"))

    assert app.calls == 1
    assert routed.status_code == 400
    assert not Order.objects.exists()


def test_the_ssl_redirect_is_the_applications(settings, alice):
    settings.SECURE_SSL_REDIRECT = True

    routed, app = _route(settings, _environ(GOOD, _bearer(alice)))

    assert app.calls == 1
    assert routed.status_code == 301
    assert not Order.objects.exists()


def test_the_route_steps_aside_for_a_middleware_it_does_not_know(settings, alice):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.middleware.gzip.GZipMiddleware"]

    routed, app = _route(settings, _environ(GOOD, _bearer(alice)))

    assert app.calls == 1
    assert routed.status_code == 201


def test_the_route_stands_in_for_exactly_the_configured_middleware(settings):
    # A new middleware in settings must be reviewed here: the route would step aside for it.
    assert tuple(settings.MIDDLEWARE) == order_route.ANSWERED_MIDDLEWARE


def test_the_route_counts_the_request_and_sends_the_request_signals(settings, alice):
    sent = []

    def started(sender, **kwargs):
        sent.append("started")

    def finished(sender, **kwargs):
        sent.append("finished")

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    labels = {"route": "orders", "method": "POST", "status": "201"}
    before = _metric(metrics.HTTP_REQUESTS, **labels)
    try:
        routed, app = _route(settings, _environ(GOOD, _bearer(alice)))
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)

    assert routed.status_code == 201
    assert app.calls == 0
    assert sent == ["started", "finished"]
    assert _metric(metrics.HTTP_REQUESTS, **labels) == before + 1


def test_a_request_without_an_id_gets_one(settings, alice):
    environ = _environ(GOOD, _bearer(alice))
    del environ["HTTP_X_REQUEST_ID"]

    routed, _app = _route(settings, environ)

    assert routed.status_code == 201
    assert len(routed.headers["X-Request-ID"]) == 32


def test_the_web_process_serves_through_the_route():
    assert isinstance(wsgi.application, OrderEntryRoute)
    assert wsgi.application.app is wsgi.django_application


def _metric(metric, **labels) -> float:
    for family in metric.collect():
        for sample in family.samples:
            if sample.name == family.name + "_total" and sample.labels == labels:
                return sample.value
    return 0.0


@pytest.fixture
def replica_configured(settings):
    """A replica alias in the settings, as ``DATABASE_REPLICA_URLS`` makes one: the pin is
    set only when there is one. Nothing here connects to it."""
    settings.DATABASE_READ_YOUR_WRITES_SECONDS = 10.0
    connections.settings["replica_0"] = dict(connections[DEFAULT_DB_ALIAS].settings_dict)
    try:
        yield
    finally:
        del connections.settings["replica_0"]


def test_an_accepted_order_pins_its_user_as_the_middleware_does(
    settings, alice, replica_configured
):
    get_redis_connection("default").flushdb()
    refused, _app = _route(settings, _environ({**GOOD, "quantity": "100"}, _bearer(alice)))
    assert refused.status_code == 422
    assert not user_pinned(alice.pk)

    accepted, app = _route(settings, _environ(GOOD, _bearer(alice)))

    assert accepted.status_code == 201
    assert app.calls == 0
    assert user_pinned(alice.pk)

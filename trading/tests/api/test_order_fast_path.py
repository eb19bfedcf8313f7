"""POST /api/v1/orders/'s fast path (OrderListCreateApi._post_fast) answers exactly as the
full DRF view does: every request is sent once with the fast path and once without
(``ORDER_ENTRY_FAST_PATH``), and the status, the headers and the body must be the same."""

import json
from decimal import Decimal

import pytest
from django_redis import get_redis_connection
from rest_framework.settings import api_settings
from rest_framework.test import APIClient

from accounts.models import AuthSession
from accounts.services import auth_tokens_issue, user_freeze
from accounts.sessions import auth_session_revoke
from accounts.tests.factories import UserFactory
from trading.api.views import OrderListCreateApi
from trading.models import Order

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders/"
REQUEST_ID = "parity-1"
GOOD = {"symbol": "BTC-USD", "side": "buy", "order_type": "limit", "price": "100", "quantity": "1"}


@pytest.fixture
def full_views(monkeypatch):
    """How many requests went through DRF's full ``initial`` (authentication, throttles...)."""
    calls = []
    initial = OrderListCreateApi.initial

    def counting_initial(self, request, *args, **kwargs):
        calls.append(request.method)
        return initial(self, request, *args, **kwargs)

    monkeypatch.setattr(OrderListCreateApi, "initial", counting_initial)
    return calls


@pytest.fixture
def alice(market, trader):
    return trader(market, usd="1000", btc="1")


def _bearer(user) -> str:
    return f"Bearer {auth_tokens_issue(user=user)['access_token']}"


def _send(settings, fast: bool, body, authorization: str | None, **headers):
    settings.ORDER_ENTRY_FAST_PATH = fast
    client = APIClient()
    if authorization:
        headers["HTTP_AUTHORIZATION"] = authorization
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(
        ORDERS, data=data, content_type="application/json", HTTP_X_REQUEST_ID=REQUEST_ID, **headers
    )


def _both(settings, body, authorization, **headers):
    get_redis_connection("default").flushdb()  # the same throttle state for both
    fast = _send(settings, True, body, authorization, **headers)
    get_redis_connection("default").flushdb()
    full = _send(settings, False, body, authorization, **headers)
    return fast, full


def _assert_same(fast, full):
    assert fast.status_code == full.status_code, (fast.content, full.content)
    assert dict(fast.headers) == dict(full.headers)
    assert fast.content == full.content


BAD_BODIES = [
    pytest.param('{"symbol": "BTC-USD", "side": ', id="bad-json"),
    pytest.param('{"price": NaN}', id="nan"),
    pytest.param("[1, 2]", id="not-an-object"),
    pytest.param({}, id="missing-fields"),
    pytest.param({**GOOD, "price": "abc"}, id="bad-decimal"),
    pytest.param({**GOOD, "price": "-1"}, id="negative-price"),
    pytest.param({**GOOD, "quantity": "0.123456789"}, id="quantity-step"),
    pytest.param({**GOOD, "symbol": "NOPE-USD"}, id="unknown-symbol"),
    pytest.param({**GOOD, "quantity": "100"}, id="insufficient-balance"),
    pytest.param({**GOOD, "side": "sideways"}, id="bad-side"),
    pytest.param({**GOOD, "client_order_id": "bad id!"}, id="bad-client-order-id"),
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_a_refused_order_is_answered_alike_and_changes_nothing(settings, alice, usd, body):
    fast, full = _both(settings, body, _bearer(alice))

    assert 400 <= fast.status_code < 500
    _assert_same(fast, full)
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-token", "Bearer ", "Token abc"],
    ids=["no-auth", "bad-token", "empty-token", "other-scheme"],
)
def test_unauthenticated_orders_are_answered_alike(settings, authorization):
    fast, full = _both(settings, GOOD, authorization)

    assert fast.status_code == 401
    _assert_same(fast, full)


def test_a_revoked_session_is_answered_alike(settings, alice):
    authorization = _bearer(alice)
    session = AuthSession.objects.filter(user=alice).latest("pk")
    auth_session_revoke(user=alice, session_id=session.pk)

    fast, full = _both(settings, GOOD, authorization)

    assert fast.status_code == 401
    assert fast.json()["error"]["code"] == full.json()["error"]["code"]
    _assert_same(fast, full)
    assert not Order.objects.exists()


def test_a_frozen_user_is_answered_alike(settings, alice):
    authorization = _bearer(alice)
    user_freeze(user_id=alice.pk, actor=UserFactory(is_staff=True), reason="parity")

    fast, full = _both(settings, GOOD, authorization)

    assert fast.status_code == 403
    _assert_same(fast, full)


def test_a_throttled_order_is_answered_alike_and_counted_once(settings, monkeypatch, alice):
    monkeypatch.setitem(api_settings.DEFAULT_THROTTLE_RATES, "orders", "2/min")
    authorization = _bearer(alice)
    answers = {}
    for fast in (True, False):
        get_redis_connection("default").flushdb()
        # A refused order counts too (DRF's throttles run first): both paths count it once.
        statuses = [
            _send(settings, fast, {**GOOD, "price": "-1"}, authorization).status_code,
            _send(settings, fast, GOOD, authorization).status_code,
        ]
        answers[fast] = _send(settings, fast, GOOD, authorization)
        assert statuses == [400, 201]

    assert answers[True].status_code == 429
    assert answers[True]["Retry-After"]
    _assert_same(answers[True], answers[False])
    assert Order.objects.count() == 2


def test_an_accepted_order_is_answered_alike(settings, alice, full_views):
    fast, full = _both(settings, GOOD, _bearer(alice))

    assert fast.status_code == full.status_code == 201
    assert full_views == ["POST"]  # only the second request went through DRF's initial
    first, second = fast.json(), full.json()
    assert second["id"] == first["id"] + 1
    differ = {"id", "created_at", "updated_at"}
    assert {k: v for k, v in first.items() if k not in differ} == {
        k: v for k, v in second.items() if k not in differ
    }
    assert first.keys() == second.keys()
    assert {k: v for k, v in fast.headers.items() if k != "Content-Length"} == {
        k: v for k, v in full.headers.items() if k != "Content-Length"
    }
    assert Order.objects.count() == 2
    assert Order.objects.get(pk=first["id"]).reserved == Decimal("100")


def test_a_retry_with_its_client_order_id_is_answered_alike(settings, alice):
    body = {**GOOD, "client_order_id": "retry-1"}
    _send(settings, True, body, _bearer(alice))

    fast, full = _both(settings, body, _bearer(alice))

    assert fast.status_code == 200
    _assert_same(fast, full)
    assert Order.objects.count() == 1


def test_other_requests_take_the_full_view(settings, alice, full_views):
    authorization = _bearer(alice)
    settings.ORDER_ENTRY_FAST_PATH = True
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=authorization)

    html = client.get(ORDERS, HTTP_ACCEPT="text/html")
    form = client.post(ORDERS, GOOD)  # multipart
    as_html = client.post(ORDERS, GOOD, format="json", HTTP_ACCEPT="text/html")
    options = client.options(ORDERS)
    listed = client.get(ORDERS)

    assert html.status_code == 200
    assert html["Content-Type"].startswith("text/html")
    assert b"<form" in html.content
    assert form.status_code == 201
    assert as_html.status_code == 201
    assert as_html["Content-Type"].startswith("text/html")
    assert options.status_code == 200
    assert options.json()["name"]
    assert listed.status_code == 200
    assert listed.json()["count"] == 2
    assert full_views == ["GET", "POST", "POST", "OPTIONS", "GET"]

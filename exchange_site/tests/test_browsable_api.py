"""People at the browsable API are clients too: every write operation's HTML form shows the
fields its request serializer reads (the order form has price and quantity), and the forms
work from a browser's session, CSRF token and all."""

import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import get_resolver
from rest_framework import serializers

from accounts.tests.admin.fixtures import fund
from accounts.tests.factories import UserFactory
from exchange_site.renderers import request_serializer_class
from exchange_site.tests.test_ownership_sweep import walk
from trading.models import Order
from trading.tests.factories import MarketFactory
from wallets.models import Withdrawal, WithdrawalAddress, WithdrawalProfile

pytestmark = pytest.mark.django_db

WRITE_METHODS = ("post", "put", "patch")
FORMLESS = (
    serializers.ListField,
    serializers.ListSerializer,
    serializers.Serializer,
    serializers.DictField,
    serializers.JSONField,
)
FIELD = re.compile(r'<(?:input|select|textarea)[^>]*\bname="([A-Za-z_]+)"')


def _write_operations():
    """(path, method, view class) of every write operation without path parameters whose
    schema names a request serializer."""
    found = []
    for patterns, entry in walk(get_resolver().url_patterns):
        view_class = getattr(entry.callback, "cls", None)
        path = "/" + "".join(str(p) for p in patterns)
        if view_class is None or "<" in path or "(?P" in path or "admin/" in path:
            continue
        path = path.replace("^", "").replace("$", "").replace("/?", "").replace("\\", "")
        for method in WRITE_METHODS:
            if hasattr(view_class, method):
                found.append((path, method, view_class))
    return found


@pytest.fixture
def browser(db):
    """A logged-in browser session; CSRF is checked as on the real site."""
    client = Client(enforce_csrf_checks=True)
    user = UserFactory()
    client.force_login(user)
    client.user = user
    return client


def _csrf(client, path) -> str:
    page = client.get(path, HTTP_ACCEPT="text/html").content.decode()
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def test_every_write_form_shows_the_fields_its_operation_reads(browser, rf):
    checked = []
    for path, method, view_class in _write_operations():
        view = view_class()
        view.request, view.args, view.kwargs = rf.generic(method.upper(), path), (), {}
        serializer_class = request_serializer_class(view, method)
        if serializer_class is None:
            continue
        fields = serializer_class().fields
        writable = {name for name, field in fields.items() if not field.read_only}
        page = browser.get(path, HTTP_ACCEPT="text/html")
        assert page["Content-Type"].startswith("text/html"), path
        html = page.content.decode()
        shown = set(FIELD.findall(html))
        # Lists and objects have no HTML input: they are in the raw JSON form.
        formless = {name for name in writable if isinstance(fields[name], FORMLESS)}
        missing = {name for name in writable - formless if name not in shown}
        missing |= {name for name in formless if f"&quot;{name}&quot;" not in html}
        assert not missing, (path, method, missing)
        checked.append((path, method))

    paths = {path for path, _ in checked}
    assert {"/api/v1/orders", "/api/v1/wallets/withdrawals", "/api/v1/wallets/addresses"} <= paths
    assert len(checked) >= 20, checked


def test_the_order_form_has_price_and_quantity_not_the_answers_fields(browser):
    page = browser.get("/api/v1/orders", HTTP_ACCEPT="text/html").content.decode()
    form = page[page.index('id="post-object-form"') :]

    fields = set(FIELD.findall(form))

    assert {"symbol", "side", "order_type", "price", "quantity", "time_in_force"} <= fields
    assert "filled_quantity" not in fields  # an answer's field, not an input


def test_an_order_placed_from_the_html_form(browser):
    market = MarketFactory()
    fund(browser.user, market.quote_asset, "1000")

    response = browser.post(
        "/api/v1/orders",
        {
            "symbol": market.symbol,
            "side": "buy",
            "order_type": "limit",
            "price": "100",
            "quantity": "0.5",
            "time_in_force": "GTC",
            "stop_price": "",
            "quote_quantity": "",
            "client_order_id": "",
            "csrfmiddlewaretoken": _csrf(browser, "/api/v1/orders"),
        },
        HTTP_ACCEPT="text/html",
    )

    assert response.status_code == 201, response.content[:500]
    order = Order.objects.get(user=browser.user)
    assert (order.price, order.quantity) == (Decimal(100), Decimal("0.5"))


def test_a_form_post_without_the_csrf_token_is_refused(browser):
    market = MarketFactory()
    fund(browser.user, market.quote_asset, "1000")

    response = browser.post(
        "/api/v1/orders",
        {"symbol": market.symbol, "side": "buy", "order_type": "limit", "price": "100",
         "quantity": "0.5"},
    )  # fmt: skip

    assert response.status_code == 403
    assert not Order.objects.exists()


def test_withdrawal_forms_from_the_browser(browser):
    fund(browser.user, MarketFactory().base_asset, "1")
    token = _csrf(browser, "/api/v1/wallets/addresses")

    saved = browser.post(
        "/api/v1/wallets/addresses",
        {"asset": "BTC", "address": "bc1qform", "label": "From the form", "otp_code": "",
         "csrfmiddlewaretoken": token},
    )  # fmt: skip
    made = browser.post(
        "/api/v1/wallets/withdrawals",
        {"asset": "BTC", "amount": "0.1", "address": "bc1qform", "address_id": "",
         "otp_code": "", "csrfmiddlewaretoken": token},
    )  # fmt: skip
    switched = browser.put(
        "/api/v1/wallets/withdrawal-settings",
        "allowlist_enabled=true&otp_code=",
        content_type="application/x-www-form-urlencoded",
        HTTP_X_CSRFTOKEN=token,
    )

    assert saved.status_code == 201, saved.content
    assert made.status_code == 201, made.content
    assert switched.status_code == 200, switched.content
    assert WithdrawalAddress.objects.get().label == "From the form"
    assert Withdrawal.objects.get().address == "bc1qform"
    assert WithdrawalProfile.objects.get(user=browser.user).allowlist_enabled is True

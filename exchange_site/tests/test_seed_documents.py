"""The seed systems' own documents (../shared/seeds/), replayed: each REST example their
API sections show, with the bodies and queries as written (JSON floats, ``BTC%2FUSD``,
``?status=pending``, trailing slashes), answers as this exchange gives them. Where a seed's
shape clashes with ours, docs/API.md says which wins and why. The WebSocket examples of
seeds 000 and 001 are replayed in marketdata/tests/test_streams.py (the compatibility
endpoint); every seed's examples, REST and WebSocket, against the running processes in
test_seed_documents_live.py."""

from decimal import Decimal

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.tests.admin.fixtures import fund
from accounts.tests.factories import UserFactory
from trading.models import Order
from trading.tests.factories import MarketFactory
from trading.tests.helpers import drain, place

pytestmark = pytest.mark.django_db

BODY = {"content_type": "application/json"}


@pytest.fixture
def market(db):
    return MarketFactory()  # BTC-USD, which the documents write BTC/USD


@pytest.fixture
def client_of_seed_000(market):
    """Registered and logged in exactly as seed 000's "Authentication" examples do."""
    client = APIClient()
    registered = client.post(
        "/api/v1/auth/register",
        '{"email": "user@example.com", "username": "username", '
        '"password": "password123-but-longer", "full_name": "John Doe"}',
        **BODY,
    )
    assert registered.status_code == 201, registered.content
    login = client.post(
        "/api/v1/auth/login",
        '{"email": "user@example.com", "password": "password123-but-longer"}',
        **BODY,
    )
    assert login.status_code == 200
    assert login.json()["token_type"].lower() == "bearer"
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {login.json()['access_token']}")
    with override_settings(DEMO_DEPOSITS=True):
        client.post("/api/v1/wallets/deposits", {"asset": "USD", "amount": "100000"}, format="json")
    return client


def test_seed_000_trading_and_user_examples(client_of_seed_000):
    client = client_of_seed_000

    created = client.post(
        "/api/v1/orders/",
        '{"symbol": "BTC/USD", "side": "buy", "order_type": "limit", "quantity": 1.5, '
        '"price": 50000.00}',
        **BODY,
    )
    assert created.status_code == 201, created.content
    order_id = created.json()["id"]
    assert Order.objects.get(pk=order_id).quantity == Decimal("1.5")

    assert client.get(f"/api/v1/orders/{order_id}").json()["id"] == order_id
    pending = client.get("/api/v1/orders/?status=pending").json()["results"]
    assert [o["id"] for o in pending] == [order_id]
    book = client.get("/api/v1/orders/book/BTC%2FUSD?depth=10")
    assert book.status_code == 200
    assert client.get("/api/v1/orders/trades/BTC%2FUSD?limit=50").status_code == 200
    assert client.get("/api/v1/users/profile").json()["full_name"] == "John Doe"
    renamed = client.put(
        "/api/v1/users/profile", '{"full_name": "John Smith", "username": "newusername"}', **BODY
    )
    assert renamed.json()["username"] == "newusername"
    assert client.delete(f"/api/v1/orders/{order_id}").status_code == 202
    assert client.get("/api/v1/health").status_code == 200


def test_seed_000_order_type_may_be_written_type(client_of_seed_000):
    created = client_of_seed_000.post(
        "/api/v1/orders/",
        '{"symbol": "BTC/USD", "side": "buy", "type": "limit", "quantity": 0.5, "price": 100}',
        **BODY,
    )

    assert created.status_code == 201, created.content
    assert created.json()["order_type"] == "limit"


def test_seed_001_rest_list(client_of_seed_000):
    """Seed 001's "REST API" list: the same paths as seed 000, each answering."""
    client = client_of_seed_000
    order = client.post(
        "/api/v1/orders/",
        {"symbol": "BTC/USD", "side": "buy", "order_type": "limit", "quantity": "1",
         "price": "100"},
        format="json",
    ).json()  # fmt: skip

    assert client.get("/api/v1/orders/").status_code == 200
    assert client.get(f"/api/v1/orders/{order['id']}").status_code == 200
    assert client.get("/api/v1/orders/book/BTC%2FUSD").status_code == 200
    assert client.get("/api/v1/orders/trades/BTC%2FUSD").status_code == 200
    assert client.delete(f"/api/v1/orders/{order['id']}").status_code == 202


def test_seed_002_endpoints(client_of_seed_000):
    """Seed 002's "API Endpoints": trading, market data and account."""
    client = client_of_seed_000
    placed = client.post(
        "/api/v1/orders",
        {"symbol": "BTC-USD", "side": "buy", "order_type": "limit", "quantity": "1",
         "price": "100"},
        format="json",
    )  # fmt: skip
    assert placed.status_code == 201
    assert client.get("/api/v1/orders").json()["count"] == 1
    for path in ("orderbook", "trades", "ticker"):
        assert client.get(f"/api/v1/market/BTC-USD/{path}").status_code == 200, path
    assert client.get("/api/v1/account/balance").json()["USD"]["locked"] == "100.00"
    positions = client.get("/api/v1/account/positions").json()
    assert [(p["asset"], p["total"]) for p in positions] == [("USD", "100000.00")]
    assert client.delete(f"/api/v1/orders/{placed.json()['id']}").status_code == 202


def test_seed_003_order_management_and_market_data(client_of_seed_000, market, settings):
    """Seed 003's "API Endpoints", bodies as written (its TATA_INR is our BTC_USD); the
    document's userId is ignored: the order is the caller's. No matcher runs here, so the
    order entry answers at once (the live replay waits for it: test_seed_documents_live)."""
    settings.BINANCE_ORDER_WAIT_MS = 0
    client = client_of_seed_000
    other = UserFactory()

    created = client.post(
        "/api/v1/order",
        {"market": "BTC_USD", "price": "100.50", "quantity": "10", "side": "buy",
         "userId": str(other.pk)},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201, created.content
    order = Order.objects.get(pk=created.json()["id"])
    assert order.user.email == "user@example.com"
    assert (order.price, order.quantity) == (Decimal("100.50"), Decimal(10))
    assert created.json()["orderId"] == order.pk
    assert (created.json()["executedQty"], created.json()["fills"]) == ("0.00000", [])
    fund(other, market.base_asset, "2")
    place(other, side="sell", price="101", quantity="2")  # a resting ask for the depth
    drain(market)

    open_orders = client.get("/api/v1/openOrders?market=BTC_USD&userId=user123").json()
    assert [o["id"] for o in open_orders] == [order.pk]
    depth = client.get("/api/v1/depth?symbol=BTC_USD").json()
    assert depth == {"bids": [["100.50", "10.00000"]], "asks": [["101.00", "2.00000"]]}
    assert client.get("/api/v1/ticker/24hr?symbol=BTC_USD").json()["symbol"] == "BTC-USD"
    assert [t["symbol"] for t in client.get("/api/v1/tickers").json()] == ["BTC-USD"]

    cancelled = client.delete(
        "/api/v1/order", {"orderId": order.pk, "market": "BTC_USD"}, format="json"
    )
    assert cancelled.status_code == 202, cancelled.content
    wrong_market = client.delete("/api/v1/order", {"orderId": order.pk, "market": "ETH_USD"})
    assert wrong_market.status_code == 404
    assert client.get("/api/v1/openOrders").status_code == 400


def test_seed_000_status_words_filter_the_order_list(client_of_seed_000, market):
    """Seed 000's PENDING and PARTIAL: every working order, and those partly filled."""
    client = client_of_seed_000
    buyer = Order.objects.get(user__email="user@example.com", pk=place_seed_000_buy(client))
    seller = UserFactory()
    fund(seller, market.base_asset, "1")
    place(seller, side="sell", price="100", quantity="0.4")
    drain(market)

    partial = client.get("/api/v1/orders/?status=partial").json()["results"]
    assert [o["id"] for o in partial] == [buyer.pk]
    assert [o["id"] for o in client.get("/api/v1/orders/?status=pending").json()["results"]] == [
        buyer.pk
    ]
    assert client.get("/api/v1/orders/?status=filled").json()["results"] == []
    assert client.get("/api/v1/orders/?status=PARTIALLY").status_code == 400


def place_seed_000_buy(client) -> int:
    created = client.post(
        "/api/v1/orders/",
        '{"symbol": "BTC/USD", "side": "buy", "order_type": "limit", "quantity": 1, "price": 100}',
        **BODY,
    )
    assert created.status_code == 201, created.content
    return created.json()["id"]

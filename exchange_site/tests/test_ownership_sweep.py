"""No endpoint gives one user another's data (issue 11, item 2).

User A owns one object of every kind; user B then calls EVERY route of the URL conf
(walked from ``get_resolver()``, so a new route is swept without anyone listing it), with
every HTTP method its view answers, A's object ids in every path parameter and in the
query and body fields that name objects. B calls the REST API with a bearer token and with
a session, the pages and the admin with a session and ``/api/v3`` with an API key.

A's ids are made unmistakable first: each table's sequence jumps to its own range of
eleven-digit numbers, so any of A's ids found in an answer is a leak, not a coincidence.
Every answer must come without A's ids or A's strings (email, name, order and key labels,
addresses); routes that name one of A's objects in the path must answer 403 or 404 (the
admin: a redirect to its login, B not being staff). Public routes (``PUBLIC``) may show
A's trades, which are market data, and nothing else of A's.
"""

import re
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RegexPattern, RoutePattern
from django_redis import get_redis_connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts import services as account_services
from accounts.models import ApiKey, User
from accounts.tests.factories import UserFactory
from trading import services as trading_services
from trading.models import Order, OrderCommand, OrderList, Trade
from trading.tests.binance.conftest import BinanceClient, sign
from trading.tests.conftest import _fund
from trading.tests.factories import MarketFactory
from trading.tests.helpers import drain, place
from wallets import services as wallet_services
from wallets.liabilities import liability_snapshot_take
from wallets.models import Balance, Deposit, DepositAddress, LedgerEntry, Withdrawal

pytestmark = pytest.mark.django_db

# Routes anyone may call (their answers are the same for every caller), by URL name:
PUBLIC = {
    # Market data: A's trades and resting orders are public, anonymous market data.
    "home",
    "trade",
    "markets",
    "market",
    "market-tickers",
    "market-orderbook",
    "market-trades",
    "market-ticker",
    "market-candles",
    "orders-book-legacy",
    "orders-trades-legacy",
    "assets-list",
    "binance-ping",
    "binance-time",
    "binance-exchange-info",
    "binance-depth",
    "binance-trades",
    "binance-historical-trades",
    "binance-agg-trades",
    "binance-klines",
    "binance-ui-klines",
    "binance-ticker-24hr",
    "binance-ticker-price",
    "binance-ticker-book",
    "binance-unknown",
    "fapi-exchange-info",
    "dapi-exchange-info",
    "binance-fapi-unknown",
    "binance-dapi-unknown",
    # Liveness and the API's description.
    "health",
    "api-health",
    "schema",
    "swagger-ui",
    "redoc",
    # Credential endpoints: they act only on the credentials sent in the body.
    "signup",
    "login",
    "auth-register",
    "auth-login",
    "auth-refresh",
}

# Models whose ids B must never see, each given its own range of ids.
OWNED_MODELS = [
    User,
    Order,
    Trade,
    OrderCommand,
    OrderList,
    Withdrawal,
    Deposit,
    DepositAddress,
    ApiKey,
    LedgerEntry,
    Balance,
    OutstandingToken,
]
ID_RANGE = 10**9
FIRST_RANGE = 71

METHODS = ("get", "post", "put", "patch", "delete")


def jump_sequences() -> None:
    with connection.cursor() as cursor:
        for index, model in enumerate(OWNED_MODELS):
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, false)",
                [model._meta.db_table, (FIRST_RANGE + index) * ID_RANGE + 1],
            )


class World:
    """A's objects, what B holds to call with, and how A's data is recognised."""

    def __init__(self):
        jump_sequences()
        self.market = MarketFactory()
        alice = UserFactory(
            email="alice.secret@example.com", username="alice_secret", full_name="Alice Hidden"
        )
        counterparty = UserFactory()
        for user in (alice, counterparty):
            _fund(user, self.market.quote_asset, "10000")
            _fund(user, self.market.base_asset, "2")
        sold = place(
            alice, side="sell", price="20000", quantity="0.5", client_order_id="alice-coid-filled"
        )
        place(counterparty, side="buy", price="20000", quantity="0.5")
        resting = place(
            alice, side="buy", price="19000", quantity="0.1", client_order_id="alice-coid-resting"
        )
        # An OCO pair, resting and untriggered after the trade at 20000.
        order_list = trading_services.oco_place(
            user=alice,
            request=trading_services.OcoRequest(
                symbol=self.market.symbol,
                side="sell",
                quantity=Decimal("0.1"),
                limit_price=Decimal("21000"),
                stop_price=Decimal("19500"),
                list_client_id="alice-list-coid",
            ),
        )
        drain(self.market)
        address = wallet_services.deposit_address_get_or_create(user=alice, asset_code="BTC")
        withdrawal = wallet_services.withdrawal_request(
            user=alice, asset_code="USD", amount=Decimal("50"), address="alice-payout-777"
        )
        api_key, _secret = account_services.api_key_create(
            user=alice, label="alice-bot-label", permissions=["read", "trade"]
        )
        self.alice_tokens = account_services.auth_tokens_issue(user=alice)
        self.alice = alice
        self.order_ids = [sold.pk, resting.pk]
        self.list_id = order_list.pk
        self.client_order_ids = ["alice-coid-filled", "alice-coid-resting"]
        self.withdrawal = withdrawal
        self.api_key = api_key
        self.trade_ids = set(Trade.objects.filter(seller=alice).values_list("pk", flat=True)) | set(
            Trade.objects.filter(buyer=alice).values_list("pk", flat=True)
        )
        assert self.trade_ids, "A's sell must have traded"

        private_ids = {
            alice.pk,
            withdrawal.pk,
            api_key.pk,
            address.pk,
            order_list.pk,
            *self.order_ids,
        }
        private_ids |= set(Order.objects.filter(user=alice).values_list("pk", flat=True))
        private_ids |= set(
            OrderCommand.objects.filter(order__user=alice).values_list("pk", flat=True)
        )
        private_ids |= set(Deposit.objects.filter(user=alice).values_list("pk", flat=True))
        private_ids |= set(LedgerEntry.objects.filter(user=alice).values_list("pk", flat=True))
        private_ids |= set(Balance.objects.filter(user=alice).values_list("pk", flat=True))
        private_ids |= set(OutstandingToken.objects.filter(user=alice).values_list("pk", flat=True))
        self.private_ids = private_ids
        # Every id in the path sweep; a few per kind are enough to find a missing filter.
        self.path_ids = sorted(
            {
                alice.pk,
                withdrawal.pk,
                api_key.pk,
                address.pk,
                order_list.pk,
                *self.order_ids,
                *self.trade_ids,
            }
        )
        self.private_strings = [
            alice.email,
            alice.username,
            alice.full_name,
            address.address,
            "alice-payout-777",
            "alice-bot-label",
            api_key.key,
            # Not A's client order ids: B places orders with them (its own orders then).
            self.alice_tokens["refresh_token"],
        ]
        self.before = self.snapshot()

        self.bob = UserFactory()
        _fund(self.bob, self.market.quote_asset, "1000")
        bob_tokens = account_services.auth_tokens_issue(user=self.bob)
        self.bearer = APIClient()
        self.bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {bob_tokens['access_token']}")
        bob_key, bob_secret = account_services.api_key_create(
            user=self.bob, label="bob-bot", permissions=["read", "trade"]
        )
        self.signed = BinanceClient(bob_key.key, bob_secret)
        self._session_client: Client | None = None
        # A proof of liabilities with both in it: B's proof must hold only B's leaves.
        liability_snapshot_take(keep=0)

    def session(self) -> Client:
        """B's session, signed in afresh: the sweep also posts to the logout routes. One
        client throughout, its cookies cleared: a new one loads every middleware again
        (WhiteNoise lists every static file), which was half the sweep's time."""
        if self._session_client is None:
            self._session_client = Client()
        self._session_client.cookies.clear()
        self._session_client.force_login(self.bob)
        return self._session_client

    def snapshot(self) -> dict:
        alice = self.alice
        return {
            "user": User.objects.filter(pk=alice.pk).values().get(),
            "orders": sorted(
                Order.objects.filter(user=alice).values_list(
                    "pk", "status", "filled_quantity", "quantity"
                )
            ),
            "order_lists": sorted(OrderList.objects.filter(user=alice).values_list("pk", "status")),
            "withdrawals": sorted(
                Withdrawal.objects.filter(user=alice).values_list("pk", "status")
            ),
            "keys": sorted(ApiKey.objects.filter(user=alice).values_list("pk", "revoked_at")),
            "balances": sorted(
                Balance.objects.filter(user=alice).values_list("asset_id", "available", "locked")
            ),
            "ledger": LedgerEntry.objects.filter(user=alice).count(),
            "blacklisted": BlacklistedToken.objects.filter(token__user=alice).count(),
        }

    def leaks(self, content: bytes, *, public: bool, sent: set[str]) -> list[str]:
        """A's markers in ``content``, except those B sent itself (a 404 may name the id
        it could not find; B's own order may carry the client id B chose)."""
        text = content.decode("utf-8", "replace")
        found = [m for m in self.private_strings if m in text and m not in sent]
        ids = self.private_ids if public else self.private_ids | self.trade_ids
        found += [
            str(pk) for pk in ids if str(pk) not in sent and re.search(rf"(?<!\d){pk}(?!\d)", text)
        ]
        return found


# --- the URL conf as a list of concrete requests --------------------------------------------


def walk(patterns, prefix=()):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from walk(entry.url_patterns, (*prefix, entry.pattern))
        elif isinstance(entry, URLPattern):
            yield (*prefix, entry.pattern), entry


def _group_end(regex: str, start: int) -> int:
    depth = 0
    index = start
    while index < len(regex):
        char = regex[index]
        if char == "\\":
            index += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise ValueError(regex)


def fill_regex(regex: str, value_of) -> str:
    out = []
    index = 0
    while (start := regex.find("(?P<", index)) != -1:
        out.append(regex[index:start])
        end = _group_end(regex, start)
        name, _, body = regex[start + 4 : end].partition(">")
        out.append(value_of(name, body))
        index = end + 1
    out.append(regex[index:])
    text = "".join(out).removeprefix("^").removesuffix("$").replace("/?", "")
    return text.replace(".*", "nothing-here").replace("\\", "")


def fill(pattern, value_of) -> str:
    if isinstance(pattern, RoutePattern):
        return re.sub(
            r"<(?:(\w+):)?(\w+)>", lambda m: value_of(m.group(2), m.group(1) or ""), str(pattern)
        )
    assert isinstance(pattern, RegexPattern), pattern
    return fill_regex(pattern.regex.pattern, value_of)


def param_names(patterns) -> list[str]:
    names = []
    for pattern in patterns:
        if isinstance(pattern, RoutePattern):
            names += [m.group(2) for m in re.finditer(r"<(?:(\w+):)?(\w+)>", str(pattern))]
        else:
            names += list(pattern.regex.groupindex)
    return names


def methods_of(callback) -> list[str]:
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view_class is None:
        return list(METHODS)
    return [m for m in METHODS if hasattr(view_class, m)]


OBJECT_PARAMS = re.compile(r"(^|_)(id|pk)$|^object_id$")


def requests_for(world: World, patterns, entry) -> list[tuple[str, str | None]]:
    """(path, the id of A's put in it) for each way to fill the route's parameters."""
    names = param_names(patterns)
    object_names = [name for name in names if OBJECT_PARAMS.search(name)]
    admin = entry.lookup_str.startswith("django.contrib.admin") or any(
        str(p).startswith("admin/") for p in patterns
    )
    ids = [world.alice.pk, world.order_ids[0]] if admin else world.path_ids
    choices = [str(pk) for pk in ids] if object_names else [None]
    paths = []
    for chosen in choices:

        def value_of(name, body, chosen=chosen):
            if OBJECT_PARAMS.search(name):
                return chosen
            if name == "symbol":
                return "BTC-USD"
            if name == "asset":
                return "BTC"
            if name == "kind":
                return "ledger"  # a statement: B's must hold nothing of A's
            if "|" in body:
                return body.split("|")[0].strip("()")
            return "nothing-here"

        path = "/" + "".join(fill(p, value_of) for p in patterns)
        paths.append((path, chosen))
    return paths


def _body(response) -> bytes:
    # Statements stream: read them whole, so a leak in any row is seen.
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def v1_query(world: World, chosen: str | None) -> dict:
    return {
        "user": world.alice.pk,
        "user_id": world.alice.pk,
        "order_id": chosen or world.order_ids[0],
        "symbol": "BTC-USD",
    }


def v1_body(world: World) -> dict:
    return {
        "symbol": "BTC-USD",
        "side": "buy",
        "type": "limit",
        "price": "19000",
        "quantity": "0.001",
        "client_order_id": world.client_order_ids[1],
        "orders": [
            {
                "symbol": "BTC-USD",
                "side": "buy",
                "type": "limit",
                "price": "19000",
                "quantity": "0.001",
                "client_order_id": world.client_order_ids[0],
            }
        ],
        "asset": "USD",
        "amount": "20",
        "address": "bob-payout",
        "user": world.alice.pk,
        "user_id": world.alice.pk,
        "username": "bob-renamed",
    }


def v3_params(world: World) -> list[dict]:
    return (
        [
            {"symbol": "BTCUSD", "orderId": world.order_ids[index], "fromId": world.order_ids[0]}
            for index in range(len(world.order_ids))
        ]
        + [
            {
                "symbol": "BTCUSD",
                "origClientOrderId": coid,
                "newClientOrderId": coid,
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.001",
                "price": "19000",
            }
            for coid in world.client_order_ids
        ]
        + [
            # A's OCO by id and client id (GET, DELETE orderList), A's order to amend, and A's
            # order to cancel-replace.
            {"orderListId": world.list_id},
            {"origClientOrderId": "alice-list-coid"},
            {"symbol": "BTCUSD", "orderListId": world.list_id},
            {"symbol": "BTCUSD", "listClientOrderId": "alice-list-coid"},
            {"symbol": "BTCUSD", "orderId": world.order_ids[1], "newQty": "0.05"},
            {
                "symbol": "BTCUSD",
                "cancelOrderId": world.order_ids[1],
                "cancelReplaceMode": "ALLOW_FAILURE",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.001",
                "price": "19000",
            },
        ]
    )


def _sent(*values) -> set[str]:
    sent = set()
    for value in values:
        if isinstance(value, dict):
            sent |= _sent(*value.values())
        elif isinstance(value, list):
            sent |= _sent(*value)
        elif value is not None:
            sent.add(str(value))
    return sent


def call(world: World, method: str, path: str, chosen: str | None):
    """Every way B reaches ``path`` with ``method``; yields (how, response, what B sent)."""
    if path.startswith("/api/v3/"):
        for params in v3_params(world):
            get_redis_connection("default").flushdb()  # throttles count B's many calls
            payload = world.signed.payload(params)
            response = world.signed.send(method.upper(), path.removeprefix("/api/v3/"), payload)
            yield "api-key", response, _sent(params, chosen)
        return
    if path.startswith(("/sapi/v1/", "/fapi/v1/", "/dapi/v1/")):
        # Binance's wallet API, signed by B's key like /api/v3.
        signed = world.signed
        deposit_tx = Deposit.objects.filter(user=world.alice).values_list("tx_id", flat=True)[0]
        wallet_params = [{"idList": str(world.withdrawal.pk)}, {"txId": deposit_tx}, {}]
        for params in v3_params(world) + wallet_params:
            get_redis_connection("default").flushdb()
            payload = signed.payload(params)
            target = f"{path}?{payload}&signature={sign(signed.secret, payload)}"
            response = signed.client.generic(method.upper(), target, **signed.headers())
            yield "api-key", response, _sent(params, chosen)
        return
    clients = []
    if path.startswith("/api/v1/"):
        clients.append(("bearer", world.bearer))
    clients.append(("session", world.session()))
    for how, client in clients:
        get_redis_connection("default").flushdb()
        if path.startswith("/api/v1/"):
            query = v1_query(world, chosen)
            target = f"{path}?{urlencode(query)}"
            if method in ("get", "delete"):
                response = getattr(client, method)(target)
                sent = _sent(query, chosen)
            else:
                body = v1_body(world)
                response = getattr(client, method)(target, body, content_type="application/json")
                sent = _sent(query, body, chosen)
        else:
            form = {"username": "bob-renamed", "full_name": "Bob", "next": f"/?id={chosen}"}
            response = (
                getattr(client, method)(path)
                if method in ("get", "delete")
                else getattr(client, method)(path, form)
            )
            sent = _sent(chosen)
        yield how, response, sent


def test_no_route_gives_user_b_any_of_user_a_s_data():
    world = World()
    resolver = get_resolver()
    routes = list(walk(resolver.url_patterns))
    swept: set[str] = set()
    calls = 0
    problems: list[str] = []

    for patterns, entry in routes:
        for path, chosen in requests_for(world, patterns, entry):
            match = resolve(path.split("?")[0])
            assert match.func == entry.callback, (path, match, entry)
            route = entry.name or entry.lookup_str
            public = route in PUBLIC
            admin = path.startswith("/admin/")
            for method in methods_of(entry.callback):
                for how, response, sent in call(world, method, path, chosen):
                    calls += 1
                    body = _body(response)
                    status = response.status_code
                    where = f"{method.upper()} {path} as B ({how}) -> {status}"
                    if status >= 500 or status == 429:
                        problems.append(f"{where}: {body[:200]!r}")
                        continue
                    leaked = world.leaks(body, public=public, sent=sent)
                    if leaked:
                        problems.append(f"{where}: shows A's {leaked}")
                    if admin and not public:
                        # To the admin's login (or, from its logout, to its index).
                        if not (status == 302 and response["Location"].startswith("/admin/")):
                            problems.append(f"{where}: the admin let a non-staff user in")
                    elif chosen is not None and not public and status not in (403, 404):
                        problems.append(f"{where}: expected 403 or 404 for A's object")
            swept.add(entry.lookup_str + str(patterns))

    assert not problems, "\n".join(problems)
    assert len(swept) == len(routes)
    assert calls > 300
    assert world.snapshot() == world.before


def test_the_sweep_recognises_a_s_data_when_a_asks():
    """The check above could fail: the same calls made by A itself show A's data."""
    world = World()
    own = APIClient()
    own.credentials(HTTP_AUTHORIZATION=f"Bearer {world.alice_tokens['access_token']}")

    for path in (
        "/api/v1/orders",
        f"/api/v1/orders/{world.order_ids[1]}",
        "/api/v1/trades",
        "/api/v1/wallets/ledger",
        "/api/v1/wallets/withdrawals",
        "/api/v1/api-keys",
        "/api/v1/users/profile",
        "/api/v1/wallets/deposit-address/BTC",
    ):
        response = own.get(path)
        assert response.status_code == 200, (path, response.content)
        assert world.leaks(response.content, public=False, sent=set()), path

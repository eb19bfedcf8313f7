"""Schemathesis against the published OpenAPI schema, in process through the WSGI app.

Every operation of ``/api/schema/`` is fuzzed as a funded, logged-in user with a fixed seed
and a bounded number of examples (valid and invalid inputs both). A response must never be a
5xx, and must conform to the schema: a documented status code, a documented content type and
a body matching the documented schema (errors included, see ``exchange_site/openapi.py``).

Nothing is excluded. Purely random symbols, asset codes and ids would only ever reach the
"not found" branch, so the hooks below swap in, for part of the examples, the names of the
demo markets and assets and the ids of objects the user really owns (an open order, a
pending withdrawal, an API key); the rest stay as generated.
"""

from decimal import Decimal

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import override_settings
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.services import auth_tokens_issue
from accounts.tests.factories import UserFactory
from exchange_site.wsgi import application
from testsupport.stack import seed_markets
from wallets import services as wallet_services
from wallets.liabilities import liability_snapshot_take

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 20

SYMBOLS = ["BTC-USD", "ETH-USD", "SOL-USD", "ETH-BTC", "btc_usd", "ETH/BTC"]
ASSETS = ["BTC", "USD", "ETH", "SOL", "usd"]
FUNDS = {"USD": "100000", "BTC": "10", "ETH": "100", "SOL": "1000"}
NO_CAPS = {"*": "1000000000"}
VALID_ORDERS = [
    {"symbol": "BTC-USD", "side": "buy", "quantity": "0.01", "price": "200"},
    {"symbol": "ETH-USD", "side": "sell", "quantity": "0.5", "price": "99999"},
    {"symbol": "BTC-USD", "side": "buy", "order_type": "market", "quote_quantity": "10"},
    {"symbol": "SOL-USD", "side": "sell", "order_type": "market", "quantity": "1"},
]

# Ids of the fuzzing user's own objects, filled in by the ``owned`` fixture before any case
# is generated (hypothesis draws inside the test call).
OWNED: dict[str, list[int]] = {}
_ID_PARAMETERS = {"order_id": "orders", "withdrawal_id": "withdrawals", "key_id": "api_keys"}


def _sometimes(value, replacements: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.just(value), replacements)


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    if not path_parameters:
        return st.just(path_parameters)
    choices = {
        "symbol": SYMBOLS,
        "asset": ASSETS,
        **{name: OWNED.get(kind, []) for name, kind in _ID_PARAMETERS.items()},
    }
    real = {name: st.sampled_from(choices[name]) for name in path_parameters if choices.get(name)}
    if not real:
        return st.just(path_parameters)
    return _sometimes(
        path_parameters,
        st.fixed_dictionaries(real).map(lambda values: {**path_parameters, **values}),
    )


@schema.hook
def flatmap_query(context, query):
    if not isinstance(query, dict) or "symbol" not in query:
        return st.just(query)
    return _sometimes(query, st.sampled_from(SYMBOLS).map(lambda s: {**query, "symbol": s}))


def _real_names(body: dict) -> st.SearchStrategy:
    updates = {}
    if "symbol" in body:
        updates["symbol"] = st.sampled_from(SYMBOLS)
    if "asset" in body:
        updates["asset"] = st.sampled_from(ASSETS)
    return st.fixed_dictionaries(updates).map(lambda values: {**body, **values})


@schema.hook
def flatmap_body(context, body):
    operation = context.operation
    if operation is None or not isinstance(body, dict):
        return st.just(body)
    if operation.path.startswith("/api/v1/orders/batch"):
        orders = st.lists(st.sampled_from(VALID_ORDERS), min_size=1, max_size=5)
        return _sometimes(body, orders.map(lambda items: {**body, "orders": items}))
    if operation.path == "/api/v1/orders/" and operation.method.lower() == "post":
        return st.one_of(st.just(body), _real_names(body), st.sampled_from(VALID_ORDERS))
    if "symbol" in body or "asset" in body:
        return _sometimes(body, _real_names(body))
    return st.just(body)


@pytest.fixture
def _in_process_wsgi(owned):
    """Keep the test's transaction open across in-process WSGI requests.

    Django closes the connection at the end of each request (``close_old_connections``),
    which inside the test's atomic block would throw the test data away; Django's own test
    client disconnects the same signals for the same reason, and reconnects them after each
    of its requests, so this comes after the fixtures that use it (``owned``).
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def bearer(db, settings):
    """The Authorization header of a user holding every demo asset, on the demo markets.

    Rate limits are off: they have their own tests, and here they would turn most cases
    into 429s that never reach the code under test (429 stays documented and allowed).
    """
    settings.THROTTLING = False
    settings.DEMO_DEPOSITS = True
    seed_markets()
    user = UserFactory()
    with override_settings(DEMO_DEPOSIT_MAX_PER_REQUEST=NO_CAPS, DEMO_DEPOSIT_MAX_PER_DAY=NO_CAPS):
        for asset_code, amount in FUNDS.items():
            wallet_services.deposit_demo_create(
                user=user, asset_code=asset_code, amount=Decimal(amount)
            )
    liability_snapshot_take(keep=0)  # the proof-of-liabilities reads answer 200, not 404
    return {"Authorization": f"Bearer {auth_tokens_issue(user=user)['access_token']}"}


@pytest.fixture
def owned(bearer):
    """An open order, a pending withdrawal and an API key of the fuzzing user."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer["Authorization"])
    created = {
        "orders": client.post("/api/v1/orders/", VALID_ORDERS[0], format="json"),
        "withdrawals": client.post(
            "/api/v1/wallets/withdrawals/",
            {"asset": "USD", "amount": "10", "address": "fuzz-address"},
            format="json",
        ),
        "api_keys": client.post(
            "/api/v1/api-keys/", {"label": "fuzz", "permissions": ["read"]}, format="json"
        ),
    }
    OWNED.clear()
    for kind, response in created.items():
        assert response.status_code == 201, (kind, response.content)
        OWNED[kind] = [response.json()["id"]]
    yield OWNED
    OWNED.clear()


@pytest.mark.django_db
@pytest.mark.usefixtures("_in_process_wsgi")
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, bearer):
    case.call_and_validate(headers=bearer, checks=CHECKS)

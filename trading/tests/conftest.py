"""Fixtures of the trading tests: the BTC-USD market, funded traders, API clients.

Nothing here is autouse: the engine tests below this directory need no database.
"""

from decimal import Decimal

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.services import auth_tokens_issue
from accounts.tests.factories import UserFactory
from trading.tests.factories import MarketFactory
from wallets import services as wallet_services
from wallets.selectors import fee_account_get

# Caps high enough that funding a test account never hits them.
NO_CAPS = {"*": "1000000000"}


@pytest.fixture
def market(db):
    """BTC-USD: tick 0.01, lot 0.00001, min 0.00001, max 1000, min notional 1 USD."""
    return MarketFactory()


@pytest.fixture
def unit_market(db):
    """BTC-USD with tick 1 and lot 1, for readable numbers."""
    return MarketFactory(
        tick_size=Decimal(1),
        lot_size=Decimal(1),
        min_qty=Decimal(1),
        max_qty=Decimal(1_000_000),
        min_notional=Decimal(1),
    )


@pytest.fixture
def btc(market):
    return market.base_asset


@pytest.fixture
def usd(market):
    return market.quote_asset


@pytest.fixture
def fee_account(db):
    return fee_account_get()


def _fund(user, asset, amount) -> None:
    """Money the way the product gives it: a confirmed demo deposit (ledger invariant 3)."""
    with override_settings(
        DEMO_DEPOSITS=True, DEMO_DEPOSIT_MAX_PER_REQUEST=NO_CAPS, DEMO_DEPOSIT_MAX_PER_DAY=NO_CAPS
    ):
        wallet_services.deposit_demo_create(
            user=user, asset_code=asset.code, amount=Decimal(str(amount))
        )


@pytest.fixture
def fund(db):
    return _fund


@pytest.fixture
def trader(db):
    """A new user holding ``usd`` of the quote and ``btc`` of the base asset of BTC-USD."""

    def trader(market, usd="0", btc="0"):
        user = UserFactory()
        if Decimal(usd):
            _fund(user, market.quote_asset, usd)
        if Decimal(btc):
            _fund(user, market.base_asset, btc)
        return user

    return trader


@pytest.fixture
def client_for(db):
    """An API client logged in as ``user`` with a real JWT access token."""

    def client_for(user):
        client = APIClient()
        client.credentials(
            HTTP_AUTHORIZATION=f"Bearer {auth_tokens_issue(user=user)['access_token']}"
        )
        return client

    return client_for

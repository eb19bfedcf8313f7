from decimal import Decimal

import pytest
from django.test import override_settings
from rest_framework.test import APIClient, ForceAuthClientHandler

from accounts.services import auth_tokens_issue
from accounts.tests.factories import UserFactory
from wallets import services
from wallets.tests.factories import AssetFactory

# Caps high enough that funding a test account never hits them.
NO_CAPS = {"*": "1000000000"}


@pytest.fixture
def btc(db):
    return AssetFactory(
        code="BTC",
        name="Bitcoin",
        precision=8,
        min_withdrawal=Decimal("0.0001"),
        withdrawal_fee=Decimal("0.0001"),
        confirmations_required=2,
        reference_price=Decimal("100"),
    )


@pytest.fixture
def usd(db):
    return AssetFactory(
        code="USD",
        name="US Dollar",
        precision=2,
        min_withdrawal=Decimal("10"),
        withdrawal_fee=Decimal("1"),
        confirmations_required=0,
    )


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture
def operator(db):
    return UserFactory(is_staff=True)


@pytest.fixture
def fund():
    """Give a user money the way the product does: a confirmed demo deposit."""

    def fund(user, asset, amount):
        with override_settings(
            DEMO_DEPOSITS=True,
            DEMO_DEPOSIT_MAX_PER_REQUEST=NO_CAPS,
            DEMO_DEPOSIT_MAX_PER_DAY=NO_CAPS,
        ):
            return services.deposit_demo_create(
                user=user, asset_code=asset.code, amount=Decimal(amount)
            )

    return fund


@pytest.fixture
def demo_deposits(settings):
    """DEMO_DEPOSITS on, with the caps the tests reason about."""
    settings.DEMO_DEPOSITS = True
    settings.DEMO_DEPOSIT_MAX_PER_REQUEST = {"BTC": "2", "USD": "100000", "*": "1000"}
    settings.DEMO_DEPOSIT_MAX_PER_DAY = {"BTC": "5", "USD": "1000000", "*": "10000"}
    return settings


@pytest.fixture
def auth_client(client_for, user):
    """Logged in as ``user``; one client and no login request (each client costs ~50 ms)."""
    return client_for(user)


@pytest.fixture(scope="session")
def _client_handler():
    # A new APIClient builds its own middleware chain, and WhiteNoise (USE_FINDERS) indexes
    # every static file for it: ~50 ms a client. The handler keeps no per-request state
    # unless force_authenticate is used (it is not here), so the clients share one.
    return ForceAuthClientHandler(enforce_csrf_checks=False)


@pytest.fixture
def client_for(db, _client_handler):
    """An API client logged in as ``user`` with a real JWT access token."""

    def client_for(user):
        client = APIClient()
        client.handler = _client_handler
        access = auth_tokens_issue(user=user)["access_token"]
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
        return client

    return client_for

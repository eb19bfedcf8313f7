"""Fixtures of the operator console's tests (every app's ``test_admin*`` imports them): an
operator (staff, in the "operators" group), a staff user outside it, and their clients."""

from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.test import Client, override_settings

from accounts.tests.factories import UserFactory
from wallets import services as wallet_services

NO_CAPS = {"*": "1000000000"}

# Test modules outside accounts/tests/admin take these with ``import *``.
__all__ = [
    "operator",
    "operator_client",
    "operators_group",
    "outsider",
    "outsider_client",
    "run_action",
]


@pytest.fixture
def operators_group(db):
    return Group.objects.get(name="operators")


@pytest.fixture
def operator(operators_group):
    user = UserFactory(is_staff=True)
    user.groups.add(operators_group)
    return user


@pytest.fixture
def outsider(db):
    """Staff (may open the admin) but not an operator."""
    return UserFactory(is_staff=True)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def operator_client(operator):
    return _client(operator)


@pytest.fixture
def outsider_client(outsider):
    return _client(outsider)


def run_action(
    client, changelist: str, action: str, objects, reason: str | None = "why not", follow=False
):
    """Post an admin action on ``objects``, with the reason step filled in unless None."""
    data = {"action": action, ACTION_CHECKBOX_NAME: [obj.pk for obj in objects], "index": 0}
    if reason is not None:
        data["reason"] = reason
    return client.post(changelist, data, follow=follow)


def fund(user, asset, amount) -> None:
    """Money the way the product gives it: a confirmed demo deposit."""
    with override_settings(
        DEMO_DEPOSITS=True, DEMO_DEPOSIT_MAX_PER_REQUEST=NO_CAPS, DEMO_DEPOSIT_MAX_PER_DAY=NO_CAPS
    ):
        wallet_services.deposit_demo_create(
            user=user, asset_code=asset.code, amount=Decimal(str(amount))
        )

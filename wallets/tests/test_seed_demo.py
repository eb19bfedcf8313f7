from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import User
from wallets.models import Asset, Balance, Deposit
from wallets.tests.helpers import assert_ledger_ok, money_state

pytestmark = pytest.mark.django_db


def seed():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_demo_creates_assets_and_funds_demo_users_once():
    first = seed()
    after_first = money_state()

    second = seed()

    assert money_state() == after_first
    assert "funded" in first
    assert "funded" not in second
    assert list(Asset.objects.values_list("code", "precision")) == [
        ("BTC", 8),
        ("ETH", 8),
        ("SOL", 6),
        ("USD", 2),
    ]
    alice = User.objects.get(email="alice@example.com")
    held = dict(Balance.objects.filter(user=alice).values_list("asset__code", "available"))
    assert held == {
        "BTC": Decimal(5),
        "ETH": Decimal(50),
        "SOL": Decimal(1000),
        "USD": Decimal(100000),
    }
    assert Deposit.objects.filter(user__email="bob@example.com").count() == 4
    assert not Balance.objects.filter(user__email="admin@example.com").exists()
    assert_ledger_ok()


def test_seed_demo_leaves_an_edited_asset_as_it_is():
    seed()
    Asset.objects.filter(code="USD").update(withdrawal_fee=Decimal("2.5"))

    seed()

    assert Asset.objects.get(code="USD").withdrawal_fee == Decimal("2.5")

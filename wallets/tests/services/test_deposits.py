from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from wallets import services
from wallets.exceptions import (
    AssetInactive,
    AssetNotFound,
    DemoDepositsDisabled,
    DepositLimitExceeded,
    DepositNotFound,
)
from wallets.models import Deposit, LedgerEntry, LedgerKind
from wallets.tests.factories import AssetFactory
from wallets.tests.helpers import assert_ledger_ok, balance_of, money_state

pytestmark = pytest.mark.django_db


# --- demo faucet --------------------------------------------------------------------------


def test_deposit_demo_create_credits_available_with_one_ledger_entry(user, btc, demo_deposits):
    deposit = services.deposit_demo_create(user=user, asset_code="btc", amount=Decimal("1.5"))

    assert deposit.status == Deposit.Status.CONFIRMED
    assert deposit.is_demo
    assert deposit.amount == Decimal("1.5")
    assert balance_of(user, btc) == (Decimal("1.5"), Decimal(0))
    entry = LedgerEntry.objects.get(user=user)
    assert (entry.kind, entry.reference_type, entry.reference_id) == (
        LedgerKind.DEPOSIT,
        "deposit",
        deposit.pk,
    )
    assert (entry.available_delta, entry.locked_delta) == (Decimal("1.5"), Decimal(0))
    assert_ledger_ok()


def test_deposit_demo_create_refused_when_demo_deposits_are_off(user, btc, settings):
    settings.DEMO_DEPOSITS = False
    before = money_state()

    with pytest.raises(DemoDepositsDisabled):
        services.deposit_demo_create(user=user, asset_code="BTC", amount=Decimal(1))

    assert money_state() == before


def test_deposit_demo_create_refuses_more_than_the_per_request_cap(user, btc, demo_deposits):
    before = money_state()

    with pytest.raises(DepositLimitExceeded) as caught:
        services.deposit_demo_create(user=user, asset_code="BTC", amount=Decimal("2.00000001"))

    assert caught.value.details["max_per_request"] == "2"
    assert money_state() == before


def test_deposit_demo_create_refuses_what_would_pass_the_daily_cap(user, btc, demo_deposits):
    for amount in ("2", "2", "1"):  # exactly the daily cap of 5 is allowed
        services.deposit_demo_create(user=user, asset_code="BTC", amount=Decimal(amount))
    before = money_state()

    with pytest.raises(DepositLimitExceeded) as caught:
        services.deposit_demo_create(user=user, asset_code="BTC", amount=Decimal("0.00000001"))

    assert caught.value.details["deposited_today"] == "5.00000000"
    assert money_state() == before
    assert balance_of(user, btc) == (Decimal(5), Decimal(0))


def test_deposit_demo_create_daily_cap_is_per_user(user, other_user, btc, demo_deposits):
    for _ in range(2):
        services.deposit_demo_create(user=user, asset_code="BTC", amount=Decimal("2"))

    services.deposit_demo_create(user=other_user, asset_code="BTC", amount=Decimal("2"))

    assert balance_of(other_user, btc) == (Decimal(2), Decimal(0))


def test_deposit_demo_create_refuses_an_unknown_asset(user, demo_deposits):
    before = money_state()

    with pytest.raises(AssetNotFound):
        services.deposit_demo_create(user=user, asset_code="NOPE", amount=Decimal(1))

    assert money_state() == before


def test_deposit_demo_create_refuses_an_inactive_asset(user, demo_deposits):
    AssetFactory(code="OLD", is_active=False)
    before = money_state()

    with pytest.raises(AssetInactive):
        services.deposit_demo_create(user=user, asset_code="OLD", amount=Decimal(1))

    assert money_state() == before


@pytest.mark.parametrize(
    "amount", ["0", "-1", "0.000000001", "NaN", "Infinity", "1e18", "1e1000000", "1e-1000000"]
)
def test_deposit_demo_create_refuses_a_bad_amount(user, btc, demo_deposits, amount):
    before = money_state()

    with pytest.raises(ValidationError) as caught:
        services.deposit_demo_create(user=user, asset_code="BTC", amount=Decimal(amount))

    assert "amount" in caught.value.message_dict
    assert money_state() == before


# --- deposit addresses --------------------------------------------------------------------


def test_deposit_address_is_stable_and_per_user_and_asset(user, other_user, btc, usd):
    first = services.deposit_address_get_or_create(user=user, asset_code="BTC")
    again = services.deposit_address_get_or_create(user=user, asset_code="btc")
    other_asset = services.deposit_address_get_or_create(user=user, asset_code="USD")
    other_owner = services.deposit_address_get_or_create(user=other_user, asset_code="BTC")

    assert again.address == first.address
    assert len({first.address, other_asset.address, other_owner.address}) == 3


# --- the simulated chain ------------------------------------------------------------------


def test_chain_deposit_is_credited_only_after_the_required_confirmations(user, btc):
    address = services.deposit_address_get_or_create(user=user, asset_code="BTC").address
    deposit = services.deposit_chain_detect(address=address, amount=Decimal("0.3"))
    assert deposit.status == Deposit.Status.PENDING
    assert deposit.confirmations_required == 2
    assert balance_of(user, btc) == (Decimal(0), Decimal(0))
    assert_ledger_ok()

    assert services.chain_block_mine() == 0
    deposit.refresh_from_db()
    assert (deposit.status, deposit.confirmations) == (Deposit.Status.PENDING, 1)
    assert balance_of(user, btc) == (Decimal(0), Decimal(0))

    assert services.chain_block_mine() == 1
    deposit.refresh_from_db()
    assert (deposit.status, deposit.confirmations) == (Deposit.Status.CONFIRMED, 2)
    assert deposit.confirmed_at is not None
    assert balance_of(user, btc) == (Decimal("0.3"), Decimal(0))
    assert_ledger_ok()

    assert services.chain_block_mine() == 0
    assert balance_of(user, btc) == (Decimal("0.3"), Decimal(0))
    assert LedgerEntry.objects.filter(user=user).count() == 1


def test_chain_deposit_needing_no_confirmations_is_credited_at_once(user, usd):
    address = services.deposit_address_get_or_create(user=user, asset_code="USD").address

    deposit = services.deposit_chain_detect(address=address, amount=Decimal("25.50"))

    assert deposit.status == Deposit.Status.CONFIRMED
    assert balance_of(user, usd) == (Decimal("25.5"), Decimal(0))
    assert services.chain_block_mine() == 0
    assert LedgerEntry.objects.filter(user=user).count() == 1
    assert_ledger_ok()


def test_deposit_confirm_credits_only_once(user, btc):
    address = services.deposit_address_get_or_create(user=user, asset_code="BTC").address
    deposit = services.deposit_chain_detect(address=address, amount=Decimal(1))

    assert services.deposit_confirm(deposit_id=deposit.pk) is True
    assert services.deposit_confirm(deposit_id=deposit.pk) is False

    assert balance_of(user, btc) == (Decimal(1), Decimal(0))
    assert LedgerEntry.objects.filter(user=user).count() == 1
    assert_ledger_ok()


def test_chain_detect_refuses_an_unknown_address(btc):
    before = money_state()

    with pytest.raises(DepositNotFound):
        services.deposit_chain_detect(address="sim-nobody", amount=Decimal(1))

    assert money_state() == before


def test_chain_detect_refuses_more_places_than_the_asset_has(user, usd):
    address = services.deposit_address_get_or_create(user=user, asset_code="USD").address
    before = money_state()

    with pytest.raises(ValidationError):
        services.deposit_chain_detect(address=address, amount=Decimal("1.001"))

    assert money_state() == before

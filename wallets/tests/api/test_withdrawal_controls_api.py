"""The withdrawal controls over the API: limits, saved addresses, the allow-list and the
confirmation token, with the error codes a client can act on."""


import pytest
from django.utils import timezone

from wallets import services
from wallets.models import Withdrawal, WithdrawalAddress
from wallets.tests.helpers import assert_error, assert_ledger_ok, money_state

pytestmark = pytest.mark.django_db

WITHDRAWALS = "/api/v1/wallets/withdrawals"
LIMITS = "/api/v1/wallets/withdrawal-limits"
ADDRESSES = "/api/v1/wallets/addresses"
SETTINGS = "/api/v1/wallets/withdrawal-settings"
CONFIRM = "/api/v1/wallets/withdrawals/confirm"


@pytest.fixture
def funded(user, btc, fund):
    fund(user, btc, "200")  # 100 USD a BTC (btc.reference_price)
    return user


def test_the_limit_shows_tier_used_and_left(auth_client, funded):
    auth_client.post(
        WITHDRAWALS, {"asset": "BTC", "amount": "25", "address": "bc1q"}, format="json"
    )

    assert auth_client.get(LIMITS).json() == {
        "tier": "verified",
        "tier_name": "Verified",
        "reference_asset": "USD",
        "window_hours": 24,
        "daily_limit": "10000.00",
        "used": "2500.00",
        "remaining": "7500.00",
    }


def test_over_the_limit_is_422_with_what_is_left_and_reserves_nothing(auth_client, funded):
    before = money_state()

    response = auth_client.post(
        WITHDRAWALS, {"asset": "BTC", "amount": "100.5", "address": "bc1q"}, format="json"
    )

    error = assert_error(response, 422, "WITHDRAWAL_LIMIT_EXCEEDED")
    assert error["details"] == {
        "asset": "BTC",
        "reference_asset": "USD",
        "value": "10050.00",
        "daily_limit": "10000.00",
        "used": "0.00",
        "remaining": "10000.00",
        "tier": "verified",
    }
    assert money_state() == before


def test_a_new_withdrawal_awaits_its_email_and_the_token_confirms_it(auth_client, funded):
    created = auth_client.post(
        WITHDRAWALS, {"asset": "BTC", "amount": "0.25", "address": "bc1q"}, format="json"
    ).json()
    assert created["status"] == "awaiting_confirmation"
    assert created["limit_value"] == "25.00"
    assert created["expires_at"] is not None
    token = services.withdrawal_link_token(
        withdrawal=Withdrawal.objects.get(), salt=services.CONFIRM_SALT
    )

    confirmed = auth_client.post(CONFIRM, {"token": token}, format="json")

    assert confirmed.status_code == 200
    assert confirmed.json()["status"] == "requested"
    assert_error(
        auth_client.post(CONFIRM, {"token": "nope"}, format="json"), 400, "WITHDRAWAL_LINK_INVALID"
    )
    assert_error(auth_client.post(CONFIRM, {}, format="json"), 400, "VALIDATION_ERROR")


def test_the_address_book_round_trip(auth_client, funded, settings):
    settings.WITHDRAWAL_ADDRESS_COOLDOWN_SECONDS = 7200
    saved = auth_client.post(
        ADDRESSES, {"asset": "btc", "address": "bc1qcold", "label": "Cold"}, format="json"
    )
    assert saved.status_code == 201
    body = saved.json()
    assert (body["asset"], body["label"], body["usable"]) == ("BTC", "Cold", False)
    assert_error(
        auth_client.post(
            ADDRESSES, {"asset": "BTC", "address": "bc1qcold", "label": "x"}, format="json"
        ),
        409,
        "WITHDRAWAL_ADDRESS_EXISTS",
    )
    assert_error(
        auth_client.post(WITHDRAWALS, {"asset": "BTC", "amount": "1", "address_id": body["id"]}),
        422,
        "WITHDRAWAL_ADDRESS_COOLING_DOWN",
    )
    WithdrawalAddress.objects.update(usable_from=timezone.now())

    made = auth_client.post(
        WITHDRAWALS, {"asset": "BTC", "amount": "1", "address_id": body["id"]}, format="json"
    )

    assert made.status_code == 201
    assert made.json()["address"] == "bc1qcold"
    assert [a["label"] for a in auth_client.get(ADDRESSES).json()] == ["Cold"]
    assert auth_client.delete(f"{ADDRESSES}/{body['id']}").status_code == 204
    assert_error(
        auth_client.delete(f"{ADDRESSES}/{body['id']}"), 404, "WITHDRAWAL_ADDRESS_NOT_FOUND"
    )
    assert auth_client.get(ADDRESSES).json() == []


def test_another_users_saved_address_is_not_found(auth_client, funded, other_user, btc):
    theirs = services.withdrawal_address_add(
        user=other_user, asset_code="BTC", address="bc1qtheirs", label="theirs"
    )
    WithdrawalAddress.objects.update(usable_from=timezone.now())

    response = auth_client.post(
        WITHDRAWALS, {"asset": "BTC", "amount": "1", "address_id": theirs.pk}, format="json"
    )

    assert_error(response, 404, "WITHDRAWAL_ADDRESS_NOT_FOUND")
    assert_error(
        auth_client.delete(f"{ADDRESSES}/{theirs.pk}"), 404, "WITHDRAWAL_ADDRESS_NOT_FOUND"
    )


def test_the_allow_list_switch(auth_client, funded):
    assert auth_client.get(SETTINGS).json()["allowlist_enabled"] is False

    response = auth_client.put(SETTINGS, {"allowlist_enabled": True}, format="json")

    assert response.json()["allowlist_enabled"] is True
    assert_error(
        auth_client.post(
            WITHDRAWALS, {"asset": "BTC", "amount": "1", "address": "bc1q"}, format="json"
        ),
        422,
        "WITHDRAWAL_ADDRESS_NOT_ALLOWED",
    )
    assert_error(auth_client.put(SETTINGS, {}, format="json"), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    "body",
    [
        {"asset": "BTC", "amount": "1"},
        {"asset": "BTC", "amount": "1", "address": "a", "address_id": 1},
        {"asset": "BTC", "amount": "1", "address_id": "x"},
        {"asset": "BTC", "amount": "1", "address_id": 0},
        {"asset": "BTC", "amount": "1", "address_id": 10**20},
    ],
)
def test_a_bad_destination_is_400_and_changes_nothing(auth_client, funded, body):
    before = money_state()

    error = assert_error(
        auth_client.post(WITHDRAWALS, body, format="json"), 400, "VALIDATION_ERROR"
    )

    assert set(error["details"]) & {"address", "address_id"}
    assert money_state() == before


@pytest.mark.parametrize(
    "body",
    [
        {"asset": "BTC", "address": "bc1q", "label": ""},
        {"asset": "BTC", "address": "", "label": "x"},
        {"asset": "BTC", "address": "bc1q", "label": "x" * 65},
        {"asset": "NOPE", "address": "bc1q", "label": "x"},
        {"asset": "BTC", "address": "bad\naddress", "label": "x"},
    ],
)
def test_a_bad_saved_address_is_400(auth_client, funded, body):
    response = auth_client.post(ADDRESSES, body, format="json")

    assert response.status_code == 400, response.content
    assert not WithdrawalAddress.objects.exists()
    assert_ledger_ok()

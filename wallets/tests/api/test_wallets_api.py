"""Happy paths through the wallet endpoints, with the exact strings the API renders."""

from decimal import Decimal

import pytest

from wallets import services
from wallets.models import LedgerKind, Withdrawal
from wallets.selectors import fee_account_get
from wallets.tasks import withdrawal_process_task
from wallets.tests.factories import AssetFactory
from wallets.tests.helpers import assert_error, assert_ledger_ok, balance_of, money_state

pytestmark = pytest.mark.django_db

ASSETS = "/api/v1/assets"
WALLETS = "/api/v1/wallets"
BALANCE = "/api/v1/account/balance"
LEDGER = "/api/v1/wallets/ledger"
DEPOSITS = "/api/v1/wallets/deposits"
WITHDRAWALS = "/api/v1/wallets/withdrawals"


def address_url(code):
    return f"/api/v1/wallets/deposit-address/{code}"


def withdrawal_url(withdrawal_id):
    return f"{WITHDRAWALS}/{withdrawal_id}"


def confirm_by_email(client, withdrawal_id):
    """What the emailed link's page does: post the link's token; the withdrawal is in review."""
    token = services.withdrawal_link_token(
        withdrawal=Withdrawal.objects.get(pk=withdrawal_id), salt=services.CONFIRM_SALT
    )
    response = client.post(f"{WITHDRAWALS}/confirm", {"token": token}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "requested"


def test_assets_are_public_with_terms_as_strings(api_client, btc, usd):
    AssetFactory(code="OLD", is_active=False)

    response = api_client.get(ASSETS)

    assert response.status_code == 200
    assert response.json() == [
        {
            "code": "BTC",
            "name": "Bitcoin",
            "precision": 8,
            "min_withdrawal": "0.00010000",
            "withdrawal_fee": "0.00010000",
            "confirmations_required": 2,
            "is_active": True,
        },
        {
            "code": "USD",
            "name": "US Dollar",
            "precision": 2,
            "min_withdrawal": "10.00",
            "withdrawal_fee": "1.00",
            "confirmations_required": 0,
            "is_active": True,
        },
    ]


def test_demo_deposit_shows_in_wallets_and_account_balance(auth_client, btc, usd, demo_deposits):
    response = auth_client.post(DEPOSITS, {"asset": "btc", "amount": "1.5"}, format="json")

    assert response.status_code == 201, response.content
    deposit = response.json()
    assert (deposit["asset"], deposit["amount"], deposit["status"]) == (
        "BTC",
        "1.50000000",
        "confirmed",
    )
    assert deposit["tx_id"].startswith("demo-")

    wallets = auth_client.get(WALLETS).json()
    assert wallets == [
        {
            "asset": "BTC",
            "name": "Bitcoin",
            "available": "1.50000000",
            "locked": "0.00000000",
            "total": "1.50000000",
        },
        {
            "asset": "USD",
            "name": "US Dollar",
            "available": "0.00",
            "locked": "0.00",
            "total": "0.00",
        },
    ]
    assert auth_client.get(BALANCE).json() == {
        "BTC": {"available": "1.50000000", "locked": "0.00000000", "total": "1.50000000"},
        "USD": {"available": "0.00", "locked": "0.00", "total": "0.00"},
    }
    assert_ledger_ok()


def test_demo_deposit_accepts_a_json_number_exactly(auth_client, usd, demo_deposits):
    response = auth_client.post(
        DEPOSITS, data='{"asset": "USD", "amount": 0.1}', content_type="application/json"
    )

    assert response.status_code == 201, response.content
    assert response.json()["amount"] == "0.10"


def test_balance_renders_amounts_finer_than_the_asset_precision_in_full(auth_client, user, btc):
    services.balance_credit(
        user_id=user.pk,
        asset=btc,
        amount=Decimal("0.123456789"),
        kind=LedgerKind.TRADE,
        reference_type="trade",
    )

    assert auth_client.get(BALANCE).json()["BTC"]["available"] == "0.123456789"


def test_ledger_lists_own_entries_paginated_and_filtered(auth_client, user, btc, usd, fund):
    for amount in ("1", "2", "3"):
        fund(user, btc, amount)
    fund(user, usd, "50")
    services.withdrawal_request(user=user, asset_code="BTC", amount=Decimal("0.5"), address="out")

    first = auth_client.get(LEDGER, {"page_size": 2}).json()
    assert set(first) == {"count", "next", "previous", "results"}
    assert first["count"] == 5
    assert first["previous"] is None
    assert "page=2" in first["next"]
    assert [e["kind"] for e in first["results"]] == ["withdrawal", "deposit"]  # newest first
    assert first["results"][0]["available_delta"] == "-0.50010000"
    assert first["results"][0]["locked_delta"] == "0.50010000"
    assert first["results"][1]["asset"] == "USD"
    assert first["results"][1]["available_delta"] == "50.00"

    last = auth_client.get(LEDGER, {"page_size": 2, "page": 3}).json()
    assert last["next"] is None
    assert last["previous"] is not None
    assert [e["available_delta"] for e in last["results"]] == ["1.00000000"]

    btc_deposits = auth_client.get(LEDGER, {"asset": "btc", "kind": "deposit"}).json()
    assert btc_deposits["count"] == 3
    assert {e["asset"] for e in btc_deposits["results"]} == {"BTC"}
    assert auth_client.get(LEDGER, {"kind": "withdrawal"}).json()["count"] == 1


def test_ledger_refuses_an_unknown_kind_filter(auth_client, user, btc, fund):
    fund(user, btc, "1")

    response = auth_client.get(LEDGER, {"kind": "theft"})

    assert_error(response, 400, "VALIDATION_ERROR")


def test_deposit_address_is_stable_across_calls_and_per_user(
    auth_client, client_for, other_user, btc, usd
):
    first = auth_client.get(address_url("BTC"))
    again = auth_client.get(address_url("btc"))
    usd_address = auth_client.get(address_url("USD")).json()["address"]
    theirs = client_for(other_user).get(address_url("BTC")).json()["address"]

    assert first.status_code == 200
    assert first.json() == again.json()
    assert first.json()["asset"] == "BTC"
    assert first.json()["confirmations_required"] == 2
    assert len({first.json()["address"], usd_address, theirs}) == 3


def test_deposit_address_of_an_unknown_asset_is_404(auth_client, btc):
    assert_error(auth_client.get(address_url("NOPE")), 404, "UNKNOWN_ASSET")


def test_chain_deposit_appears_pending_then_confirmed(auth_client, user, btc):
    address = auth_client.get(address_url("BTC")).json()["address"]
    services.deposit_chain_detect(address=address, amount=Decimal("0.25"))

    pending = auth_client.get(DEPOSITS).json()["results"][0]
    assert (pending["status"], pending["confirmations"], pending["amount"]) == (
        "pending",
        0,
        "0.25000000",
    )
    assert auth_client.get(BALANCE).json()["BTC"]["available"] == "0.00000000"

    services.chain_block_mine()
    services.chain_block_mine()

    confirmed = auth_client.get(DEPOSITS).json()["results"][0]
    assert (confirmed["status"], confirmed["confirmations"]) == ("confirmed", 2)
    assert auth_client.get(BALANCE).json()["BTC"]["available"] == "0.25000000"


def test_withdrawal_request_then_cancel_releases_then_cancel_again_is_409(
    auth_client, user, btc, fund
):
    fund(user, btc, "1")

    created = auth_client.post(
        WITHDRAWALS, {"asset": "BTC", "amount": "0.4", "address": "sim-out-1"}, format="json"
    )

    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["amount"], body["fee"], body["status"], body["address"]) == (
        "0.40000000",
        "0.00010000",
        "awaiting_confirmation",
        "sim-out-1",
    )
    assert auth_client.get(BALANCE).json()["BTC"] == {
        "available": "0.59990000",
        "locked": "0.40010000",
        "total": "1.00000000",
    }
    confirm_by_email(auth_client, body["id"])
    assert auth_client.get(withdrawal_url(body["id"])).json()["status"] == "requested"

    cancelled = auth_client.delete(withdrawal_url(body["id"]))

    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert balance_of(user, btc) == (Decimal(1), Decimal(0))
    before = money_state()
    again = auth_client.delete(withdrawal_url(body["id"]) + "/")
    error = assert_error(again, 409, "WITHDRAWAL_STATE")
    assert error["details"] == {"status": "cancelled"}
    assert money_state() == before
    assert_ledger_ok()


def test_approved_withdrawal_is_completed_by_the_task_and_pays_the_fee(
    auth_client, user, btc, fund, operator
):
    fund(user, btc, "1")
    withdrawal_id = auth_client.post(
        WITHDRAWALS, {"asset": "BTC", "amount": "0.4", "address": "sim-out"}, format="json"
    ).json()["id"]
    confirm_by_email(auth_client, withdrawal_id)
    services.withdrawal_approve(withdrawal_id=withdrawal_id, reviewer=operator)
    assert auth_client.get(withdrawal_url(withdrawal_id)).json()["status"] == "approved"

    withdrawal_process_task(withdrawal_id)
    after_first = money_state()
    withdrawal_process_task(withdrawal_id)  # a retry or a second sweep pays nothing more

    assert money_state() == after_first
    shown = auth_client.get(withdrawal_url(withdrawal_id)).json()
    assert shown["status"] == "completed"
    assert shown["tx_id"].startswith("simtx-")
    assert shown["completed_at"] is not None
    assert auth_client.get(BALANCE).json()["BTC"] == {
        "available": "0.59990000",
        "locked": "0.00000000",
        "total": "0.59990000",
    }
    assert balance_of(fee_account_get(), btc) == (Decimal("0.0001"), Decimal(0))
    assert_ledger_ok()


def test_rejected_withdrawal_shows_the_reason_and_releases(auth_client, user, btc, fund, operator):
    fund(user, btc, "1")
    withdrawal_id = auth_client.post(
        WITHDRAWALS, {"asset": "BTC", "amount": "0.4", "address": "sim-out"}, format="json"
    ).json()["id"]
    confirm_by_email(auth_client, withdrawal_id)

    services.withdrawal_reject(withdrawal_id=withdrawal_id, reviewer=operator, reason="KYC")

    shown = auth_client.get(withdrawal_url(withdrawal_id)).json()
    assert (shown["status"], shown["review_note"]) == ("rejected", "KYC")
    assert auth_client.get(BALANCE).json()["BTC"]["available"] == "1.00000000"
    assert_error(auth_client.delete(withdrawal_url(withdrawal_id)), 409, "WITHDRAWAL_STATE")
    assert Withdrawal.objects.get(pk=withdrawal_id).status == Withdrawal.Status.REJECTED
    assert_ledger_ok()

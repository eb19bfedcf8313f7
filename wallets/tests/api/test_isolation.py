"""Each user sees and touches only their own money; strangers get 404, anonymous 401."""

from decimal import Decimal

import pytest

from wallets.models import Withdrawal
from wallets.tests.helpers import assert_error, money_state, withdrawal_request_confirmed

pytestmark = pytest.mark.django_db

WITHDRAWALS = "/api/v1/wallets/withdrawals"


@pytest.fixture
def two_users(user, other_user, btc, usd, fund):
    """Both users with deposits, ledger entries and a withdrawal each (confirmed: in review)."""
    made = {}
    for owner, amount in ((user, "1"), (other_user, "2")):
        deposit = fund(owner, btc, amount)
        withdrawal = withdrawal_request_confirmed(
            user=owner, asset_code="BTC", amount=Decimal("0.5"), address="out"
        )
        made[owner.pk] = {"deposit": deposit.pk, "withdrawal": withdrawal.pk}
    return made


def test_withdrawal_of_another_user_is_404_to_get(auth_client, other_user, two_users):
    theirs = two_users[other_user.pk]["withdrawal"]

    assert_error(auth_client.get(f"{WITHDRAWALS}/{theirs}"), 404, "NOT_FOUND")


def test_withdrawal_of_another_user_is_404_to_cancel_and_stays_requested(
    auth_client, other_user, two_users
):
    theirs = two_users[other_user.pk]["withdrawal"]
    before = money_state()

    assert_error(auth_client.delete(f"{WITHDRAWALS}/{theirs}"), 404, "WITHDRAWAL_NOT_FOUND")

    assert money_state() == before
    assert Withdrawal.objects.get(pk=theirs).status == Withdrawal.Status.REQUESTED


@pytest.mark.parametrize("method", ["get", "delete"])
def test_withdrawal_that_does_not_exist_is_404(auth_client, two_users, method):
    before = money_state()

    response = getattr(auth_client, method)(f"{WITHDRAWALS}/999999999999999999")

    assert response.status_code == 404
    assert money_state() == before


def test_lists_return_only_the_callers_own_objects(auth_client, user, two_users):
    mine = two_users[user.pk]

    deposits = auth_client.get("/api/v1/wallets/deposits").json()
    assert [d["id"] for d in deposits["results"]] == [mine["deposit"]]
    withdrawals = auth_client.get(WITHDRAWALS).json()
    assert [w["id"] for w in withdrawals["results"]] == [mine["withdrawal"]]
    ledger = auth_client.get("/api/v1/wallets/ledger").json()
    assert ledger["count"] == 2
    assert {(e["reference_type"], e["reference_id"]) for e in ledger["results"]} == {
        ("deposit", mine["deposit"]),
        ("withdrawal", mine["withdrawal"]),
    }
    # The other user holds 2 BTC; the caller's own 1 BTC is what shows.
    wallets = {w["asset"]: w for w in auth_client.get("/api/v1/wallets").json()}
    assert (wallets["BTC"]["available"], wallets["BTC"]["total"]) == ("0.49990000", "1.00000000")
    balance = auth_client.get("/api/v1/account/balance").json()
    assert balance["BTC"]["total"] == "1.00000000"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/wallets"),
        ("get", "/api/v1/account/balance"),
        ("get", "/api/v1/wallets/ledger"),
        ("get", "/api/v1/wallets/deposits"),
        ("post", "/api/v1/wallets/deposits"),
        ("get", "/api/v1/wallets/deposit-address/BTC"),
        ("get", WITHDRAWALS),
        ("post", WITHDRAWALS),
        ("get", f"{WITHDRAWALS}/1"),
        ("delete", f"{WITHDRAWALS}/1"),
    ],
)
def test_wallet_endpoints_need_authentication(api_client, two_users, method, path):
    before = money_state()

    response = getattr(api_client, method)(
        path, {"asset": "BTC", "amount": "1", "address": "x"}, format="json"
    )

    assert_error(response, 401, "NOT_AUTHENTICATED")
    assert "WWW-Authenticate" in response.headers
    assert money_state() == before


def test_a_bad_token_is_401(api_client, two_users):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    assert api_client.get("/api/v1/wallets").status_code == 401

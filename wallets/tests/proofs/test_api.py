"""The public roots, the user's proof over the API and the pages."""

import json

import pytest
from django.template.loader import render_to_string
from django.test import Client

from accounts.tests.factories import UserFactory
from testsupport.helpers import assert_error
from wallets import proofs
from wallets.tests.proofs.helpers import check_proof

pytestmark = pytest.mark.django_db

ROOTS = "/api/v1/proof-of-liabilities"
PROOF = "/api/v1/wallets/proof-of-liabilities"


@pytest.fixture
def published(user, other_user, btc, usd, fund, snapshot_take):
    fund(user, btc, "1.5")
    fund(user, usd, "250.25")
    fund(other_user, btc, "0.5")
    return snapshot_take()


def test_roots_are_public(api_client, published):
    response = api_client.get(ROOTS)

    assert response.status_code == 200
    body = response.json()
    assert body["scheme"] == proofs.SCHEME
    assert body["snapshot_id"] == published.pk
    btc = next(row for row in body["assets"] if row["asset"] == "BTC")
    root = published.roots.get(asset__code="BTC")
    assert btc == {
        "asset": "BTC",
        "root_hash": root.root_hash,
        "total": "2.00000000",
        "total_units": str(2 * 10**18),
        "leaf_count": 2,
    }


def test_roots_of_an_earlier_snapshot_by_id(api_client, published, snapshot_take):
    newer = snapshot_take()

    old = api_client.get(ROOTS, {"snapshot": published.pk}).json()
    new = api_client.get(ROOTS).json()

    assert (old["snapshot_id"], new["snapshot_id"]) == (published.pk, newer.pk)
    assert old["assets"][0]["root_hash"] != new["assets"][0]["root_hash"]


def test_roots_before_the_first_snapshot_are_a_404(api_client, btc):
    response = api_client.get(ROOTS)

    assert_error(response, 404, "LIABILITY_SNAPSHOT_NOT_FOUND")


@pytest.mark.parametrize("value", ["abc", "0", "-1", "99999999999999999999", "1.5"])
def test_a_bad_snapshot_id_is_a_400(api_client, published, value):
    response = api_client.get(ROOTS, {"snapshot": value})

    assert_error(response, 400, "VALIDATION_ERROR")


def test_the_proof_needs_a_login(api_client, published):
    assert api_client.get(PROOF).status_code == 401


def test_the_proof_is_the_callers_own_and_verifies(auth_client, user, published):
    response = auth_client.get(PROOF)

    assert response.status_code == 200
    proof = response.json()
    assert proof["user_id"] == user.pk
    assert proof["snapshot_id"] == published.pk
    assert [(e["asset"], e["balance"]) for e in proof["assets"]] == [
        ("BTC", "1.50000000"),
        ("USD", "250.25"),
    ]
    check_proof(proof)
    roots = {row["asset"]: row for row in Client().get(ROOTS).json()["assets"]}
    for entry in proof["assets"]:
        assert entry["root_hash"] == roots[entry["asset"]]["root_hash"]


def test_a_user_without_balances_gets_an_empty_proof(client_for, published):
    response = client_for(UserFactory()).get(PROOF)

    assert response.status_code == 200
    assert response.json()["assets"] == []


def test_the_proof_of_an_unknown_snapshot_is_a_404(auth_client, published):
    response = auth_client.get(PROOF, {"snapshot": published.pk + 1000})

    assert_error(response, 404, "LIABILITY_SNAPSHOT_NOT_FOUND")


def test_the_public_page_shows_the_roots_without_a_login(published):
    response = Client().get("/proof-of-liabilities/")

    assert response.status_code == 200
    html = response.content.decode()
    for root in published.roots.all():
        assert root.root_hash in html
    assert "2.00000000" in html
    assert f"{ROOTS}?snapshot={published.pk}" in html


def test_the_public_page_before_any_snapshot(db):
    response = Client().get("/proof-of-liabilities/")

    assert response.status_code == 200
    assert "No snapshot has been published yet." in response.content.decode()


def test_the_wallet_download_is_the_users_proof_as_a_file(user, published):
    client = Client()
    client.force_login(user)

    response = client.get("/wallet/proof.json")

    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="proof-of-liabilities-{published.pk}.json"'
    )
    proof = json.loads(response.content)
    assert proof["user_id"] == user.pk
    check_proof(proof)


def test_the_wallet_download_needs_a_login(published):
    response = Client().get("/wallet/proof.json")

    assert response.status_code == 302
    assert "/accounts/login" in response["Location"]


def test_the_verifier_script_is_served(db):
    response = Client().get("/proof-of-liabilities/verify_liabilities.py")

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="verify_liabilities.py"'
    assert b"pol-merkle-sum-sha256-v1" in response.content


def test_the_wallet_partial_links_the_download_and_the_snapshot_time(published):
    html = render_to_string("wallets/_proof.html")

    assert "/wallet/proof.json" in html
    assert f"snapshot {published.pk}" in html
    assert published.taken_at.strftime("%Y-%m-%d %H:%M") in html


def test_the_wallet_partial_before_any_snapshot(db):
    html = render_to_string("wallets/_proof.html")

    assert "No <a" in html
    assert "/wallet/proof.json" not in html

"""Acceptance (issue item 7): a user checks the downloaded proof with
scripts/verify_liabilities.py, run as its own process, against the published roots; a
changed balance or a dropped account breaks the proof."""

import copy
import importlib.util
import random
import subprocess
import sys
from decimal import Decimal

import pytest
from django.test import Client

from accounts.tests.factories import UserFactory
from wallets import proofs
from wallets.models import LiabilityLeaf
from wallets.tests.proofs.helpers import VERIFIER, run_verifier, tree_leaves

pytestmark = pytest.mark.django_db

ROOTS = "/api/v1/proof-of-liabilities"
PROOF = "/api/v1/wallets/proof-of-liabilities"


def load_script():
    spec = importlib.util.spec_from_file_location("verify_liabilities", VERIFIER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def world(user, other_user, btc, usd, fund, snapshot_take, client_for):
    """20 BTC holders (more than one block of 16 leaves), ``user`` among them."""
    fund(user, btc, "1.5")
    fund(user, usd, "250.25")
    fund(other_user, btc, "0.5")
    for number in range(18):
        fund(UserFactory(), btc, f"0.0{number + 1}")
    snapshot = snapshot_take()
    return {
        "snapshot": snapshot,
        "proof": client_for(user).get(PROOF).json(),
        "other_proof": client_for(other_user).get(PROOF).json(),
        "roots": Client().get(ROOTS, {"snapshot": snapshot.pk}).json(),
        "btc_root": snapshot.roots.get(asset=btc),
    }


def published_with(roots: dict, asset: str, top: proofs.Node, leaf_count: int) -> dict:
    """The published roots with one asset's tree replaced, as a cheating operator would."""
    tampered = copy.deepcopy(roots)
    row = next(row for row in tampered["assets"] if row["asset"] == asset)
    row["root_hash"] = top.hash.hex()
    row["total_units"] = str(top.sum)
    row["total"] = format(Decimal(top.sum).scaleb(-18), "f")
    row["leaf_count"] = leaf_count
    return tampered


def test_an_honest_proof_verifies_against_the_published_roots(tmp_path, world, user):
    result = run_verifier(
        tmp_path,
        world["proof"],
        world["roots"],
        "--user-id",
        str(user.pk),
        "--expect",
        "BTC=1.5",
        "--expect",
        "usd=250.25",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK   BTC: balance 1.50000000 is included in the published root" in result.stdout
    assert "OK   USD: balance 250.25" in result.stdout
    assert result.stdout.rstrip().endswith("VERIFIED")


def test_without_the_published_roots_it_says_what_it_did_not_check(tmp_path, world):
    result = run_verifier(tmp_path, world["proof"])

    assert result.returncode == 0
    assert "NOTE the roots were not compared with the published ones" in result.stdout


def test_a_changed_balance_of_another_account_breaks_the_proof(tmp_path, world, other_user):
    """The operator lowers another customer's balance in the tree it publishes: the user's
    honest path no longer reaches that root."""
    root = world["btc_root"]
    leaves = tree_leaves(root, change={other_user.pk: 1})
    top = proofs.root_of(proofs.tree_levels(leaves))
    tampered = published_with(world["roots"], "BTC", top, root.leaf_count)

    result = run_verifier(tmp_path, world["proof"], tampered)

    assert result.returncode == 1
    assert "FAIL BTC: the published root is" in result.stdout
    assert "OK   USD" in result.stdout  # the untouched tree still checks out


def test_a_dropped_account_breaks_the_proof(tmp_path, world, other_user):
    root = world["btc_root"]
    leaves = tree_leaves(root, drop=other_user.pk)
    top = proofs.root_of(proofs.tree_levels(leaves))
    tampered = published_with(world["roots"], "BTC", top, root.leaf_count - 1)

    mine = run_verifier(tmp_path, world["proof"], tampered)
    # The dropped customer: the operator cannot give a proof that reaches the root, so
    # it leaves the asset out, and the customer who knows they held some notices.
    theirs = copy.deepcopy(world["other_proof"])
    theirs["assets"] = []
    dropped = run_verifier(tmp_path, theirs, tampered, "--expect", "BTC=0.5")

    assert mine.returncode == 1
    assert "FAIL BTC: the published root is" in mine.stdout
    assert dropped.returncode == 1
    assert "FAIL BTC: the proof has no leaf for it, you expected 0.5" in dropped.stdout


def test_a_balance_changed_in_the_stored_leaf_breaks_the_downloaded_proof(
    tmp_path, world, user, client_for
):
    """Lowering the user's own leaf after publishing: the downloaded proof shows the lower
    balance and its path does not reach the published root."""
    leaf = LiabilityLeaf.objects.get(user=user, root=world["btc_root"])
    leaf.balance = leaf.balance - 1
    leaf.save(update_fields=["balance"])

    proof = client_for(user).get(PROOF).json()
    result = run_verifier(tmp_path, proof, world["roots"])

    assert result.returncode == 1
    assert "FAIL BTC: the path leads to root" in result.stdout


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda e: e.update(balance="1.4", balance_units=str(14 * 10**17)), "leaf hash does not"),
        (
            lambda e: (
                e.update(balance="1.4", balance_units=str(14 * 10**17), leaf_hash="00" * 32)
                or e.pop("leaf_hash")
            ),
            "the path leads to",
        ),
        (lambda e: e.update(balance_units=str(14 * 10**17)), "is not 1400000000000000000 units"),
        (lambda e: e["path"][0].update(sum="0"), "the path leads to"),
        (lambda e: e["path"][-1].update(sum="-1"), "negative"),
        (lambda e: e["path"].pop(), "does not fit"),
        (lambda e: e.update(salt="00" * 16), "leaf hash does not follow"),
        (lambda e: e.update(total_units="1", total="0.000000000000000001"), "adds up to"),
    ],
    ids=[
        "balance",
        "balance-and-leaf-hash",
        "units",
        "sibling-sum",
        "negative-sum",
        "short-path",
        "salt",
        "total",
    ],
)
def test_an_edited_proof_file_fails(tmp_path, world, tamper, message):
    proof = copy.deepcopy(world["proof"])
    tamper(next(e for e in proof["assets"] if e["asset"] == "BTC"))

    result = run_verifier(tmp_path, proof, world["roots"])

    assert result.returncode == 1
    assert message in result.stdout, result.stdout


def test_someone_elses_proof_fails_for_my_user_id(tmp_path, world, user):
    result = run_verifier(tmp_path, world["other_proof"], world["roots"], "--user-id", str(user.pk))

    assert result.returncode == 1
    assert f"not {user.pk}" in result.stdout


def test_roots_of_another_snapshot_are_refused(tmp_path, world):
    roots = dict(world["roots"], snapshot_id=world["roots"]["snapshot_id"] + 1)

    result = run_verifier(tmp_path, world["proof"], roots)

    assert result.returncode == 1
    assert "the published roots are of snapshot" in result.stdout


def test_unreadable_input_exits_2(tmp_path):
    (tmp_path / "proof.json").write_text("{not json")

    result = subprocess.run(
        [sys.executable, str(VERIFIER), str(tmp_path / "proof.json")],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 2
    assert "cannot read the input" in result.stderr


def test_the_script_and_the_module_hash_alike():
    """scripts/verify_liabilities.py mirrors wallets/proofs.py; they must never drift."""
    script = load_script()
    rng = random.Random(7)
    assert script.SCHEME == proofs.SCHEME
    for _ in range(200):
        salt = rng.randbytes(16)
        user_id, units = rng.randrange(2**63), rng.randrange(2**200)
        assert script.leaf_hash(salt, user_id, "ETH", units) == (
            proofs.leaf(salt=salt, user_id=user_id, asset="ETH", balance_units=units).hash
        )
        left, right = rng.randbytes(32), rng.randbytes(32)
        a, b = rng.randrange(2**200), rng.randrange(2**200)
        assert (
            script.node_hash(left, a, right, b)
            == proofs.parent(proofs.Node(left, a), proofs.Node(right, b)).hash
        )
    for count in range(1, 70):
        for index in range(count):
            assert script.expected_sides(count, index) == [
                side for _, _, side in proofs.sibling_positions(leaf_count=count, index=index)
            ]

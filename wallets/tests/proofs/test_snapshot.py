"""liability_snapshot_take and its stored trees, against the real database."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.tests.factories import UserFactory
from exchange_site.celery import app as celery_app
from wallets import liabilities, proofs, services, tasks
from wallets.models import (
    Balance,
    LiabilityLeaf,
    LiabilityNode,
    LiabilityRoot,
    LiabilitySnapshot,
)
from wallets.selectors import fee_account_get
from wallets.tests.factories import AssetFactory
from wallets.tests.proofs.helpers import check_proof, tree_leaves

pytestmark = pytest.mark.django_db


def units(amount: str) -> int:
    return int(Decimal(amount).scaleb(18))


def test_snapshot_counts_available_plus_locked_of_every_holder(
    user, other_user, btc, usd, fund, snapshot_take
):
    fund(user, btc, "1.5")
    fund(other_user, btc, "0.25")
    fund(user, usd, "1000")
    services.withdrawal_request(
        user=user, asset_code="USD", amount=Decimal("100"), address="payout-1"
    )
    assert Balance.objects.get(user=user, asset=usd).locked == Decimal("101")

    snapshot = snapshot_take()

    roots = {root.asset.code: root for root in snapshot.roots.select_related("asset")}
    assert roots["BTC"].total == Decimal("1.75")
    assert roots["BTC"].leaf_count == 2
    assert roots["USD"].total == Decimal("1000")  # 899 available + 101 locked
    assert roots["USD"].leaf_count == 1
    assert LiabilityLeaf.objects.get(user=user, root=roots["USD"]).balance == Decimal("1000")
    expected = proofs.root_of(proofs.tree_levels(tree_leaves(roots["BTC"])))
    assert roots["BTC"].root_hash == expected.hash.hex()
    assert expected.sum == units("1.75")


def test_system_accounts_and_zero_balances_are_not_liabilities(
    user, other_user, btc, usd, fund, snapshot_take
):
    fund(user, btc, "1")
    fees = fee_account_get()
    fund(fees, btc, "5")
    # other_user's USD is all locked in a withdrawal (available 0): still owed.
    fund(other_user, usd, "20")
    services.withdrawal_request(
        user=other_user, asset_code="USD", amount=Decimal("19"), address="payout-2"
    )
    # A zero balance row (as left behind when everything is spent): nothing is owed.
    Balance.objects.create(user=other_user, asset=btc)

    snapshot = snapshot_take()

    leaves = LiabilityLeaf.objects.filter(root__snapshot=snapshot)
    assert not leaves.filter(user=fees).exists()
    assert snapshot.roots.get(asset=btc).total == Decimal("1")
    assert snapshot.roots.get(asset=usd).total == Decimal("20")
    assert sorted(leaves.values_list("user_id", "root__asset__code")) == sorted(
        [(user.pk, "BTC"), (other_user.pk, "USD")]
    )


def test_an_active_asset_nobody_holds_gets_an_empty_tree(btc, usd, user, fund, snapshot_take):
    fund(user, btc, "1")
    AssetFactory(code="DEAD", is_active=False)

    snapshot = snapshot_take()

    usd_root = snapshot.roots.get(asset=usd)
    assert (usd_root.root_hash, usd_root.total, usd_root.leaf_count) == (
        proofs.EMPTY_ROOT.hex(),
        Decimal(0),
        0,
    )
    assert sorted(snapshot.roots.values_list("asset__code", flat=True)) == ["BTC", "USD"]


def test_balances_are_read_by_one_statement(btc, usd, user, fund, snapshot_take):
    """One statement is one moment of the database: no transfer between two assets can be
    seen half done."""
    fund(user, btc, "1")
    fund(user, usd, "1")

    with CaptureQueriesContext(connection) as queries:
        snapshot_take()

    reads = [
        q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("SELECT", "DECLARE"))
    ]
    balance_reads = [sql for sql in reads if '"wallets_balance"' in sql]
    assert len(balance_reads) == 1, balance_reads


def test_many_accounts_every_proof_verifies_and_the_stored_nodes_match(btc, fund, snapshot_take):
    holders = [UserFactory() for _ in range(37)]
    for number, holder in enumerate(holders, start=1):
        fund(holder, btc, f"0.{number:03d}")

    snapshot = snapshot_take()

    root = snapshot.roots.get(asset=btc)
    assert root.leaf_count == 37
    assert root.total == sum(Decimal(f"0.{n:03d}") for n in range(1, 38))
    # Leaf order is random: a permutation of 0..36, unrelated to who joined first.
    indexes = dict(LiabilityLeaf.objects.filter(root=root).values_list("user_id", "index"))
    assert sorted(indexes.values()) == list(range(37))
    levels = proofs.tree_levels(tree_leaves(root))
    stored = {
        (level, position): (digest, int(total))
        for level, position, digest, total in LiabilityNode.objects.filter(root=root).values_list(
            "level", "position", "hash", "sum_units"
        )
    }
    assert stored == {
        (level, position): (node.hash.hex(), node.sum)
        for level in range(liabilities.NODES_STORED_FROM_LEVEL, len(levels))
        for position, node in enumerate(levels[level])
    }
    for holder in holders:
        proof = liabilities.liability_proof_for_user(user=holder, snapshot=snapshot)
        [entry] = proof["assets"]
        assert entry["index"] == indexes[holder.pk]
        check_proof(proof)


def test_salts_are_fresh_per_asset_and_per_snapshot(btc, usd, user, fund, snapshot_take):
    fund(user, btc, "1")
    fund(user, usd, "1")

    first, second = snapshot_take(), snapshot_take()

    salts = list(LiabilityLeaf.objects.filter(user=user).values_list("salt", flat=True))
    assert len(salts) == 4
    assert len(set(salts)) == 4
    assert all(len(bytes.fromhex(salt)) == proofs.SALT_BYTES for salt in salts)
    assert first.roots.get(asset=btc).root_hash != second.roots.get(asset=btc).root_hash


def test_pruning_keeps_the_newest_snapshots(btc, user, fund, snapshot_take):
    fund(user, btc, "1")
    taken = [snapshot_take(keep=0) for _ in range(4)]

    newest = snapshot_take(keep=2)

    assert list(LiabilitySnapshot.objects.values_list("pk", flat=True)) == [newest.pk, taken[-1].pk]
    assert set(LiabilityRoot.objects.values_list("snapshot_id", flat=True)) == {
        newest.pk,
        taken[-1].pk,
    }
    assert LiabilityLeaf.objects.filter(root__snapshot__in=taken[:3]).count() == 0


def test_the_setting_sets_how_many_are_kept(btc, user, fund, snapshot_take, settings):
    settings.LIABILITY_SNAPSHOTS_KEEP = 1
    fund(user, btc, "1")
    snapshot_take()

    latest = snapshot_take()

    assert list(LiabilitySnapshot.objects.values_list("pk", flat=True)) == [latest.pk]


def test_the_command_prints_each_root_total_and_count(btc, usd, user, fund):
    fund(user, btc, "0.5")
    out = StringIO()

    call_command("liabilities_snapshot", "--keep", "0", stdout=out)

    root = LiabilityRoot.objects.get(asset=btc)
    text = out.getvalue()
    assert f"snapshot {root.snapshot_id} taken at" in text
    assert "BTC              1  0.50000000" in text
    assert root.root_hash in text
    assert proofs.EMPTY_ROOT.hex() in text  # USD: nobody holds any


def test_the_task_takes_a_snapshot_and_is_on_the_beat_schedule(btc, user, fund):
    fund(user, btc, "1")
    scheduled = {entry["task"] for entry in celery_app.conf.beat_schedule.values()}

    snapshot_id = tasks.liability_snapshot_take_task()

    assert tasks.liability_snapshot_take_task.name in scheduled
    assert LiabilitySnapshot.objects.get().pk == snapshot_id

"""Proof of liabilities: the Django side of ``wallets/proofs.py``.

``liability_snapshot_take`` reads every account's balance of every asset in one statement,
commits each asset's balances to a Merkle sum tree, stores the leaves (with their salts)
and the upper levels of each tree, and prunes old snapshots. The selectors give the public
roots and each user's own proof (docs/PROOF_OF_LIABILITIES.md).
"""

import os
import time
from dataclasses import dataclass
from decimal import Decimal
from itertools import groupby

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import User
from exchange_site.db import copy_rows
from exchange_site.decimals import decimal_to_str
from wallets import proofs
from wallets.exceptions import LiabilitySnapshotNotFound
from wallets.models import (
    AMOUNT_DECIMAL_PLACES,
    Asset,
    Balance,
    LiabilityLeaf,
    LiabilityNode,
    LiabilityRoot,
    LiabilitySnapshot,
)

# Nodes at this level and above are stored (an eighth as many rows as leaves); a path's
# lower part is rebuilt from the block of 2**4 = 16 leaves around the user's leaf.
NODES_STORED_FROM_LEVEL = 4
READ_CHUNK = 20_000


def _units(amount: Decimal) -> int:
    """An amount at the 18-place storage scale as an integer count of 1e-18."""
    units = amount.scaleb(AMOUNT_DECIMAL_PLACES)
    if units != units.to_integral_value():
        raise ValueError(f"{amount} has more than {AMOUNT_DECIMAL_PLACES} decimal places")
    return int(units)


def _amount(units: int) -> Decimal:
    return Decimal(units).scaleb(-AMOUNT_DECIMAL_PLACES)


@dataclass(frozen=True)
class SnapshotStats:
    snapshot: LiabilitySnapshot
    seconds: float
    pruned: int


def _tree_store(*, snapshot: LiabilitySnapshot, asset: Asset, rows: list) -> LiabilityRoot:
    """Build and store one asset's tree from ``rows`` of ``(user_id, balance)``."""
    salts = os.urandom(proofs.SALT_BYTES * len(rows))
    entries = [
        (salts[i * proofs.SALT_BYTES : (i + 1) * proofs.SALT_BYTES], user_id, balance)
        for i, (user_id, balance) in enumerate(rows)
    ]
    # Random salts in sorted order are a random order of the accounts: a leaf's index says
    # nothing about who it is or how old the account is.
    entries.sort()
    code = asset.code
    leaves = [
        proofs.leaf(salt=salt, user_id=user_id, asset=code, balance_units=_units(balance))
        for salt, user_id, balance in entries
    ]
    levels = proofs.tree_levels(leaves)
    top = proofs.root_of(levels)
    root = LiabilityRoot.objects.create(
        snapshot=snapshot,
        asset=asset,
        root_hash=top.hash.hex(),
        total=_amount(top.sum),
        leaf_count=len(leaves),
    )
    copy_rows(
        LiabilityLeaf._meta.db_table,
        ["root_id", "user_id", "index", "salt", "balance"],
        [
            (root.pk, user_id, index, salt.hex(), balance)
            for index, (salt, user_id, balance) in enumerate(entries)
        ],
    )
    copy_rows(
        LiabilityNode._meta.db_table,
        ["root_id", "level", "position", "hash", "sum_units"],
        [
            (root.pk, level, position, node.hash.hex(), node.sum)
            for level in range(NODES_STORED_FROM_LEVEL, len(levels))
            for position, node in enumerate(levels[level])
        ],
    )
    return root


@transaction.atomic
def liability_snapshot_take(*, keep: int | None = None) -> SnapshotStats:
    """Commit every account's balance (available + locked) of every asset to one Merkle sum
    tree per asset, store it as a new ``LiabilitySnapshot`` and prune to the newest ``keep``
    (default ``settings.LIABILITY_SNAPSHOTS_KEEP``; 0 keeps all).

    The balances are read by ONE statement, so they are one consistent moment of the
    database (PostgreSQL gives a statement one snapshot) even while trades settle: no
    transfer is counted twice or missed between assets. System accounts (the fee account)
    are left out: what they hold is the exchange's own money, not owed to anyone. Zero
    balances are left out. Every active asset gets a tree, an empty one if nobody holds it.

    Takes no locks: writers go on while it runs. Raises nothing of its own.
    """
    started = time.perf_counter()
    taken_at = timezone.now()
    snapshot = LiabilitySnapshot.objects.create(taken_at=taken_at)
    assets = {asset.pk: asset for asset in Asset.objects.all()}
    held = (
        Balance.objects.filter(user__is_system=False)
        .filter(Q(available__gt=0) | Q(locked__gt=0))
        .annotate(total=F("available") + F("locked"))
        .order_by("asset_id")
        .values_list("asset_id", "user_id", "total")
        .iterator(chunk_size=READ_CHUNK)
    )
    done = set()
    for asset_id, group in groupby(held, key=lambda row: row[0]):
        rows = [(user_id, total) for _, user_id, total in group]
        _tree_store(snapshot=snapshot, asset=assets[asset_id], rows=rows)
        done.add(asset_id)
    for asset in assets.values():
        if asset.is_active and asset.pk not in done:
            _tree_store(snapshot=snapshot, asset=asset, rows=[])
    pruned = liability_snapshot_prune(
        keep=settings.LIABILITY_SNAPSHOTS_KEEP if keep is None else keep
    )
    return SnapshotStats(snapshot=snapshot, seconds=time.perf_counter() - started, pruned=pruned)


@transaction.atomic
def liability_snapshot_prune(*, keep: int) -> int:
    """Delete all but the newest ``keep`` snapshots (``keep`` 0: delete none); returns how
    many were deleted. Children first, one DELETE per table (no per-row cascade)."""
    if keep <= 0:
        return 0
    old = list(LiabilitySnapshot.objects.order_by("-id").values_list("pk", flat=True)[keep:])
    if not old:
        return 0
    LiabilityLeaf.objects.filter(root__snapshot_id__in=old).delete()
    LiabilityNode.objects.filter(root__snapshot_id__in=old).delete()
    LiabilityRoot.objects.filter(snapshot_id__in=old).delete()
    LiabilitySnapshot.objects.filter(pk__in=old).delete()
    return len(old)


# --- Selectors -------------------------------------------------------------------------


def liability_snapshot_latest() -> LiabilitySnapshot | None:
    return LiabilitySnapshot.objects.order_by("-id").first()


def liability_snapshot_list(*, limit: int = 30) -> list[LiabilitySnapshot]:
    """The newest ``limit`` snapshots, newest first."""
    return list(LiabilitySnapshot.objects.order_by("-id")[:limit])


def liability_snapshot_get(*, snapshot_id: int | None = None) -> LiabilitySnapshot:
    """The snapshot ``snapshot_id``, or the newest. Raises ``LiabilitySnapshotNotFound``."""
    snapshots = LiabilitySnapshot.objects.order_by("-id")
    snapshot = (
        snapshots.first() if snapshot_id is None else snapshots.filter(pk=snapshot_id).first()
    )
    if snapshot is None:
        raise LiabilitySnapshotNotFound(details={"snapshot": snapshot_id})
    return snapshot


def _root_fields(root: LiabilityRoot) -> dict:
    return {
        "asset": root.asset.code,
        "root_hash": root.root_hash,
        "total": decimal_to_str(root.total, root.asset.precision),
        "total_units": str(_units(root.total)),
        "leaf_count": root.leaf_count,
    }


def liability_roots_get(*, snapshot: LiabilitySnapshot) -> dict:
    """What is published of ``snapshot``: per asset the root hash, total and leaf count."""
    roots = snapshot.roots.select_related("asset").order_by("asset__code")
    return {
        "scheme": proofs.SCHEME,
        "snapshot_id": snapshot.pk,
        "taken_at": snapshot.taken_at.isoformat(),
        "assets": [_root_fields(root) for root in roots],
    }


def _proof_for_leaf(*, root: LiabilityRoot, leaf: LiabilityLeaf) -> dict:
    code = root.asset.code
    start, end = proofs.block_bounds(
        index=leaf.index, leaf_count=root.leaf_count, block_level=NODES_STORED_FROM_LEVEL
    )
    block = LiabilityLeaf.objects.filter(root=root, index__gte=start, index__lt=end).order_by(
        "index"
    )
    block_leaves = [
        proofs.leaf(
            salt=bytes.fromhex(row.salt),
            user_id=row.user_id,
            asset=code,
            balance_units=_units(row.balance),
        )
        for row in block
    ]
    wanted = proofs.upper_sibling_positions(
        leaf_count=root.leaf_count, index=leaf.index, block_level=NODES_STORED_FROM_LEVEL
    )
    upper = {}
    if wanted:
        positions = Q()
        for level, position, _side in wanted:
            positions |= Q(level=level, position=position)
        upper = {
            (level, position): proofs.Node(bytes.fromhex(digest), int(sum_units))
            for level, position, digest, sum_units in LiabilityNode.objects.filter(
                positions, root=root
            ).values_list("level", "position", "hash", "sum_units")
        }
    path = proofs.path_from_block(
        block_leaves=block_leaves,
        index=leaf.index,
        leaf_count=root.leaf_count,
        block_level=NODES_STORED_FROM_LEVEL,
        upper_nodes=upper,
    )
    balance_units = _units(leaf.balance)
    return {
        **_root_fields(root),
        "user_id": leaf.user_id,
        "salt": leaf.salt,
        "balance": decimal_to_str(leaf.balance, root.asset.precision),
        "balance_units": str(balance_units),
        "index": leaf.index,
        "leaf_hash": block_leaves[leaf.index - start].hash.hex(),
        "path": [
            {"side": step.side, "hash": step.hash.hex(), "sum": str(step.sum)} for step in path
        ],
    }


def liability_proof_for_user(*, user: User, snapshot: LiabilitySnapshot) -> dict:
    """``user``'s leaf in each of ``snapshot``'s trees with the path to its root: what
    ``scripts/verify_liabilities.py`` checks. Assets the user held none of are absent."""
    leaves = {
        leaf.root_id: leaf
        for leaf in LiabilityLeaf.objects.filter(user=user, root__snapshot=snapshot)
    }
    roots = snapshot.roots.select_related("asset").order_by("asset__code")
    return {
        "scheme": proofs.SCHEME,
        "snapshot_id": snapshot.pk,
        "taken_at": snapshot.taken_at.isoformat(),
        "user_id": user.pk,
        "assets": [
            _proof_for_leaf(root=root, leaf=leaves[root.pk]) for root in roots if root.pk in leaves
        ],
    }

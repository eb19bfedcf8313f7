"""The Merkle sum tree on its own (wallets/proofs.py): no database."""

import ast
import hashlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from wallets import proofs
from wallets.proofs import Node, PathStep, ProofError

SALT = bytes(range(16))
BALANCES = st.integers(min_value=1, max_value=10**36 - 1)


def make_leaves(balances, asset="BTC"):
    return [
        proofs.leaf(
            salt=hashlib.sha256(str(i).encode()).digest()[:16],
            user_id=1000 + i,
            asset=asset,
            balance_units=units,
        )
        for i, units in enumerate(balances)
    ]


def verifies(leaves, index, root) -> bool:
    levels = proofs.tree_levels(leaves)
    try:
        proofs.verify_path(
            leaf_node=leaves[index],
            path=proofs.path_of(levels, index),
            index=index,
            leaf_count=len(leaves),
            root=root,
        )
    except ProofError:
        return False
    return True


def test_the_module_is_pure():
    tree = ast.parse(Path(proofs.__file__).read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}

    assert imported <= {"hashlib", "collections", "dataclasses"}, imported


def test_leaf_hash_is_the_documented_encoding():
    commitment = hashlib.sha256(
        b"pol-account\x00" + SALT + (42).to_bytes(8, "big") + b"USD"
    ).digest()
    expected = hashlib.sha256(b"\x00" + commitment + (150).to_bytes(32, "big")).digest()

    leaf = proofs.leaf(salt=SALT, user_id=42, asset="USD", balance_units=150)

    assert leaf == Node(expected, 150)


def test_a_node_commits_to_both_child_sums_not_only_their_total():
    left, right = Node(b"a" * 32, 3), Node(b"b" * 32, 7)
    shifted = proofs.parent(Node(b"a" * 32, 4), Node(b"b" * 32, 6))

    node = proofs.parent(left, right)

    assert node.sum == 10 == shifted.sum
    assert node.hash != shifted.hash
    assert (
        node.hash
        == hashlib.sha256(
            b"\x01" + b"a" * 32 + (3).to_bytes(32, "big") + b"b" * 32 + (7).to_bytes(32, "big")
        ).digest()
    )


def test_an_empty_tree_has_the_hash_of_nothing_and_no_total():
    assert proofs.root_of(proofs.tree_levels([])) == Node(hashlib.sha256(b"").digest(), 0)


def test_one_leaf_is_its_own_root_with_an_empty_path():
    [leaf] = make_leaves([5])
    levels = proofs.tree_levels([leaf])

    assert proofs.root_of(levels) == leaf
    assert proofs.path_of(levels, 0) == []


def test_the_odd_node_moves_up_unchanged_and_is_not_paired_with_itself():
    a, b, c = make_leaves([1, 2, 3])

    root = proofs.root_of(proofs.tree_levels([a, b, c]))

    assert root == proofs.parent(proofs.parent(a, b), c)
    assert root.sum == 6


@pytest.mark.parametrize("count", [*range(1, 40), 64, 65, 100])
def test_every_leaf_of_every_size_verifies(count):
    leaves = make_leaves(range(1, count + 1))
    root = proofs.root_of(proofs.tree_levels(leaves))

    assert root.sum == count * (count + 1) // 2
    assert all(verifies(leaves, index, root) for index in range(count))


@pytest.mark.parametrize("count", [1, 2, 7, 16, 17, 31, 33, 48, 63, 130])
@pytest.mark.parametrize("block_level", [1, 2, 4])
def test_a_path_rebuilt_from_a_block_and_the_upper_levels_is_the_full_path(count, block_level):
    leaves = make_leaves(range(1, count + 1))
    levels = proofs.tree_levels(leaves)
    upper = {
        (level, position): node
        for level in range(block_level, len(levels))
        for position, node in enumerate(levels[level])
    }

    for index in range(count):
        start, end = proofs.block_bounds(index=index, leaf_count=count, block_level=block_level)
        rebuilt = proofs.path_from_block(
            block_leaves=leaves[start:end],
            index=index,
            leaf_count=count,
            block_level=block_level,
            upper_nodes=upper,
        )
        assert rebuilt == proofs.path_of(levels, index), index


def test_a_path_with_a_negative_sibling_sum_is_refused():
    a, b = make_leaves([5, 5])
    # A sibling claiming -5 would make the root's total shrink to 0 ... if it were accepted.
    evil_sibling = Node(b.hash, -5)
    root = proofs.parent(a, Node(b.hash, 0))

    with pytest.raises(ProofError, match="negative"):
        proofs.verify_path(
            leaf_node=a,
            path=[PathStep("right", evil_sibling.hash, evil_sibling.sum)],
            index=0,
            leaf_count=2,
            root=root,
        )


def test_a_path_that_does_not_fit_the_leaf_count_is_refused():
    leaves = make_leaves([1, 2, 3, 4])
    levels = proofs.tree_levels(leaves)
    root = proofs.root_of(levels)

    # Leaf 2 of 4 has a right then a left sibling; in a tree of 3 it would move up alone.
    with pytest.raises(ProofError, match="does not fit"):
        proofs.verify_path(
            leaf_node=leaves[2],
            path=proofs.path_of(levels, 2),
            index=2,
            leaf_count=3,
            root=root,
        )


@hypothesis_settings(max_examples=150, deadline=None)
@given(balances=st.lists(BALANCES, min_size=1, max_size=60), data=st.data())
def test_property_inclusion_and_total(balances, data):
    leaves = make_leaves(balances)
    root = proofs.root_of(proofs.tree_levels(leaves))
    index = data.draw(st.integers(0, len(leaves) - 1))

    assert root.sum == sum(balances)
    assert verifies(leaves, index, root)


@hypothesis_settings(max_examples=150, deadline=None)
@given(
    balances=st.lists(BALANCES, min_size=2, max_size=60),
    data=st.data(),
    delta=st.integers(min_value=-(10**20), max_value=10**20).filter(bool),
)
def test_property_a_changed_balance_breaks_every_honest_proof(balances, data, delta):
    """The operator publishes a root with one balance changed: no honest proof of the
    other accounts (nor of that one) checks out against it."""
    leaves = make_leaves(balances)
    honest = proofs.tree_levels(leaves)
    changed = data.draw(st.integers(0, len(balances) - 1))
    tampered_balances = list(balances)
    tampered_balances[changed] = max(0, tampered_balances[changed] + delta)
    if tampered_balances[changed] == balances[changed]:
        tampered_balances[changed] += 1
    tampered_root = proofs.root_of(proofs.tree_levels(make_leaves(tampered_balances)))
    index = data.draw(st.integers(0, len(balances) - 1))

    assert tampered_root.hash != proofs.root_of(honest).hash
    with pytest.raises(ProofError):
        proofs.verify_path(
            leaf_node=leaves[index],
            path=proofs.path_of(honest, index),
            index=index,
            leaf_count=len(leaves),
            root=tampered_root,
        )


@hypothesis_settings(max_examples=150, deadline=None)
@given(balances=st.lists(BALANCES, min_size=2, max_size=60), data=st.data())
def test_property_a_dropped_account_breaks_every_honest_proof(balances, data):
    leaves = make_leaves(balances)
    honest = proofs.tree_levels(leaves)
    dropped = data.draw(st.integers(0, len(leaves) - 1))
    tampered_root = proofs.root_of(proofs.tree_levels(leaves[:dropped] + leaves[dropped + 1 :]))
    index = data.draw(st.integers(0, len(leaves) - 1))

    assert tampered_root.sum == sum(balances) - balances[dropped]
    with pytest.raises(ProofError, match="root hash"):
        proofs.verify_path(
            leaf_node=leaves[index],
            path=proofs.path_of(honest, index),
            index=index,
            leaf_count=len(leaves),
            root=tampered_root,
        )


@hypothesis_settings(max_examples=100, deadline=None)
@given(balances=st.lists(BALANCES, min_size=2, max_size=40), data=st.data())
def test_property_a_forged_path_cannot_shrink_the_total(balances, data):
    """Lowering any sibling's sum in a path (to hide liabilities) changes the root."""
    leaves = make_leaves(balances)
    levels = proofs.tree_levels(leaves)
    root = proofs.root_of(levels)
    index = data.draw(st.integers(0, len(leaves) - 1))
    path = proofs.path_of(levels, index)
    step = data.draw(st.integers(0, len(path) - 1))
    cut = data.draw(st.integers(1, path[step].sum))
    forged = list(path)
    forged[step] = PathStep(path[step].side, path[step].hash, path[step].sum - cut)

    with pytest.raises(ProofError):
        proofs.verify_path(
            leaf_node=leaves[index], path=forged, index=index, leaf_count=len(leaves), root=root
        )
    with pytest.raises(ProofError):
        proofs.verify_path(
            leaf_node=leaves[index],
            path=forged,
            index=index,
            leaf_count=len(leaves),
            root=Node(root.hash, root.sum - cut),
        )

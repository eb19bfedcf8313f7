"""Merkle sum trees for the proof of liabilities (docs/PROOF_OF_LIABILITIES.md).

PURE: no Django, no database, no Decimal. Amounts are integers in units of 1e-18 (the
18-place storage scale of ARCHITECTURE §4), so a sum is exact whatever its size.
``scripts/verify_liabilities.py`` mirrors the hashing below with the standard library
only; ``wallets/tests/proofs/test_verifier_script.py`` fails if the two ever disagree.

Scheme ``pol-merkle-sum-sha256-v1``:

- account commitment ``C = SHA256("pol-account\\0" || salt (16 bytes) || user id (8 bytes,
  big-endian) || asset code (ASCII))``. The salt is fresh per user, asset and snapshot, so
  a leaf seen in one proof links to no account, no other asset and no other snapshot.
- leaf ``hash = SHA256(0x00 || C || balance (32 bytes, big-endian))``, ``sum = balance``.
- node ``hash = SHA256(0x01 || left.hash || left.sum || right.hash || right.sum)`` (sums as
  32 bytes, big-endian), ``sum = left.sum + right.sum``.
- Leaves pair up left to right, level by level; a level's last node without a partner moves
  up unchanged (it is never paired with itself, which would let a prover count it twice).
- The tree of no leaves has the root ``SHA256("")`` and the sum 0.

The 0x00/0x01 prefixes keep a leaf from passing for an inner node (RFC 6962 §2.1). Each
node commits to BOTH child sums, not only their total: with the total alone a prover can
show every user a sibling whose sum is not the one the root counted (Hu, Zhang and Guo,
"Maxwell's proof of solvency is not secure", 2019). The verifier recomputes every parent
sum itself and refuses a negative one.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

SCHEME = "pol-merkle-sum-sha256-v1"
SALT_BYTES = 16
SUM_BYTES = 32
MAX_SUM = 2 ** (8 * SUM_BYTES) - 1
UNITS_PER_WHOLE = 10**18
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
ACCOUNT_PREFIX = b"pol-account\x00"
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof that does not hold: the message says which check failed."""


@dataclass(frozen=True, slots=True)
class Node:
    hash: bytes
    sum: int


@dataclass(frozen=True, slots=True)
class PathStep:
    """The sibling met on the way up; ``side`` is where it sits: "left" or "right"."""

    side: str
    hash: bytes
    sum: int


def _sum_bytes(value: int) -> bytes:
    if not 0 <= value <= MAX_SUM:
        raise ProofError(f"sum {value} is outside 0 .. 2^256-1")
    return value.to_bytes(SUM_BYTES, "big")


def account_commitment(*, salt: bytes, user_id: int, asset: str) -> bytes:
    """``C``: binds the leaf to one account and asset without revealing either."""
    if len(salt) != SALT_BYTES:
        raise ProofError(f"salt must be {SALT_BYTES} bytes")
    if not 0 <= user_id < 2**63:
        raise ProofError("user id out of range")
    return hashlib.sha256(
        ACCOUNT_PREFIX + salt + user_id.to_bytes(8, "big") + asset.encode("ascii")
    ).digest()


def leaf_from_commitment(commitment: bytes, balance_units: int) -> Node:
    return Node(
        hashlib.sha256(LEAF_PREFIX + commitment + _sum_bytes(balance_units)).digest(),
        balance_units,
    )


def leaf(*, salt: bytes, user_id: int, asset: str, balance_units: int) -> Node:
    """The leaf of one account's balance (in 1e-18 units) of one asset."""
    commitment = account_commitment(salt=salt, user_id=user_id, asset=asset)
    return leaf_from_commitment(commitment, balance_units)


def parent(left: Node, right: Node) -> Node:
    total = left.sum + right.sum
    digest = hashlib.sha256(
        NODE_PREFIX + left.hash + _sum_bytes(left.sum) + right.hash + _sum_bytes(right.sum)
    ).digest()
    return Node(digest, total)


def level_sizes(leaf_count: int) -> list[int]:
    """How many nodes each level holds, leaves first, root last (``[0]`` for no leaves)."""
    sizes = [leaf_count]
    while sizes[-1] > 1:
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


def tree_levels(leaves: Sequence[Node]) -> list[list[Node]]:
    """Every level of the tree over ``leaves``: ``[leaves, ..., [root]]``."""
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        above = [parent(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
        if len(below) % 2:
            above.append(below[-1])  # the odd one out moves up unchanged
        levels.append(above)
    return levels


def root_of(levels: Sequence[Sequence[Node]]) -> Node:
    top = levels[-1]
    return top[0] if top else Node(EMPTY_ROOT, 0)


def sibling_positions(*, leaf_count: int, index: int, from_level: int = 0) -> list[tuple]:
    """``(level, position, side)`` of each sibling on the way up from the node at ``index``
    of level ``from_level`` (``index`` counts that level's nodes). Levels where the node
    moves up alone have no sibling and no entry."""
    sizes = level_sizes(leaf_count)
    if not 0 <= from_level < len(sizes) or not 0 <= index < sizes[from_level]:
        raise ProofError(f"index {index} is outside a tree of {leaf_count} leaves")
    steps = []
    position = index
    for level in range(from_level, len(sizes) - 1):
        sibling = position ^ 1
        if sibling < sizes[level]:
            steps.append((level, sibling, "left" if sibling < position else "right"))
        position //= 2
    return steps


def path_of(levels: Sequence[Sequence[Node]], index: int, from_level: int = 0) -> list[PathStep]:
    """The siblings of node ``index`` of level ``from_level`` up to the root."""
    return [
        PathStep(side, levels[level][position].hash, levels[level][position].sum)
        for level, position, side in sibling_positions(
            leaf_count=len(levels[0]), index=index, from_level=from_level
        )
    ]


def fold(start: Node, path: Sequence[PathStep]) -> Node:
    """The root that ``start`` and its ``path`` add up to; refuses a negative sum."""
    node = start
    for step in path:
        if step.sum < 0:
            raise ProofError("a sibling's sum is negative")
        if step.side == "left":
            node = parent(Node(step.hash, step.sum), node)
        elif step.side == "right":
            node = parent(node, Node(step.hash, step.sum))
        else:
            raise ProofError(f"a step's side must be left or right, not {step.side!r}")
    return node


def verify_path(
    *, leaf_node: Node, path: Sequence[PathStep], index: int, leaf_count: int, root: Node
) -> None:
    """Raise ``ProofError`` unless ``leaf_node`` at ``index`` of a tree of ``leaf_count``
    leaves adds up along ``path`` to ``root``, hash and sum."""
    if leaf_node.sum < 0:
        raise ProofError("the balance is negative")
    expected_sides = [side for _, _, side in sibling_positions(leaf_count=leaf_count, index=index)]
    if [step.side for step in path] != expected_sides:
        raise ProofError(
            f"the path does not fit leaf {index} of a tree of {leaf_count} leaves "
            f"({len(path)} steps, {len(expected_sides)} expected)"
        )
    top = fold(leaf_node, path)
    if top.hash != root.hash:
        raise ProofError("the path does not lead to the published root hash")
    if top.sum != root.sum:
        raise ProofError("the path does not add up to the published total")


# --- Paths from a block of leaves and the stored upper levels -----------------------------
# A tree's levels from ``block_level`` up are kept; below it, the path of a leaf is rebuilt
# from the aligned block of 2**block_level leaves around it. Pairing is by position, so the
# block's own tree is exactly the part of the whole tree under the block's node (the last,
# partial block included: its odd nodes move up in both).


def block_bounds(*, index: int, leaf_count: int, block_level: int) -> tuple[int, int]:
    """``(start, end)``: the leaves of the block holding leaf ``index``."""
    if not 0 <= index < leaf_count:
        raise ProofError(f"index {index} is outside a tree of {leaf_count} leaves")
    size = 1 << block_level
    start = index - index % size
    return start, min(start + size, leaf_count)


def upper_sibling_positions(*, leaf_count: int, index: int, block_level: int) -> list[tuple]:
    """``(level, position, side)`` of the siblings of leaf ``index``'s path at
    ``block_level`` and above: the stored nodes a proof needs."""
    if len(level_sizes(leaf_count)) <= block_level:
        return []  # the whole tree is one block
    return sibling_positions(
        leaf_count=leaf_count, index=index >> block_level, from_level=block_level
    )


def path_from_block(
    *,
    block_leaves: Sequence[Node],
    index: int,
    leaf_count: int,
    block_level: int,
    upper_nodes: dict[tuple[int, int], Node],
) -> list[PathStep]:
    """Leaf ``index``'s path: the lower part from its block's leaves, the rest from
    ``upper_nodes`` (``{(level, position): node}``, from ``upper_sibling_positions``)."""
    start, end = block_bounds(index=index, leaf_count=leaf_count, block_level=block_level)
    if len(block_leaves) != end - start:
        raise ProofError(f"the block holds {len(block_leaves)} leaves, not {end - start}")
    path = path_of(tree_levels(block_leaves), index - start)
    for level, position, side in upper_sibling_positions(
        leaf_count=leaf_count, index=index, block_level=block_level
    ):
        node = upper_nodes[(level, position)]
        path.append(PathStep(side, node.hash, node.sum))
    return path

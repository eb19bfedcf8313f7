#!/usr/bin/env python3
"""Check that your balances are counted in the exchange's published liabilities.

Usage:
    python3 verify_liabilities.py proof.json --roots https://EXCHANGE/api/v1/proof-of-liabilities?snapshot=ID
    python3 verify_liabilities.py proof.json --roots roots.json --user-id 42 --expect BTC=0.5

``proof.json`` is what the wallet page's "Download my proof" gives (or
``GET /api/v1/wallets/proof-of-liabilities``). ``--roots`` is the published roots, a saved
file or the URL of ``/api/v1/proof-of-liabilities`` for the same snapshot. For every asset
in the proof the script checks that:

1. the balance in decimal and in units of 1e-18 agree, and neither is negative;
2. the leaf hash follows from your salt, user id, the asset and the balance;
3. the path of sibling hashes and sums fits your leaf's position in a tree of that many
   leaves, and no sibling's sum is negative;
4. hashing up the path gives the root hash, and adding up the sums gives the total;
5. that root hash, total and number of accounts are the published ones (with ``--roots``);
6. the proof counts the balances you know you had (with ``--expect BTC=0.5``): a proof that
   checks out is worth little if the balance in its leaf is not yours.

Exit status: 0 when every check passes, 1 when one fails (the message says which), 2 when
the input cannot be read. Python 3.9+ and the standard library only: read it before you
run it. The scheme (``pol-merkle-sum-sha256-v1``):

    C    = SHA256("pol-account\\0" || salt[16] || user_id[8, big-endian] || asset code)
    leaf = SHA256(0x00 || C || balance[32, big-endian]),            sum = balance
    node = SHA256(0x01 || L.hash || L.sum[32] || R.hash || R.sum[32]), sum = L.sum + R.sum

Amounts are integers in units of 1e-18. Leaves pair left to right; a level's last node with
no partner moves up unchanged. What this proves, and what it does not: your balance is one
of the leaves adding up to the published total (so it cannot have been left out or made
smaller without the root changing). It says nothing about the assets the exchange holds
against that total.
"""

import argparse
import decimal
import hashlib
import json
import sys
import urllib.request

SCHEME = "pol-merkle-sum-sha256-v1"
SALT_BYTES = 16
SUM_BYTES = 32
MAX_SUM = 2 ** (8 * SUM_BYTES) - 1
UNIT_PLACES = 18


class Failed(Exception):
    """One check failed; the message says which."""


def sum_bytes(value):
    if not 0 <= value <= MAX_SUM:
        raise Failed(f"a sum is negative or too large: {value}")
    return value.to_bytes(SUM_BYTES, "big")


def account_commitment(salt, user_id, asset):
    if len(salt) != SALT_BYTES:
        raise Failed(f"the salt must be {SALT_BYTES} bytes")
    if not 0 <= user_id < 2**63:
        raise Failed("the user id is out of range")
    return hashlib.sha256(
        b"pol-account\x00" + salt + user_id.to_bytes(8, "big") + asset.encode("ascii")
    ).digest()


def leaf_hash(salt, user_id, asset, balance_units):
    commitment = account_commitment(salt, user_id, asset)
    return hashlib.sha256(b"\x00" + commitment + sum_bytes(balance_units)).digest()


def node_hash(left_hash, left_sum, right_hash, right_sum):
    return hashlib.sha256(
        b"\x01" + left_hash + sum_bytes(left_sum) + right_hash + sum_bytes(right_sum)
    ).digest()


def expected_sides(leaf_count, index):
    """The side of each sibling on the way up from leaf ``index``."""
    if not 0 <= index < leaf_count:
        raise Failed(f"leaf {index} cannot be in a tree of {leaf_count} leaves")
    sides, size, position = [], leaf_count, index
    while size > 1:
        sibling = position ^ 1
        if sibling < size:
            sides.append("left" if sibling < position else "right")
        position //= 2
        size = (size + 1) // 2
    return sides


def _integer(text, what):
    if not isinstance(text, str) or not text.isdigit():
        if isinstance(text, str) and text.startswith("-") and text[1:].isdigit():
            raise Failed(f"{what} is negative")
        raise Failed(f"{what} must be a whole number of units, not {text!r}")
    return int(text)


def _hex(text, what, size=None):
    try:
        value = bytes.fromhex(text)
    except (TypeError, ValueError):
        raise Failed(f"{what} is not hex") from None
    if size is not None and len(value) != size:
        raise Failed(f"{what} must be {size} bytes")
    return value


def verify_asset(entry, user_id):
    """Checks 1-4 for one asset of the proof; returns (root hash hex, total units)."""
    asset = entry["asset"]
    balance_units = _integer(entry["balance_units"], "the balance")
    if decimal.Decimal(entry["balance"]).scaleb(UNIT_PLACES) != balance_units:
        raise Failed(f"balance {entry['balance']} is not {balance_units} units of 1e-18")
    salt = _hex(entry["salt"], "the salt", SALT_BYTES)
    node = leaf_hash(salt, user_id, asset, balance_units)
    node_sum = balance_units
    if "leaf_hash" in entry and _hex(entry["leaf_hash"], "the leaf hash") != node:
        raise Failed("the leaf hash does not follow from your user id, salt and balance")
    path = entry["path"]
    sides = expected_sides(int(entry["leaf_count"]), int(entry["index"]))
    if [step["side"] for step in path] != sides:
        raise Failed(
            f"the path does not fit leaf {entry['index']} of a tree of {entry['leaf_count']} leaves"
        )
    for step in path:
        sibling = _hex(step["hash"], "a sibling hash", 32)
        sibling_sum = _integer(step["sum"], "a sibling's sum")
        if step["side"] == "left":
            node = node_hash(sibling, sibling_sum, node, node_sum)
        else:
            node = node_hash(node, node_sum, sibling, sibling_sum)
        node_sum += sibling_sum
    if node.hex() != entry["root_hash"]:
        raise Failed(f"the path leads to root {node.hex()}, not {entry['root_hash']}")
    total_units = _integer(entry["total_units"], "the total")
    if node_sum != total_units:
        raise Failed(f"the path adds up to {node_sum} units, not the total {total_units}")
    if decimal.Decimal(entry["total"]).scaleb(UNIT_PLACES) != total_units:
        raise Failed(f"total {entry['total']} is not {total_units} units of 1e-18")
    return node.hex(), total_units


def compare_published(entry, published):
    """Check 5: the proof's root, total and leaf count are the published ones."""
    row = published.get(entry["asset"])
    if row is None:
        raise Failed("the published roots have no tree for this asset")
    if row["root_hash"] != entry["root_hash"]:
        raise Failed(f"the published root is {row['root_hash']}, the proof's {entry['root_hash']}")
    if _integer(row["total_units"], "the published total") != _integer(
        entry["total_units"], "the total"
    ):
        raise Failed(f"the published total is {row['total']}, the proof's {entry['total']}")
    if int(row["leaf_count"]) != int(entry["leaf_count"]):
        raise Failed(
            f"the published tree has {row['leaf_count']} accounts, "
            f"the proof's {entry['leaf_count']}"
        )


def load_json(source):
    if source == "-":
        return json.load(sys.stdin)
    if source.startswith(("https://", "http://")):
        request = urllib.request.Request(source, headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)
    with open(source, encoding="utf-8") as handle:
        return json.load(handle)


def verify(proof, roots=None, *, user_id=None, expect=None, out=print):
    """Run every check on ``proof`` (against ``roots`` if given; ``expect`` maps asset codes
    to the balances you know you had); returns how many assets failed (0: all good)."""
    if proof.get("scheme") != SCHEME:
        raise Failed(f"unknown scheme {proof.get('scheme')!r}; this script checks {SCHEME}")
    proof_user = int(proof["user_id"])
    if user_id is not None and proof_user != user_id:
        raise Failed(f"the proof is for user {proof_user}, not {user_id}")
    published = None
    if roots is not None:
        if roots.get("scheme") != SCHEME:
            raise Failed(f"the published roots use scheme {roots.get('scheme')!r}")
        if int(roots["snapshot_id"]) != int(proof["snapshot_id"]):
            raise Failed(
                f"the published roots are of snapshot {roots['snapshot_id']}, "
                f"the proof of snapshot {proof['snapshot_id']}"
            )
        published = {row["asset"]: row for row in roots["assets"]}
    out(f"snapshot {proof['snapshot_id']} taken at {proof['taken_at']}, user {proof_user}")
    if not proof["assets"]:
        out("the proof holds no balances (you held nothing at the snapshot)")
    failures = 0
    for entry in proof["assets"]:
        asset = entry.get("asset", "?")
        try:
            root, _total = verify_asset(entry, proof_user)
            if published is not None:
                compare_published(entry, published)
        except (Failed, KeyError, TypeError, ValueError, decimal.InvalidOperation) as error:
            failures += 1
            reason = f"missing field {error}" if isinstance(error, KeyError) else str(error)
            out(f"FAIL {asset}: {reason}")
            continue
        where = "the published root" if published is not None else "the proof's root"
        out(
            f"OK   {asset}: balance {entry['balance']} is included in {where} {root} "
            f"(total {entry['total']}, {entry['leaf_count']} accounts)"
        )
    for asset, amount in (expect or {}).items():
        entry = next((e for e in proof["assets"] if e.get("asset") == asset), None)
        if entry is None:
            failures += 1
            out(f"FAIL {asset}: the proof has no leaf for it, you expected {amount}")
        elif decimal.Decimal(entry["balance"]) != amount:
            failures += 1
            out(f"FAIL {asset}: the proof counts {entry['balance']}, you expected {amount}")
    if published is None:
        out(
            "NOTE the roots were not compared with the published ones: pass --roots "
            "(the file or URL of /api/v1/proof-of-liabilities?snapshot=ID)"
        )
    return failures


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Check that your balances are counted in the exchange's published "
        "proof of liabilities (Merkle sum tree, scheme " + SCHEME + ").",
        epilog="Exit status: 0 all checks pass, 1 a check failed, 2 the input is unreadable.",
    )
    parser.add_argument("proof", help="your downloaded proof.json ('-' for stdin)")
    parser.add_argument(
        "--roots",
        help="the published roots: a JSON file or the URL of "
        "/api/v1/proof-of-liabilities?snapshot=ID",
    )
    parser.add_argument("--user-id", type=int, help="fail unless the proof is for this user id")
    parser.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="ASSET=AMOUNT",
        help="fail unless the proof counts this balance (available + locked at the snapshot) "
        "of ASSET; repeat for more assets",
    )
    args = parser.parse_args(argv)
    decimal.getcontext().prec = 100  # balances have up to 36 digits, totals more
    expect = {}
    for item in args.expect:
        asset, _, amount = item.partition("=")
        try:
            expect[asset.strip().upper()] = decimal.Decimal(amount)
        except decimal.InvalidOperation:
            parser.error(f"--expect {item!r}: write ASSET=AMOUNT, e.g. BTC=0.5")
    try:
        proof = load_json(args.proof)
        roots = load_json(args.roots) if args.roots else None
    except (OSError, ValueError) as error:
        print(f"cannot read the input: {error}", file=sys.stderr)
        return 2
    try:
        failures = verify(proof, roots, user_id=args.user_id, expect=expect)
    except (Failed, KeyError, TypeError, ValueError) as error:
        reason = f"missing field {error}" if isinstance(error, KeyError) else str(error)
        print(f"FAIL {reason}")
        return 1
    if failures:
        print(f"FAILED: {failures} asset(s) not proven")
        return 1
    print("VERIFIED")
    return 0


if __name__ == "__main__":
    sys.exit(main())

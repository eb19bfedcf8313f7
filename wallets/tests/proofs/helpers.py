"""Helpers shared by the proof-of-liabilities tests."""

import json
import subprocess
import sys
from pathlib import Path

from wallets import liabilities, proofs
from wallets.models import LiabilityLeaf

VERIFIER = Path(__file__).resolve().parents[3] / "scripts" / "verify_liabilities.py"


def tree_leaves(root, *, change=None, drop=None) -> list[proofs.Node]:
    """The leaves of ``root``'s stored tree in order, as the operator could rebuild them:
    ``change`` maps user ids to new balances in units, ``drop`` leaves one user out."""
    nodes = []
    for row in LiabilityLeaf.objects.filter(root=root).order_by("index"):
        if row.user_id == drop:
            continue
        units = liabilities._units(row.balance)
        if change and row.user_id in change:
            units = change[row.user_id]
        nodes.append(
            proofs.leaf(
                salt=bytes.fromhex(row.salt),
                user_id=row.user_id,
                asset=root.asset.code,
                balance_units=units,
            )
        )
    return nodes


def run_verifier(tmp_path, proof: dict, roots: dict | None = None, *args: str):
    """Run scripts/verify_liabilities.py as a user would: a separate Python process."""
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(json.dumps(proof))
    command = [sys.executable, str(VERIFIER), str(proof_file), *args]
    if roots is not None:
        roots_file = tmp_path / "roots.json"
        roots_file.write_text(json.dumps(roots))
        command += ["--roots", str(roots_file)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def check_proof(proof: dict) -> None:
    """Raise ProofError unless every asset of ``proof`` verifies (wallets.proofs)."""
    for entry in proof["assets"]:
        leaf = proofs.leaf(
            salt=bytes.fromhex(entry["salt"]),
            user_id=proof["user_id"],
            asset=entry["asset"],
            balance_units=int(entry["balance_units"]),
        )
        proofs.verify_path(
            leaf_node=leaf,
            path=[
                proofs.PathStep(s["side"], bytes.fromhex(s["hash"]), int(s["sum"]))
                for s in entry["path"]
            ],
            index=entry["index"],
            leaf_count=entry["leaf_count"],
            root=proofs.Node(bytes.fromhex(entry["root_hash"]), int(entry["total_units"])),
        )

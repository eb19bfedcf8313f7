"""Benchmark the proof-of-liabilities snapshot: N accounts each holding every one of 4
assets (the worst case: 4N leaves), then one ``liability_snapshot_take``.

    .venv/bin/python bench/proof_of_liabilities.py [--users 100000] [--proofs 200]

Setting up the accounts and balances is not timed. Prints one JSON line:
``{"users", "leaves", "snapshot_s", "proof_p50_ms", "proof_p99_ms", "leaf_table_mb",
"node_table_mb", "nodes"}``: the snapshot's wall time (one statement's read, hashing,
COPY of the leaves and upper nodes, commit), the time to build one user's proof of all 4
assets, and what one snapshot takes on disk. It DROPS and recreates its own database,
``BENCH_DATABASE_URL`` (default ``postgres://postgres@127.0.0.1:5432/exchange_bench_pol``).
"""

import argparse
import json
import random
import statistics
import time
from decimal import Decimal

import benchdb

BENCH_DATABASE_URL = benchdb.setup(database="exchange_bench_pol", redis_db=10)

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import User  # noqa: E402
from exchange_site.db import copy_rows  # noqa: E402
from wallets import liabilities  # noqa: E402
from wallets.models import Asset, Balance, LiabilityLeaf, LiabilityNode  # noqa: E402

ASSETS = [("USD", 2), ("BTC", 8), ("ETH", 8), ("SOL", 8)]


def populate(users: int) -> list[int]:
    """``users`` accounts, each with a random balance of every asset (untimed)."""
    assets = [Asset.objects.create(code=code, name=code, precision=p) for code, p in ASSETS]
    created = User.objects.bulk_create(
        [User(email=f"pol{i}@example.com", username=f"pol{i}", password="!") for i in range(users)],
        batch_size=5000,
    )
    rng = random.Random(1)
    now = timezone.now()
    rows = []
    for user in created:
        for asset in assets:
            available = Decimal(rng.randrange(1, 10**12)).scaleb(-asset.precision)
            locked = Decimal(rng.randrange(0, 10**10)).scaleb(-asset.precision)
            rows.append((user.pk, asset.pk, available, locked, now))
    copy_rows(
        Balance._meta.db_table, ["user_id", "asset_id", "available", "locked", "updated_at"], rows
    )
    with connection.cursor() as cursor:
        cursor.execute(f'ANALYZE "{Balance._meta.db_table}"')
    return [user.pk for user in created]


def table_mb(model) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size(%s)", [model._meta.db_table])
        return round(cursor.fetchone()[0] / 2**20, 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--proofs", type=int, default=200)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    user_ids = populate(args.users)

    started = time.perf_counter()
    stats = liabilities.liability_snapshot_take(keep=0)
    snapshot_s = time.perf_counter() - started

    timings = []
    for user_id in random.Random(2).sample(user_ids, min(args.proofs, len(user_ids))):
        user = User.objects.get(pk=user_id)
        begun = time.perf_counter()
        proof = liabilities.liability_proof_for_user(user=user, snapshot=stats.snapshot)
        timings.append((time.perf_counter() - begun) * 1000)
        assert len(proof["assets"]) == len(ASSETS)
    timings.sort()
    print(
        json.dumps(
            {
                "users": args.users,
                "leaves": LiabilityLeaf.objects.count(),
                "snapshot_s": round(snapshot_s, 2),
                "proof_p50_ms": round(statistics.median(timings), 2),
                "proof_p99_ms": round(timings[int(len(timings) * 0.99) - 1], 2),
                "leaf_table_mb": table_mb(LiabilityLeaf),
                "node_table_mb": table_mb(LiabilityNode),
                "nodes": LiabilityNode.objects.count(),
            }
        )
    )


if __name__ == "__main__":
    main()

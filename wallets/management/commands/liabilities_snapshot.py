"""``manage.py liabilities_snapshot``: take a proof-of-liabilities snapshot now and print
each asset's published root, total and number of accounts."""

from django.core.management.base import BaseCommand

from wallets.liabilities import liability_roots_get, liability_snapshot_take


class Command(BaseCommand):
    help = (
        "Commit every account's balances to one Merkle sum tree per asset and publish the "
        "roots (docs/PROOF_OF_LIABILITIES.md); prune to the newest LIABILITY_SNAPSHOTS_KEEP."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--keep",
            type=int,
            default=None,
            help="Keep this many snapshots, the new one included (0: all). "
            "Default: settings.LIABILITY_SNAPSHOTS_KEEP.",
        )

    def handle(self, *args, keep, **options):
        stats = liability_snapshot_take(keep=keep)
        published = liability_roots_get(snapshot=stats.snapshot)
        self.stdout.write(f"snapshot {published['snapshot_id']} taken at {published['taken_at']}")
        self.stdout.write(f"{'asset':<8}{'accounts':>10}  {'total':<32}root")
        for row in published["assets"]:
            self.stdout.write(
                f"{row['asset']:<8}{row['leaf_count']:>10}  {row['total']:<32}{row['root_hash']}"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"done in {stats.seconds:.2f} s; {stats.pruned} old snapshot(s) pruned"
            )
        )

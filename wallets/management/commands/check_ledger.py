"""``manage.py check_ledger``: the money invariants over the whole database; exit 1 if broken."""

import json

from django.core.management.base import BaseCommand, CommandError

from wallets.services import ledger_check_run


class Command(BaseCommand):
    help = (
        "Check ARCHITECTURE §4's money invariants; print a summary per asset and every violation."
    )

    def handle(self, *args, **options):
        run = ledger_check_run()
        assets = run.summary["assets"]
        self.stdout.write(
            f"{'asset':<8}{'held':>28}{'locked':>24}{'deposited':>28}{'withdrawn':>24}"
        )
        for code, row in assets.items():
            self.stdout.write(
                f"{code:<8}{row['held']:>28}{row['locked']:>24}"
                f"{row['deposited']:>28}{row['withdrawn']:>24}"
            )
        self.stdout.write(f"{run.summary['balances_checked']} balances checked")
        for violation in run.violations:
            self.stdout.write(self.style.ERROR(json.dumps(violation, sort_keys=True)))
        if not run.ok:
            raise CommandError(f"{len(run.violations)} ledger invariant violation(s)", returncode=1)
        self.stdout.write(self.style.SUCCESS("ledger OK: every invariant holds"))

"""``manage.py seed_demo``: the demo data ``make run`` starts with. Safe to run again."""

from django.core.management.base import BaseCommand

from accounts.services import DEMO_USERS, demo_users_seed
from trading.services import markets_seed
from wallets.services import assets_seed, demo_funds_seed


class Command(BaseCommand):
    help = "Create the demo data (idempotent): users, assets, markets, starting funds."

    def handle(self, *args, **options):
        lines = demo_users_seed()
        lines += assets_seed()
        lines += markets_seed()
        lines += demo_funds_seed(
            emails=[email for email, *_, operator in DEMO_USERS if not operator]
        )
        for line in lines:
            self.stdout.write(line)

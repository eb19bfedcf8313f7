"""``manage.py seed_demo``: the demo data ``make run`` starts with. Safe to run again."""

from django.core.management.base import BaseCommand

from accounts.services import demo_users_seed


class Command(BaseCommand):
    help = "Create the demo data (idempotent): demo users; assets and markets as they exist."

    def handle(self, *args, **options):
        for line in demo_users_seed():
            self.stdout.write(line)
